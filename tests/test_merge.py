"""Shards and `auditor merge`: three shards on a loopback web of many hosts judge as one run does."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from auditor import merge, pipeline
from auditor.cli import cli
from auditor.config import Config, CrawlConfig, Shard
from auditor.crawl import Crawler
from auditor.shards import shard_of
from auditor.store import Store

try:
    from tests.loopback import LoopbackServer
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from loopback import LoopbackServer  # type: ignore[no-redef]

CRAWL = CrawlConfig(timeout=2.0, retries=0, rate=1000.0, allow_private=True)
SHARDS = 3
SITES = ("site1.test", "site2.test", "site3.test", "site4.test")
# Chosen so that each site's AMP host falls in another shard than the site (a test holds it so).
AMP_HOSTS = ("amp1.test", "amp2.test", "amp3.test", "amp5.test")


async def every_name_is_loopback(host: str, port: int) -> list[str]:
    """The loopback web's host names (site1.test, amp2.test, ...) all answer on 127.0.0.1."""
    return ["127.0.0.1"]


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, "PNG")
    return buffer.getvalue()


def _html(title: str, link: str) -> str:
    return f"<html><head><title>{title}</title>{link}</head><body>{title}</body></html>"


@dataclass
class Web:
    server: LoopbackServer
    corpus: Path

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.server.port}{path}"

    def fetched(self) -> set[tuple[str, str]]:
        """(host, path) of every request since the last call, host probes (soft 404s) left out."""
        seen = {(r.headers["host"].split(":")[0], r.path) for r in self.server.requests if "/site" in r.path}
        seen |= {(r.headers["host"].split(":")[0], r.path) for r in self.server.requests if "/amp" in r.path}
        seen |= {(r.headers["host"].split(":")[0], r.path) for r in self.server.requests if "/image/" in r.path}
        self.server.requests.clear()
        return seen


def _article(web: Web, n: int, *, title: str, image: str = "") -> str:
    site, amp = SITES[n - 1], AMP_HOSTS[n - 1]
    text = (
        f'---\ntitle: "{title}"\nwebUrl: {web.url(site, f"/site{n}/story")}\n'
        f"ampWebUrl: {web.url(amp, f'/amp{n}/story')}\nprovider:\n  domain: {site}\n"
    )
    if image:
        text += f"images:\n  - url: {image}\n    width: 100\n    height: 50\n"
    return text + "---\n"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """Four sites with their AMP pages on hosts of their own, so a pair is split between shards."""
    with LoopbackServer() as server:
        corpus = tmp_path_factory.mktemp("web") / "corpus"
        corpus.mkdir()
        web = Web(server, corpus)
        for n, site in enumerate(SITES, start=1):
            page, amp = web.url(site, f"/site{n}/story"), web.url(AMP_HOSTS[n - 1], f"/amp{n}/story")
            canonical = page if n != 2 else web.url(site, "/site2/elsewhere")  # site 2's AMP page disowns it
            server.add_route(
                f"/site{n}/story",
                lambda r, t=f"Story {n}", a=amp: (200, {}, _html(t, f'<link rel="amphtml" href="{a}">')),
            )
            server.add_route(
                f"/amp{n}/story",
                lambda r, t=f"Story {n}", c=canonical: (200, {}, _html(t, f'<link rel="canonical" href="{c}">')),
            )
        server.remove_route("/site3/story")  # gone: a dead link
        server.add_route("/site3/story", lambda r: (404, {}, "gone"))
        image = server.add_file("wide.png", _png((120, 50)), "image/png")  # declared 100x50
        image = image.replace("127.0.0.1", "img.test")
        (corpus / "1.md").write_text(_article(web, 1, title="Story 1", image=image))
        (corpus / "2.md").write_text(_article(web, 2, title="Story 2"))
        (corpus / "3.md").write_text(_article(web, 3, title="Story 3"))
        (corpus / "4.md").write_text(_article(web, 4, title="A headline that changed"))
        (corpus / "5.md").write_text("---\ntitle: [unclosed\n---\n")
        yield web


def _config(db: Path, out: Path, corpus: Path, **overrides: Any) -> Config:
    return Config(paths=(corpus,), db=db, out=out, crawl=CRAWL, **overrides)


def _audit(config: Config) -> pipeline.Outcome:
    return pipeline.audit(config, crawler=Crawler(config.crawl, resolver=every_name_is_loopback))


def _verdicts(report: Any) -> set[tuple[str, str | None, str]]:
    return {(Path(f.document).name, f.field, str(f.code)) for f in report.findings}


@pytest.fixture(scope="module")
def rounds(web: Web, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One unsharded audit, then three shards and their merge, of the same corpus; what each fetched."""
    base = tmp_path_factory.mktemp("rounds")
    web.fetched()
    single = _audit(_config(base / "single.sqlite", base / "single", web.corpus))
    fetched_single = web.fetched()
    shard_dbs, fetched_by, exits = [], [], []
    for index in range(1, SHARDS + 1):
        db = base / f"shard-{index}.sqlite"
        exits.append(_audit(_config(db, base / f"out-{index}", web.corpus, shard=Shard(index, SHARDS))).exit_code)
        shard_dbs.append(db)
        fetched_by.append(web.fetched())
    merged = merge.merge(shard_dbs, _config(base / "merged.sqlite", base / "merged", web.corpus))
    return {
        "base": base,
        "single": single,
        "fetched_single": fetched_single,
        "shard_dbs": shard_dbs,
        "shard_exits": exits,
        "fetched_by": fetched_by,
        "merged": merged,
    }


def test_the_loopback_web_splits_each_amp_pair_between_shards(web: Web) -> None:
    for site, amp in zip(SITES, AMP_HOSTS, strict=True):
        assert shard_of(web.url(site, "/"), SHARDS) != shard_of(web.url(amp, "/"), SHARDS), site


def test_three_shards_and_a_merge_find_what_one_run_finds(rounds: dict[str, Any]) -> None:
    single, merged = rounds["single"].report, rounds["merged"].report
    assert _verdicts(merged) == _verdicts(single)
    assert {code for _, _, code in _verdicts(merged)} >= {
        "amp-pair-mismatch",
        "dead-link",
        "image-size-mismatch",
        "title-mismatch",
        "invalid-metadata",
    }
    assert ("2.md", "ampWebUrl", "amp-pair-mismatch") in _verdicts(merged)
    assert merged.summary.urls == single.summary.urls == 9
    assert (merged.summary.documents, merged.summary.references) == (
        single.summary.documents,
        single.summary.references,
    )
    assert rounds["merged"].exit_code == rounds["single"].exit_code == 1
    assert rounds["shard_exits"] == [0] * SHARDS  # the verdict, and the exit code, are the merge's
    written = json.loads((rounds["base"] / "merged" / "report.json").read_text())
    assert {(Path(f["document"]).name, f["field"], f["code"]) for f in written["findings"]} == _verdicts(single)


def test_each_url_is_fetched_by_exactly_one_shard(rounds: dict[str, Any]) -> None:
    fetched_by: list[set[tuple[str, str]]] = rounds["fetched_by"]
    assert all(fetched_by), "every shard has hosts of its own on this web"
    for i, mine in enumerate(fetched_by):
        for theirs in fetched_by[i + 1 :]:
            assert not mine & theirs
    assert set().union(*fetched_by) == rounds["fetched_single"]
    # A host is asked from one shard only.
    hosts = [{host for host, _ in fetched} for fetched in fetched_by]
    assert sum(len(h) for h in hosts) == len(set().union(*hosts))


def test_a_shard_judges_nothing_it_cannot_see_whole(rounds: dict[str, Any]) -> None:
    for db in rounds["shard_dbs"]:
        store = Store.open_existing(db, read_only=True)
        try:
            run = store.run(store.latest_run_id())
            codes = {str(f.code) for f in store.findings(run.id or 0)}
            own = store.checks(run.id or 0)
        finally:
            store.close()
        assert codes == {"invalid-metadata"}  # offline findings only: no verdicts on links or pages
        assert all(shard_of(url, SHARDS) == run.shard for url in own)
        assert run.urls == len(own)


def test_the_merged_run_is_the_one_later_runs_compare_against(rounds: dict[str, Any], web: Web) -> None:
    base: Path = rounds["base"]
    merged_db = base / "later.sqlite"
    shutil.copy(base / "merged.sqlite", merged_db)  # the other tests see the merged database as it was
    store = Store.open_existing(merged_db, read_only=True)
    try:
        merged_run = store.run(rounds["merged"].run_id)
    finally:
        store.close()
    assert (merged_run.shards, merged_run.shard, merged_run.fetched) == (SHARDS, None, 9)
    web.fetched()
    later = _audit(_config(merged_db, base / "later", web.corpus, max_age=3600.0))
    assert web.fetched() <= {(host, path) for host, path in rounds["fetched_single"] if "/site3/" in path}
    dead = next(f for f in later.report.findings if str(f.code) == "dead-link")
    assert (dead.failing_runs, dead.first_seen) == (2, merged_run.started_at)
    assert _verdicts(later.report) == _verdicts(rounds["single"].report)


def test_shards_seeded_from_the_merged_history_reuse_and_merge_again(rounds: dict[str, Any], web: Web) -> None:
    """Night two: each shard starts from a copy of the merged database, reuses what is fresh, and the
    merge points at the checks it already holds instead of copying them."""
    base: Path = rounds["base"] / "night2"
    base.mkdir()
    history = base / "history.sqlite"
    shutil.copy(rounds["base"] / "merged.sqlite", history)
    checks_before = _count(history, "select count(*) from checks")
    shard_dbs = []
    for index in range(1, SHARDS + 1):
        db = base / f"shard-{index}.sqlite"
        shutil.copy(history, db)
        _audit(_config(db, base / f"out-{index}", web.corpus, shard=Shard(index, SHARDS), max_age=3600.0))
        shard_dbs.append(db)
    again = merge.merge(shard_dbs, _config(history, base / "merged", web.corpus))
    assert _verdicts(again.report) == _verdicts(rounds["single"].report)
    # Only the dead link was fetched again (failures always are); the rest are pointers to old checks.
    assert _count(history, "select count(*) from checks") == checks_before + 1
    dead = next(f for f in again.report.findings if str(f.code) == "dead-link")
    assert dead.failing_runs == 2


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


# -- refusals: one line, exit 2 ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_shards(tmp_path_factory: pytest.TempPathFactory, web: Web) -> Path:
    """Shards made by the CLI, of two small corpora on 127.0.0.1 (one host: shard 1 of 3 has it all)."""
    base = tmp_path_factory.mktemp("cli")
    for name, text in (("a", "one"), ("b", "two")):
        corpus = base / f"corpus-{name}"
        corpus.mkdir()
        for n in range(1, 4):
            port = web.server.port
            web.server.add_route(f"/cli/{name}{n}", lambda r, t=text: (200, {}, _html(t, "")))
            (corpus / f"{n}.md").write_text(f"---\ntitle: {text}\nwebUrl: http://127.0.0.1:{port}/cli/{name}{n}\n---\n")

    def shard(db: str, spec: str, corpus: str = "a", *extra: str) -> None:
        args = ["audit", str(base / f"corpus-{corpus}"), "--db", str(base / db), "--out", str(base / "out" / db)]
        result = CliRunner().invoke(cli, [*args, "--allow-private", "--shard", spec, "-q", *extra])
        assert result.exit_code == 0, result.output  # a shard's verdict is the merge's

    for index in (1, 2, 3):
        shard(f"s{index}.sqlite", f"{index}/3")
    shard("again1.sqlite", "1/3")
    shard("other-corpus2.sqlite", "2/3", "b")
    shard("other-config2.sqlite", "2/3", "a", "--rate", "3")
    shard("two-way2.sqlite", "2/2")
    shard("unfinished3.sqlite", "3/3")
    with sqlite3.connect(base / "unfinished3.sqlite") as conn:
        conn.execute("update runs set status = 'interrupted'")
    result = CliRunner().invoke(cli, ["audit", str(base / "corpus-a"), "--db", str(base / "whole.sqlite"), "-q",
                                      "--out", str(base / "out" / "whole"), "--allow-private"])  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    return base


def _merge(base: Path, *names: str, db: str = "merged.sqlite") -> Any:
    paths = [str(base / name) for name in names]
    return CliRunner().invoke(cli, ["merge", *paths, "--db", str(base / db), "--out", str(base / "merged"), "-q"])


def test_merge_cli_joins_the_shards(cli_shards: Path) -> None:
    result = _merge(cli_shards, "s3.sqlite", "s1.sqlite", "s2.sqlite")  # in any order
    assert result.exit_code == 0, result.output
    report = json.loads((cli_shards / "merged" / "report.json").read_text())
    assert report["summary"]["urls"] == 3 and report["summary"]["documents"] == 3


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("s1.sqlite", "other-corpus2.sqlite", "s3.sqlite"), "audited different corpora"),
        (("s1.sqlite", "other-config2.sqlite", "s3.sqlite"), "different configs: crawl.rate is 3.0 there, 10.0 here"),
        (("s1.sqlite", "two-way2.sqlite", "s3.sqlite"), "split the URLs 2 and 3 ways"),
        (("s1.sqlite", "s2.sqlite"), "shard 3/3 missing"),
        (("s1.sqlite", "again1.sqlite", "s2.sqlite", "s3.sqlite"), "are both shard 1/3"),
        (("s1.sqlite", "s2.sqlite", "unfinished3.sqlite"), "is interrupted, not finished"),
        (("s1.sqlite", "whole.sqlite"), "is no shard (audited without --shard)"),
        (("s1.sqlite", "nowhere.sqlite"), "database not found"),
    ],
)
def test_merge_refuses_what_is_not_one_finished_audit(cli_shards: Path, names: tuple[str, ...], message: str) -> None:
    result = _merge(cli_shards, *names, db="refused.sqlite")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (cli_shards / "refused.sqlite").exists()


def test_merge_refuses_to_write_into_a_shard(cli_shards: Path) -> None:
    result = _merge(cli_shards, "s1.sqlite", "s2.sqlite", "s3.sqlite", db="s1.sqlite")
    assert result.exit_code == 2 and "must be another file" in result.output


def test_audit_shard_auto_takes_the_index_from_the_scheduler(cli_shards: Path) -> None:
    db = cli_shards / "auto.sqlite"
    args = ["audit", str(cli_shards / "corpus-a"), "--db", str(db), "--out", str(cli_shards / "out" / "auto"), "-q"]
    result = CliRunner().invoke(
        cli, [*args, "--allow-private", "--shard", "auto", "--shard-count", "3"], env={"JOB_COMPLETION_INDEX": "1"}
    )
    assert result.exit_code == 0, result.output
    store = Store.open_existing(db, read_only=True)
    try:
        run = store.run(store.latest_run_id())
    finally:
        store.close()
    assert (run.shard, run.shards, run.urls) == (2, 3, 0)  # 127.0.0.1 is shard 1's host


@pytest.mark.parametrize(
    ("options", "environ", "message"),
    [
        (["--shard", "4/3"], {}, "--shard: '4/3': the shard index counts from 1 to 3"),
        (["--shard", "auto"], {}, "--shard auto: none of JOB_COMPLETION_INDEX"),
        ([], {"AUDITOR_SHARD": "1/x"}, "AUDITOR_SHARD: '1/x' is not K/N"),
    ],
)
def test_audit_shard_errors_are_one_line(
    cli_shards: Path, options: list[str], environ: dict[str, str], message: str
) -> None:
    args = ["audit", str(cli_shards / "corpus-a"), "--db", str(cli_shards / "bad.sqlite"), "-q", *options]
    result = CliRunner().invoke(cli, args, env=environ)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output, result.output

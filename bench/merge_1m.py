"""Benchmark: `auditor merge` of the shards of a 1-million-URL audit, and one shard's crawl rate (issue 13).

merge [DOCUMENTS] [SHARDS]   (default 250,000 documents, 4 shards)
    Generates SHARDS shard databases of one audit, as `auditor audit --shard K/N` leaves them, without
    the network: every shard holds the whole corpus (each document cites its page, AMP page, one image
    and one related page: 4 unique URLs, so 250,000 documents are 1,000,000 URLs) and the checks of
    its host partition (1 % of pages gone). Hosts follow a Zipf skew (s = 1.1 over 20,000 hosts: the
    biggest host has about 10 % of the URLs). Then times `auditor merge` into a fresh database (JSON
    report only) and prints its phases, peak memory and the databases' sizes.

crawl [URLS]   (default 20,000)
    `auditor audit` in a process of its own over URLS pages that the loopback test server (in this
    process) answers at once, politeness lifted (--rate 1000 --per-host 64 --concurrency 64): the
    ceiling of one shard's URLs/s on this machine when the network and the hosts are not what bounds it.

    .venv/bin/python bench/merge_1m.py merge 250000 4
    .venv/bin/python bench/merge_1m.py crawl 20000
"""

from __future__ import annotations

import bisect
import itertools
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback import LoopbackServer

from auditor import __version__, merge, pipeline
from auditor.config import Config, Shard
from auditor.corpus import Document
from auditor.model import Check, Kind, LinkRef, Mode, RunStatus
from auditor.report import build_report, write_reports
from auditor.shards import shard_of
from auditor.store import CONTENTS, LINKS, RUNS, Store, now_iso

HOSTS = 20_000
# as the documents declare them
IMAGE: dict[str, Any] = {"content_type": "image/jpeg", "width": 640, "height": 360, "image_format": "jpeg"}
ZIPF_S = 1.1


def _host_picker(seed: int = 13) -> tuple[random.Random, list[float]]:
    weights = [1 / rank**ZIPF_S for rank in range(1, HOSTS + 1)]
    return random.Random(seed), list(itertools.accumulate(weights))


def _documents(count: int) -> list[tuple[str, Document, list[LinkRef]]]:
    rng, cumulative = _host_picker()
    total = cumulative[-1]

    def host() -> str:
        return f"h{bisect.bisect_left(cumulative, rng.random() * total)}.example"

    out = []
    for n in range(count):
        site, amp, img, related = host(), host(), host(), host()
        urls = {
            "webUrl": (f"https://{site}/a/{n}", Kind.PAGE),
            "ampWebUrl": (f"https://{amp}/amp/{n}", Kind.AMP),
            "images[0].url": (f"https://{img}/i/{n}.jpg", Kind.IMAGE),
            "related[0].webUrl": (f"https://{related}/r/{n}", Kind.PAGE),
        }
        data = {
            "title": f"Story {n}",
            "webUrl": urls["webUrl"][0],
            "ampWebUrl": urls["ampWebUrl"][0],
            "provider": {"domain": site},
            "images": [{"url": urls["images[0].url"][0], "width": 640, "height": 360}],
            "related": [{"title": f"Related {n}", "webUrl": urls["related[0].webUrl"][0]}],
        }
        path = f"/corpus/{n // 1000:04d}/{n}.md"
        lines = {field: line for line, field in enumerate(["", "title", *urls], start=1)}
        document = Document(path, data, lines)
        links = [
            LinkRef(
                document=path,
                item="related[0]" if field.startswith("related") else "",
                field=field,
                line=lines[field],
                kind=kind,
                url=url,
                normalized_url=url,
            )
            for field, (url, kind) in urls.items()
        ]
        out.append((path, document, links))
    return out


def _template(db: Path, documents: list[tuple[str, Document, list[LinkRef]]], shards: int) -> None:
    store = Store(db)
    run_id = store.start_run(
        mode=Mode.AUDIT,
        corpus=["/corpus"],
        tool_version=__version__,
        config=pipeline._config_record(Config(paths=(Path("/corpus"),), shard=Shard(1, shards))),
        shard=1,
        shards=shards,
    )
    writer = store.documents_writer(run_id)
    for path, document, links in documents:
        writer.add(path, CONTENTS.encode(document), [LINKS.encode(link) for link in links])
    writer.flush()
    store.close()


def _fill_shard(db: Path, index: int, shards: int, documents: list[tuple[str, Document, list[LinkRef]]]) -> int:
    store = Store(db)
    run_id = store.latest_run_id()
    config = {**store.run(run_id).config, "shard": {"index": index, "count": shards}}
    store.db.table("runs").update(run_id, {"shard": index, "config": RUNS.encode_field("config", config)})
    checked = now_iso()
    mine = [
        Check(
            url=link.normalized_url,
            kind=link.kind,
            ok=not (link.kind is Kind.PAGE and n % 100 == 0),
            status=404 if link.kind is Kind.PAGE and n % 100 == 0 else 200,
            final_url=link.normalized_url,
            checked_at=checked,
            attempts=1,
            **IMAGE if link.kind is Kind.IMAGE else {},
        )
        for n, (_, _, links) in enumerate(documents)
        for link in links
        if shard_of(link.normalized_url, shards) == index
    ]
    for start in range(0, len(mine), 5000):
        store.add_checks(run_id, mine[start : start + 5000])
    store.set_counts(run_id, fetched=len(mine))
    store.finish_run(run_id, status=RunStatus.FINISHED, documents=len(documents), urls=len(mine))
    store.close()
    return len(mine)


def bench_merge(count: int, shards: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="auditor-merge-"))
    try:
        started = time.perf_counter()
        documents = _documents(count)
        template = scratch / "template.sqlite"
        _template(template, documents, shards)
        paths = []
        per_shard = []
        for index in range(1, shards + 1):
            path = scratch / f"shard-{index}.sqlite"
            shutil.copy(template, path)
            per_shard.append(_fill_shard(path, index, shards, documents))
            paths.append(path)
        del documents
        generated = time.perf_counter() - started
        out = scratch / "merged.sqlite"
        config = Config(db=out, out=scratch / "reports", formats=("json",))
        started = time.perf_counter()
        outcome = merge.merge(paths, config)
        took = time.perf_counter() - started
        summary = outcome.report.summary
        # The report stage alone, again: the rest of the merge is copying and judging.
        store = Store(out)
        started = time.perf_counter()
        write_reports(build_report(store, outcome.run_id), scratch / "again", ("json",))
        reporting = time.perf_counter() - started
        store.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        split = ", ".join(f"{n:,}" for n in per_shard)
        print(f"documents {count:,}, unique URLs {summary.urls:,}, shards {shards} ({split} URLs)")
        print(f"generated in {generated:.0f} s; one shard database {paths[0].stat().st_size / 1e6:.0f} MB")
        print(
            f"merge: {took:.0f} s = copy and judge ({len(outcome.report.findings):,} findings) "
            f"{took - reporting:.0f} s + JSON report {reporting:.0f} s"
        )
        report = (scratch / "reports" / "report.json").stat().st_size / 1e6
        print(f"merged database {out.stat().st_size / 1e6:.0f} MB; report.json {report:.0f} MB; peak RSS {peak:.0f} MB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bench_crawl(urls: int) -> None:
    """The real CLI in its own process (the loopback server runs in this one), politeness lifted."""
    with LoopbackServer() as server, tempfile.TemporaryDirectory(prefix="auditor-crawl-") as scratch:
        server.set_fallback(lambda request: (200, {}, "<html><head><title>Story</title></head><body>ok</body></html>"))
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        for n in range(0, urls, 4):
            cited = [f"http://127.0.0.1:{server.port}/a/{n + k}" for k in range(4)]
            related = "".join(f"\n  - title: Story\n    webUrl: {url}" for url in cited[1:])
            (corpus / f"{n}.md").write_text(f"---\ntitle: Story\nwebUrl: {cited[0]}\nrelated:{related}\n---\n")
        command = [sys.executable, "-m", "auditor", "audit", str(corpus), "--db", f"{scratch}/a.sqlite", "--out",
                   f"{scratch}/r", "--format", "json", "--allow-private", "--rate", "1000", "--per-host", "64",
                   "--concurrency", "64", "--retries", "0", "--no-soft-404", "--quiet"]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=False)
        took = time.perf_counter() - started
        done = len(server.requests)
        print(f"{done:,} URLs in {took:.1f} s: {done / took:.0f} URLs/s (one process: parse, crawl, judge, report)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "merge"
    numbers = [int(arg) for arg in sys.argv[2:]]
    if what == "merge":
        bench_merge(*(numbers or [250_000, 4]))
    elif what == "crawl":
        bench_crawl(*(numbers or [20_000]))
    else:
        sys.exit(__doc__)

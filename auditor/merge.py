"""`auditor merge`: the shard databases of one audit -> one run, judged and reported as a whole.

Each shard (`auditor audit --shard K/N`) read the whole corpus and checked the
URLs of its host partition; it judged nothing that needs checks (auditor/shards.py).
The merge refuses shards that are not one audit's (another corpus, config,
release or shard count, a shard missing, given twice or unfinished), then, in
the merged database, which may hold earlier runs:

    documents   the corpus as the first shard stored it (every shard stored the same)
    checks      each shard's, for the URLs it claimed; no URL claimed twice, none left out
    findings    the offline ones (the first shard's), then the judging stage on the whole,
                AMP pairs and soft 404s included, with first_seen and flaky-link from
                this database's history
    reports     as `auditor audit` writes them

The merged run is an ordinary finished audit of the corpus: the one later
runs (merged or not) compare against.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.config import Config, Soft404Config
from auditor.errors import ConfigError
from auditor.interrupt import Interrupted, StopRequests
from auditor.model import Finding, Mode, Run, RunStatus
from auditor.pipeline import FindingWriter, Outcome, _judge
from auditor.report import build_report, write_reports
from auditor.runlock import WaitHook, run_lock
from auditor.store import CRAWL_COUNTS, Store

# Config keys a shard may set on its own: where it writes, and which shard it is.
PER_SHARD = frozenset({"db", "out", "formats", "shard", "resume"})


@dataclass(frozen=True)
class ShardRun:
    path: Path
    run: Run

    @property
    def name(self) -> str:
        return f"{self.path} (shard {self.run.shard}/{self.run.shards})"

    @property
    def run_id(self) -> int:
        return self.run.id or 0

    @property
    def documents_run(self) -> int:
        return self.run.documents_of or self.run_id


def merge(
    paths: Sequence[Path], config: Config, *, wait: WaitHook | None = None, stops: StopRequests | None = None
) -> Outcome:
    """Merge the shards at `paths` into `config.db` and write the reports to `config.out`.

    `config` says only where (db, out, formats); the judging settings are the shards' own.
    """
    shards = read_shards(paths, config.db)
    judging = judging_config(shards[0].run.config, config)
    with run_lock(config.db, wait=wait is not None, on_wait=wait, command="auditor merge"):
        store = Store(config.db)
        try:
            return _merge_locked(store, shards, judging, stops if stops is not None else StopRequests())
        finally:
            store.close()


def read_shards(paths: Sequence[Path], out: Path) -> list[ShardRun]:
    """The latest run of each database, once it is sure they are the shards of one finished audit."""
    if not paths:
        raise ConfigError("merge: give the shard databases to merge")
    shards: list[ShardRun] = []
    for path in paths:
        if path.exists() and out.exists() and path.resolve() == out.resolve():
            raise ConfigError(f"merge: {path} is a shard; the merged database (--db) must be another file")
        store = Store.open_existing(path, read_only=True)
        try:
            run = store.run(store.latest_run_id())
        finally:
            store.close()
        if run.shard is None or run.shards is None:
            raise ConfigError(f"merge: {path}: its latest run ({run.id}) is no shard (audited without --shard)")
        shard = ShardRun(path, run)
        if run.status is not RunStatus.FINISHED:
            raise ConfigError(
                f"merge: {shard.name} is {run.status}, not finished: finish it first "
                f"(auditor audit --resume --shard {run.shard}/{run.shards} --db {path})"
            )
        shards.append(shard)
    _same_audit(shards)
    return sorted(shards, key=lambda shard: shard.run.shard or 0)


def _same_audit(shards: list[ShardRun]) -> None:
    first = shards[0]
    for other in shards[1:]:
        if other.run.shards != first.run.shards:
            raise ConfigError(
                f"merge: {other.name} and {first.name} split the URLs {other.run.shards} and "
                f"{first.run.shards} ways: they are not shards of one audit"
            )
        if other.run.corpus != first.run.corpus or other.run.fingerprint != first.run.fingerprint:
            raise ConfigError(
                f"merge: {other.name} and {first.name} audited different corpora (their documents differ)"
            )
        if other.run.tool_version != first.run.tool_version:
            raise ConfigError(
                f"merge: {other.name} ran auditor {other.run.tool_version}, {first.name} auditor "
                f"{first.run.tool_version}: shards of one audit run one release"
            )
        differs = _first_difference(_shared(first.run.config), _shared(other.run.config))
        if differs is not None:
            key, mine, theirs = differs
            raise ConfigError(
                f"merge: {other.name} and {first.name} ran with different configs: {key} is "
                f"{_shown(theirs)} there, {_shown(mine)} here"
            )
    seen: dict[int, ShardRun] = {}
    for shard in shards:
        index = shard.run.shard or 0
        if index in seen:
            raise ConfigError(f"merge: {seen[index].path} and {shard.path} are both shard {index}/{shard.run.shards}")
        seen[index] = shard
    count = first.run.shards or 0
    missing = [index for index in range(1, count + 1) if index not in seen]
    if missing:
        named = ", ".join(f"{index}/{count}" for index in missing)
        raise ConfigError(f"merge: shard {named} missing: all {count} shards of the audit are needed")


def _shared(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in PER_SHARD}


def _first_difference(mine: Any, theirs: Any, where: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            found = _first_difference(mine.get(key), theirs.get(key), f"{where}.{key}" if where else str(key))
            if found is not None:
                return found
        return None
    return None if mine == theirs else (where, mine, theirs)


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, default=str)[:80]


def judging_config(record: Mapping[str, Any], where: Config) -> Config:
    """The settings the shards judge by (severities, fail_on, history windows, soft 404s), read back from
    their run's config; where the merged run and its reports go comes from `where`."""
    soft_404 = record.get("soft_404") or {}
    known = {field.name for field in dataclasses.fields(Soft404Config)}
    defaults = Config()
    return where.replace(
        paths=tuple(Path(path) for path in record.get("paths", ())),
        fail_on=record.get("fail_on", defaults.fail_on),
        severities=record.get("severities", defaults.severities),
        dead_after=record.get("dead_after", defaults.dead_after),
        flaky_window=record.get("flaky_window", defaults.flaky_window),
        max_age=record.get("max_age"),
        soft_404=Soft404Config(**{key: value for key, value in soft_404.items() if key in known}),
        suggest=False,  # the archive is asked by an audit, not by a merge (README, "Shards")
        offline=True,  # a merge never fetches
    )


def _merge_locked(store: Store, shards: list[ShardRun], config: Config, stops: StopRequests) -> Outcome:
    first = shards[0]
    count = first.run.shards or 0
    # Refused before a run is recorded: a URL claimed by two shards, or by none.
    for shard in shards:
        with store.attached(shard.path):
            twice = store.claim_shard_urls(shard.run_id, shard.run.shard or 0)
        if twice is not None:
            url, other = twice
            raise ConfigError(f"merge: {url} was checked by shard {other}/{count} and by {shard.name}")
    with store.attached(first.path):
        unclaimed = store.unclaimed_url(first.documents_run)
    if unclaimed is not None:
        raise ConfigError(f"merge: no shard checked {unclaimed}: the shards did not partition the same URLs")
    record = {**first.run.config, "shard": None}
    run_id = store.start_run(
        mode=Mode.AUDIT, corpus=first.run.corpus, tool_version=first.run.tool_version or "", config=record, shards=count
    )
    findings = FindingWriter(store, run_id, config)
    status = RunStatus.FINISHED
    with stops.installed():
        try:
            with store.attached(first.path):
                store.copy_shard_documents(run_id, first.documents_run)
            for shard in shards:
                stops.check()
                with store.attached(shard.path):
                    store.copy_shard_checks(run_id, shard.run_id)
            findings.add_all(_offline_findings(first))
            stops.check()
            _judge(store, run_id, config, findings, stops)
        except Interrupted:
            status = RunStatus.INTERRUPTED
        except BaseException:
            status = RunStatus.INTERRUPTED if stops.requested else RunStatus.FAILED
            raise
        finally:
            findings.flush()
            store.set_counts(run_id, **{key: sum(getattr(s.run, key) or 0 for s in shards) for key in CRAWL_COUNTS})
            store.finish_run(
                run_id,
                status=status,
                documents=store.count_documents(run_id),
                references=store.count_references(run_id),
                urls=store.count_unique_urls(run_id),
            )
        report = build_report(store, run_id)
        write_reports(report, config.out, config.formats)
    if stops.requested:
        return Outcome(run_id, stops.exit_code, report, interrupted=True)
    failing = any(config.fails(finding.severity) for finding in report.findings)
    return Outcome(run_id, 1 if failing else 0, report)


def _offline_findings(shard: ShardRun) -> Iterator[Finding]:
    """What the shard's run found without the network: every shard found the same, on the same corpus."""
    store = Store.open_existing(shard.path, read_only=True)
    try:
        yield from store.findings(shard.run_id)
    finally:
        store.close()

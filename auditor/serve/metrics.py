"""/metrics: Prometheus text format, through prometheus_client, read from the store at each scrape.

A custom collector, not metrics updated by the scheduler: the store is the
truth (runs made by `auditor audit` on the same database count too, and a
restarted service reports the same numbers). Every name is `auditor_`-prefixed:

    auditor_runs_total{status}                  runs ended, by status (finished, interrupted, failed)
    auditor_runs_running                        runs still marked running: the one under way, or killed ones
    auditor_scheduler_up                        1 while the scheduler thread is alive
    auditor_audit_in_progress                   1 while the scheduler's audit runs
    auditor_findings{code,severity}             findings of the latest ended run (every code, 0 when none)
    auditor_urls_checked                        URLs the latest ended run checked
    auditor_urls_reused                         URLs it took from an earlier run instead (0 until runs record it)
    auditor_last_run_duration_seconds           the latest ended run's wall time
    auditor_last_run_timestamp_seconds          when it ended (Unix time)
    auditor_last_run_info{mode,status}          1, labelled with its mode and status
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from auditor.errors import DatabaseError
from auditor.model import Code, Run, RunStatus, Severity
from auditor.store import Store

ENDED = (RunStatus.FINISHED, RunStatus.INTERRUPTED, RunStatus.FAILED)
SEVERITIES = (Severity.ERROR, Severity.WARNING)


@dataclass(frozen=True)
class RunFigures:
    """What /metrics says about one ended run; it never changes, so it is computed once per run."""

    findings: Counter[tuple[Code, Severity]]
    checked: int
    reused: int
    excluded: int = 0


def ended_runs(runs: list[Run]) -> list[Run]:
    return [run for run in runs if run.status in ENDED]


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class StoreCollector:
    """Reads the store (read-only) at every scrape; the latest run's figures are cached by its identity."""

    def __init__(self, db: Path, *, scheduler_alive: Callable[[], bool], audit_running: Callable[[], bool]) -> None:
        self.db = db
        self.scheduler_alive, self.audit_running = scheduler_alive, audit_running
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, str, str | None], RunFigures] | None = None

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "auditor_scheduler_up", "1 while the scheduler thread is alive.", value=int(self.scheduler_alive())
        )
        yield GaugeMetricFamily(
            "auditor_audit_in_progress", "1 while the scheduler's audit runs.", value=int(self.audit_running())
        )
        runs: list[Run] = []
        latest: Run | None = None
        figures: RunFigures | None = None
        if self.db.exists():
            try:
                store = Store.open_existing(self.db, read_only=True)
            except DatabaseError:
                store = None  # not written yet: the first audit has not created its tables
            if store is not None:
                try:
                    runs = store.runs()
                    ended = ended_runs(runs)
                    latest = ended[-1] if ended else None
                    figures = self._figures(store, latest) if latest is not None else None
                finally:
                    store.close()

        by_status = Counter(run.status for run in runs)
        total = CounterMetricFamily("auditor_runs", "Runs ended, by status.", labels=["status"])
        for status in ENDED:
            total.add_metric([status.value], by_status[status])
        yield total
        yield GaugeMetricFamily(
            "auditor_runs_running",
            "Runs still marked running: the one under way, or runs that were killed.",
            value=by_status[RunStatus.RUNNING],
        )

        findings = GaugeMetricFamily(
            "auditor_findings", "Findings of the latest ended run, by code and severity.", labels=["code", "severity"]
        )
        checked = GaugeMetricFamily("auditor_urls_checked", "URLs the latest ended run checked.")
        excluded = GaugeMetricFamily(
            "auditor_urls_excluded", "URLs the latest ended run left out by --exclude/--include (never fetched)."
        )
        reused = GaugeMetricFamily(
            "auditor_urls_reused", "URLs the latest ended run took from an earlier run instead of checking them."
        )
        duration = GaugeMetricFamily("auditor_last_run_duration_seconds", "Wall time of the latest ended run.")
        timestamp = GaugeMetricFamily("auditor_last_run_timestamp_seconds", "When the latest ended run ended.")
        info = GaugeMetricFamily(
            "auditor_last_run_info", "The latest ended run's mode and status.", labels=["mode", "status"]
        )
        if latest is not None and figures is not None:
            for code in Code:
                for severity in SEVERITIES:
                    findings.add_metric([code.value, severity.value], figures.findings[(code, severity)])
            checked.add_metric([], figures.checked)
            excluded.add_metric([], figures.excluded)
            reused.add_metric([], figures.reused)
            started, ended_at = _timestamp(latest.started_at), _timestamp(latest.finished_at)
            if started is not None and ended_at is not None:
                duration.add_metric([], ended_at - started)
            if ended_at is not None:
                timestamp.add_metric([], ended_at)
            info.add_metric([latest.mode.value, latest.status.value], 1)
        yield from (findings, checked, excluded, reused, duration, timestamp, info)

    def _figures(self, store: Store, run: Run) -> RunFigures:
        assert run.id is not None
        key = (run.id, run.status.value, run.finished_at)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        counts: Counter[tuple[Code, Severity]] = Counter()
        for finding in store.findings(run.id):
            if finding.severity is not None:
                counts[(finding.code, finding.severity)] += 1
        checks = store.checks(run.id).values()
        left_out = sum(1 for check in checks if check.excluded)
        figures = RunFigures(findings=counts, checked=len(checks) - left_out, reused=run.reused or 0, excluded=left_out)
        with self._lock:
            self._cached = (key, figures)
        return figures


def registry_for(collector: StoreCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

"""The scheduler: one audit at start, then one per interval, never two at once.

It is the only thing in `auditor serve` that writes to the database: each
audit runs `pipeline.audit` in the scheduler's own thread, which opens the
store as the one writer. Signals belong to the main thread, so the service
forwards a SIGTERM/SIGINT here with `stop()`: the audit under way stops at its
next safe point (the run marked `interrupted`, its reports written) and no
further one starts.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from auditor import pipeline
from auditor.config import Config, parse_duration
from auditor.errors import AuditorError, ConfigError
from auditor.interrupt import StopRequests

# threading waits overflow past about 49 days on some platforms; a year is plenty anyway.
MAX_EVERY = 365 * 86400

Audit = Callable[..., pipeline.Outcome]
Log = Callable[[str], None]


def parse_every(text: str, *, what: str = "--every") -> int:
    """`30m`, `6h`, `2d` (also `90s`, `1h30m`) -> whole seconds; anything else is a ConfigError starting with `what`."""
    seconds = parse_duration(text, what=what)
    at = f"{what}: " if what else ""
    if seconds < 1:
        raise ConfigError(f"{at}{text!r} is no interval; it must be at least 1s")
    if seconds > MAX_EVERY:
        raise ConfigError(f"{at}{text!r} is longer than a year")
    return int(seconds)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LastOutcome:
    """What the scheduler's latest audit ended with, for the log and /healthz."""

    run_id: int | None
    ended_at: float  # time.time()
    error: str | None = None  # an audit that raised: the run (if any) is `failed` in the store


class Scheduler:
    """Runs `audit(config, stops=...)` at start and every `every` seconds in one thread."""

    def __init__(
        self, config: Config, every: float, *, audit: Audit = pipeline.audit, log: Log = _stderr, quiet: bool = False
    ) -> None:
        """`log` gets a line per audit (only its failures when `quiet`)."""
        self.config, self.every = config, every
        self._audit, self._log, self._quiet = audit, log, quiet
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping: int | None = None
        self._current: StopRequests | None = None
        self._next_at: float | None = None  # time.time() of the next audit, while waiting for it
        self.audits_started = 0
        self.last: LastOutcome | None = None
        self._thread = threading.Thread(target=self._loop, name="auditor-scheduler", daemon=True)

    # -- the service's side ---------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """An audit is under way."""
        return self._current is not None

    @property
    def next_at(self) -> float | None:
        return self._next_at

    @property
    def last_error(self) -> str | None:
        """Why the latest audit raised instead of ending (a usage error, or a bug); None when it ended."""
        return self.last.error if self.last is not None else None

    def stop(self, signum: int) -> None:
        """Stop the audit under way at its next safe point, and start no other."""
        with self._lock:
            self._stopping = signum
            current = self._current
        self._wakeup.set()
        if current is not None:
            try:
                current.request(signum)
            except RuntimeError:
                # The crawl's event loop closed between reading its waker and calling it:
                # the stop is recorded all the same, and the next safe point sees it.
                pass

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)

    # -- the scheduler's thread ---------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping is not None:
                    return
                stops = self._current = StopRequests()
                self._next_at = None
            started = time.monotonic()
            self.audits_started += 1
            try:
                self.last = self._one_audit(stops)
            finally:
                with self._lock:
                    self._current = None
            # On the interval from the start of the last audit; one that overran it is followed at once
            # (missed ticks are not made up).
            wait = max(0.0, started + self.every - time.monotonic())
            self._next_at = time.time() + wait
            self._wakeup.wait(wait)

    def _one_audit(self, stops: StopRequests) -> LastOutcome:
        try:
            outcome = self._audit(self.config, stops=stops)
        except AuditorError as exc:
            # A corpus path gone, --out unwritable: the service goes on, the next audit may succeed.
            self._log(f"auditor serve: audit failed: {exc}")
            return LastOutcome(None, time.time(), error=str(exc))
        except Exception as exc:
            # A bug: the run is marked `failed` in the store; the service keeps serving and retries later.
            self._log("auditor serve: audit failed with an unexpected error:\n" + traceback.format_exc().rstrip())
            return LastOutcome(None, time.time(), error=f"{type(exc).__name__}: {exc}")
        summary = outcome.report.summary
        status = "interrupted" if outcome.interrupted else "finished"
        if not self._quiet:
            self._log(
                f"auditor serve: run {outcome.run_id} {status}: {summary.documents} documents, {summary.urls} URLs, "
                f"{summary.errors} errors, {summary.warnings} warnings; reports in {self.config.out}/"
            )
        return LastOutcome(outcome.run_id, time.time())

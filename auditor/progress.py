"""What an audit says while it runs, on stderr (stdout stays for annotations).

- On a terminal: one progress line redrawn in place — URLs done/total, rate,
  failed checks so far, ETA. Not on a pipe or a CI log (it would be thousands
  of lines of carriage returns), and never with --quiet.
- With --verbose: one log line per check, terminal or not.

`Progress` is the hook `pipeline.audit(progress=...)` calls after each check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

REDRAW_SECONDS = 0.1  # a faster redraw costs CPU and nobody reads it
_CLEAR_LINE = "\r\x1b[K"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    def __init__(
        self, stream: TextIO, *, show_line: bool, verbose: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream, self.show_line, self.verbose, self.clock = stream, show_line, verbose, clock
        self.failed = 0
        self.started: tuple[float, int] | None = None  # (time, done) at the first check
        self.last_draw = float("-inf")
        self.drawn = False

    @classmethod
    def for_stream(cls, stream: TextIO | None = None, *, quiet: bool, verbose: bool) -> Progress:
        stream = stream if stream is not None else sys.stderr
        is_terminal = bool(getattr(stream, "isatty", lambda: False)())
        return cls(stream, show_line=is_terminal and not quiet, verbose=verbose and not quiet)

    @property
    def silent(self) -> bool:
        return not (self.show_line or self.verbose)

    def __call__(self, check: Any, done: int, total: int) -> None:
        now = self.clock()
        if self.started is None:
            # Rate from the first check on: reading the corpus before it is not crawling.
            self.started = (now, done)
        if not check.ok:
            self.failed += 1
        if self.verbose:
            self._clear()
            self.stream.write(f"auditor: [{done}/{total}] {describe(check)}\n")
        if self.show_line and (done >= total or now - self.last_draw >= REDRAW_SECONDS or self.verbose):
            self._draw(done, total, now)
        self.stream.flush()

    def line(self, done: int, total: int, now: float) -> str:
        parts = [f"auditor: {done}/{total} URLs"]
        start_time, start_done = self.started or (now, done)
        elapsed = now - start_time
        rate = (done - start_done) / elapsed if elapsed > 0 else None
        if rate:
            parts.append(f"{rate:.1f}/s")
        parts.append(f"{self.failed} failed")
        if done >= total:
            parts.append("done")
        elif rate:
            parts.append(f"ETA {format_duration((total - done) / rate)}")
        return ", ".join(parts)

    def close(self) -> None:
        """Take the progress line away so the summary after it starts clean."""
        self._clear()
        self.stream.flush()

    def _draw(self, done: int, total: int, now: float) -> None:
        self.stream.write(_CLEAR_LINE + self.line(done, total, now))
        self.last_draw, self.drawn = now, True

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write(_CLEAR_LINE)
            self.drawn = False


def describe(check: Any) -> str:
    """One line for a check: outcome, kind, URL, time; never a line break from the network."""
    outcome = str(check.status) if check.status is not None else (check.reason or "failed")
    if check.status is not None and check.reason and check.reason != "ok":
        outcome += f" {check.reason}"
    fetched = getattr(check, "fetched_url", None)  # a --remap address
    text = f"{outcome} {check.kind} {check.url}" + (f" fetched as {fetched}" if fetched else "")
    text += f" ({check.elapsed_ms} ms"
    if check.attempts and check.attempts > 1:
        text += f", {check.attempts} attempts"
    text += ")"
    if check.final_url and check.final_url != (fetched or check.url):
        text += f" -> {check.final_url}"
    if check.message:
        text += f": {check.message}"
    return terminal_safe(" ".join(text.split()))


def terminal_safe(text: str) -> str:
    """Corpus and network text may carry escape sequences; never let them reach the terminal raw."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)

from __future__ import annotations

import io
from dataclasses import replace

from auditor.model import Check
from auditor.progress import Progress, describe, format_duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ok(n: int) -> Check:
    return Check(url=f"https://a.example/{n}", kind="page", ok=True, status=200, elapsed_ms=120)


def _dead(n: int) -> Check:
    return Check(
        url=f"https://a.example/{n}",
        kind="image",
        ok=False,
        reason="dns",
        elapsed_ms=5,
        message="name does not resolve\nsecond line",
    )


def test_terminal_gets_one_line_redrawn_with_rate_failures_and_eta() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress.for_stream(stream, quiet=False, verbose=False)
    progress.clock = clock
    progress(_ok(1), 1, 100)
    clock.now += 1.0
    progress(_dead(2), 2, 100)
    clock.now += 1.0
    progress(_ok(3), 3, 100)
    output = stream.getvalue()
    assert "\n" not in output  # redrawn in place, never scrolled
    last = output.split("\r\x1b[K")[-1]
    assert last == "auditor: 3/100 URLs, 1.0/s, 1 failed, ETA 1m37s"
    clock.now += 1.0
    progress(_ok(100), 100, 100)
    assert output.count("\r") < stream.getvalue().count("\r")
    assert stream.getvalue().endswith("100/100 URLs, 33.0/s, 1 failed, done")
    progress.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_redraws_are_throttled() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress(stream, show_line=True, verbose=False, clock=clock)
    for n in range(1, 51):
        progress(_ok(n), n, 1000)  # all within the same instant
    assert stream.getvalue().count("auditor:") == 1


def test_nothing_when_not_a_terminal_or_quiet() -> None:
    pipe = io.StringIO()
    progress = Progress.for_stream(pipe, quiet=False, verbose=False)
    assert progress.silent
    progress(_ok(1), 1, 2)
    progress.close()
    assert pipe.getvalue() == ""
    quiet = Progress.for_stream(Terminal(), quiet=True, verbose=True)
    assert quiet.silent


def test_verbose_logs_every_check_even_on_a_pipe() -> None:
    pipe = io.StringIO()
    progress = Progress.for_stream(pipe, quiet=False, verbose=True)
    progress(_ok(1), 1, 2)
    progress(_dead(2), 2, 2)
    assert pipe.getvalue().splitlines() == [
        "auditor: [1/2] 200 page https://a.example/1 (120 ms)",
        "auditor: [2/2] dns image https://a.example/2 (5 ms): name does not resolve second line",
    ]


def test_verbose_on_a_terminal_keeps_the_line_below_the_log() -> None:
    stream = Terminal()
    progress = Progress(stream, show_line=True, verbose=True, clock=Clock())
    progress(_ok(1), 1, 3)
    progress(_ok(2), 2, 3)
    text = stream.getvalue()
    assert text.count("\n") == 2
    assert text.index("[2/3]") > text.index("1/3 URLs")  # the line is cleared, the log written, the line redrawn
    assert text.endswith("\r\x1b[Kauditor: 2/3 URLs, 0 failed")


def test_describe_and_durations() -> None:
    moved = Check(
        url="https://a.example/",
        kind="page",
        ok=True,
        status=200,
        elapsed_ms=80,
        attempts=2,
        final_url="https://b.example/",
    )
    assert describe(moved) == "200 page https://a.example/ (80 ms, 2 attempts) -> https://b.example/"
    blocked = Check(url="https://a.example/", kind="page", ok=False, status=429, reason="http 429", elapsed_ms=3)
    assert describe(blocked) == "429 http 429 page https://a.example/ (3 ms)"
    mirrored = replace(moved, fetched_url="https://staging.example/", final_url="https://staging.example/", attempts=1)
    assert describe(mirrored) == "200 page https://a.example/ fetched as https://staging.example/ (80 ms)"
    assert [format_duration(s) for s in (0.4, 59, 61, 3599, 3600, 7384)] == [
        "0s",
        "59s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h03m",
    ]


def test_verbose_lines_escape_terminal_control_characters() -> None:
    from types import SimpleNamespace

    from auditor.progress import describe

    check = SimpleNamespace(
        ok=False,
        status=None,
        reason="other",
        kind="page",
        url="https://a.example/\x1b[2J",
        elapsed_ms=5,
        attempts=1,
        final_url=None,
        message="bad \x07 bell",
    )
    line = describe(check)
    assert "\x1b" not in line and "\x07" not in line and "\\x1b[2J" in line

"""Benchmark: `auditor lint` over the real documents in ../shared/real_corpus/docs.

Issue 8 asks that every finding on real documents be one a person checking it
by hand agrees with. This runs the CLI on the corpus in a child process (in a
temporary directory, so nothing is written to the repository) and prints the
counts by code and severity, a few findings of each code with different
messages, the wall time and the peak memory. The corpus is not part of the
project; without it the script says so and exits 0.

    .venv/bin/python bench/real_corpus.py [DIR]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "real_corpus" / "docs"
SAMPLES_PER_CODE = 6


def main() -> int:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CORPUS
    if not corpus.is_dir():
        print(f"no real corpus at {corpus}: nothing to measure")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "auditor",
            "lint",
            str(corpus.resolve()),
            "--format",
            "json",
            "--out",
            str(Path(tmp, "reports")),
            "--db",
            str(Path(tmp, "audit.sqlite")),
            "--annotations",
            "none",
            "--quiet",
        ]
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=tmp, stdout=subprocess.DEVNULL)
        # wait4's peak RSS covers the child and the worker processes it waited for (the largest one).
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode not in (0, 1):
            print(f"auditor lint failed with exit code {child.returncode}", file=sys.stderr)
            return child.returncode
        report = json.loads(Path(tmp, "reports", "report.json").read_text(encoding="utf-8"))
    _print(report, corpus, elapsed, usage.ru_maxrss, child.returncode)
    return 0


def _print(report: dict[str, Any], corpus: Path, elapsed: float, peak_kib: int, exit_code: int) -> None:
    summary, findings = report["summary"], report["findings"]
    print(
        f"corpus: {corpus} ({summary['documents']:,} documents, {summary['references']:,} references, "
        f"{summary['urls']:,} unique URLs)"
    )
    print(
        f"auditor lint: exit {exit_code}, {summary['errors']} errors, {summary['warnings']} warnings, "
        f"wall time {elapsed:.2f}s, peak RSS {peak_kib / 1024:.0f} MiB"
    )
    print()
    by_code = Counter((f["code"], f["severity"]) for f in findings)
    for (code, severity), count in by_code.most_common():
        print(f"{count:6d}  {severity:8s} {code}")
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in findings:
        grouped[finding["code"]].append(finding)
    for code, members in grouped.items():
        print(f"\n{code}: {len(members)}, {len(_shapes(members))} message shapes; samples:")
        for finding in _samples(members):
            print("  " + _line(finding, corpus))


def _shape(message: str) -> str:
    """A message with its particulars (numbers, hosts, paths) blanked, to pick varied samples."""
    message = re.sub(r"\S*[./]\S*", "…", message)
    return re.sub(r"\d+", "N", message)


def _shapes(findings: list[dict[str, Any]]) -> set[str]:
    return {_shape(f["message"]) for f in findings}


def _samples(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    picked: dict[str, dict[str, Any]] = {}
    for finding in findings:
        picked.setdefault(_shape(finding["message"]), finding)
    samples = list(picked.values())[:SAMPLES_PER_CODE]
    return samples + [f for f in findings if f not in samples][: SAMPLES_PER_CODE - len(samples)]


def _line(finding: dict[str, Any], corpus: Path) -> str:
    document = os.path.relpath(finding["document"], corpus.resolve())
    where = f"{document}:{finding['line']}" if finding.get("line") else document
    text = f"{where}: {finding['severity']} [{finding['code']}] {finding['field'] or '-'}: {finding['message']}"
    for label in ("expected", "actual"):
        if finding.get(label) is not None:
            text += f" | {label} {finding[label]!r}"
    return text


if __name__ == "__main__":
    sys.exit(main())

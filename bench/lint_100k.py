"""Benchmark (issue 11, scenario d): `auditor lint` over 100,000 generated documents.

Target on the project's 2-core machines: at most 30 s and 150 MB peak memory.

The corpus comes from bench/vs_lychee.py's generator (``write_corpus``: N
documents over P publishers, shared images, ``related[]`` items citing other
documents of the corpus; about 20 references a document), with a few offline
defects planted in one document of every ``PLANT_EVERY`` (a wrong provider
domain, an AMP-cache URL that does not match its AMP page, a broken front
matter, a non-http URL, a bad timestamp). The generated corpus is kept in
``--corpus DIR`` (default: a directory under the system temp dir named after
N and P) and reused by later runs.

``auditor lint`` runs as a child process with its default formats (json, md,
html, junit) into a temporary database and --out. The script prints wall
seconds, documents per second, the findings, whether every planted defect was
found (it exits 1 if one was not), and peak memory three ways:

- ``tree RSS``: the largest sum of the resident sets of the whole process tree
  (auditor and its parsing workers) seen at any sample (every 20 ms from
  /proc). Pages the forked workers share with their parent count once per
  process here: an upper bound.
- ``tree PSS``: the same with proportional set sizes (shared pages split
  between the processes sharing them): what the tree really costs the machine.
- ``max RSS``: ``ru_maxrss`` from ``os.wait4`` of the child, which is the peak
  of the largest single process among the child and the descendants it waited
  for (not a sum).

It also prints the CPU seconds of the tree (user + system, from ``os.wait4``): on
a shared machine, a steadier measure than the wall time.

Then the same over the real documents of ../shared/real_corpus/docs, when present.

With ``--phases`` it runs ``auditor lint`` once in its own process instead, each phase timed as
bench/phases.py times an audit's (parsing and storing, with the links' indexes made at its end;
counting the unique URLs; building and writing the reports): wall and CPU seconds, the CPU of the
processes each ran, and the cores it kept busy. No memory figures then.

    .venv/bin/python bench/lint_100k.py [--docs 100000] [--publishers 50] [--corpus DIR] [--rounds 1] [--phases]

Never part of the unit tests.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vs_lychee import page_host, write_corpus

REPO = Path(__file__).resolve().parent.parent
REAL_CORPUS = REPO.parent / "shared" / "real_corpus" / "docs"
PLANT_EVERY = 997  # a prime: the planted documents fall on every publisher
SAMPLE_SECONDS = 0.02
_FINDING_LINE = re.compile(
    r"^(?P<document>.+?):(?:(?P<line>\d+):)? (?P<severity>\w+) \[(?P<code>[\w-]+)\] (?P<field>\S+):"
)


# ---------------------------------------------------------------- the corpus


def plant(corpus: Path, documents: int) -> set[tuple[str, str, str]]:
    """Offline defects in one document of every PLANT_EVERY; returns (file name, code, field) expected."""
    expected: set[tuple[str, str, str]] = set()
    for number, document in enumerate(range(PLANT_EVERY // 2, documents, PLANT_EVERY)):
        path = corpus / f"{document:06d}.md"
        text = path.read_text()
        kind = number % 5
        if kind == 0:
            publisher = page_host(document % 50)
            text = text.replace(f"  domain: {publisher}\n", "  domain: elsewhere.example.org\n", 1)
            expected.add((path.name, "provider-domain-mismatch", "provider.domain"))
        elif kind == 1:
            text = re.sub(r'cdnAmpWebUrl: "([^"]*)"', r'cdnAmpWebUrl: "\1?stale=1"', text, count=1)
            expected.add((path.name, "amp-cache-mismatch", "cdnAmpWebUrl"))
        elif kind == 2:
            text = text.replace("category: news\n", "category: [news\n", 1)
            expected.add((path.name, "invalid-metadata", "-"))
        elif kind == 3:
            text = re.sub(r'originalUrl: "https://', 'originalUrl: "ftp://', text, count=1)
            expected.add((path.name, "invalid-metadata", "originalUrl"))
        else:
            text = re.sub(r"publishedDateTime: \S+", "publishedDateTime: not-a-date", text, count=1)
            expected.add((path.name, "invalid-metadata", "publishedDateTime"))
        path.write_text(text)
    return expected


def corpus_for(args: argparse.Namespace) -> tuple[Path, set[tuple[str, str, str]]]:
    corpus = args.corpus or Path(tempfile.gettempdir(), f"auditor-lint-bench-{args.docs}x{args.publishers}")
    done = corpus / ".complete"
    if not done.exists():
        if corpus.exists():
            sys.exit(f"{corpus} exists but is not a finished bench corpus: remove it or pick another --corpus")
        started = time.perf_counter()
        write_corpus(corpus, args.docs, args.publishers)
        expected = plant(corpus, args.docs)
        done.write_text("\n".join(sorted(" ".join(item) for item in expected)) + "\n")
        print(f"generated {args.docs:,} documents in {corpus} in {time.perf_counter() - started:.1f}s")
    else:
        print(f"reusing the corpus in {corpus}")
    expected = {tuple(line.split(" ")) for line in done.read_text().splitlines() if line}
    return corpus, expected  # type: ignore[return-value]


# ---------------------------------------------------------------- memory


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
        except OSError:
            continue
    return pids


def _kib(path: str, keys: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(path) as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in keys:
                    found[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


class TreeMemory(threading.Thread):
    """Samples the summed RSS and PSS of a process tree until stopped; keeps the peaks."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_rss = self.peak_pss = self.most_processes = 0
        self.peak_pss_at, self.peak_pss_processes, self.started = 0.0, 0, time.perf_counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            pids = _tree(self.root)
            rss = pss = 0
            for pid in pids:
                rss += _kib(f"/proc/{pid}/status", ("VmRSS",)).get("VmRSS", 0)
                pss += _kib(f"/proc/{pid}/smaps_rollup", ("Pss",)).get("Pss", 0)
            if pss > self.peak_pss:
                self.peak_pss_at, self.peak_pss_processes = time.perf_counter() - self.started, len(pids)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.most_processes = max(self.most_processes, len(pids))
            self.stopped.wait(SAMPLE_SECONDS)


# ---------------------------------------------------------------- a run


@dataclass
class Result:
    seconds: float
    exit_code: int
    tree_rss_kib: int
    tree_pss_kib: int
    max_rss_kib: int
    cpu_seconds: float
    processes: int
    peak_pss_at: str
    findings: list[tuple[str, str, str]]
    summary: str

    def line(self, documents: int) -> str:
        return (
            f"wall {self.seconds:.2f}s ({documents / self.seconds:,.0f} documents/s), CPU {self.cpu_seconds:.1f}s, "
            f"peak tree RSS {self.tree_rss_kib / 1024:.0f} MiB, tree PSS {self.tree_pss_kib / 1024:.0f} MiB, "
            f"max RSS of one process {self.max_rss_kib / 1024:.0f} MiB ({self.processes} processes at most; "
            f"PSS peaked {self.peak_pss_at}), "
            f"{len(self.findings)} findings, exit {self.exit_code}"
        )


def lint(corpus: Path, scratch: Path, extra: list[str]) -> Result:
    command = [
        sys.executable,
        "-m",
        "auditor",
        "lint",
        str(corpus),
        "--db",
        str(scratch / "audit.sqlite"),
        "--out",
        str(scratch / "reports"),
        "--annotations",
        "none",
        *extra,
    ]
    with open(scratch / "stdout", "wb") as out, open(scratch / "stderr", "wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=scratch, stdout=out, stderr=err)
        sampler = TreeMemory(child.pid)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        sampler.stopped.set()
        sampler.join()
    exit_code = os.waitstatus_to_exitcode(status)
    errors = (scratch / "stderr").read_text(errors="replace")
    if exit_code not in (0, 1):
        sys.exit(f"auditor lint exited {exit_code}:\n{errors[-3000:]}")
    findings = []
    for line in (scratch / "stdout").read_text(errors="replace").splitlines():
        match = _FINDING_LINE.match(line)
        if match:
            findings.append((Path(match["document"]).name, match["code"], match["field"]))
    return Result(
        seconds,
        exit_code,
        sampler.peak_rss,
        sampler.peak_pss,
        usage.ru_maxrss,
        usage.ru_utime + usage.ru_stime,
        sampler.most_processes,
        f"at {sampler.peak_pss_at:.1f}s with {sampler.peak_pss_processes} processes",
        findings,
        errors.strip().splitlines()[-1] if errors.strip() else "",
    )


def lint_in_phases(corpus: Path, extra: list[str]) -> int:
    from phases import run_timed, timed  # bench/phases.py, beside this file

    import auditor.pipeline

    started = time.perf_counter()
    for name in ("_ingest", "_count_urls", "build_report", "write_reports"):
        setattr(auditor.pipeline, name, timed(name, getattr(auditor.pipeline, name), started))
    with tempfile.TemporaryDirectory(prefix="lint-bench-phases-") as tmp:
        sys.argv = ["auditor", "lint", str(corpus), "--db", f"{tmp}/audit.sqlite", "--out", f"{tmp}/reports",
                    "--annotations", "none", "--quiet", *extra]  # fmt: skip
        print(" ".join(sys.argv))
        run_timed(started)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--publishers", type=int, default=50)
    parser.add_argument("--corpus", type=Path, default=None, help="where the generated corpus is kept and reused")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the database and reports of the last round here")
    parser.add_argument("--no-real", action="store_true", help="skip ../shared/real_corpus")
    parser.add_argument("--phases", action="store_true", help="one lint in this process, each phase timed")
    args, extra = parser.parse_known_args()
    corpus, expected = corpus_for(args)
    if args.phases:
        return lint_in_phases(corpus, extra)
    results = []
    missing: set[tuple[str, str, str]] = set()
    for round_number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="lint-bench-") as tmp:
            scratch = args.keep if args.keep and round_number == args.rounds - 1 else Path(tmp)
            scratch.mkdir(parents=True, exist_ok=True)
            result = lint(corpus, scratch, extra)
        results.append(result)
        missing = expected - set(result.findings)
        print(f"round {round_number + 1}: {result.line(args.docs)}")
        print(f"  {result.summary}")
    seconds = statistics.median(r.seconds for r in results)
    pss = statistics.median(r.tree_pss_kib for r in results) / 1024
    rss = statistics.median(r.tree_rss_kib for r in results) / 1024
    print(
        f"lint {args.docs:,} documents: median wall {seconds:.2f}s (target <= 30), tree PSS {pss:.0f} MiB, "
        f"tree RSS {rss:.0f} MiB (target <= 150)"
    )
    print(f"planted defects: {len(expected) - len(missing)} of {len(expected)} found")
    for item in sorted(missing):
        print(f"  MISSING {' '.join(item)}")
    if not args.no_real:
        if REAL_CORPUS.is_dir():
            documents = sum(1 for _ in REAL_CORPUS.iterdir())
            with tempfile.TemporaryDirectory(prefix="lint-bench-real-") as tmp:
                result = lint(REAL_CORPUS, Path(tmp), extra)
            print(f"real corpus {REAL_CORPUS} ({documents:,} files): {result.line(documents)}")
        else:
            print(f"no real corpus at {REAL_CORPUS}: not measured")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: scheduled audits of an unchanged corpus (issue 10).

Generates N documents (default 1,000) in the seed's shape whose URLs are all
served by the loopback test server: pages, AMP pages, images shared between
documents, related articles citing each other, about 1 % of pages gone (404).
Then runs the real CLI:

1. `auditor audit` (the first run: everything fetched);
2. `auditor audit --max-age 1d` (the second run over the unchanged corpus);
3. RUNS - 2 more runs with `--max-age 1d`.

It prints the wall time of the first two runs and their ratio, the requests
the server saw for URLs that were fine in the first run during the second
(the goal: none), and the database size after one run and after all of them
(the goal: at most 1.5x).

The crawl runs with auditor's default politeness (10 requests a second and 4 in
flight per host), as a scheduled audit does; all URLs are on one loopback host,
so the first run is bound by that. `lifted` instead allows 1,000 requests a
second and 64 in flight: the loopback answers at once, so what is left of the
first run is parsing, judging and writing, as in the second.

    .venv/bin/python bench/scheduled.py [DOCUMENTS] [RUNS] [lifted]
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback import LoopbackServer

IMAGES = 200


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def _page(server: LoopbackServer, index: int) -> str:
    # About 1 % of the articles are gone.
    return server.url_for(f"/status/404/article-{index}" if index % 97 == 13 else f"/ok/article-{index}")


def write_corpus(server: LoopbackServer, corpus: Path, documents: int) -> None:
    images = [server.add_file(f"img-{index}.png", _png(40 + index % 7, 30), "image/png") for index in range(IMAGES)]
    corpus.mkdir()
    for index in range(documents):
        related = ""
        for other in (index + 1, index + 7, index + 31):
            other %= documents
            related += (
                f"  - title: OK\n    webUrl: {_page(server, other)}\n    ampWebUrl: {_page(server, other)}?amp\n"
                f"    images:\n      - url: {images[other % IMAGES]}\n        width: {40 + other % IMAGES % 7}\n"
                f"        height: 30\n"
            )
        (corpus / f"{index:05d}.md").write_text(
            f"---\ntitle: OK\nwebUrl: {_page(server, index)}\nampWebUrl: {_page(server, index)}?amp\n"
            f"publishedDateTime: 2026-11-01T10:00:00Z\nprovider:\n  domain: 127.0.0.1\n"
            f"images:\n  - url: {images[index % IMAGES]}\n    width: {40 + index % IMAGES % 7}\n    height: 30\n"
            f"related:\n{related}---\n"
        )


def audit(corpus: Path, tmp: Path, *extra: str) -> tuple[float, dict[str, object]]:
    command = [sys.executable, "-m", "auditor", "audit", str(corpus), "--db", str(tmp / "audit.sqlite"),
               "--out", str(tmp / "reports"), "--format", "json", "--allow-private", "--retries", "0", "--quiet",
               *extra]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=False)
    seconds = time.perf_counter() - started
    return seconds, json.loads((tmp / "reports" / "report.json").read_text())


def main() -> None:
    documents = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    politeness = ("--per-host", "64", "--concurrency", "64", "--rate", "1000") if "lifted" in sys.argv[3:] else ()
    with LoopbackServer() as server, tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        write_corpus(server, tmp / "corpus", documents)
        first_seconds, first = audit(tmp / "corpus", tmp, *politeness)
        one_run = (tmp / "audit.sqlite").stat().st_size
        fine = {url["url"] for url in first["urls"] if url["ok"]}  # type: ignore[index, union-attr]
        server.requests.clear()
        second_seconds, second = audit(tmp / "corpus", tmp, "--max-age", "1d", *politeness)
        asked = {request.path_only for request in server.requests}
        fine_asked = {urlsplit(url).path for url in fine} & asked
        for _ in range(runs - 2):
            audit(tmp / "corpus", tmp, "--max-age", "1d", *politeness)
        all_runs = (tmp / "audit.sqlite").stat().st_size
        summary = second["summary"]
        how = "politeness lifted" if politeness else "default politeness"
        print(f"corpus: {documents} documents, {first['summary']['urls']} unique URLs; {how}")  # type: ignore[index]
        print(f"first run:  {first_seconds:6.2f} s (everything fetched)")
        print(f"second run: {second_seconds:6.2f} s with --max-age 1d: fetched {summary['fetched']}, "  # type: ignore[index]
              f"revalidated {summary['revalidated']}, reused {summary['reused']}; "  # type: ignore[index]
              f"{first_seconds / second_seconds:.1f}x faster")  # fmt: skip
        print(f"requests for URLs that were fine in the first run: {len(fine_asked)} (server saw {len(asked)} paths)")
        print(f"database: {one_run:,} bytes after 1 run, {all_runs:,} after {runs} ({all_runs / one_run:.2f}x)")


if __name__ == "__main__":
    main()

"""Benchmark: a corpus of every hostile server case, audited with --timeout 5 (issue 3).

Starts the loopback test server, writes one document citing each case, runs
the real CLI (`python -m auditor audit --allow-private --timeout 5`) and prints
the wall time and the verdict per URL. The issue's bar: well under a minute.

    .venv/bin/python bench/bad_servers.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback import LoopbackServer, refused_port

CASES = [
    "/status/404/b",
    "/status/410/b",
    "/status/500/b",
    "/flaky/503/b",
    "/retry-after/1/b",
    "/always-429/b",
    "/status/403/b",
    "/redirect/301/b",
    "/redirect/302/b",
    "/loop/a-b",
    "/hang/b",
    "/drip/b",
    "/reset/b",
    "/head405/b",
    "/gzip-bomb/b",
]


def main() -> None:
    with LoopbackServer() as server, tempfile.TemporaryDirectory() as tmp:
        urls = [server.url_for(path) for path in CASES] + [f"http://127.0.0.1:{refused_port()}/"]
        related = "".join(f"  - title: case\n    webUrl: {url}\n" for url in urls)
        corpus = Path(tmp, "corpus")
        corpus.mkdir()
        (corpus / "cases.md").write_text(
            f"---\ntitle: cases\nwebUrl: {server.url_for('/ok/b')}\nrelated:\n{related}---\n"
        )
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "auditor",
                "audit",
                str(corpus),
                "--allow-private",
                "--timeout",
                "5",
                "--db",
                str(Path(tmp, "a.sqlite")),
                "--out",
                str(Path(tmp, "reports")),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        report = json.loads(Path(tmp, "reports", "report.json").read_text())
    for url in report["urls"]:
        print(
            f"{url['url'][len('http://127.0.0.1:') :]:45s} status={url['status']} error={url['error']} "
            f"attempts={url['attempts']} {url['elapsed_ms']} ms"
        )
    # The private-address guard needs --allow-private off, which would refuse the
    # loopback server itself; tests/test_crawl.py covers it with a stub resolver.
    print(f"exit {result.returncode}; {len(report['urls'])} URLs in {elapsed:.1f}s wall")


if __name__ == "__main__":
    main()

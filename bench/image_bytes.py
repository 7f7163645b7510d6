"""Benchmark: bytes the crawler reads to learn an image's size (issue 4).

Serves Pillow-made images in every writable format (plus a JPEG with a 60 KB
EXIF block and a server that ignores Range) from the loopback test server,
probes each through the real crawler, and prints the bytes that came off the
wire per image and the medians. The issue's bar: median under 4 KiB, none over
the 256 KiB cap. A server that ignores Range sends the whole body; we close
after the first socket read that holds the size, so those numbers are what one
read delivered (up to 64 KiB), reported separately.

    .venv/bin/python bench/image_bytes.py
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback import LoopbackServer

from auditor.config import CrawlConfig
from auditor.crawl import Crawler

CONFIG = CrawlConfig(allow_private=True, rate=1000.0, timeout=5.0)


def images() -> dict[str, tuple[bytes, tuple[int, int]]]:
    out: dict[str, tuple[bytes, tuple[int, int]]] = {}
    photo = Image.radial_gradient("L").resize((1200, 630)).convert("RGB")
    for name, fmt, kwargs in [
        ("png", "PNG", {}),
        ("gif", "GIF", {}),
        ("jpeg", "JPEG", {"quality": 85}),
        ("webp-lossy", "WEBP", {}),
        ("webp-lossless", "WEBP", {"lossless": True}),
        ("bmp", "BMP", {}),
        ("tiff", "TIFF", {}),
        ("progressive-jpeg", "JPEG", {"progressive": True}),
    ]:
        buffer = io.BytesIO()
        photo.save(buffer, fmt, **kwargs)
        out[name] = (buffer.getvalue(), photo.size)
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: a 60 KB APP1 before the SOF
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", exif=exif.tobytes())
    out["jpeg-60k-exif"] = (buffer.getvalue(), photo.size)
    return out


async def probe(server: LoopbackServer, cases: dict[str, tuple[bytes, tuple[int, int]]]) -> list[tuple[str, int, bool]]:
    results = []
    async with Crawler(CONFIG) as crawler:
        for name, (data, size) in cases.items():
            for prefix in ("image", "noimagerange"):
                server.add_file(f"{name}.bin", data, "image/*")
                check = await crawler.check(server.url_for(f"/{prefix}/{name}.bin"), "image")
                results.append(
                    (
                        f"{name} ({'Range' if prefix == 'image' else 'Range ignored'})",
                        check.bytes_read,
                        (check.width, check.height) == size,
                    )
                )
    return results


def main() -> None:
    cases = images()
    with LoopbackServer() as server:
        results = asyncio.run(probe(server, cases))
    for name, read, right in results:
        print(f"{name:40s} {read:8d} bytes  {'ok' if right else 'WRONG SIZE'}")
    for label in ("Range)", "Range ignored)"):
        reads = [read for name, read, _ in results if name.endswith(label)]
        print("servers honouring Range: " if label == "Range)" else "servers ignoring Range: ", end="")
        print(f"median {statistics.median(reads):.0f} bytes, max {max(reads)} bytes (cap {CONFIG.max_image_bytes})")
    print(f"all sizes right: {all(right for *_, right in results)}")


if __name__ == "__main__":
    main()

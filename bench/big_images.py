"""Benchmark: bytes auditor reads to size 1,000 images of 0.5–5 MB (issue 11, scenario c).

Target: the median bytes per image at most 4 KiB, the total at most 1 % of the
images' full sizes.

The images are real files, written once into a cache directory (default
``$TMPDIR/auditor-bench-big-images-1000``, about 2.3 GB; the script prints
how to free it) and reused by later runs. The mix, and why (big files on the
web are mostly photos that nobody resized or stripped, so metadata in front
of the size is common):

==================  =====  ====================================================
kind                files  what comes before the size
==================  =====  ====================================================
jpeg-web              200  baseline, JFIF and a COM: a CMS or CDN export (the
                           frame header at byte ~170)
jpeg-web-icc          100  progressive, JFIF, an sRGB ICC profile (APP2; Pillow's
                           588 B one, Photoshop's is 3,144 B) and a COM (~775)
jpeg-camera           200  baseline, EXIF APP1 of 4–32 KB as cameras and phones
                           write it (IFD0, Exif IFD with a MakerNote blob of
                           2–30 KB, IFD1 with a real 160x120 JPEG thumbnail), an
                           ICC profile on half of them (5–33 KB)
jpeg-edited           150  progressive, as an editor saves it: JFIF, EXIF (as
                           above), Photoshop APP13 (IPTC and a thumbnail), XMP
                           APP1 of 4–60 KB (history, 2 KB padding), ICC, Adobe
                           APP14 (12–78 KB)
png                   150  IHDR (always first); then tEXt and on 40 % iCCP, eXIf
                           and iTXt XMP, which come after the size anyway
webp                  120  lossy; a third simple (VP8), two thirds extended
                           (VP8X with ICC before and EXIF/XMP after the image)
gif                    40  animated, 12 frames of 64 colours
avif                   30  AV1 in HEIF (Pillow's libavif encoder)
tiff                   10  rare on the web (only Safari shows it), here for the
                           jump: uncompressed (IFD at offset 8) or deflate (IFD
                           after the strips, at the end), chosen at random
==================  =====  ====================================================

Generation takes about 70 s on 2 cores (then it is cached): it
encodes about 360 distinct pictures (random crops of one noise-and-gradient
canvas per worker, sized so files land in 0.5–5 MB) and writes each as up to
3 files whose metadata differs (a per-file EXIF ImageUniqueID, XMP
DocumentID, COM, tEXt, GIF comment or AVIF ``free`` box), so every URL is a
distinct file with distinct bytes (checked). HEIC is left out: Pillow cannot
write it without ``pillow-heif``, and only Safari shows it.

A corpus in the seed's format cites them (about 400 documents with 2–3
images each, ``images[].url/width/height``, a page per document); 12 images
declare a wrong size (planted). A threaded loopback HTTP server sends files
with ``os.sendfile`` and counts, per URL, the body bytes written to the
socket (the kernel took them; a client that closes early may never have read
all of them). ``auditor audit`` runs as a subprocess with ``--allow-private``
and politeness lifted, like ``bench/vs_lychee.py``. Then the same again from a
server that ignores Range (always 200 with the whole file): auditor closes
after the first read(s) that hold the size, and the server's count shows what
that costs on loopback, where socket buffers take megabytes at once.

Printed per mode: images, total full size, bytes the server sent and the
``bytes_read`` auditor stored (totals, % of full, median/p90/max per image,
also per kind), requests, wall seconds, auditor's CPU and peak RSS; and
whether every image got its real size (the only image-size findings are the
planted ones, all found).

    .venv/bin/python bench/big_images.py [--images 1000] [--concurrency 64] [--cache DIR] [--modes range,no-range]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import random
import statistics
import struct
import sys
import tempfile
import threading
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_lychee import published, run, title

GENERATION = "big-images-v1"  # bump when the files change, so a stale cache is rebuilt
MB = 1_000_000
SMALLEST, LARGEST = MB // 2, 5 * MB
TARGET_MEDIAN, TARGET_SHARE = 4096, 0.01
# Files written from one encoded picture (3 unless said here), each with its own metadata. A simple
# WebP has no place for any, so only the first of a picture's WebP files is simple; TIFF keeps its
# metadata inside its IFD, so each TIFF is a picture of its own.
USES_PER_PICTURE = {"tiff": 1}
GIF_FRAMES = 12
CANVAS = (4800, 3200)

# kind: (share of the files, file extension, bytes per pixel the first guess at a size assumes)
KINDS: dict[str, tuple[float, str, float]] = {
    "jpeg-web": (0.20, "jpg", 0.55),
    "jpeg-web-icc": (0.10, "jpg", 0.5),
    "jpeg-camera": (0.20, "jpg", 0.55),
    "jpeg-edited": (0.15, "jpg", 0.5),
    "png": (0.15, "png", 2.6),
    "webp": (0.12, "webp", 0.54),
    "gif": (0.04, "gif", 1.0),
    "avif": (0.03, "avif", 0.36),
    "tiff": (0.01, "tif", 2.6),
}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
                 "avif": "image/avif", "tif": "image/tiff"}  # fmt: skip
PLANTED = 12  # images whose declared size is wrong


@dataclass(frozen=True)
class ImageFile:
    index: int
    kind: str
    name: str
    width: int
    height: int
    size: int
    digest: str  # of the bytes: every file must differ


# ---------------------------------------------------------------- the images


def plan(count: int) -> list[list[tuple[int, str]]]:
    """Which files each picture becomes: groups of (file index, kind), every group of one kind."""
    kinds: list[str] = []
    for kind, (share, _, _) in KINDS.items():
        kinds += [kind] * round(share * count)
    kinds = (kinds + ["jpeg-web"] * count)[:count]
    random.Random(11).shuffle(kinds)
    groups: list[list[tuple[int, str]]] = []
    for kind in KINDS:
        indices = [index for index, k in enumerate(kinds) if k == kind]
        uses = USES_PER_PICTURE.get(kind, 3)
        groups += [[(i, kind) for i in indices[at : at + uses]] for at in range(0, len(indices), uses)]
    return groups


_canvas = None


def _photo(rng: random.Random, width: int, height: int):  # type: ignore[no-untyped-def]
    """A distinct photo-like picture: a crop of the worker's noise-and-gradient canvas, maybe mirrored."""
    global _canvas
    from PIL import Image, ImageChops

    if _canvas is None:
        gradient = Image.linear_gradient("L").resize(CANVAS).point(lambda v: v // 2)
        channels = [ImageChops.add(Image.effect_noise(CANVAS, 40).point(lambda v: v // 2), gradient) for _ in "RGB"]
        _canvas = Image.merge("RGB", channels)
    shrink = min(1.0, CANVAS[0] / width, CANVAS[1] / height)
    width, height = max(16, int(width * shrink)), max(16, int(height * shrink))
    left, top = rng.randrange(CANVAS[0] - width + 1), rng.randrange(CANVAS[1] - height + 1)
    picture = _canvas.crop((left, top, left + width, top + height))
    return picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else picture


def _encode(kind: str, picture, rng: random.Random) -> bytes:  # type: ignore[no-untyped-def]
    from PIL import Image

    buffer = io.BytesIO()
    if kind in ("jpeg-web", "jpeg-camera"):
        picture.save(buffer, "JPEG", quality=rng.choice((85, 90, 92)))
    elif kind.startswith("jpeg"):
        picture.save(buffer, "JPEG", quality=rng.choice((85, 90, 92)), progressive=True)
    elif kind == "png":
        picture.save(buffer, "PNG", compress_level=1)
    elif kind == "webp":
        picture.save(buffer, "WEBP", quality=92, method=0)
    elif kind == "avif":
        picture.save(buffer, "AVIF", quality=70, speed=10)
    elif kind == "tiff":
        picture.save(buffer, "TIFF", **({"compression": "tiff_deflate"} if rng.random() < 0.5 else {}))
    elif kind == "gif":
        frames = [picture.quantize(64, Image.Quantize.FASTOCTREE)]
        frames += [_photo(rng, *picture.size).quantize(64, Image.Quantize.FASTOCTREE) for _ in range(GIF_FRAMES - 1)]
        frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buffer.getvalue()


def make_picture(group: list[tuple[int, str]], cache: str) -> list[ImageFile]:
    """Encode one picture (sized to land in 0.5–5 MB), then write its files, each with its own metadata."""
    first, kind = group[0]
    rng = random.Random(first)
    _, extension, per_pixel = KINDS[kind]
    target = rng.uniform(SMALLEST * 1.1, LARGEST * 0.94)
    aspect = rng.choice((3 / 2, 4 / 3, 16 / 9, 1.0, 2 / 3))
    frames = GIF_FRAMES if kind == "gif" else 1
    data = b""
    for _ in range(3):  # the first guess is usually close; a second one nearly always is
        pixels = target / per_pixel / frames
        picture = _photo(rng, round(math.sqrt(pixels * aspect)), round(math.sqrt(pixels / aspect)))
        data = _encode(kind, picture, rng)
        if SMALLEST <= len(data) <= LARGEST * 0.97:  # room for the metadata
            break
        per_pixel *= len(data) / target
    width, height = picture.size
    files = []
    for variant, (index, file_kind) in enumerate(group):
        body = _with_metadata(file_kind, data, width, height, random.Random(index * 7919), index, variant)
        name = f"{index:04d}-{file_kind}.{extension}"
        Path(cache, name).write_bytes(body)
        digest = hashlib.sha256(body).hexdigest()
        files.append(ImageFile(index, file_kind, name, width, height, len(body), digest))
    return files


def build_images(cache: Path, count: int) -> list[ImageFile]:
    manifest = cache / "manifest.json"
    if manifest.exists():
        stored = json.loads(manifest.read_text())
        if stored["generation"] == GENERATION and stored["count"] == count:
            return [ImageFile(**item) for item in stored["files"]]
        for item in stored["files"]:  # only what this script wrote: the directory may hold more
            (cache / item["name"]).unlink(missing_ok=True)
        manifest.unlink()
    elif cache.exists() and any(cache.iterdir()):
        raise SystemExit(f"{cache} is not empty and has no {manifest.name} of this script: choose another --cache")
    cache.mkdir(parents=True, exist_ok=True)
    groups = plan(count)
    print(f"writing {count} images ({len(groups)} distinct pictures) into {cache} ...", flush=True)
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        made = [file for files in pool.map(make_picture, groups, [str(cache)] * len(groups)) for file in files]
    made.sort(key=lambda file: file.index)
    assert len({file.digest for file in made}) == len(made), "two files have the same bytes"
    manifest.write_text(json.dumps({"generation": GENERATION, "count": count, "files": [asdict(f) for f in made]}))
    return made


# ---------------------------------------------------------------- metadata, spliced into an encoded picture


def _with_metadata(
    kind: str, data: bytes, width: int, height: int, rng: random.Random, index: int, variant: int
) -> bytes:
    if kind.startswith("jpeg"):
        return _jpeg(kind, data, width, height, rng, index)
    if kind == "png":
        return _png(data, width, height, rng, index)
    if kind == "webp":
        return _webp(data, width, height, rng, index, simple=variant == 0)
    if kind == "gif":  # a comment extension just before the trailer
        assert data.endswith(b";")
        return data[:-1] + b"\x21\xfe" + _sub_blocks(f"file {index}".encode()) + b";"
    if kind == "avif":  # a top-level free box may sit anywhere
        return data + struct.pack(">L4s", 8 + 16, b"free") + f"file {index:011d}".encode()
    return data  # TIFF: one file per picture


def _segment(marker: int, payload: bytes) -> bytes:
    assert len(payload) + 2 <= 0xFFFF, f"JPEG segment too long: {len(payload)}"
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _jpeg(kind: str, data: bytes, width: int, height: int, rng: random.Random, index: int) -> bytes:
    assert data[2:4] == b"\xff\xe0", "Pillow starts its JPEGs with a JFIF APP0"
    jfif_end = 4 + struct.unpack_from(">H", data, 4)[0]
    jfif, rest = data[2:jfif_end], data[jfif_end:]
    icc = _segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + _icc())
    comment = _segment(0xFE, f"file {index}".encode())
    if kind == "jpeg-web":
        segments = [jfif, comment]
    elif kind == "jpeg-web-icc":
        segments = [jfif, icc, comment]
    elif kind == "jpeg-camera":
        segments = [_segment(0xE1, _exif(rng, width, height, index))] + ([icc] if rng.random() < 0.5 else [])
    else:
        segments = [
            jfif,
            _segment(0xE1, _exif(rng, width, height, index)),
            _segment(0xED, _photoshop_irb(rng)),
            _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + _xmp(rng, index, rng.randrange(4_000, 60_000))),
            icc,
            _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01"),  # transform 1: YCbCr, as encoded
        ]
    return b"\xff\xd8" + b"".join(segments) + rest


_icc_bytes: bytes | None = None


def _icc() -> bytes:
    global _icc_bytes
    if _icc_bytes is None:
        from PIL import ImageCms

        _icc_bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _icc_bytes


def _thumbnail(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    _photo(rng, 640, 480).resize((160, 120)).save(buffer, "JPEG", quality=75)
    return buffer.getvalue()


def _exif(rng: random.Random, width: int, height: int, index: int) -> bytes:
    """EXIF as a camera writes it: IFD0, the Exif IFD (with a MakerNote), then IFD1 pointing at a thumbnail."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = rng.choice([("Canon", "Canon EOS R6"), ("NIKON CORPORATION", "NIKON Z 6_2"),
                                             ("SONY", "ILCE-7M4"), ("Apple", "iPhone 15 Pro")])  # fmt: skip
    exif[0x0112] = 1  # orientation: as stored (auditor compares the stored grid)
    exif[0x0131] = "Firmware Version 1.8.1"
    exif[0x0132] = f"2026:03:{index % 28 + 1:02d} 10:{index % 60:02d}:00"
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[0x829A], details[0x829D], details[0x8827] = (1, 250), (56, 10), 400
    details[0x9003] = exif[0x0132]
    details[0xA002], details[0xA003] = width, height
    details[0x927C] = rng.randbytes(rng.randrange(2_000, 30_000))  # MakerNote: the vendor's own blob
    details[0xA420] = f"{index:032x}"  # ImageUniqueID
    tiff = exif.tobytes()
    assert tiff.startswith(b"Exif\x00\x00")
    tiff = bytearray(tiff[6:])
    tiff += b"\x00" * (len(tiff) % 2)  # IFDs start on a word boundary
    endian = "<" if tiff[:2] == b"II" else ">"
    # Pillow writes no IFD1: link one after everything, with the thumbnail right behind it.
    ifd0 = struct.unpack_from(endian + "L", tiff, 4)[0]
    entries = struct.unpack_from(endian + "H", tiff, ifd0)[0]
    struct.pack_into(endian + "L", tiff, ifd0 + 2 + 12 * entries, len(tiff))
    thumbnail = _thumbnail(rng)
    ifd1_size = 2 + 2 * 12 + 4
    tiff += struct.pack(endian + "H", 2)
    tiff += struct.pack(endian + "HHLL", 0x0201, 4, 1, len(tiff) - 2 + ifd1_size)  # JPEGInterchangeFormat
    tiff += struct.pack(endian + "HHLL", 0x0202, 4, 1, len(thumbnail))
    tiff += struct.pack(endian + "L", 0) + thumbnail
    return b"Exif\x00\x00" + bytes(tiff)


def _photoshop_irb(rng: random.Random) -> bytes:
    def resource(number: int, data: bytes) -> bytes:
        return b"8BIM" + struct.pack(">HHL", number, 0, len(data)) + data + b"\x00" * (len(data) % 2)

    caption = ("A caption as an agency writes it, with names and places. " * rng.randrange(2, 20)).encode()
    iptc = b"".join(b"\x1c\x02" + bytes([tag]) + struct.pack(">H", len(value)) + value
                    for tag, value in ((120, caption), (80, b"Staff Photographer"), (110, b"Agency")))  # fmt: skip
    thumbnail = _thumbnail(rng)
    header = struct.pack(">LLLLLLHH", 1, 160, 120, 480, 480 * 120, len(thumbnail), 24, 1)
    return b"Photoshop 3.0\x00" + resource(0x0404, iptc) + resource(0x040C, header + thumbnail)


def _xmp(rng: random.Random, index: int, size: int) -> bytes:
    history = "".join(
        f'<rdf:li stEvt:action="saved" stEvt:instanceID="xmp.iid:{rng.getrandbits(128):032x}" '
        f'stEvt:when="2026-03-01T10:{n % 60:02d}:00Z" stEvt:softwareAgent="Adobe Photoshop 25.0" '
        f'stEvt:changed="/"/>\n'
        for n in range(max(0, (size - 3000) // 240))
    )
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '<rdf:Description rdf:about="" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
        'xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        f'xmp:CreatorTool="Adobe Photoshop 25.0" xmpMM:DocumentID="xmp.did:{index:032x}">\n'
        f"<xmpMM:History><rdf:Seq>\n{history}</rdf:Seq></xmpMM:History>\n"
        "</rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n" + " " * 2048 + '\n<?xpacket end="w"?>'
    )
    return packet.encode()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">L", len(payload)) + kind + payload + struct.pack(">L", zlib.crc32(kind + payload))


def _png(data: bytes, width: int, height: int, rng: random.Random, index: int) -> bytes:
    ihdr_end = 8 + 8 + 13 + 4
    chunks = [_png_chunk(b"tEXt", f"Comment\x00file {index}".encode())]
    if rng.random() < 0.4:
        chunks.insert(0, _png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(_icc())))
        chunks.append(_png_chunk(b"eXIf", _exif(rng, width, height, index)[6:]))
        xmp = _xmp(rng, index, rng.randrange(4_000, 20_000))
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    return data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:]


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<L", len(payload)) + payload + b"\x00" * (len(payload) % 2)


def _webp(data: bytes, width: int, height: int, rng: random.Random, index: int, *, simple: bool) -> bytes:
    assert data[12:16] == b"VP8 ", "Pillow writes an RGB lossy picture as a simple WebP"
    image = data[12:]
    if simple:
        return data
    flags = 0x20 | 0x08 | 0x04  # ICC, EXIF, XMP
    vp8x = _riff_chunk(b"VP8X", struct.pack("<L", flags) + (width - 1).to_bytes(3, "little")
                       + (height - 1).to_bytes(3, "little"))  # fmt: skip
    xmp = _xmp(rng, index, rng.randrange(4_000, 20_000))
    exif = _exif(rng, width, height, index)[6:]
    chunks = vp8x + _riff_chunk(b"ICCP", _icc()) + image + _riff_chunk(b"EXIF", exif) + _riff_chunk(b"XMP ", xmp)
    return b"RIFF" + struct.pack("<L", 4 + len(chunks)) + b"WEBP" + chunks


def _sub_blocks(data: bytes) -> bytes:
    return b"".join(bytes([len(data[at : at + 255])]) + data[at : at + 255] for at in range(0, len(data), 255)) + b"\0"


# ---------------------------------------------------------------- the corpus


def planted(images: list[ImageFile]) -> dict[int, tuple[int, int]]:
    """A wrong declared size for PLANTED images, spread over the kinds: index -> (width, height)."""
    by_kind: dict[str, list[ImageFile]] = {}
    for image in images:
        by_kind.setdefault(image.kind, []).append(image)
    chosen: list[ImageFile] = []
    while len(chosen) < min(PLANTED, len(images)):
        for group in by_kind.values():
            if group and len(chosen) < PLANTED:
                chosen.append(group.pop(len(group) // 2))
    wrong = {}
    for number, image in enumerate(chosen):
        w, h = image.width, image.height
        options = [(w + 1, h), (h, w) if w != h else (w, h + 1), (w // 2, h // 2), (w, h + 10)]
        wrong[image.index] = options[number % len(options)]
    return wrong


def write_corpus(
    corpus: Path, images: list[ImageFile], base: str, prefix: str, wrong: dict[int, tuple[int, int]]
) -> int:
    """Documents of 2–3 images each, in the seed's format; returns how many."""
    corpus.mkdir(parents=True)
    rng = random.Random(5)
    documents, at = 0, 0
    while at < len(images):
        cited = images[at : at + rng.choice((2, 3))]
        at += len(cited)
        page = f"{base}/a/{documents}.html"
        lines = [
            "---",
            "category: news",
            f"title: {json.dumps(title(documents))}",
            f"publishedDateTime: {published(documents)}",
            f'webUrl: "{page}"',
            f'originalUrl: "{page}"',
            "type: article",
            "provider:",
            "  name: Bench Images",
            "  domain: 127.0.0.1",
            "images:",
        ]
        for image in cited:
            width, height = wrong.get(image.index, (image.width, image.height))
            lines += [f'  - url: "{base}/{prefix}/{image.name}"', f"    width: {width}", f"    height: {height}"]
        (corpus / f"{documents:04d}.md").write_text("\n".join([*lines, "---", ""]))
        documents += 1
    return documents


# ---------------------------------------------------------------- the server


class CountingServer(ThreadingHTTPServer):
    """Serves /a/N.html pages and the cached images: /i/NAME honours Range, /full/NAME ignores it."""

    daemon_threads = True

    def __init__(self, cache: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.cache = cache
        self.lock = threading.Lock()
        self.sent: Counter[str] = Counter()  # body bytes the kernel took, per path
        self.requests: Counter[str] = Counter()
        self.header_bytes = 0
        self.connections = 0

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing early is the point here
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def count(self, path: str, body: int, headers: int) -> None:
        with self.lock:
            self.sent[path] += body
            self.requests[path] += 1
            self.header_bytes += headers


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection's thread ends after this
    server: CountingServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        path = self.path.split("?")[0]
        route, _, name = path.lstrip("/").partition("/")
        file = self.server.cache / name
        if route == "a" and name.endswith(".html"):
            document = int(name.split(".")[0])
            page = f"<!doctype html><html><head><meta charset=utf-8><title>{title(document)}</title></head>"
            self._bytes(path, 200, "text/html; charset=utf-8", f"{page}<body><p>Bench</p></body></html>\n".encode(),
                        send_body)  # fmt: skip
        elif route in ("i", "full") and "/" not in name and file.suffix != ".json" and file.is_file():
            self._file(path, file, honour_range=route == "i", send_body=send_body)
        else:
            self._bytes(path, 404, "text/plain", b"not found\n", send_body)

    def _head(self, status: int, content_type: str, length: int, extra: dict[str, str]) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in extra.items():
            self.send_header(name, value)
        headers = sum(len(line) for line in self._headers_buffer) + 2  # type: ignore[attr-defined]
        self.end_headers()
        return headers

    def _bytes(self, path: str, status: int, content_type: str, body: bytes, send_body: bool) -> None:
        headers = self._head(status, content_type, len(body), {})
        if send_body:
            self.wfile.write(body)
        self.server.count(path, len(body) if send_body else 0, headers)

    def _file(self, path: str, file: Path, *, honour_range: bool, send_body: bool) -> None:
        size = file.stat().st_size
        content_type = CONTENT_TYPES[file.suffix.lstrip(".")]
        first, last, status = 0, size - 1, 200
        extra = {"Accept-Ranges": "bytes"}
        wanted = _byte_range(self.headers.get("Range", ""), size) if honour_range else None
        if wanted == "unsatisfiable":
            self._bytes(path, 416, "text/plain", b"", send_body)
            return
        if isinstance(wanted, tuple):
            first, last = wanted
            status = 206
            extra["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers = self._head(status, content_type, last - first + 1, extra)
        sent = 0
        if send_body:
            with file.open("rb") as handle:
                offset, left = first, last - first + 1
                try:
                    while left > 0:
                        # Small steps, so the count is what the kernel took before the client went away.
                        taken = os.sendfile(self.connection.fileno(), handle.fileno(), offset, min(left, 65536))
                        if taken == 0:
                            break
                        sent, offset, left = sent + taken, offset + taken, left - taken
                except OSError:
                    self.close_connection = True
        self.server.count(path, sent, headers)


def _byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """The one range of a `bytes=` header, "unsatisfiable", or None (no header, or one we ignore)."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[6:].strip().partition("-")
    try:
        if first_text:
            first = int(first_text)
            last = min(int(last_text), size - 1) if last_text else size - 1
        else:
            first, last = max(0, size - int(last_text)), size - 1
    except ValueError:
        return None
    return "unsatisfiable" if first >= size or first > last else (first, last)


@dataclass(frozen=True)
class Mode:
    name: str
    route: str


MODES = {"range": Mode("Range honoured", "i"), "no-range": Mode("Range ignored (always 200)", "full")}


# ---------------------------------------------------------------- the runs


def audit(mode: Mode, images: list[ImageFile], cache: Path, tmp: Path, concurrency: int) -> None:
    wrong = planted(images)
    server = CountingServer(cache)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        work = tmp / mode.route
        documents = write_corpus(work / "corpus", images, base, mode.route, wrong)
        c = str(concurrency)
        command = [sys.executable, "-m", "auditor", "audit", str(work / "corpus"), "--db", str(work / "audit.sqlite"),
                   "--out", str(work / "reports"), "--format", "json", "--allow-private", "--concurrency", c,
                   "--per-host", c, "--rate", "1000", "--fail-on", "never", "--quiet"]  # fmt: skip
        seconds, rss, cpu, code = run(command, dict(os.environ), work)
    finally:
        server.shutdown()
        server.server_close()
    report = json.loads((work / "reports" / "report.json").read_text())
    print(
        f"\n{mode.name}: {documents} documents citing {len(images)} images, {concurrency} in flight; "
        f"auditor exit {code}, {seconds:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss / 2**20:.0f} MiB"
    )
    summarize(mode, images, wrong, server, report, base)


def _spread(values: list[int]) -> str:
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return f"median {statistics.median(values):>9,.0f}  p90 {p90:>9,.0f}  max {max(values):>9,}"


def _share(part: int, full: int) -> str:
    return f"{part / MB:9.3f} MB = {100 * part / full:.3f} % of full"


def summarize(
    mode: Mode,
    images: list[ImageFile],
    wrong: dict[int, tuple[int, int]],
    server: CountingServer,
    report: dict[str, Any],
    base: str,
) -> None:
    urls = {item["url"]: item for item in report["urls"]}
    url = {image.index: f"{base}/{mode.route}/{image.name}" for image in images}
    path = {index: address.removeprefix(base) for index, address in url.items()}
    results = {image.index: urls.get(url[image.index], {}) for image in images}
    full = sum(image.size for image in images)
    sent = [server.sent[path[image.index]] for image in images]
    stored = [int(results[image.index].get("bytes_read") or 0) for image in images]
    requests = [server.requests[path[image.index]] for image in images]
    wrongly_sized = [
        image
        for image in images
        if (results[image.index].get("width"), results[image.index].get("height")) != (image.width, image.height)
    ]
    smallest, largest = min(image.size for image in images), max(image.size for image in images)
    print(
        f"  images: {len(images)}, full size {full / MB:,.1f} MB (each {smallest / MB:.2f}–{largest / MB:.2f} MB); "
        f"sized right: {len(images) - len(wrongly_sized)} of {len(images)}"
    )
    print(f"  server sent (body bytes into the socket): {_share(sum(sent), full)}; per image {_spread(sent)}")
    print(f"  auditor's bytes_read (what it consumed):  {_share(sum(stored), full)}; per image {_spread(stored)}")
    pages = sum(count for page, count in server.requests.items() if page.startswith("/a/"))
    print(
        f"  requests: {sum(requests):,} for images (per image median {statistics.median(requests):.0f}, "
        f"max {max(requests)}), {pages} for pages, {sum(server.requests.values()):,} in all over "
        f"{server.connections} connections; response headers {server.header_bytes / 1000:,.0f} kB in all"
    )
    print(
        f"  {'kind':<13} {'files':>5} {'full median':>11}   {'sent median':>11} {'p90':>9} {'max':>9}   "
        f"{'read median':>11} {'max':>9}   {'requests max':>12}"
    )
    for kind in KINDS:
        rows = [n for n, image in enumerate(images) if image.kind == kind]
        if not rows:
            continue
        kind_sent, kind_stored = [sent[n] for n in rows], [stored[n] for n in rows]
        p90 = statistics.quantiles(kind_sent, n=10)[-1] if len(rows) > 1 else kind_sent[0]
        print(
            f"  {kind:<13} {len(rows):>5} {statistics.median(images[n].size for n in rows):>11,.0f}   "
            f"{statistics.median(kind_sent):>11,.0f} {p90:>9,.0f} {max(kind_sent):>9,}   "
            f"{statistics.median(kind_stored):>11,.0f} {max(kind_stored):>9,}   {max(requests[n] for n in rows):>12}"
        )
    findings = report["findings"]
    sizes = {finding["url"] for finding in findings if finding["code"] == "image-size-mismatch"}
    expected = {url[index] for index in wrong}
    others = Counter(finding["code"] for finding in findings if finding["code"] != "image-size-mismatch")
    print(
        f"  planted wrong sizes found: {len(sizes & expected)} of {len(expected)}; "
        f"image-size findings not planted: {len(sizes - expected)}; other findings: {dict(others) or 'none'}"
    )
    messages = {finding["url"]: finding["message"] for finding in findings}
    for image in wrongly_sized:
        result = results[image.index]
        print(
            f"    not sized: {image.name} ({image.width}x{image.height}): auditor says "
            f"{result.get('width')}x{result.get('height')}, {messages.get(url[image.index])}"
        )
    median = statistics.median(sent)
    median_met = "met" if median <= TARGET_MEDIAN else "MISSED"
    total_met = "met" if sum(sent) <= TARGET_SHARE * full else "MISSED"
    print(
        f"  target (c): median bytes per image ≤ {TARGET_MEDIAN:,}: {median_met} ({median:,.0f} sent, "
        f"{statistics.median(stored):,.0f} read); total ≤ {100 * TARGET_SHARE:.0f} % of full: {total_met} "
        f"({100 * sum(sent) / full:.3f} % sent)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64, help="in flight, globally and per host")
    parser.add_argument("--cache", type=Path, help="default: $TMPDIR/auditor-bench-big-images-<images>")
    parser.add_argument("--modes", default="range,no-range", help="range, no-range or both (comma-separated)")
    args = parser.parse_args()
    args.cache = args.cache or Path(tempfile.gettempdir()) / f"auditor-bench-big-images-{args.images}"
    images = build_images(args.cache, args.images)
    mix = ", ".join(f"{kind} {sum(image.kind == kind for image in images)}" for kind in KINDS)
    total = sum(image.size for image in images)
    print(f"images: {len(images)} in {args.cache} ({total / MB:,.0f} MB; `rm -r {args.cache}` frees them); {mix}")
    with tempfile.TemporaryDirectory(prefix="big-images-") as name:
        for mode in args.modes.split(","):
            audit(MODES[mode], images, args.cache, Path(name), args.concurrency)


if __name__ == "__main__":
    main()

from __future__ import annotations

import io
import itertools
import random
import statistics
import struct
from dataclasses import dataclass
from functools import cache

import pytest
from PIL import Image, ImageDraw, features

from auditor.images import (
    CGBI_ERROR,
    EMPTY_ERROR,
    FIRST_RANGE_BYTES,
    HTML_ERROR,
    TRUNCATED_ERROR,
    UNKNOWN_ERROR,
    ImageInfo,
    ImageProbe,
    probe_bytes,
)


@dataclass(frozen=True)
class Golden:
    data: bytes
    expected: ImageInfo


def _picture(mode: str = "RGB", size: tuple[int, int] = (37, 23)) -> Image.Image:
    # Some structure, so the encoders emit real image data after the header.
    image = Image.new(mode, size, (255, 255, 255, 0) if mode == "RGBA" else "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((3, 2, 20, 15), fill="red")
    draw.ellipse((10, 5, 35, 22), fill="blue")
    return image


def _encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, payload: bytes) -> bytes:
    return _box(kind, b"\x00\x00\x00\x00" + payload)  # version 0, flags 0


def _heif(brands: bytes) -> bytes:
    """Minimal HEIF: a 160x120 thumbnail `ispe` listed first, the primary item's 4032x3024 second."""
    ftyp = _box(b"ftyp", brands[:4] + b"\x00\x00\x00\x00" + brands)
    hdlr = _full_box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 13)
    pitm = _full_box(b"pitm", struct.pack(">H", 1))
    ipco = _box(
        b"ipco",
        _full_box(b"ispe", struct.pack(">II", 160, 120)) + _full_box(b"ispe", struct.pack(">II", 4032, 3024)),
    )
    # item 1 (primary) -> property 2, item 2 (thumbnail) -> property 1; 0x80 marks "essential".
    ipma = _full_box(b"ipma", struct.pack(">IHBBHBB", 2, 1, 1, 0x82, 2, 1, 0x81))
    meta = _full_box(b"meta", hdlr + pitm + _box(b"iprp", ipco + ipma))
    return ftyp + meta + _box(b"mdat", bytes(range(256)) * 12)


def _big_endian_tiff() -> bytes:
    width, height = 300, 20
    pixels_at = 8 + 2 + 8 * 12 + 4
    entries = [
        struct.pack(">HHIHH", 256, 3, 1, width, 0),  # ImageWidth, SHORT, left-justified
        struct.pack(">HHII", 257, 4, 1, height),  # ImageLength, LONG
        struct.pack(">HHIHH", 258, 3, 1, 8, 0),  # BitsPerSample
        struct.pack(">HHIHH", 259, 3, 1, 1, 0),  # Compression: none
        struct.pack(">HHIHH", 262, 3, 1, 1, 0),  # PhotometricInterpretation: black is zero
        struct.pack(">HHII", 273, 4, 1, pixels_at),  # StripOffsets
        struct.pack(">HHII", 278, 4, 1, height),  # RowsPerStrip
        struct.pack(">HHII", 279, 4, 1, width * height),  # StripByteCounts
    ]
    ifd = struct.pack(">H", len(entries)) + b"".join(entries) + struct.pack(">I", 0)
    return b"MM\x00*" + struct.pack(">I", 8) + ifd + bytes(range(200)) * (width * height // 200)


def _os2_bmp() -> bytes:
    # BITMAPCOREHEADER: 16-bit width/height, which a 32-bit read would garble.
    pixels = b"\x00" * (3 * 5 + 1) * 7
    header = struct.pack("<2sIHHI", b"BM", 26 + len(pixels), 0, 0, 26) + struct.pack("<IHHHH", 12, 5, 7, 1, 24)
    return header + pixels


def _vp8_with_scale_bits() -> bytes:
    data = bytearray(_encode(_picture(), "WEBP"))
    assert data[12:16] == b"VP8 "
    data[27] |= 0xC0  # upscale hint in the top bits of the width field
    data[29] |= 0x40
    return bytes(data)


@cache
def goldens() -> dict[str, Golden]:
    picture = _picture()
    size = picture.size
    exif = Image.Exif()
    exif[0x010F] = "Test camera"
    result = {
        "png": Golden(_encode(picture, "PNG"), ImageInfo(*size, "png")),
        "png-rgba-large": Golden(_encode(_picture("RGBA", (1500, 900)), "PNG"), ImageInfo(1500, 900, "png")),
        "gif": Golden(_encode(picture, "GIF"), ImageInfo(*size, "gif")),
        "jpeg": Golden(_encode(picture, "JPEG"), ImageInfo(*size, "jpeg")),
        "jpeg-progressive": Golden(_encode(picture, "JPEG", progressive=True), ImageInfo(*size, "jpeg")),
        "webp-lossy": Golden(_encode(picture, "WEBP"), ImageInfo(*size, "webp")),
        "webp-lossless": Golden(_encode(picture, "WEBP", lossless=True), ImageInfo(*size, "webp")),
        "webp-vp8x-alpha": Golden(_encode(_picture("RGBA"), "WEBP"), ImageInfo(*size, "webp")),
        "webp-vp8x-exif": Golden(_encode(picture, "WEBP", exif=exif.tobytes()), ImageInfo(*size, "webp")),
        "webp-vp8-scale-bits": Golden(_vp8_with_scale_bits(), ImageInfo(*size, "webp")),
        "bmp": Golden(_encode(picture, "BMP"), ImageInfo(*size, "bmp")),
        "bmp-os2": Golden(_os2_bmp(), ImageInfo(5, 7, "bmp")),
        "tiff": Golden(_encode(picture, "TIFF"), ImageInfo(*size, "tiff")),
        "tiff-big-endian": Golden(_big_endian_tiff(), ImageInfo(300, 20, "tiff")),
        "heif": Golden(_heif(b"heicmif1heic"), ImageInfo(4032, 3024, "heif")),
        "ico": Golden(
            _encode(_picture(size=(48, 48)), "ICO", sizes=[(16, 16), (48, 48), (32, 32)]), ImageInfo(48, 48, "ico")
        ),
        # Unsigned 16-bit sizes: a signed read turns 40000 into -25536.
        "gif-wide": Golden(b"GIF89a" + struct.pack("<HH", 40000, 30) + b"\x00\x00\x00;", ImageInfo(40000, 30, "gif")),
        "svg": Golden(
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80px">'
            b'<rect width="5" height="6" fill="red"/></svg>\n',
            ImageInfo(120, 80, "svg"),
        ),
    }
    if features.check("avif"):
        result["avif"] = Golden(_encode(picture, "AVIF"), ImageInfo(*size, "avif"))
    else:  # this Pillow cannot write AVIF: the same box structure with AVIF brands
        result["avif"] = Golden(_heif(b"avifmif1miaf"), ImageInfo(4032, 3024, "avif"))
    return result


GOLDEN_NAMES = sorted(goldens())


def _feed(data: bytes, chunk_size: int, *, max_bytes: int = 256 * 1024) -> ImageProbe:
    """Stream `data` the way the crawler does: feed until done, finish() at the end of the body."""
    probe = ImageProbe(max_bytes=max_bytes)
    for start in range(0, len(data), chunk_size):
        if probe.feed(data[start : start + chunk_size]):
            return probe
    probe.finish()
    return probe


def test_golden_images_are_what_pillow_says() -> None:
    # Guards the fixtures themselves: a wrong expectation would make every other test meaningless.
    not_for_pillow = {"svg", "heif", "gif-wide"} | (set() if features.check("avif") else {"avif"})
    for name, golden in goldens().items():
        if name in not_for_pillow:
            continue
        with Image.open(io.BytesIO(golden.data)) as image:
            assert image.size == (golden.expected.width, golden.expected.height), name


def test_vp8x_goldens_really_use_vp8x() -> None:
    assert goldens()["webp-vp8x-alpha"].data[12:16] == b"VP8X"
    assert goldens()["webp-vp8x-exif"].data[12:16] == b"VP8X"
    assert goldens()["webp-lossy"].data[12:16] == b"VP8 "
    assert goldens()["webp-lossless"].data[12:16] == b"VP8L"


@pytest.mark.parametrize("name", GOLDEN_NAMES)
@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_golden_image_fed_in_chunks(name: str, chunk_size: int | None) -> None:
    golden = goldens()[name]
    size = chunk_size or len(golden.data)
    probe = ImageProbe()
    # feed() itself says "done" (the caller may close the response) without waiting for the end.
    assert any(probe.feed(golden.data[start : start + size]) for start in range(0, len(golden.data), size))
    assert probe.info == golden.expected
    assert probe.error is None
    assert probe.bytes_read < len(golden.data)
    assert probe.feed(b"more") is True
    assert probe.info == golden.expected


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_bytes_read_does_not_depend_on_chunking(name: str) -> None:
    data = goldens()[name].data
    assert len({_feed(data, size).bytes_read for size in (1, 7, 100, len(data))}) == 1


def test_median_bytes_read_is_below_first_range() -> None:
    reads = [_feed(golden.data, len(golden.data)).bytes_read for golden in goldens().values()]
    assert statistics.median(reads) < FIRST_RANGE_BYTES
    assert max(reads) < FIRST_RANGE_BYTES  # every header here fits in the first range request


def _prefix_lengths(data: bytes) -> range | list[int]:
    if len(data) <= 4000:
        return range(len(data) + 1)
    return sorted({*range(0, 600), *range(600, len(data) + 1, 97), len(data)})


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_prefix_is_undecided_or_right(name: str) -> None:
    golden = goldens()[name]
    first_answer = None
    for length in _prefix_lengths(golden.data):
        prefix = golden.data[:length]
        info = probe_bytes(prefix)
        assert info in (None, golden.expected), (name, length)
        probe = ImageProbe()
        probe.feed(prefix)
        assert probe.error is None, (name, length, probe.error)
        assert probe.info == info, (name, length)
        if info is None:
            probe.finish()
            assert probe.error in (EMPTY_ERROR if length == 0 else TRUNCATED_ERROR, UNKNOWN_ERROR), (name, length)
            if length >= 32 and golden.expected.format != "svg":
                assert probe.error == TRUNCATED_ERROR, (name, length)
        elif first_answer is None:
            first_answer = length
    # Once known, the size stays known: the first answer is exactly the bytes it needed.
    assert first_answer == _feed(golden.data, len(golden.data)).bytes_read


# --- JPEG with a big EXIF block ----------------------------------------------------------


def _exif_app1_with_thumbnail(thumbnail: bytes, total_payload: int) -> bytes:
    """An APP1 segment: Exif header, TIFF with IFD0 -> IFD1 pointing at `thumbnail`, then padding."""
    tiff = bytearray(b"II*\x00" + struct.pack("<I", 8))
    tiff += struct.pack("<H", 0) + struct.pack("<I", 14)  # IFD0: no entries, next IFD at 14
    thumbnail_offset = 14 + 2 + 2 * 12 + 4
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 0x0201, 4, 1, thumbnail_offset)  # JPEGInterchangeFormat
    tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))  # JPEGInterchangeFormatLength
    tiff += struct.pack("<I", 0)
    tiff += thumbnail
    payload = b"Exif\x00\x00" + bytes(tiff)
    payload += b"\x00" * (total_payload - len(payload))
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


@cache
def exif_jpeg() -> bytes:
    main = _encode(_picture(size=(640, 480)), "JPEG")
    thumbnail = _encode(_picture(size=(160, 120)), "JPEG")
    return main[:2] + _exif_app1_with_thumbnail(thumbnail, 60_000) + main[2:]


def test_exif_jpeg_gives_the_real_size_not_the_thumbnails() -> None:
    data = exif_jpeg()
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (640, 480)
    # The trap is real: a raw scan for SOF0 would land in the thumbnail first.
    first_sof = data.index(b"\xff\xc0")
    assert first_sof < 60_000
    assert struct.unpack(">HH", data[first_sof + 5 : first_sof + 9]) == (120, 160)
    for chunk_size in (1, 7, 4096, len(data)):
        probe = _feed(data, chunk_size)
        assert probe.info == ImageInfo(640, 480, "jpeg")
        assert 60_000 < probe.bytes_read < 61_000


def test_exif_jpeg_prefixes_are_undecided_or_right() -> None:
    data = exif_jpeg()
    answer_at = _feed(data, len(data)).bytes_read
    lengths = {*range(0, len(data), 251), *range(answer_at - 40, answer_at + 40), len(data)}
    for length in sorted(lengths):
        info = probe_bytes(data[:length])
        assert info == (ImageInfo(640, 480, "jpeg") if length >= answer_at else None), length


def test_exif_jpeg_beyond_the_cap_is_stepped_over_with_ranges() -> None:
    # The SOF is past 60,000 bytes, but over ranges only the segment headers are read.
    ranged = ImageProbe(max_bytes=4096)
    spans = _serve_ranges(ranged, exif_jpeg())
    assert ranged.info == ImageInfo(640, 480, "jpeg")
    assert spans == [(0, 2047), (60_006, 60_006 + 2047)]  # the head, then just past the APP1 block
    # A stream cannot step over anything: it stops at the cap.
    streamed = _feed(exif_jpeg(), 1000, max_bytes=4096)
    assert (streamed.info, streamed.error) == (None, "no image size within the first 4096 bytes")
    assert streamed.bytes_read == 4096


# --- SVG ---------------------------------------------------------------------------------

SVG_NS = b'xmlns="http://www.w3.org/2000/svg"'


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (b"<svg " + SVG_NS + b' width="120" height="80"/>', (120, 80)),
        (b"<svg " + SVG_NS + b' width="120px" height="80.4px"></svg>', (120, 80)),
        (b"<svg " + SVG_NS + b' viewBox="0 0 300 150"><rect width="5" height="6"/></svg>', (300, 150)),
        (b"<svg " + SVG_NS + b' width="100%" height="100%" viewBox="0,0,64,32"></svg>', (64, 32)),
        (b"<svg " + SVG_NS + b' width="200" viewBox="0 0 100 50"></svg>', (200, 100)),
        (b"<svg " + SVG_NS + b' height="10" viewBox="0 0 100 50"></svg>', (20, 10)),
        (b"<svg " + SVG_NS + b' width="10em" height="4" viewBox="0 0 30 40"></svg>', (3, 4)),
        (b"<svg data-note='a > b' " + SVG_NS + b" width='10' height='20'></svg>", (10, 20)),
        (b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg" width="7" height="9"/>', (7, 9)),
        (
            b'\xef\xbb\xbf\n  <?xml version=\'1.0\'?>\n<!-- <svg width="1" height="1"> -->\n'
            b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "svg11.dtd" [ <!ENTITY arrow "->"> ]>\n'
            b"<svg " + SVG_NS + b' width="48" height="36"></svg>',
            (48, 36),
        ),
    ],
)
def test_svg_sizes(text: bytes, size: tuple[int, int]) -> None:
    expected = ImageInfo(*size, "svg")
    assert probe_bytes(text) == expected
    for length in range(len(text)):
        assert probe_bytes(text[:length]) in (None, expected)
    assert _feed(text, 1).info == expected


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (b"<svg " + SVG_NS + b' width="1.28125in" height="4.75in"/>', (123, 456)),
        (b"<svg " + SVG_NS + b' width="342pt" height="28.5pc"/>', (456, 456)),
        (b"<svg " + SVG_NS + b' width="2.54cm" height="25.4MM"/>', (96, 96)),
        (b"<svg " + SVG_NS + b' width="101.6q" height="1.23e2"/>', (96, 123)),
        (b"<svg " + SVG_NS + b' width="1in" viewBox="0 0 10 20"/>', (96, 192)),
    ],
)
def test_svg_absolute_units_are_css_pixels_at_96_dpi(text: bytes, size: tuple[int, int]) -> None:
    assert probe_bytes(text) == ImageInfo(*size, "svg")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (b"<svg " + SVG_NS + b"><circle r='4'/></svg>", (None, None)),
        (b"<svg " + SVG_NS + b' width="100%" height="100%"></svg>', (None, None)),
        (b"<svg " + SVG_NS + b' width="10em" height="3ex"></svg>', (None, None)),
        (b"<svg " + SVG_NS + b' width="100"></svg>', (100, None)),
        (b"<svg " + SVG_NS + b' width="7.6875em" height="342pt"></svg>', (None, 456)),
    ],
)
def test_svg_without_intrinsic_size_is_an_image_with_open_dimensions(
    text: bytes, size: tuple[int | None, int | None]
) -> None:
    probe = ImageProbe()
    assert probe.feed(text) is True
    assert (probe.info, probe.error) == (ImageInfo(*size, "svg"), None)


@pytest.mark.parametrize(
    "text",
    [
        b"<svg width=100 height=100 xmlns=http://www.w3.org/2000/svg />",
        b'<svg xmlns="http://www.w3.org/2000/svg viewBox="0 0 100 100>/svg>',
        b"<svg " + SVG_NS + b"\n  onclick='alert(\"<(*-*)> <(^-*)' ^(*-^)> <(^-^)>\")'\n"
        b'  height="456px" viewBox="0 0 246 912" width="123px"></svg>',
        b"<svg " + SVG_NS + b' width="10"height="20"></svg>',
        b"<svg " + SVG_NS + b" hidden width='10' height='20'></svg>",
    ],
)
def test_svg_start_tag_that_is_not_well_formed_xml_is_rejected(text: bytes) -> None:
    probe = _feed(text, 1)
    assert probe.info is None
    assert probe.error is not None and "not well-formed" in probe.error


# --- not images ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html>\n<html><head><title>404</title></head></html>",
        b"\xef\xbb\xbf \r\n\t<html lang='en'><body>Not found</body></html>",
        b'<?xml version="1.0"?>\n<!-- error page -->\n<html xmlns="http://www.w3.org/1999/xhtml"></html>',
        b"<!doctype HTML PUBLIC '-//W3C//DTD HTML 4.01//EN'>",
        b"<HEAD><META http-equiv='refresh' content='0;url=/'></HEAD>",
        b"<body>gone</body>",
    ],
)
def test_html_is_not_an_image(body: bytes) -> None:
    for chunk_size in (1, len(body)):
        probe = _feed(body, chunk_size)
        assert probe.info is None
        assert probe.error == HTML_ERROR
    assert probe_bytes(body) is None


@pytest.mark.parametrize(
    "body",
    [
        random.Random(20200922).randbytes(512),
        b"Not Found",
        b'{"error": "forbidden"}',
        b"<rss version='2.0'><channel/></rss>",
        b"BM this is text, not a bitmap header",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x08free",
    ],
)
def test_unknown_bytes_are_rejected(body: bytes) -> None:
    probe = ImageProbe()
    assert probe.feed(body) is True
    assert probe.info is None
    assert probe.error is not None and probe.error.startswith(UNKNOWN_ERROR)
    assert probe_bytes(body) is None


def test_random_bytes_are_rejected_within_a_few_bytes() -> None:
    probe = _feed(random.Random(1).randbytes(4096), 1)
    assert probe.error == UNKNOWN_ERROR
    assert probe.bytes_read <= 16


def test_slow_stream_of_tiny_segments_stays_fast() -> None:
    # 1-byte chunks of a JPEG made only of empty APP0 segments: re-parsing on
    # every byte would be quadratic (minutes); the probe must hit the cap quickly.
    probe = _feed(b"\xff\xd8" + b"\xff\xe0\x00\x02" * 70_000, 1)
    assert probe.error == "no image size within the first 262144 bytes"


def test_finish_names_the_problem() -> None:
    empty = ImageProbe()
    empty.finish()
    assert empty.error == EMPTY_ERROR

    truncated = ImageProbe()
    assert truncated.feed(goldens()["png"].data[:20]) is False
    truncated.finish()
    assert (truncated.info, truncated.error) == (None, TRUNCATED_ERROR)

    finished = _feed(goldens()["gif"].data, 1)
    finished.finish()
    assert (finished.info, finished.error) == (goldens()["gif"].expected, None)


def test_cap_counts_at_most_max_bytes() -> None:
    probe = ImageProbe(max_bytes=100)
    assert probe.feed(b" " * 60) is False
    assert probe.feed(b" " * 60) is True
    assert probe.bytes_read == 100
    assert probe.info is None
    assert probe.error == "no image size within the first 100 bytes"


def test_default_cap_is_named_in_the_error() -> None:
    probe = ImageProbe()
    probe.feed(b"\n" * (256 * 1024 + 10))
    assert probe.error == "no image size within the first 262144 bytes"
    assert probe.bytes_read == 256 * 1024


# --- range requests -----------------------------------------------------------------------


def _serve_ranges(probe: ImageProbe, data: bytes) -> list[tuple[int, int]]:
    """What the crawler does with 206 responses: ask for the range the probe names, seek, feed."""
    spans = []
    while (span := probe.next_range()) is not None and span[0] < len(data):
        spans.append(span)
        probe.seek(span[0])
        probe.feed(data[span[0] : span[1] + 1])
    if not probe.done:
        probe.finish()
    return spans


def test_first_range_is_the_first_2_kib() -> None:
    assert ImageProbe().next_range() == (0, FIRST_RANGE_BYTES - 1)
    assert ImageProbe(max_bytes=1000).next_range() == (0, 999)


def test_ranges_grow_contiguously_by_doubling_up_to_the_cap() -> None:
    # Empty APP0 segments: the JPEG walk needs "4 more bytes" again and again.
    data = b"\xff\xd8" + b"\xff\xe0\x00\x02" * 100_000
    probe = ImageProbe()
    spans = _serve_ranges(probe, data)
    assert spans[:4] == [(0, 2047), (2048, 4095), (4096, 8191), (8192, 16383)]
    assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(spans))
    assert spans[-1][1] == 256 * 1024 - 1
    assert len(spans) == 8  # 2 KiB doubled seven times
    assert probe.error == "no image size within the first 262144 bytes"


def test_exif_jpeg_over_range_requests() -> None:
    # The APP1 length says how far the next segment is: one request reaches past it.
    probe = ImageProbe()
    spans = _serve_ranges(probe, exif_jpeg())
    assert probe.info == ImageInfo(640, 480, "jpeg")
    assert len(spans) == 2
    assert sum(end - start + 1 for start, end in spans) < 64 * 1024


def _app_segment(marker: int, payload_size: int, fill: int = 0xFF) -> bytes:
    # 0xFF filling: a walk that ever looked inside a segment would see markers everywhere.
    return bytes([0xFF, marker]) + struct.pack(">H", payload_size + 2) + bytes([fill]) * payload_size


def test_long_jpeg_segments_are_stepped_over_not_read() -> None:
    # An editor's save: EXIF (30 KB), Photoshop IRB (12 KB), XMP (40 KB), then the frame header.
    main = _encode(_picture(size=(640, 480)), "JPEG")
    data = main[:2] + _app_segment(0xE1, 30_000) + _app_segment(0xED, 12_000) + _app_segment(0xE1, 40_000) + main[2:]
    probe = ImageProbe()
    spans = _serve_ranges(probe, data)
    assert probe.info == ImageInfo(640, 480, "jpeg")
    exif_end = 2 + 4 + 30_000
    irb_end = exif_end + 4 + 12_000
    # The head; the IRB header past the EXIF; the XMP header past the IRB (twice as long: a jump
    # doubles what was read); the frame header past the XMP.
    assert [start for start, _ in spans] == [0, exif_end, irb_end, irb_end + 4 + 40_000]
    assert [end - start + 1 for start, end in spans] == [2048, 2048, 4096, 8192]
    # Streamed, the same bytes give the same answer.
    assert _feed(data, 4096).info == ImageInfo(640, 480, "jpeg")


def test_many_jpeg_segments_still_take_few_ranges() -> None:
    # 75 segments of 3 KB: one range per segment would be 75 round trips; doubling keeps it logarithmic.
    main = _encode(_picture(size=(64, 48)), "JPEG")
    data = main[:2] + b"".join(_app_segment(0xE2, 3000) for _ in range(75)) + main[2:]
    probe = ImageProbe()
    spans = _serve_ranges(probe, data)
    assert probe.info == ImageInfo(64, 48, "jpeg")
    assert len(spans) <= 9
    assert probe.bytes_read <= 256 * 1024


@pytest.mark.parametrize("seed", range(12))
def test_random_jpeg_segment_layouts_over_ranges(seed: int) -> None:
    # Short and long segments in any order, and a server that may send less than asked:
    # the answer is always the real size, in few requests.
    rng = random.Random(seed)
    main = _encode(_picture(size=(rng.randrange(1, 900), rng.randrange(1, 900))), "JPEG")
    segments = [_app_segment(rng.choice((0xE1, 0xE2, 0xED, 0xFE)), rng.choice((0, 10, 600, 5_000, 30_000, 65_000)))
                for _ in range(rng.randrange(0, 8))]  # fmt: skip
    data = main[:2] + b"".join(segments) + main[2:]
    short = rng.choice((None, 700, 3_000))
    probe = ImageProbe()
    requests = 0
    while (span := probe.next_range()) is not None and span[0] < len(data):
        requests += 1
        end = span[1] + 1 if short is None else min(span[1] + 1, span[0] + short)
        probe.seek(span[0])
        probe.feed(data[span[0] : end])
    with Image.open(io.BytesIO(data)) as image:
        assert probe.info == ImageInfo(*image.size, "jpeg")
    assert requests <= len(segments) + 3  # at most one per segment stepped over, and a few


def test_pieces_fed_out_of_order_join_up() -> None:
    main = _encode(_picture(size=(320, 200)), "JPEG")
    data = main[:2] + _app_segment(0xE1, 9_000) + _app_segment(0xE1, 9_000) + main[2:]
    probe = ImageProbe()
    answers = []
    for start, end in [(13_000, len(data)), (6_000, 9_500), (2_000, 6_100), (9_400, 13_100), (0, 2_100)]:
        probe.seek(start)
        answers.append(probe.feed(data[start:end]))
    # Nothing is known before the first bytes; with them, every piece joins the head.
    assert answers == [False, False, False, False, True]
    assert probe.info == ImageInfo(320, 200, "jpeg")


def test_a_short_response_is_parsed_before_naming_the_next_range() -> None:
    data = goldens()["png"].data
    probe = ImageProbe()
    probe.feed(data[:20])  # a server that sent less than asked, mid-header
    probe.feed(data[20:30])
    assert probe.next_range() is None
    assert probe.info == goldens()["png"].expected


# --- TIFF: the first IFD wherever the header says ----------------------------------------


_TIFF_TYPES = {3: "H", 4: "L", 16: "Q"}  # SHORT, LONG, LONG8


def _tiff(*, big_endian: bool, bigtiff: bool, pixels: int, size: tuple[int, int] = (123, 456)) -> bytes:
    """A grey TIFF whose first IFD comes after `pixels` bytes of image data, as many writers do it."""
    endian = ">" if big_endian else "<"
    width, height = size
    header_size, count_format, value_size = (16, "Q", 8) if bigtiff else (8, "H", 4)
    ifd_at = header_size + pixels
    long_type = 16 if bigtiff else 4
    entries = [
        (256, 3, width),  # ImageWidth as a SHORT: left-justified in the value field
        (257, long_type, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: black is zero
        (273, long_type, header_size),  # StripOffsets
        (278, long_type, height),  # RowsPerStrip
        (279, long_type, pixels),  # StripByteCounts
    ]
    ifd = struct.pack(endian + count_format, len(entries))
    for tag, field_type, value in entries:
        inline = struct.pack(endian + _TIFF_TYPES[field_type], value).ljust(value_size, b"\x00")
        ifd += struct.pack(endian + "HH" + count_format.replace("H", "L"), tag, field_type, 1) + inline
    ifd += struct.pack(endian + count_format.replace("H", "L"), 0)  # no next IFD
    order = b"MM" if big_endian else b"II"
    if bigtiff:
        header = order + struct.pack(endian + "HHHQ", 43, 8, 0, ifd_at)
    else:
        header = order + struct.pack(endian + "HL", 42, ifd_at)
    return header + bytes(range(256)) * (pixels // 256) + bytes(pixels % 256) + ifd


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("bigtiff", [False, True])
def test_tiff_variants_with_the_ifd_first(big_endian: bool, bigtiff: bool) -> None:
    data = _tiff(big_endian=big_endian, bigtiff=bigtiff, pixels=0) + bytes(5000)
    for chunk_size in (1, 7, len(data)):
        assert _feed(data, chunk_size).info == ImageInfo(123, 456, "tiff")
    if big_endian and bigtiff:
        return  # Pillow 13 cannot open big-endian BigTIFF at all (nor the peer's sample of it)
    with Image.open(io.BytesIO(_tiff(big_endian=big_endian, bigtiff=bigtiff, pixels=123 * 456))) as image:
        assert image.size == (123, 456)  # the builder writes what Pillow reads


@pytest.mark.parametrize("bigtiff", [False, True])
def test_tiff_ifd_at_the_end_is_asked_for_directly(bigtiff: bool) -> None:
    data = _tiff(big_endian=True, bigtiff=bigtiff, pixels=400_000)  # well past the 256 KiB cap
    ifd_at = len(data) - (2 + 8 * 12 + 4 if not bigtiff else 8 + 8 * 20 + 8)
    probe = ImageProbe()
    spans = _serve_ranges(probe, data)
    assert probe.info == ImageInfo(123, 456, "tiff")
    assert spans[0] == (0, FIRST_RANGE_BYTES - 1)
    assert spans[1][0] == ifd_at
    assert len(spans) == 2


def test_tiff_ifd_at_the_end_streamed_is_read_up_to_the_cap() -> None:
    within = _tiff(big_endian=False, bigtiff=False, pixels=200_000)
    assert _feed(within, 4096).info == ImageInfo(123, 456, "tiff")
    beyond = _feed(_tiff(big_endian=False, bigtiff=False, pixels=300_000), 4096)
    assert (beyond.info, beyond.error) == (None, "no image size within the first 262144 bytes")


def test_bytes_fed_far_away_do_not_pose_as_the_start() -> None:
    data = _tiff(big_endian=False, bigtiff=True, pixels=10_000)
    probe = ImageProbe()
    probe.feed(data[:16])
    assert probe.next_range() == (10_016, 10_016 + FIRST_RANGE_BYTES - 1)
    probe.seek(10_016)
    for offset in range(10_016, len(data)):  # the IFD a byte at a time
        if probe.feed(data[offset : offset + 1]):
            break
    assert probe.info == ImageInfo(123, 456, "tiff")
    # A probe that only holds the far bytes knows nothing yet.
    lonely = ImageProbe()
    lonely.seek(10_016)
    assert lonely.feed(data[10_016:]) is False
    assert lonely.next_range() == (0, FIRST_RANGE_BYTES - 1)


# --- HEIF/AVIF: crop and rotation of the primary item --------------------------------------


def _ispe(width: int, height: int) -> bytes:
    return _full_box(b"ispe", struct.pack(">II", width, height))


def _clap(width: int, height: int, denominator: int = 1) -> bytes:
    # Width, height, horizontal and vertical offset, each a numerator/denominator pair.
    return _box(b"clap", struct.pack(">IIIIiIiI", width, denominator, height, denominator, -1, 2, 0, 1))


def _irot(quarter_turns: int) -> bytes:
    return _box(b"irot", bytes([quarter_turns]))


def _heif_with(primary_properties: list[bytes], brands: bytes = b"heicmif1heic") -> bytes:
    """A HEIF whose primary item (id 1) has these properties, in this order."""
    ftyp = _box(b"ftyp", brands[:4] + b"\x00\x00\x00\x00" + brands)
    pitm = _full_box(b"pitm", struct.pack(">H", 1))
    ipco = _box(b"ipco", b"".join(primary_properties))
    indices = bytes(0x80 | index for index in range(1, len(primary_properties) + 1))
    ipma = _full_box(b"ipma", struct.pack(">IHB", 1, 1, len(primary_properties)) + indices)
    meta = _full_box(b"meta", pitm + _box(b"iprp", ipco + ipma))
    return ftyp + meta + _box(b"mdat", bytes(1000))


@pytest.mark.parametrize(
    ("properties", "size"),
    [
        ([_ispe(124, 456), _clap(123, 456)], (123, 456)),  # coded 124 wide, shown 123
        ([_ispe(124, 456), _clap(247, 912, denominator=2)], (124, 456)),  # 123.5 rounds up
        ([_ispe(124, 456), _clap(123, 456), _irot(1)], (456, 123)),
        ([_ispe(124, 456), _clap(123, 456), _irot(3)], (456, 123)),
        ([_ispe(124, 456), _irot(2)], (124, 456)),  # half a turn keeps the shape
        ([_ispe(456, 124), _irot(1), _clap(123, 456)], (123, 456)),  # crop after the turn: in turned pixels
        ([_ispe(124, 456), _clap(123, 456, denominator=0)], (124, 456)),  # unusable crop: ignored
    ],
)
def test_heif_applies_clap_and_irot_in_order(properties: list[bytes], size: tuple[int, int]) -> None:
    data = _heif_with(properties)
    assert _feed(data, 1).info == ImageInfo(*size, "heif")
    assert _feed(data, len(data)).info == ImageInfo(*size, "heif")


def test_heif_without_a_primary_item_is_rejected() -> None:
    data = _heif_with([_ispe(10, 20)]).replace(b"pitm", b"xxxx")
    probe = _feed(data, len(data))
    assert probe.info is None and probe.error == "undecodable heif image: no primary item"


# --- ICO, CUR -----------------------------------------------------------------------------


def _icon_directory(kind: int, sizes: list[tuple[int, int]]) -> bytes:
    directory_end = 6 + 16 * len(sizes)
    header = struct.pack("<HHH", 0, kind, len(sizes))
    entries = b"".join(
        struct.pack("<BBBBHHLL", width % 256, height % 256, 0, 0, 1, 32, 40, directory_end + 40 * index)
        for index, (width, height) in enumerate(sizes)
    )
    return header + entries + bytes(40 * len(sizes))


def test_ico_is_its_largest_entry_and_zero_means_256() -> None:
    data = _icon_directory(1, [(16, 16), (256, 256), (48, 48)])
    probe = _feed(data, 1)
    assert probe.info == ImageInfo(256, 256, "ico")
    assert probe.bytes_read == 6 + 3 * 16  # the directory, nothing of the images


def test_cursor_is_read_like_an_icon() -> None:
    assert probe_bytes(_icon_directory(2, [(32, 32)])) == ImageInfo(32, 32, "cur")


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<HHH", 0, 1, 0) + bytes(64),  # no entries
        struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHLL", 16, 16, 0, 0, 1, 32, 40, 4) + bytes(64),
    ],
)
def test_ico_with_an_impossible_directory_is_rejected(data: bytes) -> None:
    probe = _feed(data, len(data))
    assert probe.info is None and probe.error is not None and "ico" in probe.error


# --- Apple's CgBI PNG ---------------------------------------------------------------------


def test_cgbi_png_is_rejected_with_its_name() -> None:
    png = goldens()["png"].data
    cgbi_chunk = struct.pack(">I", 4) + b"CgBI" + b"\x50\x00\x20\x02" + b"\x00\x00\x00\x00"
    data = png[:8] + cgbi_chunk + png[8:]
    for chunk_size in (1, len(data)):
        probe = _feed(data, chunk_size)
        assert (probe.info, probe.error) == (None, CGBI_ERROR)


def test_a_resent_range_inside_the_segment_keeps_what_follows_it() -> None:
    data = _tiff(big_endian=False, bigtiff=False, pixels=10_000)
    ifd_at = 8 + 10_000
    probe = ImageProbe()
    probe.feed(data[:8])
    probe.seek(ifd_at)
    probe.feed(data[ifd_at : ifd_at + 20])  # count and the first entry
    probe.seek(ifd_at + 2)
    probe.feed(data[ifd_at + 2 : ifd_at + 8])  # a few of those bytes again
    probe.seek(ifd_at + 20)
    probe.feed(data[ifd_at + 20 :])
    assert probe.info == ImageInfo(123, 456, "tiff")

"""Image dimensions from the first bytes of a response.

The crawler streams (or range-requests) an image and feeds the bytes to an
`ImageProbe`, which stops as soon as the header that carries the pixel size has
arrived — usually within the first few hundred bytes. Nothing is decoded
beyond headers, and EXIF rotation is deliberately not applied: the declared
`width`/`height` in the corpus are compared with the stored pixel grid.

Every format parser is written so that a truncated buffer yields "need more
bytes" (with how many), never a wrong size. The maintained `imagesize` package
does the decoding where it is right on truncated input (PNG, TIFF, AVIF/HEIF);
our own parsers cover what it gets wrong: JPEG needs a streaming segment walk
that reports how far to read, GIF sizes are unsigned, BMP has 16-bit OS/2
headers, WebP lossy widths carry scale bits, and SVG needs the `<svg>` element's
own attributes and `viewBox`.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import imagesize

DEFAULT_MAX_BYTES = 256 * 1024
FIRST_RANGE_BYTES = 2048

HTML_ERROR = "looks like HTML, not an image"
UNKNOWN_ERROR = "unknown image format"
TRUNCATED_ERROR = "truncated image"
EMPTY_ERROR = "empty response body"


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str  # "png", "gif", "jpeg", "webp", "avif", "heif", "svg", "bmp", "tiff"


@dataclass(frozen=True)
class _Found:
    info: ImageInfo
    used: int  # how many leading bytes the answer depended on


@dataclass(frozen=True)
class _NeedMore:
    total: int  # try again once at least this many bytes are buffered
    format: str | None  # what the bytes look like so far, if anything


class _Rejected(Exception):
    """The bytes can never become a decodable image, whatever follows."""


_Outcome = _Found | _NeedMore


def probe_bytes(data: bytes) -> ImageInfo | None:
    """Size of the image at the start of `data`; None if more bytes are needed or it is not an image."""
    try:
        outcome = _probe(bytes(data))
    except _Rejected:
        return None
    return outcome.info if isinstance(outcome, _Found) else None


def next_range(bytes_have: int, max_bytes: int) -> tuple[int, int] | None:
    """The next inclusive byte range to request after a 206 left the size unknown.

    Doubling keeps the number of round trips logarithmic in the header's offset
    (a 60 KB EXIF block costs five requests, not fifteen).
    """
    if bytes_have >= max_bytes:
        return None
    total = min(max(bytes_have * 2, FIRST_RANGE_BYTES), max_bytes)
    return bytes_have, total - 1


class ImageProbe:
    """Feed bytes as they arrive; stop as soon as the size is known."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._need = 1
        self._format: str | None = None
        self._info: ImageInfo | None = None
        self._error: str | None = None
        self._used: int | None = None
        self._attempted_with = 0  # buffer length at the last parse

    def feed(self, chunk: bytes) -> bool:
        """Add bytes; True once done (size known, not an image, or cap reached)."""
        if self.done:
            return True
        room = self._max_bytes - len(self._buffer)
        self._buffer += chunk[:room]
        # Parsers report how many bytes they need next, so a 1-byte feed does
        # not re-parse the whole buffer each time.
        if len(self._buffer) >= self._need:
            self._attempt()
        if not self.done and len(self._buffer) >= self._max_bytes:
            self._error = self._cap_error()
        return self.done

    def finish(self) -> None:
        """No more bytes will come: whatever is still undecided is an error."""
        if self.done:
            return
        if self._buffer and len(self._buffer) > self._attempted_with:
            self._attempt()
            if self.done:
                return
        if not self._buffer:
            self._error = EMPTY_ERROR
        elif self._format is not None:
            self._error = TRUNCATED_ERROR
        else:
            self._error = UNKNOWN_ERROR

    @property
    def done(self) -> bool:
        return self._info is not None or self._error is not None

    @property
    def info(self) -> ImageInfo | None:
        return self._info

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def format(self) -> str | None:
        """The format recognised so far (set before the size is known)."""
        return self._info.format if self._info else self._format

    @property
    def bytes_read(self) -> int:
        """Bytes the answer needed once the size is known; otherwise all bytes fed (at most max_bytes).

        While undecided this is where the next range request must start.
        """
        if self._used is not None:
            return self._used
        return len(self._buffer)

    def _attempt(self) -> None:
        self._attempted_with = len(self._buffer)
        try:
            outcome = _probe(bytes(self._buffer))
        except _Rejected as rejected:
            self._error = str(rejected)
            return
        if isinstance(outcome, _Found):
            self._info, self._used = outcome.info, outcome.used
            return
        self._format = outcome.format or self._format
        if outcome.total > self._max_bytes:
            # The header is known to lie beyond the cap: no point reading up to it.
            self._error = self._cap_error()
            return
        # Parsers re-read from the start, so retrying on every byte of a slow
        # stream past the first range would be quadratic; waiting for 1/8 more
        # keeps it O(n log n), and finish() makes the last attempt.
        have = len(self._buffer)
        patience = have // 8 if have > FIRST_RANGE_BYTES else 0
        self._need = min(max(outcome.total, have + patience), self._max_bytes)

    def _cap_error(self) -> str:
        return f"no image size within the first {self._max_bytes} bytes"


# --- format detection ---------------------------------------------------------

_WHITESPACE = b" \t\r\n\f"
_UTF8_BOM = b"\xef\xbb\xbf"


def _probe(data: bytes) -> _Outcome:
    start = _skip_bom_and_whitespace(data)
    if start == len(data):
        return _NeedMore(len(data) + 1, None)
    if data[start:start + 1] == b"<":
        return _parse_markup(data, start)
    for signature, parser in _SIGNATURES:
        if _matches(signature, data):
            return parser(data)
    if any(_could_still_match(signature, data) for signature, _ in _SIGNATURES):
        return _NeedMore(len(data) + 1, None)
    raise _Rejected(UNKNOWN_ERROR)


def _skip_bom_and_whitespace(data: bytes) -> int:
    position = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    while position < len(data) and data[position] in _WHITESPACE:
        position += 1
    return position


# A signature is a byte pattern where None matches any byte (RIFF sizes, ISO box sizes).
_Signature = tuple[int | None, ...]


def _signature(pattern: bytes, wildcards: range = range(0)) -> _Signature:
    return tuple(None if index in wildcards else byte for index, byte in enumerate(pattern))


def _matches(signature: _Signature, data: bytes) -> bool:
    return len(data) >= len(signature) and all(
        expected is None or data[index] == expected for index, expected in enumerate(signature)
    )


def _could_still_match(signature: _Signature, data: bytes) -> bool:
    return len(data) < len(signature) and all(
        expected is None or data[index] == expected for index, expected in enumerate(signature[: len(data)])
    )


# --- PNG, TIFF, AVIF/HEIF: imagesize decodes, we say when enough bytes are in ---


def _imagesize(data: bytes) -> tuple[int, int] | None:
    width, height = imagesize.get(io.BytesIO(data), exif_rotation=False)
    if width < 0 or height < 0:
        return None
    return int(width), int(height)


def _parse_png(data: bytes) -> _Outcome:
    # imagesize insists on the IHDR chunk type plus bit depth and colour type: 26 bytes.
    needed = 26
    if len(data) < needed:
        return _NeedMore(needed, "png")
    size = _imagesize(data[:needed])
    if size is None:
        raise _Rejected("undecodable png image: IHDR is not the first chunk")
    return _Found(ImageInfo(*size, "png"), needed)


def _parse_tiff(data: bytes) -> _Outcome:
    bigtiff = data[2] == 0x2B
    header_size = 16 if bigtiff else 8
    if len(data) < header_size:
        return _NeedMore(header_size, "tiff")
    endian = "<" if data[:2] == b"II" else ">"
    if bigtiff:
        count_size, entry_size = 8, 20
        ifd_offset = struct.unpack_from(endian + "Q", data, 8)[0]
    else:
        count_size, entry_size = 2, 12
        ifd_offset = struct.unpack_from(endian + "L", data, 4)[0]
    if ifd_offset < header_size:
        raise _Rejected("undecodable tiff image: bad IFD offset")
    if len(data) < ifd_offset + count_size:
        return _NeedMore(ifd_offset + count_size, "tiff")
    entry_count = struct.unpack_from(endian + ("Q" if bigtiff else "H"), data, ifd_offset)[0]
    tag_format = endian + "H"
    wanted = {256, 257}  # ImageWidth, ImageLength
    end = ifd_offset + count_size
    for _ in range(entry_count):
        end += entry_size
        if len(data) < end:
            return _NeedMore(end, "tiff")
        wanted.discard(struct.unpack_from(tag_format, data, end - entry_size)[0])
        if not wanted:
            # Both tags are in: imagesize decodes their (SHORT or LONG) values.
            size = _imagesize(data[:end])
            if size is None:
                break
            return _Found(ImageInfo(*size, "tiff"), end)
    raise _Rejected("undecodable tiff image: no ImageWidth/ImageLength in the first IFD")


_HEIF_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def _parse_iso(data: bytes) -> _Outcome:
    """Walk top-level boxes until `meta` is complete, then let imagesize pick the primary item's `ispe`."""
    position = 0
    image_format: str | None = None
    while True:
        if len(data) < position + 8:
            return _NeedMore(position + 8, image_format)
        size, box_type = struct.unpack_from(">L4s", data, position)
        header_size = 8
        if size == 1:
            if len(data) < position + 16:
                return _NeedMore(position + 16, image_format)
            size = struct.unpack_from(">Q", data, position + 8)[0]
            header_size = 16
        elif size == 0:
            # "Extends to end of file": only sane for mdat, which has no size in it.
            raise _Rejected(f"undecodable {image_format or 'iso'} image: no meta box before the media data")
        if size < header_size:
            raise _Rejected(f"undecodable {image_format or 'iso'} image: bad box size")
        end = position + size
        if box_type == b"ftyp":
            if len(data) < end:
                major = data[position + 8:position + 12]
                guess = "avif" if major in _AVIF_BRANDS else "heif" if major in _HEIF_BRANDS else None
                return _NeedMore(end, guess)
            # Major brand, then a 4-byte minor version, then compatible brands.
            brands = {data[offset:offset + 4] for offset in range(position + 16, end - 3, 4)}
            brands.add(data[position + 8:position + 12])
            if not brands & _HEIF_BRANDS:
                major = data[position + 8:position + 12].decode("latin-1")
                raise _Rejected(f"{UNKNOWN_ERROR} (ISO media brand {major!r}, not AVIF/HEIF)")
            image_format = "avif" if brands & _AVIF_BRANDS else "heif"
        elif image_format is None:
            raise _Rejected(UNKNOWN_ERROR)
        elif box_type == b"meta":
            if len(data) < end:
                return _NeedMore(end, image_format)
            size_found = _imagesize(data[:end])
            if size_found is None:
                raise _Rejected(f"undecodable {image_format} image: no ispe property for the primary item")
            return _Found(ImageInfo(*size_found, image_format), end)
        position = end


# --- formats imagesize gets wrong or cannot stream -----------------------------


def _parse_gif(data: bytes) -> _Outcome:
    if len(data) < 10:
        return _NeedMore(10, "gif")
    # Unsigned: imagesize reads these as signed and turns 40000 into -25536.
    width, height = struct.unpack_from("<HH", data, 6)
    return _Found(ImageInfo(width, height, "gif"), 10)


_BMP_INFO_HEADER_SIZES = {16, 40, 52, 56, 64, 108, 124}


def _parse_bmp(data: bytes) -> _Outcome:
    # "BM" alone is too weak to call something a bitmap: the DIB header size must be a real one.
    if len(data) < 18:
        return _NeedMore(18, None)
    header_size = struct.unpack_from("<L", data, 14)[0]
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit fields
        if len(data) < 22:
            return _NeedMore(22, "bmp")
        width, height = struct.unpack_from("<HH", data, 18)
        return _Found(ImageInfo(width, height, "bmp"), 22)
    if header_size not in _BMP_INFO_HEADER_SIZES:
        raise _Rejected(UNKNOWN_ERROR)
    if len(data) < 26:
        return _NeedMore(26, "bmp")
    width, height = struct.unpack_from("<ll", data, 18)
    # Negative height means rows are stored top-down; the size is the same.
    return _Found(ImageInfo(abs(width), abs(height), "bmp"), 26)


def _parse_webp(data: bytes) -> _Outcome:
    if len(data) < 16:
        return _NeedMore(16, "webp")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if len(data) < 30:
            return _NeedMore(30, "webp")
        frame_tag = data[20]
        if frame_tag & 1 or data[23:26] != b"\x9d\x01\x2a":
            raise _Rejected("undecodable webp image: VP8 data does not start with a key frame")
        width, height = struct.unpack_from("<HH", data, 26)
        # The top two bits are an upscaling hint, not part of the size.
        return _Found(ImageInfo(width & 0x3FFF, height & 0x3FFF, "webp"), 30)
    if chunk == b"VP8L":
        if len(data) < 25:
            return _NeedMore(25, "webp")
        if data[20] != 0x2F:
            raise _Rejected("undecodable webp image: bad VP8L signature")
        bits = int.from_bytes(data[21:25], "little")
        return _Found(ImageInfo((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "webp"), 25)
    if chunk == b"VP8X":
        if len(data) < 30:
            return _NeedMore(30, "webp")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _Found(ImageInfo(width, height, "webp"), 30)
    raise _Rejected(f"undecodable webp image: unexpected first chunk {chunk!r}")


# SOF0–SOF15 carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but do not.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})


def _parse_jpeg(data: bytes) -> _Outcome:
    """Walk segments by their length fields from SOI to the first SOFn.

    Segments are skipped whole, so the JPEG thumbnail inside an EXIF APP1 block
    (with its own, smaller SOF) is never looked at.
    """
    position = 2
    while True:
        if len(data) < position + 2:
            return _NeedMore(position + 2, "jpeg")
        if data[position] != 0xFF:
            # Like libjpeg, tolerate stray bytes between segments; the scan stays
            # outside every segment because segments were skipped by length.
            next_marker = data.find(b"\xff", position)
            position = len(data) if next_marker < 0 else next_marker
            continue
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0x00:  # a stuffed zero is not a marker: stray bytes, as above
            position += 2
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker in (0xD8, 0xD9, 0xDA):
            raise _Rejected("undecodable jpeg image: no frame header before the scan data")
        if len(data) < position + 4:
            return _NeedMore(position + 4, "jpeg")
        length = struct.unpack_from(">H", data, position + 2)[0]
        if length < 2:
            raise _Rejected("undecodable jpeg image: bad segment length")
        if marker in _JPEG_SOF_MARKERS:
            end = position + 9  # marker, length, precision, height, width
            if len(data) < end:
                return _NeedMore(end, "jpeg")
            height, width = struct.unpack_from(">HH", data, position + 5)
            if height == 0:
                raise _Rejected("undecodable jpeg image: height is deferred to a DNL marker")
            return _Found(ImageInfo(width, height, "jpeg"), end)
        position += 2 + length


# --- SVG and other markup ------------------------------------------------------

# Tags that open an HTML document (the WHATWG MIME sniffing list plus a few that
# error pages start with).
_HTML_TAGS = frozenset(
    b"html head body script iframe h1 div font table a style title b br p meta link".split()
)
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.:-]*")
_DOCTYPE = b"<!doctype"
_ATTRIBUTE = re.compile(rb"""([^\s=/>"']+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")
_LENGTH = re.compile(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?:px)?\s*")
_START_TAG = re.compile(rb"""<[^"'>]*(?:(?:"[^"]*"|'[^']*')[^"'>]*)*>""")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _parse_markup(data: bytes, position: int) -> _Outcome:
    """Skip the XML prolog (declaration, comments, doctype) and judge the first element."""
    need_more = _NeedMore(len(data) + 1, None)
    while True:
        position = _skip_bom_and_whitespace_from(data, position)
        rest = data[position:]
        if not rest:
            return need_more
        if not rest.startswith(b"<"):
            raise _Rejected(UNKNOWN_ERROR)
        lowered = rest[: len(_DOCTYPE)].lower()
        if len(rest) < len(_DOCTYPE) and any(opener.startswith(lowered) for opener in (b"<!--", _DOCTYPE)):
            return need_more
        if rest.startswith(b"<?") or rest.startswith(b"<!--"):
            closer = b"?>" if rest.startswith(b"<?") else b"-->"
            end = rest.find(closer, 2)
            if end < 0:
                return need_more
            position += end + len(closer)
            continue
        if lowered.startswith(b"<!"):
            if lowered != _DOCTYPE:
                raise _Rejected(UNKNOWN_ERROR)
            name_start = len(_DOCTYPE) + _count_whitespace(rest, len(_DOCTYPE))
            if name_start >= len(rest):
                return need_more
            name = _NAME.match(rest, name_start)
            if name is None:
                raise _Rejected(UNKNOWN_ERROR)
            if name.end() == len(rest):
                return need_more
            root = name.group().lower()
            if root == b"html":
                raise _Rejected(HTML_ERROR)
            if root != b"svg":
                raise _Rejected(UNKNOWN_ERROR)
            end = _end_of_doctype(rest)
            if end is None:
                return need_more
            position += end
            continue
        if len(rest) == 1:
            return need_more
        name = _NAME.match(rest, 1)
        if name is None:
            raise _Rejected(UNKNOWN_ERROR)
        if name.end() == len(rest):
            return need_more
        tag = name.group().lower()
        if tag.rpartition(b":")[2] == b"svg":
            end = _end_of_tag(rest)
            if end is None:
                return _NeedMore(len(data) + 1, "svg")
            return _Found(_svg_size(rest[:end]), position + end)
        if tag in _HTML_TAGS:
            raise _Rejected(HTML_ERROR)
        raise _Rejected(UNKNOWN_ERROR)


def _skip_bom_and_whitespace_from(data: bytes, position: int) -> int:
    return position + _skip_bom_and_whitespace(data[position:])


def _count_whitespace(data: bytes, position: int) -> int:
    count = 0
    while position + count < len(data) and data[position + count] in _WHITESPACE:
        count += 1
    return count


def _end_of_tag(text: bytes) -> int | None:
    """Index just past the `>` closing the tag at the start of `text`, ignoring `>` inside quotes."""
    match = _START_TAG.match(text)
    return match.end() if match else None


def _end_of_doctype(text: bytes) -> int | None:
    """Index past a doctype, including an internal subset `[...]` that may hold `>`."""
    close = text.find(b">")
    bracket = text.find(b"[")
    if bracket < 0 or (0 <= close < bracket):
        return None if close < 0 else close + 1
    subset_end = text.find(b"]", bracket)
    if subset_end < 0:
        return None
    close = text.find(b">", subset_end)
    return None if close < 0 else close + 1


def _svg_size(start_tag: bytes) -> ImageInfo:
    attributes: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(start_tag):
        name = match.group(1).decode("ascii", "replace").lower()
        value = next(group for group in match.groups()[1:] if group is not None)
        attributes.setdefault(name, value.decode("utf-8", "replace"))
    width = _svg_length(attributes.get("width"))
    height = _svg_length(attributes.get("height"))
    view_box = _svg_view_box(attributes.get("viewbox"))
    if width is not None and height is not None:
        return ImageInfo(_round(width), _round(height), "svg")
    if view_box is None:
        raise _Rejected("undecodable svg image: no width/height in px and no viewBox")
    box_width, box_height = view_box
    # With one dimension given, the viewBox supplies the aspect ratio, as browsers do.
    if width is not None:
        return ImageInfo(_round(width), _round(width * box_height / box_width), "svg")
    if height is not None:
        return ImageInfo(_round(height * box_width / box_height), _round(height), "svg")
    return ImageInfo(_round(box_width), _round(box_height), "svg")


def _svg_length(value: str | None) -> float | None:
    """A length in px or unitless; percentages and other units defer to the viewBox."""
    if value is None:
        return None
    match = _LENGTH.fullmatch(value)
    if match is None:
        return None
    number = float(match.group(1))
    return number if number > 0 and math.isfinite(number) else None


def _svg_view_box(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    numbers = [float(number) for number in _NUMBER.findall(value)]
    if len(numbers) != 4 or numbers[2] <= 0 or numbers[3] <= 0:
        return None
    return numbers[2], numbers[3]


def _round(value: float) -> int:
    return math.floor(value + 0.5)


_SIGNATURES: tuple[tuple[_Signature, Callable[[bytes], _Outcome]], ...] = (
    (_signature(b"\x89PNG\r\n\x1a\n"), _parse_png),
    (_signature(b"GIF87a"), _parse_gif),
    (_signature(b"GIF89a"), _parse_gif),
    (_signature(b"\xff\xd8\xff"), _parse_jpeg),
    (_signature(b"RIFF____WEBP", wildcards=range(4, 8)), _parse_webp),
    (_signature(b"____ftyp", wildcards=range(0, 4)), _parse_iso),
    (_signature(b"II*\x00"), _parse_tiff),
    (_signature(b"MM\x00*"), _parse_tiff),
    (_signature(b"II+\x00"), _parse_tiff),  # little-endian BigTIFF, which imagesize reads
    (_signature(b"BM"), _parse_bmp),
)

"""Image dimensions from the first bytes of a response.

The crawler range-requests (or streams) an image and feeds the bytes to an
`ImageProbe`, which stops as soon as the header that carries the pixel size has
arrived — usually within the first few hundred bytes. Nothing is decoded
beyond headers, and EXIF rotation is deliberately not applied: the declared
`width`/`height` in the corpus are compared with the stored pixel grid.

The probe also says which bytes it needs next (`ImageProbe.next_range`), and
that need is not always "more of the start": a TIFF names the offset of its
first IFD in its first 8 (BigTIFF: 16) bytes, often at the end of the file, so
the next range starts there; a JPEG's segment lengths say where the next
segment header is, so a 30 KB EXIF block or a 60 KB XMP packet is stepped over,
not read. The probe therefore keeps the contiguous head of the file plus the
pieces fetched further on, and the parsers read through a `_Bytes` view that
answers "not here yet" for bytes it does not hold.

Every format parser is written so that missing bytes yield "need more bytes"
(with which), never a wrong size. The maintained `imagesize` package decodes
PNG; our own parsers cover what it gets wrong or cannot do from a partial,
non-contiguous read: JPEG needs a streaming segment walk that reports how far
to read, GIF sizes are unsigned, BMP has 16-bit OS/2 headers, WebP lossy widths
carry scale bits, TIFF's IFD may sit anywhere, HEIF/AVIF need the primary
item's `clap` crop and `irot` rotation on top of `ispe`, ICO keeps a directory
of sizes, and SVG needs the `<svg>` element's own attributes, units and
`viewBox`.
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import imagesize  # type: ignore[import-untyped]  # ships no type information

DEFAULT_MAX_BYTES = 256 * 1024
FIRST_RANGE_BYTES = 2048

HTML_ERROR = "looks like HTML, not an image"
UNKNOWN_ERROR = "unknown image format"
TRUNCATED_ERROR = "truncated image"
EMPTY_ERROR = "empty response body"
CGBI_ERROR = "Apple CgBI PNG (Xcode's iOS-optimised variant), which only Apple's own decoders read"


@dataclass(frozen=True)
class ImageInfo:
    """The displayed pixel size; None for a dimension the image does not fix.

    Only SVG can leave a dimension open: without a usable width/height and
    viewBox it takes whatever size the page gives it ("no intrinsic size").
    """

    width: int | None
    height: int | None
    format: str  # "png", "gif", "jpeg", "webp", "avif", "heif", "svg", "bmp", "tiff", "ico", "cur"


@dataclass(frozen=True)
class _Found:
    info: ImageInfo
    used: int  # the file offset just past the last byte the answer depended on


@dataclass(frozen=True)
class _NeedMore:
    """Try again once every byte of [start, end) is held.

    Parsers that read from the start leave `start` at 0: they need the head to
    grow to `end`. A parser that jumps (TIFF to its IFD, JPEG past a long
    segment) names where.
    """

    end: int
    format: str | None  # what the bytes look like so far, if anything
    start: int = 0


class _Rejected(Exception):
    """The bytes can never become a decodable image, whatever follows."""


_Outcome = _Found | _NeedMore


@dataclass(frozen=True)
class _Bytes:
    """What the probe holds of the file: its first bytes, and pieces further on (apart from it and each other)."""

    head: bytes
    pieces: tuple[tuple[int, bytes], ...] = ()  # (file offset, bytes)

    def read(self, start: int, length: int) -> bytes | None:
        """Bytes [start, start + length), or None while any of them is missing."""
        end = start + length
        if end <= len(self.head):
            return self.head[start:end]
        for piece_start, piece in self.pieces:
            if piece_start <= start and end <= piece_start + len(piece):
                return piece[start - piece_start : end - piece_start]
        return None

    def find(self, byte: int, start: int) -> int:
        """The offset of the first `byte` at or after `start` in the stretch holding `start`, else that stretch's end.

        `start` itself when it is not held.
        """
        for stretch_start, stretch in ((0, self.head), *self.pieces):
            if stretch_start <= start < stretch_start + len(stretch):
                found = stretch.find(bytes([byte]), start - stretch_start)
                return stretch_start + (len(stretch) if found < 0 else found)
        return start


def probe_bytes(data: bytes) -> ImageInfo | None:
    """Size of the image at the start of `data`; None if more bytes are needed or it is not an image."""
    try:
        outcome = _probe(_Bytes(bytes(data)))
    except _Rejected:
        return None
    return outcome.info if isinstance(outcome, _Found) else None


class ImageProbe:
    """Feed bytes as they arrive; stop as soon as the size is known.

    A streamed body is fed from offset 0 on. For range requests, `next_range()`
    says which bytes to ask for, and `seek(offset)` before feeding a response
    says where its bytes belong in the file.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._head = bytearray()
        self._pieces: list[tuple[int, bytearray]] = []  # further on, by offset; never touching the head or each other
        self._position = 0  # file offset of the next byte fed
        self._fed = 0  # bytes fed in total: the budget max_bytes limits
        self._wanted = (0, 1)  # the parser's last "need bytes [start, end)"
        self._retry_when = (0, 1)  # the same, widened so a slow stream is not re-parsed per byte
        self._format: str | None = None
        self._info: ImageInfo | None = None
        self._error: str | None = None
        self._used: int | None = None
        self._attempted_with = 0  # bytes fed at the last parse
        self._file_size: int | None = None  # the whole file's length, once a server said it

    def seek(self, offset: int, *, file_size: int | None = None) -> None:
        """The bytes fed next start at `offset` in the file (a 206 response's first byte).

        `file_size` is the file's full length when the response said it
        (`Content-Range: bytes 0-2047/20000`): `next_range` never asks past it.
        """
        if offset < 0:
            raise ValueError("offset must not be negative")
        self._position = offset
        if file_size is not None:
            self._file_size = file_size

    def feed(self, chunk: bytes) -> bool:
        """Add bytes at the current position; True once done (size known, not an image, or budget spent)."""
        if self.done:
            return True
        chunk = chunk[: self._max_bytes - self._fed]
        self._fed += len(chunk)
        self._store(chunk)
        if self._holds(*self._retry_when):
            self._attempt()
        if not self.done and self._fed >= self._max_bytes:
            self._error = self._cap_error()
        return self.done

    def finish(self) -> None:
        """No more bytes will come: whatever is still undecided is an error."""
        if self.done:
            return
        if self._fed and self._fed > self._attempted_with:
            self._attempt()
            if self.done:
                return
        if not self._fed:
            self._error = EMPTY_ERROR
        elif self._format is not None:
            self._error = TRUNCATED_ERROR
        else:
            self._error = UNKNOWN_ERROR

    def next_range(self) -> tuple[int, int] | None:
        """The inclusive byte range to request next, or None once done, out of budget or past the file's end.

        It starts at the first byte the parser lacks: the end of what is held
        when the header simply goes on, or wherever the format points (a TIFF
        IFD, the JPEG segment after a long one). It is as long as what is
        already held of that region, or for a jump as everything held so far
        (at least FIRST_RANGE_BYTES either way), so round trips stay
        logarithmic in the header's offset; when the parser already knows it
        needs more than that, it gets all of it plus FIRST_RANGE_BYTES.
        """
        if not self.done and self._fed > self._attempted_with:
            self._attempt()  # a short response may have left bytes unparsed
        budget = self._max_bytes - self._fed
        if self.done or budget <= 0:
            return None
        wanted_start, wanted_end = self._wanted
        start = self._first_missing(wanted_start)
        if self._file_size is not None and start >= self._file_size:
            return None  # what the parser lacks lies past the end of the file: no range can give it
        ends = {piece_start + len(piece): len(piece) for piece_start, piece in self._pieces}
        if start == len(self._head):
            held = len(self._head)
        elif start in ends:
            held = ends[start]
        else:
            held = self._fed  # a jump: doubling what was read so far keeps a chain of jumps logarithmic too
        doubling = max(held, FIRST_RANGE_BYTES)
        needed = wanted_end - start
        length = doubling if needed <= doubling else needed + FIRST_RANGE_BYTES
        return start, start + min(length, budget) - 1

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
        """Once the size is known, the file offset just past the last byte it needed; otherwise all bytes fed."""
        if self._used is not None:
            return self._used
        return self._fed

    def _store(self, chunk: bytes) -> None:
        position, self._position = self._position, self._position + len(chunk)
        head_end = len(self._head)
        if position < head_end:
            # Already held (a server resent the start): keep what we have.
            skip = min(head_end - position, len(chunk))
            chunk, position = chunk[skip:], position + skip
            if not chunk:
                return
        if position == len(self._head):
            self._head += chunk
        else:
            for piece_start, piece in self._pieces:
                if piece_start <= position <= piece_start + len(piece):
                    offset = position - piece_start
                    piece[offset : offset + len(chunk)] = chunk  # extends it, or overwrites a resent part
                    break
            else:
                self._pieces.append((position, bytearray(chunk)))
                self._pieces.sort(key=lambda item: item[0])
        if self._pieces:
            self._join_pieces()

    def _join_pieces(self) -> None:
        """Pieces that grew into the head or into each other are joined, so reads never straddle two."""
        joined: list[tuple[int, bytearray]] = []
        for piece_start, piece in self._pieces:
            if piece_start <= len(self._head):
                self._head += piece[len(self._head) - piece_start :]
            elif joined and piece_start <= joined[-1][0] + len(joined[-1][1]):
                last_start, last = joined[-1]
                last += piece[last_start + len(last) - piece_start :]
            else:
                joined.append((piece_start, piece))
        self._pieces = joined

    def _first_missing(self, start: int) -> int:
        """The first offset at or after `start` that is not held (up to the end of the region holding `start`)."""
        if start <= len(self._head):
            return len(self._head)
        for piece_start, piece in self._pieces:
            if piece_start <= start <= piece_start + len(piece):
                return piece_start + len(piece)
        return start

    def _holds(self, start: int, end: int) -> bool:
        # Without building a view: feed() calls this for every chunk, however small.
        return end <= self._first_missing(start)

    def _view(self) -> _Bytes:
        return _Bytes(bytes(self._head), tuple((start, bytes(piece)) for start, piece in self._pieces))

    def _attempt(self) -> None:
        self._attempted_with = self._fed
        try:
            outcome = _probe(self._view())
        except _Rejected as rejected:
            self._error = str(rejected)
            return
        if isinstance(outcome, _Found):
            self._info, self._used = outcome.info, outcome.used
            return
        self._format = outcome.format or self._format
        start = outcome.start
        if self._fed + max(outcome.end - self._first_missing(start), 0) > self._max_bytes:
            # The header is known to lie beyond the budget: no point reading up to it.
            self._error = self._cap_error()
            return
        self._wanted = (start, outcome.end)
        # Parsers re-read from the start, so retrying on every byte of a slow
        # stream past the first range would be quadratic; waiting for 1/8 more
        # keeps it O(n log n), and finish() makes the last attempt.
        have = len(self._head)
        if start <= have:
            patience = have // 8 if have > FIRST_RANGE_BYTES else 0
            self._retry_when = (start, max(outcome.end, have + patience))
        else:
            self._retry_when = (start, outcome.end)

    def _cap_error(self) -> str:
        return f"no image size within the first {self._max_bytes} bytes"


# --- format detection ---------------------------------------------------------

_WHITESPACE = b" \t\r\n\f"
_UTF8_BOM = b"\xef\xbb\xbf"


def _probe(view: _Bytes) -> _Outcome:
    data = view.head
    start = _skip_bom_and_whitespace(data)
    if start == len(data):
        return _NeedMore(len(data) + 1, None)
    if data[start : start + 1] == b"<":
        return _parse_markup(data, start)
    for signature, parser in _SIGNATURES:
        if _matches(signature, data):
            return parser(view)
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


# --- PNG: imagesize decodes, we say when enough bytes are in -------------------

_PNG_CHUNK_TYPE = slice(12, 16)


def _imagesize(data: bytes) -> tuple[int, int] | None:
    width, height = imagesize.get(io.BytesIO(data), exif_rotation=False)
    if width < 0 or height < 0:
        return None
    return int(width), int(height)


def _parse_png(data: bytes) -> _Outcome:
    # imagesize insists on the IHDR chunk type plus bit depth and colour type: 26 bytes.
    needed = 26
    if len(data) < needed:
        if data[_PNG_CHUNK_TYPE] == b"CgBI":
            raise _Rejected(CGBI_ERROR)
        return _NeedMore(needed, "png")
    if data[_PNG_CHUNK_TYPE] == b"CgBI":
        # Chrome and Firefox (libpng, like the PNG spec) refuse a chunk before IHDR.
        raise _Rejected(CGBI_ERROR)
    size = _imagesize(data[:needed])
    if size is None:
        raise _Rejected("undecodable png image: IHDR is not the first chunk")
    return _Found(ImageInfo(*size, "png"), needed)


# --- TIFF: the first IFD may sit anywhere, so it is read through the sparse view ---

_TIFF_IMAGE_WIDTH, _TIFF_IMAGE_LENGTH = 256, 257
# Field types that can hold a size, with their struct code: SHORT, LONG, LONG8 (BigTIFF).
_TIFF_SIZE_TYPES = {3: "H", 4: "L", 16: "Q"}


@dataclass(frozen=True)
class _TiffLayout:
    header_size: int
    offset_at: int  # where the header keeps the first IFD's offset
    offset_format: str
    count_format: str  # of the IFD's entry count
    entry_size: int
    value_offset: int  # where an entry's inline value starts


_CLASSIC_TIFF = _TiffLayout(
    header_size=8, offset_at=4, offset_format="L", count_format="H", entry_size=12, value_offset=8
)
_BIG_TIFF = _TiffLayout(
    header_size=16, offset_at=8, offset_format="Q", count_format="Q", entry_size=20, value_offset=12
)


def _parse_tiff(view: _Bytes) -> _Outcome:
    data = view.head
    layout = _BIG_TIFF if data[2:4] in (b"+\x00", b"\x00+") else _CLASSIC_TIFF
    if len(data) < layout.header_size:
        return _NeedMore(layout.header_size, "tiff")
    endian = "<" if data[:2] == b"II" else ">"
    ifd_offset = struct.unpack_from(endian + layout.offset_format, data, layout.offset_at)[0]
    if ifd_offset < layout.header_size:
        raise _Rejected("undecodable tiff image: bad IFD offset")
    count_size = struct.calcsize(endian + layout.count_format)
    count_bytes = view.read(ifd_offset, count_size)
    if count_bytes is None:
        return _NeedMore(ifd_offset + count_size, "tiff", start=ifd_offset)
    entry_count = struct.unpack(endian + layout.count_format, count_bytes)[0]
    entries_start = ifd_offset + count_size
    sizes: dict[int, int] = {}
    for index in range(entry_count):
        entry_start = entries_start + index * layout.entry_size
        entry = view.read(entry_start, layout.entry_size)
        if entry is None:
            return _NeedMore(entry_start + layout.entry_size, "tiff", start=entry_start)
        tag, field_type = struct.unpack_from(endian + "HH", entry)
        if tag in (_TIFF_IMAGE_WIDTH, _TIFF_IMAGE_LENGTH):
            value_format = _TIFF_SIZE_TYPES.get(field_type)
            if value_format is None or struct.calcsize(endian + value_format) > layout.entry_size - layout.value_offset:
                raise _Rejected(f"undecodable tiff image: tag {tag} has field type {field_type}")
            # Inline values are left-justified, so a SHORT is the first two bytes.
            sizes[tag] = struct.unpack_from(endian + value_format, entry, layout.value_offset)[0]
        if len(sizes) == 2:
            width, height = sizes[_TIFF_IMAGE_WIDTH], sizes[_TIFF_IMAGE_LENGTH]
            return _Found(ImageInfo(width, height, "tiff"), entry_start + layout.entry_size)
    raise _Rejected("undecodable tiff image: no ImageWidth/ImageLength in the first IFD")


# --- AVIF/HEIF: the primary item's ispe, then its clap crop and irot rotation ----

_HEIF_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_BOX_HEADER_SIZE = 8
_LARGE_BOX_HEADER_SIZE = 16
_FULL_BOX_PREFIX = 4  # version and flags


@dataclass(frozen=True)
class _Box:
    type: bytes
    start: int
    payload_start: int
    end: int


def _boxes(data: bytes, start: int, end: int) -> list[_Box]:
    """The boxes that fill data[start:end] completely; a malformed one rejects the file."""
    boxes = []
    position = start
    while position + _BOX_HEADER_SIZE <= end:
        size, box_type = struct.unpack_from(">L4s", data, position)
        header_size = _BOX_HEADER_SIZE
        if size == 1 and position + _LARGE_BOX_HEADER_SIZE <= end:
            size, header_size = struct.unpack_from(">Q", data, position + 8)[0], _LARGE_BOX_HEADER_SIZE
        elif size == 0:
            size = end - position  # "to the end of the enclosing box"
        if size < header_size or position + size > end:
            raise _Rejected("undecodable heif image: a box overruns its container")
        boxes.append(_Box(box_type, position, position + header_size, position + size))
        position += size
    return boxes


def _parse_iso(view: _Bytes) -> _Outcome:
    """Walk top-level boxes until `meta` is complete, then size the primary item."""
    data = view.head
    position = 0
    image_format: str | None = None
    while True:
        if len(data) < position + _BOX_HEADER_SIZE:
            return _NeedMore(position + _BOX_HEADER_SIZE, image_format)
        size, box_type = struct.unpack_from(">L4s", data, position)
        header_size = _BOX_HEADER_SIZE
        if size == 1:
            if len(data) < position + _LARGE_BOX_HEADER_SIZE:
                return _NeedMore(position + _LARGE_BOX_HEADER_SIZE, image_format)
            size = struct.unpack_from(">Q", data, position + 8)[0]
            header_size = _LARGE_BOX_HEADER_SIZE
        elif size == 0:
            # "Extends to end of file": only sane for mdat, which has no size in it.
            raise _Rejected(f"undecodable {image_format or 'iso'} image: no meta box before the media data")
        if size < header_size:
            raise _Rejected(f"undecodable {image_format or 'iso'} image: bad box size")
        end = position + size
        if box_type == b"ftyp":
            if len(data) < end:
                major = data[position + 8 : position + 12]
                guess = "avif" if major in _AVIF_BRANDS else "heif" if major in _HEIF_BRANDS else None
                return _NeedMore(end, guess)
            # Major brand, then a 4-byte minor version, then compatible brands.
            brands = {data[offset : offset + 4] for offset in range(position + 16, end - 3, 4)}
            brands.add(data[position + 8 : position + 12])
            if not brands & _HEIF_BRANDS:
                brand = data[position + 8 : position + 12].decode("latin-1")
                raise _Rejected(f"{UNKNOWN_ERROR} (ISO media brand {brand!r}, not AVIF/HEIF)")
            image_format = "avif" if brands & _AVIF_BRANDS else "heif"
        elif image_format is None:
            raise _Rejected(UNKNOWN_ERROR)
        elif box_type == b"meta":
            if len(data) < end:
                return _NeedMore(end, image_format)
            meta = _Box(box_type, position, position + header_size, end)
            width, height = _heif_primary_size(data, meta, image_format)
            return _Found(ImageInfo(width, height, image_format), end)
        position = end


def _heif_primary_size(data: bytes, meta: _Box, image_format: str) -> tuple[int, int]:
    """The primary item's displayed size: `ispe`, then its transformative properties in their listed order."""
    undecodable = f"undecodable {image_format} image"
    primary_item: int | None = None
    properties: list[_Box] = []
    associations: dict[int, list[int]] = {}
    for box in _boxes(data, meta.payload_start + _FULL_BOX_PREFIX, meta.end):
        if box.type == b"pitm" and box.end - box.payload_start >= _FULL_BOX_PREFIX + 2:
            version = data[box.payload_start]
            id_format = ">H" if version == 0 else ">L"
            if box.end - box.payload_start >= _FULL_BOX_PREFIX + struct.calcsize(id_format):
                primary_item = struct.unpack_from(id_format, data, box.payload_start + _FULL_BOX_PREFIX)[0]
        elif box.type == b"iprp":
            for child in _boxes(data, box.payload_start, box.end):
                if child.type == b"ipco":
                    properties = _boxes(data, child.payload_start, child.end)
                elif child.type == b"ipma":
                    associations.update(_heif_associations(data, child, undecodable))
    if primary_item is None:
        raise _Rejected(f"{undecodable}: no primary item")
    size: tuple[int, int] | None = None
    for index in associations.get(primary_item, []):
        if not 1 <= index <= len(properties):  # 0 means "no property"; others would be corrupt
            continue
        prop = properties[index - 1]
        payload = data[prop.payload_start : prop.end]
        if prop.type == b"ispe" and len(payload) >= _FULL_BOX_PREFIX + 8:
            size = struct.unpack_from(">LL", payload, _FULL_BOX_PREFIX)
        elif size is None:
            continue  # a transformation before the size is known has nothing to act on
        elif prop.type == b"clap" and len(payload) >= 16:
            # Clean aperture: width and height as fractions; a zero denominator means no usable crop.
            width_n, width_d, height_n, height_d = struct.unpack_from(">LLLL", payload)
            if width_d and height_d:
                size = (_round_fraction(width_n, width_d), _round_fraction(height_n, height_d))
        elif prop.type == b"irot" and payload and payload[0] & 1:
            size = (size[1], size[0])  # a quarter turn either way
    if size is None:
        raise _Rejected(f"{undecodable}: no ispe property for the primary item")
    return size


def _heif_associations(data: bytes, ipma: _Box, undecodable: str) -> dict[int, list[int]]:
    """Item id -> the 1-based indices of its properties in `ipco`, in order."""
    version = data[ipma.payload_start]
    flags = int.from_bytes(data[ipma.payload_start + 1 : ipma.payload_start + 4], "big")
    item_format = ">H" if version == 0 else ">L"
    index_format, index_mask = (">H", 0x7FFF) if flags & 1 else (">B", 0x7F)  # top bit: "essential"
    position = ipma.payload_start + _FULL_BOX_PREFIX
    try:
        (entry_count,) = struct.unpack_from(">L", data, position)
        position += 4
        associations: dict[int, list[int]] = {}
        for _ in range(entry_count):
            (item,) = struct.unpack_from(item_format, data, position)
            position += struct.calcsize(item_format)
            count = data[position]
            position += 1
            indices = []
            for _ in range(count):
                indices.append(struct.unpack_from(index_format, data, position)[0] & index_mask)
                position += struct.calcsize(index_format)
            associations[item] = indices
    except (struct.error, IndexError) as exc:
        raise _Rejected(f"{undecodable}: truncated ipma box") from exc
    if position > ipma.end:
        raise _Rejected(f"{undecodable}: truncated ipma box")
    return associations


def _round_fraction(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers (libheif's rounding of clap sizes)."""
    return (2 * numerator + denominator) // (2 * denominator)


# --- ICO and CUR: a directory of sizes; browsers show the largest ---------------

_ICO_DIRECTORY_HEADER = 6
_ICO_DIRECTORY_ENTRY = 16
_ICO_FULL_SIZE = 256  # a size byte of 0 means 256


def _parse_ico(view: _Bytes) -> _Outcome:
    data = view.head
    image_format = "ico" if data[2] == 1 else "cur"
    if len(data) < _ICO_DIRECTORY_HEADER:
        return _NeedMore(_ICO_DIRECTORY_HEADER, None)
    (count,) = struct.unpack_from("<H", data, 4)
    if count == 0:
        raise _Rejected(f"undecodable {image_format} image: an empty icon directory")
    directory_end = _ICO_DIRECTORY_HEADER + count * _ICO_DIRECTORY_ENTRY
    if len(data) < directory_end:
        return _NeedMore(directory_end, image_format)
    sizes = []
    for entry in range(_ICO_DIRECTORY_HEADER, directory_end, _ICO_DIRECTORY_ENTRY):
        width, height = data[entry] or _ICO_FULL_SIZE, data[entry + 1] or _ICO_FULL_SIZE
        length, offset = struct.unpack_from("<LL", data, entry + 8)
        if length == 0 or offset < directory_end:
            # Four zero bytes start many things; a real directory points past itself.
            raise _Rejected(f"undecodable {image_format} image: bad icon directory")
        sizes.append((width * height, width, height))
    _, width, height = max(sizes)
    return _Found(ImageInfo(width, height, image_format), directory_end)


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


def _parse_jpeg(view: _Bytes) -> _Outcome:
    """Walk segments by their length fields from SOI to the first SOFn.

    Segments are skipped whole, so the JPEG thumbnail inside an EXIF APP1 block
    (with its own, smaller SOF) is never looked at, and a segment that ends
    beyond the bytes held is not read at all: the walk asks for the bytes at
    its end (`_NeedMore.start`), where the next marker is.
    """
    position = 2
    while True:
        pair = view.read(position, 2)
        if pair is None:
            return _NeedMore(position + 2, "jpeg", start=position)
        if pair[0] != 0xFF:
            # Like libjpeg, tolerate stray bytes between segments; the scan stays
            # outside every segment because segments were skipped by length.
            position = view.find(0xFF, position)
            continue
        marker = pair[1]
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
        header = view.read(position, 4)
        if header is None:
            return _NeedMore(position + 4, "jpeg", start=position)
        length = struct.unpack_from(">H", header, 2)[0]
        if length < 2:
            raise _Rejected("undecodable jpeg image: bad segment length")
        if marker in _JPEG_SOF_MARKERS:
            end = position + 9  # marker, length, precision, height, width
            frame = view.read(position, 9)
            if frame is None:
                return _NeedMore(end, "jpeg", start=position)
            height, width = struct.unpack_from(">HH", frame, 5)
            if height == 0:
                raise _Rejected("undecodable jpeg image: height is deferred to a DNL marker")
            return _Found(ImageInfo(width, height, "jpeg"), end)
        position += 2 + length


# --- SVG and other markup ------------------------------------------------------

# Tags that open an HTML document (the WHATWG MIME sniffing list plus a few that
# error pages start with).
_HTML_TAGS = frozenset(b"html head body script iframe h1 div font table a style title b br p meta link".split())
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.:-]*")
_DOCTYPE = b"<!doctype"
_START_TAG = re.compile(rb"""<[^"'>]*(?:(?:"[^"]*"|'[^']*')[^"'>]*)*>""")
# XML's start tag: attributes separated by white space, every value quoted.
# Browsers render an SVG image only if it parses as XML; unquoted values or a
# stray word make the image "broken". (XML also forbids `<` inside a value;
# that one we let pass, as image-size does, since the size is still clear.)
_XML_SPACE = rb"[ \t\r\n]"
_XML_NAME = rb"[A-Za-z_:\x80-\xff][-A-Za-z0-9_.:\x80-\xff]*"
_XML_ATTRIBUTE = re.compile(
    _XML_SPACE + rb"+(" + _XML_NAME + rb")" + _XML_SPACE + rb"*=" + _XML_SPACE + rb"""*(?:"([^"]*)"|'([^']*)')"""
)
_XML_START_TAG = re.compile(rb"<" + _XML_NAME + rb"(?:" + _XML_ATTRIBUTE.pattern + rb")*" + _XML_SPACE + rb"*/?>")
_SVG_LENGTH = re.compile(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*|%)\s*")
_CSS_PX_PER_INCH = 96
# Absolute CSS units in px. Relative ones (em, ex, %, vw, ...) depend on a page
# the image does not know, so they fix no size.
_SVG_PX_PER_UNIT = {
    "": 1.0,
    "px": 1.0,
    "in": _CSS_PX_PER_INCH,
    "cm": _CSS_PX_PER_INCH / 2.54,
    "mm": _CSS_PX_PER_INCH / 25.4,
    "q": _CSS_PX_PER_INCH / 101.6,
    "pt": _CSS_PX_PER_INCH / 72,
    "pc": _CSS_PX_PER_INCH / 6,
}
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
        if rest.startswith((b"<?", b"<!--")):
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
            doctype_end = _end_of_doctype(rest)
            if doctype_end is None:
                return need_more
            position += doctype_end
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
            tag_end = _end_of_tag(rest)
            if tag_end is None:
                return _NeedMore(len(data) + 1, "svg")
            return _Found(_svg_size(rest[:tag_end]), position + tag_end)
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
    """The size an `<img>` gives the SVG without CSS: width/height, completed by the viewBox's ratio.

    A dimension neither fixes stays None: the image has no intrinsic size there.
    """
    if _XML_START_TAG.fullmatch(start_tag) is None:
        raise _Rejected("undecodable svg image: the <svg> start tag is not well-formed XML")
    attributes: dict[str, str] = {}
    for match in _XML_ATTRIBUTE.finditer(start_tag):
        name = match.group(1).decode("utf-8", "replace").lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        attributes.setdefault(name, value.decode("utf-8", "replace"))
    width = _svg_length(attributes.get("width"))
    height = _svg_length(attributes.get("height"))
    view_box = _svg_view_box(attributes.get("viewbox"))
    if width is not None and height is not None:
        return ImageInfo(_round(width), _round(height), "svg")
    if view_box is None:
        return ImageInfo(_round_or_none(width), _round_or_none(height), "svg")
    box_width, box_height = view_box
    # With one dimension given, the viewBox supplies the aspect ratio, as browsers do.
    if width is not None:
        return ImageInfo(_round(width), _round(width * box_height / box_width), "svg")
    if height is not None:
        return ImageInfo(_round(height * box_width / box_height), _round(height), "svg")
    return ImageInfo(_round(box_width), _round(box_height), "svg")


def _svg_length(value: str | None) -> float | None:
    """A length in px; None if absent, relative (em, %, ...) or not positive."""
    if value is None:
        return None
    match = _SVG_LENGTH.fullmatch(value)
    if match is None:
        return None
    px_per_unit = _SVG_PX_PER_UNIT.get(match.group(2).lower())
    if px_per_unit is None:
        return None
    number = float(match.group(1)) * px_per_unit
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


def _round_or_none(value: float | None) -> int | None:
    return None if value is None else _round(value)


def _from_head(parser: Callable[[bytes], _Outcome]) -> Callable[[_Bytes], _Outcome]:
    """Most formats keep their size near the start: their parsers read only the head."""
    return lambda view: parser(view.head)


_SIGNATURES: tuple[tuple[_Signature, Callable[[_Bytes], _Outcome]], ...] = (
    (_signature(b"\x89PNG\r\n\x1a\n"), _from_head(_parse_png)),
    (_signature(b"GIF87a"), _from_head(_parse_gif)),
    (_signature(b"GIF89a"), _from_head(_parse_gif)),
    (_signature(b"\xff\xd8\xff"), _parse_jpeg),
    (_signature(b"RIFF____WEBP", wildcards=range(4, 8)), _from_head(_parse_webp)),
    (_signature(b"____ftyp", wildcards=range(4)), _parse_iso),
    (_signature(b"II*\x00"), _parse_tiff),
    (_signature(b"MM\x00*"), _parse_tiff),
    (_signature(b"II+\x00"), _parse_tiff),  # BigTIFF
    (_signature(b"MM\x00+"), _parse_tiff),
    (_signature(b"BM"), _from_head(_parse_bmp)),
    (_signature(b"\x00\x00\x01\x00"), _parse_ico),
    (_signature(b"\x00\x00\x02\x00"), _parse_ico),  # CUR: the same directory, which browsers also show
)

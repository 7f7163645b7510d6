"""Stage 1: files on disk -> parsed documents with a line for every field.

Documents are streamed one at a time so a corpus of millions of files never
sits in memory. A file that cannot be read or parsed becomes a Document
carrying an `invalid-metadata` finding: it never stops the audit.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from frontmatter.default_handlers import YAMLHandler

from auditor.config import DEFAULT_LIMITS, ParseLimits
from auditor.errors import InputPathError
from auditor.model import Code, Finding

CORPUS_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
_FRONT_MATTER = YAMLHandler()
# libyaml when available: parsing dominates `auditor lint` on large corpora.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The tags plain scalars resolve to, by value: keys and small values repeat in every document.
_PLAIN_TAGS: dict[str, str] = {}
_PLAIN_TAGS_KEPT, _PLAIN_TAG_LONGEST = 8192, 64


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader, with PyYAML's tag resolution remembered per plain value.

    A plain scalar's tag depends on its text alone (the implicit resolvers
    match it against patterns); any other node gets the default tag of its
    kind. Both hold as long as no path resolver is added, as the safe loaders have none.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_PLAIN_TAGS) < _PLAIN_TAGS_KEPT and len(value) <= _PLAIN_TAG_LONGEST:
                    _PLAIN_TAGS[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


@dataclass(frozen=True)
class Document:
    path: str
    data: dict[str, Any] | None
    lines: dict[str, int] = field(default_factory=dict)
    # Stored as findings of their own, not with the document.
    problems: tuple[Finding, ...] = field(default=(), metadata={"stored": False})

    def line(self, field_path: str) -> int | None:
        """The line of a field, else of its nearest parent, else of the front matter."""
        path = field_path
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent(path)
        return self.lines.get("", None)


def _parent(field_path: str) -> str:
    cut = max(field_path.rfind("."), field_path.rfind("["))
    return field_path[:cut] if cut > 0 else ""


def iter_corpus_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every corpus file under the given paths, in a stable order.

    All paths are checked before the first file is yielded, so a typo in the
    last argument fails fast instead of after an hour of crawling.
    """
    paths = list(paths)
    for path in paths:
        if not path.exists():
            raise InputPathError(f"no such file or directory: {path}")
        if not os.access(path, os.R_OK):
            raise InputPathError(f"cannot read {path}: permission denied")
    for path in paths:
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                candidate = Path(root, name)
                if not name.startswith(".") and _looks_like_corpus_file(candidate):
                    yield candidate


def _looks_like_corpus_file(path: Path) -> bool:
    if path.suffix.lower() in CORPUS_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(4).startswith(b"---")
    except OSError:
        return True  # let load_document report why it cannot be read


def iter_documents(paths: Iterable[Path], limits: ParseLimits = DEFAULT_LIMITS) -> Iterator[Document]:
    for path in iter_corpus_files(paths):
        yield load_document(path, limits)


def display_path(path: Path) -> str:
    """The path relative to the working directory, symbolic links resolved; as given if outside it."""
    name = path.name
    if name in ("", ".", "..") or os.path.islink(path):
        return _display_path(path)
    # A file that is no link resolves to its resolved directory and its name: each directory once.
    directory = _display_directory(str(path.parent), os.getcwd())
    if directory is None:
        return str(path)
    return name if directory == "." else f"{directory}{os.sep}{name}"


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=4096)
def _display_directory(directory: str, cwd: str) -> str | None:
    try:
        return str(Path(directory).resolve().relative_to(Path(cwd)))
    except ValueError:
        return None


def load_document(path: Path, limits: ParseLimits = DEFAULT_LIMITS) -> Document:
    name = display_path(path)
    raw = read_front_matter(name, path, limits)
    return raw if isinstance(raw, Document) else parse_front_matter(name, raw, limits)


def read_front_matter(name: str, path: Path, limits: ParseLimits = DEFAULT_LIMITS) -> bytes | Document:
    """The bytes of the file that `parse_front_matter` reads, or the broken document when it cannot be read."""
    try:
        return _read_front_matter(path, limits.max_front_matter_bytes)
    except _TooLarge as too_large:
        return _broken(
            name,
            too_large.line,
            f"front matter is larger than {limits.max_front_matter_bytes:,} bytes (bound max_front_matter_bytes); "
            "not read further",
        )
    except OSError as exc:
        return _broken(name, None, f"cannot read file: {exc.strerror or exc}")


def parse_front_matter(name: str, raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Document:
    """The document `name` of these bytes (what `read_front_matter` gave)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return _broken(name, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
    return parse_document(name, text, limits)


_LONGEST_FIELD_SHOWN = 80
_BOUNDARY = re.compile(rb"-{3,}\s*")
_UTF8_BOM = b"\xef\xbb\xbf"


class _TooLarge(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


# One read of this much holds the whole front matter of nearly every document.
_FIRST_READ = 64 * 1024
# A line that closes the front matter (_BOUNDARY), found in a buffer: readline ends lines at \n only.
_CLOSING_LINE = re.compile(rb"^-{3,}[ \t\r\f\v]*(?:\n|\Z)", re.MULTILINE)


def _read_front_matter(path: Path, limit: int) -> bytes:
    """The file's bytes up to and including the line that closes the front matter.

    The body is never read past one first block, and neither is more than
    `limit` bytes of front matter: a multi-gigabyte file costs what its first
    megabyte costs.
    """
    with path.open("rb") as handle:
        head = handle.read(min(limit + 1, _FIRST_READ))
        found = _front_matter_in(head, limit, complete=len(head) < min(limit + 1, _FIRST_READ))
        if found is not None:
            return found
        handle.seek(0)
        return _read_lines(handle, limit)


def _front_matter_in(head: bytes, limit: int, *, complete: bool) -> bytes | None:
    """What `_read_lines` returns, when `head` (the file's first bytes; all of it if `complete`) settles it."""
    first_end = head.find(b"\n") + 1 or (len(head) if complete else 0)
    if not first_end or first_end > limit:
        return None
    if not _BOUNDARY.fullmatch(head[:first_end].removeprefix(_UTF8_BOM)):
        return head[:first_end]  # no front matter at all
    # A line cut off at the end of an incomplete block is no line yet: search up to the last whole one.
    closing = _CLOSING_LINE.search(head, first_end, len(head) if complete else head.rfind(b"\n") + 1)
    end = closing.end() if closing else (len(head) if complete else 0)
    return head[:end] if end and end <= limit else None


def _read_lines(handle: BinaryIO, limit: int) -> bytes:
    """`_read_front_matter` line by line, for what one first block does not settle."""
    read: list[bytes] = []
    size = 0
    while True:
        line = handle.readline(limit - size + 1)
        if not line:
            break  # end of file: parse_document says what is missing
        read.append(line)
        size += len(line)
        if size > limit:
            raise _TooLarge(len(read))
        is_boundary = _BOUNDARY.fullmatch(line.removeprefix(_UTF8_BOM) if len(read) == 1 else line)
        if len(read) == 1 and not is_boundary:
            break  # no front matter at all
        if len(read) > 1 and is_boundary:
            break
    return b"".join(read)


def parse_document(name: str, text: str, limits: ParseLimits = DEFAULT_LIMITS) -> Document:
    if not _FRONT_MATTER.detect(text):
        return _broken(name, 1, "no YAML front matter (the file must start with a '---' line)")
    try:
        front, _body = _FRONT_MATTER.split(text)
    except ValueError:
        return _broken(name, 1, "front matter is not closed by a '---' line")
    # File line of a YAML mark = offset + mark.line + 1 (the split keeps the
    # newline that ends the opening '---' at the start of `front`).
    offset = text[: text.find(front)].count("\n") if front else 0
    loader = _Loader(front)
    builder = _Builder(loader, offset, limits)
    try:
        node = loader.get_single_node()
        data = builder.build(node, "", 0) if node is not None else None
    except _OverBound as over:
        # Inside an alias every node is the anchor's, so its marks point at the anchor:
        # the top-level field being built is where the document asked for too much.
        field = re.split(r"[.\[]", over.path, maxsplit=1)[0]
        line = builder.lines.get(field, offset + 1)
        field = field if len(field) <= _LONGEST_FIELD_SHOWN else field[: _LONGEST_FIELD_SHOWN - 1] + "…"
        where = f"field '{field}'" if field else "front matter"
        return _broken(name, line, f"{where} {over.what} (bound {over.bound}); not read further", field=field)
    except RecursionError:
        return _broken(name, offset + 1, "front matter nests too deeply to read")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = offset + mark.line + 1 if mark else offset + 1
        return _broken(name, line, f"front matter is not valid YAML: {exc.problem or exc}")
    except yaml.reader.ReaderError as exc:
        return _unacceptable_character(name, front, offset, exc)
    except yaml.YAMLError as exc:
        return _broken(name, offset + 1, f"front matter is not valid YAML: {exc}")
    finally:
        loader.dispose()
    start = offset + node.start_mark.line + 1 if node is not None else offset + 1
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return _broken(name, start, f"front matter must be a mapping of fields, not {kind}")
    builder.lines[""] = start
    return Document(path=name, data=data, lines=builder.lines)


def _unacceptable_character(name: str, front: str, offset: int, exc: yaml.reader.ReaderError) -> Document:
    """A character YAML refuses (a control character), reported on its own line.

    The reader's error has no mark, and its position counts bytes in libyaml
    but characters in pure-Python PyYAML; the reader stops at the first such
    character, so the character's first occurrence is the one.
    """
    char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
    index = front.find(char)
    if index < 0:
        return _broken(name, offset + 1, f"front matter is not valid YAML: {exc}")
    line_start = front.rfind("\n", 0, index) + 1
    line, column = offset + front.count("\n", 0, index) + 1, index - line_start + 1
    hint = ""
    if 0x80 <= ord(char) <= 0x9F:
        # C1 controls in text are nearly always Windows-1252 bytes decoded as Latin-1.
        meant = bytes([ord(char)]).decode("cp1252", errors="replace")
        if meant != "\ufffd":
            hint = f" (probably a mis-decoded '{meant}')"
    return _broken(
        name,
        line,
        f"front matter is not valid YAML: control character U+{ord(char):04X}{hint} "
        f"at column {column}: remove or replace it",
    )


_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = _TAG + "str", _TAG + "map", _TAG + "seq", _TAG + "merge"
_PLAIN_SCALARS = {
    _TAG + "int": yaml.constructor.SafeConstructor.construct_yaml_int,
    _TAG + "float": yaml.constructor.SafeConstructor.construct_yaml_float,
    _TAG + "bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    _TAG + "null": yaml.constructor.SafeConstructor.construct_yaml_null,
    _TAG + "timestamp": yaml.constructor.SafeConstructor.construct_yaml_timestamp,
}


class _OverBound(Exception):
    """A document asked for more than a ParseLimits bound allows; `path` is the field being built."""

    def __init__(self, path: str, what: str, bound: str) -> None:
        super().__init__(what)
        self.path, self.what, self.bound = path, what, bound


class _Builder:
    """Python values and a line per field path in one walk of the composed tree.

    PyYAML's generic constructor costs as much as parsing; plain maps, lists
    and scalars (all a front matter has) are built directly, anything exotic
    (merge keys, sets, binary) goes back to the safe constructor.

    The composed tree shares the node of an anchor with every alias of it, so
    a few hundred bytes can stand for billions of values ("billion laughs").
    Every value built and every character of text and field path is counted
    each time it is built, and the walk stops at the first bound it crosses.
    """

    def __init__(self, loader: Any, offset: int, limits: ParseLimits) -> None:
        self.loader, self.offset, self.limits = loader, offset, limits
        self.lines: dict[str, int] = {}
        self.values = 0
        self.chars = 0

    def build(self, node: yaml.Node, prefix: str, depth: int) -> Any:
        # The hot loop of parsing: the key of a mapping is built inline when it is plain text
        # (what build() would do for it: count it, return its value), and tags are compared to constants.
        if isinstance(node, yaml.ScalarNode):
            value = node.value
            self._count(prefix, depth, len(value))
            tag = node.tag
            if tag == _STR:
                return value
            construct = _PLAIN_SCALARS.get(tag)
            return construct(self.loader, node) if construct else self._construct(node, prefix, depth)
        self._count(prefix, depth, 0)
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP and _plain_keys(node.value):
            mapping: dict[Any, Any] = {}
            lines, offset = self.lines, self.offset
            for key_node, value_node in node.value:
                if key_node.tag == _STR:
                    key = key_node.value
                    self._count(prefix, depth + 1, len(key))
                    path = f"{prefix}.{key}" if prefix else key
                else:
                    key = self.build(key_node, prefix, depth + 1)
                    path = f"{prefix}.{key}" if prefix else str(key)
                self.chars += len(path)
                if self.chars > self.limits.max_built_chars:
                    raise self._too_much_text(path)
                lines[path] = key_node.start_mark.line + 1 + offset
                mapping[key] = self.build(value_node, path, depth + 1)
            return mapping
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            items = []
            for index, item in enumerate(node.value):
                path = f"{prefix}[{index}]"
                self._line(path, item)
                items.append(self.build(item, path, depth + 1))
            return items
        return self._construct(node, prefix, depth)

    def _line(self, path: str, node: yaml.Node) -> None:
        self.chars += len(path)
        if self.chars > self.limits.max_built_chars:
            raise self._too_much_text(path)
        self.lines[path] = node.start_mark.line + 1 + self.offset

    def _construct(self, node: yaml.Node, path: str, depth: int) -> Any:
        # The safe constructor shares objects between aliases, but everything
        # downstream (JSON, rules) walks them expanded: count the expansion first.
        self._count_expanded(node, path, depth)
        return self.loader.construct_object(node, deep=True)

    def _count_expanded(self, node: yaml.Node, path: str, depth: int) -> None:
        if isinstance(node, yaml.ScalarNode):
            return  # counted by build() already
        for child in node.value:
            for part in child if isinstance(child, tuple) else (child,):
                self._count(path, depth + 1, len(part.value) if isinstance(part, yaml.ScalarNode) else 0)
                self._count_expanded(part, path, depth + 1)

    def _count(self, path: str, depth: int, chars: int) -> None:
        if depth > self.limits.max_depth:  # also stops alias cycles
            raise _OverBound(path, f"nests deeper than {self.limits.max_depth} levels", "max_depth")
        self.values += 1
        if self.values > self.limits.max_values:
            raise _OverBound(
                path,
                f"builds more than {self.limits.max_values:,} values (aliases count each time they are used)",
                "max_values",
            )
        self.chars += chars
        if self.chars > self.limits.max_built_chars:
            raise self._too_much_text(path)

    def _too_much_text(self, path: str) -> _OverBound:
        return _OverBound(
            path,
            f"builds more than {self.limits.max_built_chars:,} characters of text and field names "
            "(aliases count each time they are used)",
            "max_built_chars",
        )


def _plain_keys(pairs: list[tuple[yaml.Node, yaml.Node]]) -> bool:
    """Whether every key is a scalar and none a merge key (`<<`): a mapping built directly."""
    for key, _ in pairs:  # noqa: SIM110 (a loop: no generator made for every mapping of every document)
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
            return False
    return True


def _broken(name: str, line: int | None, message: str, field: str = "") -> Document:
    problem = Finding(code=Code.INVALID_METADATA, document=name, field=field, line=line, message=message)
    return Document(path=name, data=None, lines={}, problems=(problem,))

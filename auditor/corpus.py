"""Stage 1: files on disk -> parsed documents with a line for every field.

Documents are streamed one at a time so a corpus of millions of files never
sits in memory. A file that cannot be read or parsed becomes a Document
carrying an `invalid-metadata` finding: it never stops the audit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import frontmatter
import yaml

from auditor.config import ParseLimits
from auditor.errors import InputPathError
from auditor.findings import Finding

CORPUS_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
_FRONT_MATTER = frontmatter.YAMLHandler()
# libyaml when available: parsing dominates `auditor lint` on large corpora.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    path: str
    data: dict[str, Any] | None
    lines: dict[str, int] = field(default_factory=dict)
    problems: tuple[Finding, ...] = ()

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


def iter_documents(paths: Iterable[Path], limits: ParseLimits = ParseLimits()) -> Iterator[Document]:
    for path in iter_corpus_files(paths):
        yield load_document(path, limits)


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_document(path: Path, limits: ParseLimits = ParseLimits()) -> Document:
    name = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return _broken(name, None, f"cannot read file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return _broken(name, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
    return parse_document(name, text, limits)


def parse_document(name: str, text: str, limits: ParseLimits = ParseLimits()) -> Document:
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
    lines: dict[str, int] = {}
    try:
        node = loader.get_single_node()
        data = _build(loader, node, "", offset, lines, 0) if node is not None else None
    except _TooDeep:
        return _broken(name, offset + 1, f"front matter nests deeper than {MAX_DEPTH} levels")
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
    lines[""] = start
    return Document(path=name, data=data, lines=lines)


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
    return _broken(name, line, f"front matter is not valid YAML: control character U+{ord(char):04X}{hint} "
                               f"at column {column}: remove or replace it")


MAX_DEPTH = 32
_TAG = "tag:yaml.org,2002:"
_PLAIN_SCALARS = {
    _TAG + "int": yaml.constructor.SafeConstructor.construct_yaml_int,
    _TAG + "float": yaml.constructor.SafeConstructor.construct_yaml_float,
    _TAG + "bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    _TAG + "null": yaml.constructor.SafeConstructor.construct_yaml_null,
    _TAG + "timestamp": yaml.constructor.SafeConstructor.construct_yaml_timestamp,
}


class _TooDeep(Exception):
    pass


def _build(loader: Any, node: yaml.Node, prefix: str, offset: int, lines: dict[str, int], depth: int) -> Any:
    """Python values and a line per field path in one walk of the composed tree.

    PyYAML's generic constructor costs as much as parsing; plain maps, lists
    and scalars (all a front matter has) are built directly, anything exotic
    (merge keys, sets, binary) goes back to the safe constructor.
    """
    if depth > MAX_DEPTH:  # also stops alias cycles
        raise _TooDeep
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _TAG + "str":
            return node.value
        construct = _PLAIN_SCALARS.get(node.tag)
        return construct(loader, node) if construct else loader.construct_object(node, deep=True)
    if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map" and all(
        isinstance(key, yaml.ScalarNode) and key.tag != _TAG + "merge" for key, _ in node.value
    ):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build(loader, key_node, prefix, offset, lines, depth + 1)
            path = f"{prefix}.{key}" if prefix else str(key)
            lines[path] = key_node.start_mark.line + 1 + offset
            mapping[key] = _build(loader, value_node, path, offset, lines, depth + 1)
        return mapping
    if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
        items = []
        for index, item in enumerate(node.value):
            path = f"{prefix}[{index}]"
            lines[path] = item.start_mark.line + 1 + offset
            items.append(_build(loader, item, path, offset, lines, depth + 1))
        return items
    return loader.construct_object(node, deep=True)


def _broken(name: str, line: int | None, message: str) -> Document:
    problem = Finding(code="invalid-metadata", document=name, field="", line=line, message=message)
    return Document(path=name, data=None, lines={}, problems=(problem,))

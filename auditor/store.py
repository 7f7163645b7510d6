"""Stage 4: the SQLite store (sqlite-utils) — runs, documents, links, checks, findings.

History is kept: every run adds rows under its own run id, so reports can
compare runs and `flaky-link` can look back. Exactly one `Store` writes during
a run; rows go in through `BatchWriter`s, committed every few hundred rows, so
an interrupted run keeps everything it had checked.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import types
import typing
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlite_utils

from auditor.corpus import Document
from auditor.errors import DatabaseError
from auditor.model import Check, Finding, Kind, LinkRef, Mode, Run, RunStatus, Severity

Record = TypeVar("Record")
Row = tuple[Any, ...]


# -- columns, derived from the records ------------------------------------------
@dataclass(frozen=True)
class _Column:
    name: str
    sql_type: type  # int, float or str: what sqlite-utils creates the column as
    encode: Callable[[Any], Any]  # record value (never None) -> SQLite value
    decode: Callable[[Any], Any]  # SQLite value (never None) -> record value


def _json_dumps(value: Any) -> str:
    return json.dumps(value, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)  # dates in front matter, and the like


def _unwrap_optional(hint: Any) -> Any:
    options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(options) == 1:
        return options[0]
    return hint


def _from_json(hint: Any) -> Callable[[Any], Any]:
    """Turns a decoded JSON value back into what the hint says: records, tuples of records, enums."""
    hint = _unwrap_optional(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        converters = {f.name: _from_json(hints[f.name]) for f in dataclasses.fields(hint)}
        # Only known keys: a record that gained or lost a field still reads old rows.
        return lambda value: hint(
            **{key: None if item is None else converters[key](item) for key, item in value.items() if key in converters}
        )
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
        convert_item = _from_json(typing.get_args(hint)[0])
        return lambda value: tuple(convert_item(item) for item in value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    return lambda value: value


def _column_for(name: str, hint: Any) -> _Column:
    """How one record field is stored: SQLite's own types where they fit, JSON for the rest."""
    hint = _unwrap_optional(hint)
    if hint is bool:
        return _Column(name, int, int, bool)
    if hint in (int, float, str):
        return _Column(name, hint, lambda value: value, lambda value: value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _Column(name, str, lambda value: value.value, hint)
    convert = _from_json(hint)  # records, tuples, mappings, lists, Any
    return _Column(name, str, _json_dumps, lambda value: convert(json.loads(value)))


class _Table(Generic[Record]):
    """One table: its record type, its columns (declared once, by the record) and its codec."""

    def __init__(self, name: str, record: type[Record], *, per_run: bool, indexes: Iterable[tuple[str, ...]] = ()):
        self.name, self.record, self.per_run, self.indexes = name, record, per_run, tuple(indexes)
        hints = typing.get_type_hints(record)
        fields = [f for f in dataclasses.fields(record) if f.metadata.get("stored", True)]  # type: ignore[arg-type]
        self.columns = tuple(_column_for(f.name, hints[f.name]) for f in fields)
        self.insert_sql = (
            f"insert into [{name}] ({', '.join(self._names())}) values ({', '.join('?' * len(self._names()))})"
        )

    def _names(self) -> list[str]:
        return [f"[{name}]" for name in (["run_id"] if self.per_run else []) + [c.name for c in self.columns]]

    def schema(self) -> dict[str, type]:
        return {**({"run_id": int} if self.per_run else {}), **{c.name: c.sql_type for c in self.columns}}

    def encode(self, record: Record) -> Row:
        """The record's column values, in order (a per-run table's writer puts the run id first)."""
        return tuple(None if (value := getattr(record, c.name)) is None else c.encode(value) for c in self.columns)

    def decode(self, row: Mapping[str, Any]) -> Record:
        values: dict[str, Any] = {}
        for column in self.columns:
            value = row.get(column.name)
            try:
                values[column.name] = None if value is None else column.decode(value)
            except (ValueError, TypeError) as exc:  # a value no enum or record of this release knows
                raise DatabaseError(f"table {self.name}, column {column.name}: cannot read {value!r}: {exc}") from exc
        return self.record(**values)


RUNS = _Table("runs", Run, per_run=False)
DOCUMENTS = _Table("documents", Document, per_run=True, indexes=[("run_id", "path")])
LINKS = _Table("links", LinkRef, per_run=True, indexes=[("run_id", "normalized_url"), ("run_id", "document")])
CHECKS = _Table("checks", Check, per_run=True, indexes=[("run_id", "url"), ("url", "run_id")])
FINDINGS = _Table("findings", Finding, per_run=True, indexes=[("run_id", "code")])
TABLES: tuple[_Table[Any], ...] = (RUNS, DOCUMENTS, LINKS, CHECKS, FINDINGS)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        try:
            if read_only:
                # A reader beside the one writer (auditor serve): it cannot write, and leaves the schema as it is.
                self.db = sqlite_utils.Database(sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True))
                return
            self.db = sqlite_utils.Database(self.path)
            self.db.enable_wal()
            self._ensure_schema()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise DatabaseError(f"cannot use database {self.path}: {exc}") from exc

    def _ensure_schema(self) -> None:
        existing = set(self.db.table_names())
        for spec in TABLES:
            table = self.db.table(spec.name)
            columns = spec.schema()
            if spec.name not in existing:
                table.create(columns, pk="id" if spec is RUNS else None)
                for index in spec.indexes:
                    table.create_index(list(index), if_not_exists=True)
            else:
                # A database of an older release gains the new columns; its rows read them as empty.
                for column, column_type in columns.items():
                    if column not in table.columns_dict:
                        table.add_column(column, column_type)

    @classmethod
    def open_existing(cls, path: Path, *, read_only: bool = False) -> Store:
        """A store for reading a past run: the file must exist and be auditor's (never create one).

        `read_only`: a read-only connection, nothing written at all (not even the schema's new columns).
        """
        if not path.exists():
            raise DatabaseError(f"database not found: {path}")
        if not path.is_file():
            raise DatabaseError(f"not a database file: {path}")
        try:
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
            finally:
                connection.close()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot use database {path}: {exc}") from exc
        if "runs" not in tables:
            raise DatabaseError(f"{path} is not an auditor database (it has no runs table)")
        return cls(path, read_only=read_only)

    def close(self) -> None:
        self.db.close()

    # -- runs ---------------------------------------------------------------
    def start_run(self, *, mode: Mode, corpus: Iterable[str], tool_version: str, config: dict[str, Any]) -> int:
        run = Run(mode=mode, started_at=now_iso(), corpus=tuple(corpus), tool_version=tool_version, config=config)
        with self.db.conn:
            cursor = self.db.conn.execute(RUNS.insert_sql, RUNS.encode(run))
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, *, status: RunStatus, **counts: int) -> None:
        self.db.table("runs").update(run_id, {"status": status.value, "finished_at": now_iso(), **counts})

    def run(self, run_id: int) -> Run:
        try:
            return RUNS.decode(self.db.table("runs").get(run_id))
        except sqlite_utils.db.NotFoundError as exc:
            raise DatabaseError(f"{self.path} has no run {run_id}") from exc

    def runs(self) -> list[Run]:
        return [RUNS.decode(row) for row in self.db.query("select * from runs order by id")]

    def latest_run_id(self) -> int:
        row = next(self.db.query("select max(id) as id from runs"), None)
        if not row or row["id"] is None:
            raise DatabaseError(f"{self.path} holds no runs yet")
        return int(row["id"])

    def previous_run_id(self, run_id: int) -> int | None:
        """The run before this one over the same corpus, for 'what changed'."""
        corpus = self.run(run_id).corpus
        for row in self.db.query("select * from runs where id < ? order by id desc", [run_id]):
            if RUNS.decode(row).corpus == corpus:
                return int(row["id"])
        return None

    # -- writing ------------------------------------------------------------
    def writer(self, table: _Table[Record], run_id: int, batch_size: int = 500) -> BatchWriter[Record]:
        return BatchWriter(self, table, run_id, batch_size)

    def insert_rows(self, table: _Table[Any], rows: list[Row]) -> None:
        # executemany with the known columns: the hot path of ingesting a large
        # corpus, about 3x faster than sqlite-utils' insert_all, which re-derives
        # columns and types for every batch.
        with self.db.conn:
            self.db.conn.executemany(table.insert_sql, rows)

    # -- reading ------------------------------------------------------------
    def _stream(self, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
        """Rows from a second, read-only connection.

        Long scans (the crawl feed, the judging pass) run while the one writer
        commits; a separate connection keeps the two from disturbing each other,
        and rows are yielded, never listed, so memory stays flat.
        """
        reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        reader.row_factory = sqlite3.Row
        try:
            for row in reader.execute(sql, params):
                yield dict(row)
        finally:
            reader.close()

    def unique_urls(self, run_id: int) -> Iterator[tuple[str, Kind]]:
        """Each normalised URL once, with the kind that asks the most of the fetch."""
        rows = self._stream(
            "select normalized_url, max(kind = ?) as is_image, min(kind) as kind from links "
            "where run_id = ? group by normalized_url order by min(rowid)",
            [Kind.IMAGE.value, run_id],
        )
        for row in rows:
            yield row["normalized_url"], Kind.IMAGE if row["is_image"] else Kind(row["kind"])

    def count_unique_urls(self, run_id: int) -> int:
        row = next(self.db.query("select count(distinct normalized_url) as n from links where run_id = ?", [run_id]))
        return int(row["n"])

    def checks(self, run_id: int, urls: Iterable[str] | None = None) -> dict[str, Check]:
        """Checks of a run by URL: all of them, or only the given URLs (bounded memory per document)."""
        if urls is None:
            rows = self.db.query("select * from checks where run_id = ?", [run_id])
        else:
            wanted = sorted(set(urls))
            if not wanted:
                return {}
            marks = ",".join("?" * len(wanted))
            rows = self.db.query(f"select * from checks where run_id = ? and url in ({marks})", [run_id, *wanted])
        return {row["url"]: CHECKS.decode(row) for row in rows}

    def links(self, run_id: int) -> Iterator[LinkRef]:
        for row in self._stream("select * from links where run_id = ? order by rowid", [run_id]):
            yield LINKS.decode(row)

    def iter_documents(self, run_id: int) -> Iterator[Document]:
        for row in self._stream("select * from documents where run_id = ? order by rowid", [run_id]):
            yield DOCUMENTS.decode(row)

    def findings(self, run_id: int) -> list[Finding]:
        rows = self.db.query("select * from findings where run_id = ? order by rowid", [run_id])
        return [FINDINGS.decode(row) for row in rows]

    def finding_counts(self) -> dict[int, Counter[Severity]]:
        """Findings per run and severity, in one grouped query."""
        counts: dict[int, Counter[Severity]] = defaultdict(Counter)
        for row in self.db.query("select run_id, severity, count(*) as n from findings group by run_id, severity"):
            counts[row["run_id"]][Severity(row["severity"])] = row["n"]
        return counts

    def past_verdicts(self, url: str, before_run: int, limit: int) -> list[bool]:
        """Whether each of the most recent earlier checks of a URL was ok, newest first."""
        rows = self.db.query(
            "select ok from checks where url = ? and run_id < ? order by run_id desc limit ?",
            [url, before_run, limit],
        )
        return [bool(row["ok"]) for row in rows]

    def count(self, table: _Table[Any], run_id: int) -> int:
        row = next(self.db.query(f"select count(*) as n from [{table.name}] where run_id = ?", [run_id]))
        return int(row["n"])


class BatchWriter(Generic[Record]):
    """Buffers one table's rows, encoded, and commits them in batches."""

    def __init__(self, store: Store, table: _Table[Record], run_id: int, batch_size: int) -> None:
        self.store, self.table, self.run_id, self.batch_size = store, table, run_id, batch_size
        self.pending: list[Row] = []
        self.written = 0

    def add(self, record: Record) -> None:
        self.add_encoded(self.table.encode(record))

    def add_encoded(self, values: Row) -> None:
        """Values encoded elsewhere by `table.encode` (the ingest workers: encoded rows pickle cheaper)."""
        self.pending.append((self.run_id, *values))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        # Taken before the insert: whatever happens during it, no row is ever offered twice.
        rows, self.pending = self.pending, []
        if rows:
            self.store.insert_rows(self.table, rows)
            self.written += len(rows)

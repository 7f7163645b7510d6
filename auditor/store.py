"""Stage 4: the SQLite store (sqlite-utils) — runs, documents, links, checks, findings.

History is kept: every run adds rows under its own run id, so reports can
compare runs and `flaky-link` can look back. Exactly one `Store` writes during
a run; rows go in through `BatchWriter`s, committed every few hundred rows, so
an interrupted run keeps everything it had checked.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import sqlite3
import types
import typing
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import sqlite_utils

from auditor.corpus import Document
from auditor.errors import DatabaseError
from auditor.model import (
    ArchivedCopy,
    ArchiveLookups,
    Check,
    Code,
    Finding,
    Hop,
    Kind,
    LinkRef,
    Mode,
    Reason,
    Run,
    RunStatus,
    Severity,
    is_accepted,
)

Record = TypeVar("Record")
Key = TypeVar("Key", str, int)  # what rows are looked up by: hashes and URLs, or ids
Row = tuple[Any, ...]


# -- columns, derived from the records ------------------------------------------
@dataclass(frozen=True)
class _Column:
    name: str
    sql_type: type  # int, float or str: what sqlite-utils creates the column as
    encode: Callable[[Any], Any]  # record value (never None) -> SQLite value
    decode: Callable[[Any], Any]  # SQLite value (never None) -> record value


def _json_dumps(value: Any) -> str:
    return _ENCODER.encode(value)  # json.dumps(value, default=_jsonable), without a new encoder each time


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Field by field, one level: the encoder comes back here for a record inside. (dataclasses.asdict
        # deep-copies every value on the way: a third of storing a crawl's checks went to a head's.)
        return {name: getattr(value, name) for name in _field_names(type(value))}
    return str(value)  # dates in front matter, and the like


@functools.cache
def _field_names(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(record))


_ENCODER = json.JSONEncoder(default=_jsonable)


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


def _same(value: Any) -> Any:
    return value


def _column_for(name: str, hint: Any) -> _Column:
    """How one record field is stored: SQLite's own types where they fit, JSON for the rest."""
    hint = _unwrap_optional(hint)
    if hint is bool:
        return _Column(name, int, int, bool)
    if hint in (int, float, str):
        return _Column(name, hint, _same, _same)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _Column(name, str, lambda value: value.value, hint)
    convert = _from_json(hint)  # records, tuples, mappings, lists, Any
    return _Column(name, str, _json_dumps, lambda value: convert(json.loads(value)))


class _Table(Generic[Record]):
    """One table: its record type, its columns (declared once, by the record) and its codec.

    `keys` are columns the table has before the record's own (the run id of a
    per-run table, the content hash of a link); `exclude` names record fields
    another table holds (a link's document path lives with the run's documents).
    """

    def __init__(
        self,
        name: str,
        record: type[Record],
        *,
        keys: tuple[tuple[str, type], ...] = (),
        exclude: frozenset[str] = frozenset(),
        indexes: Iterable[tuple[str, ...]] = (),
        pk: str | None = None,
    ) -> None:
        self.name, self.record, self.keys, self.indexes, self.pk = name, record, keys, tuple(indexes), pk
        hints = typing.get_type_hints(record)
        fields = [
            f
            for f in dataclasses.fields(record)  # type: ignore[arg-type]
            if f.metadata.get("stored", True) and f.name not in exclude and f.name != pk
        ]
        self.columns = tuple(_column_for(f.name, hints[f.name]) for f in fields)
        # Encoding runs per row of a large ingest: all values in one call, then only the columns that change.
        getter = attrgetter(*(c.name for c in self.columns))
        self._values: Callable[[Any], tuple[Any, ...]] = (
            getter if len(self.columns) > 1 else lambda record: (getter(record),)
        )
        self._encoders = tuple((i, c.encode) for i, c in enumerate(self.columns) if c.encode is not _same)
        # Decoding runs per row read (every reference, when judging): plain columns are taken as they are.
        self._names = tuple(c.name for c in self.columns)
        self._decoders = tuple((c.name, c.decode) for c in self.columns if c.decode is not _same)
        names = [f"[{key}]" for key, _ in keys] + [f"[{c.name}]" for c in self.columns]
        self.insert_sql = f"insert into [{name}] ({', '.join(names)}) values ({', '.join('?' * len(names))})"

    def schema(self) -> dict[str, type]:
        return {**({self.pk: int} if self.pk else {}), **dict(self.keys), **{c.name: c.sql_type for c in self.columns}}

    def encode(self, record: Record) -> Row:
        """The record's own column values, in order (the writer puts the key values first)."""
        values = list(self._values(record))
        for index, encode in self._encoders:
            value = values[index]
            if value is not None:
                values[index] = encode(value)
        return tuple(values)

    def encode_field(self, name: str, value: Any) -> Any:
        """One column's value as stored (an update of that column alone)."""
        column = next(c for c in self.columns if c.name == name)
        return None if value is None else column.encode(value)

    def selected(self, table: str) -> str:
        """The record's columns for a select list, in the order `decode_values` reads them."""
        return ", ".join(f"{table}.[{name}]" for name in self._names)

    def position(self, name: str) -> int:
        """Where a column is among `selected`'s."""
        return self._names.index(name)

    def decode_values(self, values: Sequence[Any], **given: Any) -> Record:
        """`decode` of a row read as `selected` lists its columns: by position, without a mapping per row."""
        return self._decoded(dict(zip(self._names, values, strict=True)), given)

    def decode(self, row: Mapping[str, Any], **given: Any) -> Record:
        """The record of a row; `given` supplies fields kept elsewhere (a link's document path)."""
        values = {name: row.get(name) for name in self._names}
        if self.pk and self.pk in row:
            given = {**given, self.pk: row[self.pk]}
        return self._decoded(values, given)

    def _decoded(self, values: dict[str, Any], given: dict[str, Any]) -> Record:
        for name, decode in self._decoders:
            value = values[name]
            if value is not None:
                try:
                    values[name] = decode(value)
                except (ValueError, TypeError) as exc:  # a value no enum or record of this release knows
                    raise DatabaseError(f"table {self.name}, column {name}: cannot read {value!r}: {exc}") from exc
        return self.record(**values, **given)


# The store grows with change, not with runs: a document's parsed content is kept
# once per content hash (its links with it), a check once per fetch; what a run
# saw is a row per document (path -> content) and per URL (-> the check it used).
RUNS = _Table("runs", Run, pk="id")
CONTENTS = _Table("contents", Document, keys=(("hash", str),), exclude=frozenset({"path"}))
LINKS = _Table(
    "links",
    LinkRef,
    keys=(("content", str),),
    exclude=frozenset({"document"}),
    indexes=[("content",), ("normalized_url",)],
)
CHECKS = _Table("checks", Check, keys=(("run_id", int),), pk="id", indexes=[("url", "id")])
FINDINGS = _Table("findings", Finding, keys=(("run_id", int),), indexes=[("run_id", "code")])
# The Wayback Machine's answers (--suggest), one per URL, replaced when asked again: a cache
# that outlives runs, so scheduled audits do not ask the archive about the same dead link daily.
ARCHIVED = _Table("archived_copies", ArchivedCopy)
TABLES: tuple[_Table[Any], ...] = (RUNS, CONTENTS, LINKS, CHECKS, FINDINGS, ARCHIVED)
SCHEMA_VERSION = 2
# Tables of rows without a record: which content each document had in a run, which check each URL had.
_JOIN_TABLES = (
    "create table if not exists run_documents (run_id integer not null, path text not null, "
    "content text not null, position integer not null, primary key (run_id, path)) without rowid",
    "create index if not exists run_documents_order on run_documents (run_id, position)",
    # Whether a run cited a URL, from the URL's links: a URL's history (flaky links, `auditor history`)
    # asks it of every earlier run. Without it each asking scanned the run's documents, 5 ms a URL and run.
    # Content first: led by run_id, the planner took it for a run's documents too, and read their links
    # in content-hash order, not the order they were written in (twice as long to count unique URLs).
    "create index if not exists run_documents_by_content on run_documents (content, run_id)",
    "create table if not exists run_checks (run_id integer not null, check_id integer not null, "
    "primary key (run_id, check_id)) without rowid",
    "create unique index if not exists contents_hash on contents (hash)",
    # What parsing a file gave (parse_key: its path, its front matter's bytes, and what parsing depends
    # on), so a file unchanged since an earlier run is not parsed again: its content and its offline findings.
    "create table if not exists parsed_files (key text primary key, content text not null, "
    "findings text not null) without rowid",
    # The host probe each run used per origin (auditor/soft404.py): fetched by it, or reused within
    # --max-age. Never compacted (one row per host and run), so `prune` and later runs still find it.
    "create table if not exists host_probes (run_id integer not null, origin text not null, "
    "check_id integer not null, primary key (run_id, origin)) without rowid",
    "create index if not exists host_probes_origin on host_probes (origin, check_id)",
    # What judging a document gave (its findings before severities) under a key of everything judging
    # reads for it (pipeline.judging_key): a run whose document, checks and host evidence are as the
    # last run's takes the findings from here instead of judging it again. Only the last run's are kept.
    "create table if not exists judged_documents (key text primary key, run_id integer not null, "
    "findings text not null) without rowid",
)
# One archive answer per URL: a new one replaces it.
_ARCHIVED_INDEX = "create unique index if not exists archived_copies_url on archived_copies (url)"


# Views for browsing the database in SQL, sqlite-utils or Datasette (README, "Browse and export"):
# each resolves what the Store API resolves in Python, so a query needs no knowledge of the compaction.
VIEWS: dict[str, str] = {
    # Every run's documents, whether stored under the run or shared with an earlier run (runs.documents_of).
    "run_documents_resolved": """
select runs.id as run_id, run_documents.path, run_documents.content, run_documents.position,
  run_documents.run_id as stored_under
from runs join run_documents on run_documents.run_id = coalesce(runs.documents_of, runs.id)""",
    # Every reference of every run: the links of the content each of its documents had.
    "run_links": """
select run_documents_resolved.run_id, run_documents_resolved.path as document, links.*
from run_documents_resolved join links on links.content = run_documents_resolved.content""",
    # The check each run used for each URL, by the rule of Store.checks(): an unfinished run's own
    # pointers (run_checks); for a finished run, the newest check up to runs.checks_until of each URL
    # its documents cite.
    "run_urls": """
with unfinished as (
  select run_checks.run_id, checks.url, max(checks.id) as check_id
  from run_checks
  join runs on runs.id = run_checks.run_id and runs.checks_until is null
  join checks on checks.id = run_checks.check_id
  group by run_checks.run_id, checks.url
), cited as (
  select distinct runs.id as run_id, runs.checks_until, links.normalized_url as url
  from runs
  join run_documents on run_documents.run_id = coalesce(runs.documents_of, runs.id)
  join links on links.content = run_documents.content
  where runs.checks_until is not null
), finished as (
  select run_id, url,
    (select max(checks.id) from checks where checks.url = cited.url and checks.id <= cited.checks_until) as check_id
  from cited
)
select run_id, url, check_id from unfinished
union all
select run_id, url, check_id from finished where check_id is not null""",
    # Each URL's most recent check, by any run (what the next run would revalidate or reuse); host probes
    # (soft 404s) are no URLs of a corpus.
    "url_status": """
select checks.url, checks.kind, checks.ok, checks.status, checks.reason, checks.message, checks.fetched_url,
  checks.final_url, checks.checked_at, checks.run_id as fetched_by, checks.id as check_id
from checks where checks.kind != 'probe'
  and checks.id = (select max(newer.id) from checks as newer where newer.url = checks.url)""",
    # The findings of the latest finished run of each corpus and mode (an audit and a lint of the same
    # corpus both show): what is wrong now. Running, interrupted and failed runs are left out.
    "latest_findings": """
select findings.*, runs.mode as run_mode, runs.started_at as run_started_at, runs.corpus as run_corpus
from findings join runs on runs.id = findings.run_id
where runs.id in (select max(id) from runs where status = 'finished' group by mode, corpus)
order by findings.run_id, findings.rowid""",
}


def content_hash(encoded: Row) -> str:
    """The key a document's parsed content is stored under: the same content is stored once."""
    return hashlib.blake2b(json.dumps(encoded).encode(), digest_size=16).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_AT_POSITIONS = " and run_documents.position >= ? and run_documents.position < ?"


@dataclass(frozen=True)
class JudgingInput:
    """One document as judging needs it: the findings it gave before under the same key, or all it reads."""

    path: str
    key: str | None  # None: no key (judged afresh, and not kept)
    judged: list[Finding] | None  # what the same inputs gave before; then nothing else is read
    document: Document | None
    links: list[LinkRef]
    checks: dict[str, Check]


# A document's judging key from its path, its content's hash and (normalised URL, check id) of each
# reference in order; None when the document is to be judged afresh whatever came before.
JudgingKey = Callable[[str, str, list[tuple[str, int | None]]], str | None]


@dataclass(frozen=True)
class ParsedFile:
    """A file's parse kept from an earlier run: the hash of its stored content, and its offline findings."""

    content: str
    findings: list[Finding]


def encode_findings(findings: Iterable[Finding]) -> str:
    return _json_dumps([FINDINGS.encode(finding) for finding in findings])


def decode_findings(text: str) -> list[Finding]:
    names = [column.name for column in FINDINGS.columns]
    return [FINDINGS.decode(dict(zip(names, row, strict=True))) for row in json.loads(text)]


# What a run counts of its crawl (columns of runs; a merge sums its shards').
CRAWL_COUNTS = ("fetched", "revalidated", "reused")


class Store:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        try:
            if read_only:
                # A reader beside the one writer (auditor serve): it cannot write, and leaves the schema as it is.
                self.db = sqlite_utils.Database(sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True))
                if "run_documents" not in self.db.table_names():
                    raise DatabaseError(
                        f"{self.path} has the layout of an older release; the next audit on it migrates it"
                    )
                return
            self.db = sqlite_utils.Database(self.path)
            self.db.enable_wal()
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the process loses
            # nothing, one of the machine at most the last batches, which --resume checks again. The
            # crawl commits a batch of checks every few milliseconds; FULL halved its writing speed.
            self.db.execute("pragma synchronous = normal")
            self._ensure_schema()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise DatabaseError(f"cannot use database {self.path}: {exc}") from exc

    def _ensure_schema(self) -> None:
        existing = set(self.db.table_names())
        if "documents" in existing:  # the first release's layout: one copy of everything per run
            _migrate_from_copies_per_run(self.db)
            existing = set(self.db.table_names())
        for spec in TABLES:
            table = self.db.table(spec.name)
            columns = spec.schema()
            if spec.name not in existing:
                table.create(columns, pk=spec.pk)
            else:
                # A database of an older release gains the new columns; its rows read them as empty.
                for column, column_type in columns.items():
                    if column not in table.columns_dict:
                        table.add_column(column, column_type)
            for index in spec.indexes:
                table.create_index(list(index), if_not_exists=True)
        with self.db.conn:
            for statement in (*_JOIN_TABLES, _ARCHIVED_INDEX):
                self.db.conn.execute(statement)
        self._ensure_views()
        self.db.execute(f"pragma user_version = {SCHEMA_VERSION}")

    def _ensure_views(self) -> None:
        """Creates the views; one whose SQL changed since (an older release made it) is made anew."""
        made = dict(self.db.execute("select name, sql from sqlite_master where type = 'view'").fetchall())
        # SQLite keeps a view's statement as written, with its first two words in capitals.
        stale = {name: body for name, body in VIEWS.items() if made.get(name) != f"CREATE VIEW {name} as{body}"}
        if stale:
            with self.db.conn:
                self.db.conn.execute("begin")  # DDL opens no transaction by itself: one for them all
                for name, body in stale.items():
                    self.db.conn.execute(f"drop view if exists {name}")
                    self.db.conn.execute(f"create view {name} as{body}")

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
    def start_run(
        self,
        *,
        mode: Mode,
        corpus: Iterable[str],
        tool_version: str,
        config: dict[str, Any],
        shard: int | None = None,
        shards: int | None = None,
    ) -> int:
        run = Run(
            mode=mode,
            started_at=now_iso(),
            corpus=tuple(corpus),
            tool_version=tool_version,
            config=config,
            shard=shard,
            shards=shards,
        )
        with self.db.conn:
            cursor = self.db.conn.execute(RUNS.insert_sql, RUNS.encode(run))
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, *, status: RunStatus, **counts: int) -> None:
        self.db.table("runs").update(run_id, {"status": status.value, "finished_at": now_iso(), **counts})
        if status is RunStatus.FINISHED:
            if self.run(run_id).shard is None:
                self._compact(run_id)
            else:
                # A shard's checks cover its partition only: "the newest check of every URL it cites" would
                # claim other shards' URLs, so it keeps its own rows; its fingerprint tells `merge` the corpus.
                self.db.table("runs").update(run_id, {"fingerprint": self._fingerprint(run_id)})

    def _fingerprint(self, run_id: int) -> str:
        """Of the run's documents: paths and contents, in order."""
        digest = hashlib.blake2b(digest_size=16)
        for path, content in self.db.execute(
            "select path, content from run_documents where run_id = ? order by position", [self._documents_run(run_id)]
        ):
            digest.update(json.dumps([path, content]).encode())
        return digest.hexdigest()

    def _compact(self, run_id: int) -> None:
        """A finished run keeps no copy of what an earlier run already holds.

        Its checks: the newest check of each URL up to the newest id now is
        the one it used (it fetched it, or reused the newest), so the per-URL
        rows go and the id is kept. Its documents: if they are the previous
        run's, path for path and content for content, it shares that run's rows.
        """
        fingerprint = self._fingerprint(run_id)
        previous_id = self.previous_run_id(run_id)
        previous = self.run(previous_id) if previous_id is not None else None
        with self.db.conn:
            self.db.conn.execute(
                "update runs set checks_until = (select max(id) from checks), fingerprint = ? where id = ?",
                [fingerprint, run_id],
            )
            self.db.conn.execute("delete from run_checks where run_id = ?", [run_id])
            if previous is not None and previous.fingerprint == fingerprint:
                owner = previous.documents_of or previous.id
                self.db.conn.execute("update runs set documents_of = ? where id = ?", [owner, run_id])
                self.db.conn.execute("delete from run_documents where run_id = ?", [run_id])

    def _documents_run(self, run_id: int) -> int:
        """The run whose document rows stand for this run's documents."""
        row = self.db.execute("select documents_of from runs where id = ?", [run_id]).fetchone()
        return int(row[0]) if row and row[0] is not None else run_id

    def set_counts(self, run_id: int, **counts: int) -> None:
        """`counts`: some of CRAWL_COUNTS, by name."""
        self.db.table("runs").update(run_id, counts)

    def reopen_run(self, run_id: int) -> None:
        """A run picked up again (--resume): running once more; its verdicts are judged anew."""
        with self.db.conn:
            self.db.conn.execute("update runs set status = ?, finished_at = null where id = ?",
                                 [RunStatus.RUNNING.value, run_id])  # fmt: skip
            self.db.conn.execute("delete from findings where run_id = ?", [run_id])
            self.db.conn.execute("delete from run_documents where run_id = ?", [run_id])
            # A run stopped while its reports were written was already compacted: it keeps rows again.
            # Its archive lookups go with its findings (a resume without --suggest makes none).
            self.db.conn.execute(
                "update runs set documents_of = null, fingerprint = null, checks_until = null, archive = null "
                "where id = ?",
                [run_id],
            )

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

    def documents_writer(self, run_id: int, batch_size: int = 500) -> DocumentWriter:
        return DocumentWriter(self, run_id, batch_size)

    @contextmanager
    def first_ingest(self) -> Iterator[None]:
        """Into a store with no links yet (a first run), links are written without their indexes, which
        are made once at the end: sorting two million keys once costs a fraction of keeping two
        B-trees in order row by row. A run killed meanwhile leaves them to the next open to make."""
        if self.db.execute("select 1 from links limit 1").fetchone() is not None:
            yield
            return
        table = self.db.table(LINKS.name)
        indexes = {tuple(index.columns): index.name for index in table.indexes}
        wanted = [columns for columns in LINKS.indexes if columns in indexes]
        with self.db.conn:
            for columns in wanted:
                self.db.conn.execute(f"drop index [{indexes[columns]}]")
        try:
            yield
        finally:
            for columns in wanted:
                table.create_index(list(columns), index_name=indexes[columns], if_not_exists=True)

    def checks_writer(self, run_id: int, batch_size: int = 500) -> CheckWriter:
        return CheckWriter(self, run_id, batch_size)

    def insert_rows(self, table: _Table[Any], rows: list[Row]) -> None:
        # executemany with the known columns: the hot path of ingesting a large
        # corpus, about 3x faster than sqlite-utils' insert_all, which re-derives
        # columns and types for every batch.
        with self.db.conn:
            self.db.conn.executemany(table.insert_sql, rows)

    def add_checks(self, run_id: int, checks: Iterable[Check]) -> None:
        with self.db.conn:
            for check in checks:
                cursor = self.db.conn.execute(CHECKS.insert_sql, (run_id, *CHECKS.encode(check)))
                self.db.conn.execute("insert or ignore into run_checks values (?, ?)", [run_id, cursor.lastrowid])

    def reuse_checks(self, run_id: int, check_ids: Iterable[int]) -> None:
        """Earlier results this run stands by (within --max-age): pointers, not copies."""
        with self.db.conn:
            self.db.conn.executemany("insert or ignore into run_checks values (?, ?)",
                                     [(run_id, check_id) for check_id in check_ids])  # fmt: skip

    def finding_urls(self, run_id: int, codes: Iterable[Code]) -> list[str]:
        """The URLs (as written) of the run's findings with these codes, each once, in report order."""
        wanted = sorted(code.value for code in codes)
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(
            f"select url from findings where run_id = ? and code in ({marks}) and url is not null "
            "group by url order by min(rowid)",
            [run_id, *wanted],
        )
        return [row[0] for row in rows]

    def archived_copies(self, urls: Iterable[str]) -> dict[str, ArchivedCopy]:
        """The cached archive answer of each URL that has one, however old."""
        rows = self._rows_for(urls, lambda marks: f"select * from archived_copies where url in ({marks})")
        return {row["url"]: ARCHIVED.decode(row) for row in rows}

    def save_archived_copy(self, copy: ArchivedCopy) -> None:
        """Keep an archive answer for later runs, replacing the URL's older one."""
        with self.db.conn:
            self.db.conn.execute(_ARCHIVED_UPSERT, ARCHIVED.encode(copy))

    def attach_archived_copies(
        self, run_id: int, codes: Iterable[Code], answers: Iterable[tuple[Iterable[str], ArchivedCopy]]
    ) -> None:
        """Record each answer on the run's findings with these codes about its URL (in each written form).

        One pass over the run's findings of those codes, whatever the number of answers.
        """
        rows = [(url, FINDINGS.encode_field("archived", copy)) for urls, copy in answers for url in urls]
        if not rows:
            return
        wanted = sorted(code.value for code in codes)
        with self.db.conn:
            self.db.conn.execute("create temp table if not exists archived_for (url text primary key, archived text)")
            self.db.conn.execute("delete from archived_for")
            self.db.conn.executemany("insert or replace into archived_for values (?, ?)", rows)
            self.db.conn.execute(
                "update findings set archived = "
                "(select archived from archived_for where archived_for.url = findings.url) "
                f"where run_id = ? and code in ({','.join('?' * len(wanted))}) "
                "and url in (select url from archived_for)",
                [run_id, *wanted],
            )
            self.db.conn.execute("delete from archived_for")

    def set_archive_lookups(self, run_id: int, lookups: ArchiveLookups) -> None:
        self.db.table("runs").update(run_id, {"archive": RUNS.encode_field("archive", lookups)})

    # -- host probes (soft 404s) ---------------------------------------------
    def add_probes(self, run_id: int, probes: Iterable[tuple[str, Check]]) -> None:
        """Probes this run fetched, by origin: stored as checks, but no URL of the run (never in its counts)."""
        with self.db.conn:
            for origin, check in probes:
                cursor = self.db.conn.execute(CHECKS.insert_sql, (run_id, *CHECKS.encode(check)))
                self.db.conn.execute(
                    "insert or replace into host_probes values (?, ?, ?)", [run_id, origin, cursor.lastrowid]
                )

    def reuse_probes(self, run_id: int, probes: Iterable[tuple[str, int]]) -> None:
        """Earlier probes (origin, check id) this run stands by within --max-age."""
        with self.db.conn:
            self.db.conn.executemany("insert or replace into host_probes values (?, ?, ?)",
                                     [(run_id, origin, check_id) for origin, check_id in probes])  # fmt: skip

    def run_probes(self, run_id: int) -> dict[str, Check]:
        """The probe this run used for each origin it probed."""
        rows = self.db.query(
            "select host_probes.origin as probe_origin, checks.* from host_probes "
            "join checks on checks.id = host_probes.check_id where host_probes.run_id = ?",
            [run_id],
        )
        return {row["probe_origin"]: CHECKS.decode(row) for row in rows}

    def latest_probes(self, origins: Iterable[str]) -> dict[str, Check]:
        """The newest probe of each origin, by any run."""
        rows = self._rows_for(
            origins,
            lambda marks: (
                "select latest.origin as probe_origin, checks.* from checks join (select origin, "
                f"max(check_id) as id from host_probes where origin in ({marks}) group by origin) as latest "
                "on latest.id = checks.id"
            ),
        )
        return {row["probe_origin"]: CHECKS.decode(row) for row in rows}

    _RUN_PAGES = (
        "from run_checks join checks on checks.id = run_checks.check_id where run_checks.run_id = ? "
        "and checks.kind in (?, ?) and checks.ok = 1"
    )

    def answered_page_urls(self, run_id: int) -> Iterator[str]:
        """The URLs of the run's pages (and AMP pages) that answered 2xx, streamed: the hosts worth a probe.

        Read while the run is under way (its own pointers say what it has), as all that judging reads.
        """
        # Under --remap, the address fetched: its host is the one that answered.
        query = f"select coalesce(checks.fetched_url, checks.url) as url {self._RUN_PAGES}"
        for row in self._stream(query, [run_id, Kind.PAGE.value, Kind.AMP.value]):
            yield row["url"]

    def shared_redirects(self, run_id: int, minimum: int) -> Iterator[tuple[str, str, tuple[Hop, ...]]]:
        """(URL, final URL, hops) of the run's answered pages redirected to a final URL that at least
        `minimum` URLs of the run share: the candidates for a site's landing page of removed articles."""
        hops = _column_for("redirects", tuple[Hop, ...])
        shared = (
            f"select checks.final_url {self._RUN_PAGES} and checks.final_url != checks.url "
            "group by checks.final_url having count(distinct checks.url) >= ?"
        )
        params: list[Any] = [run_id, Kind.PAGE.value, Kind.AMP.value]
        rows = self._stream(
            f"select checks.url, checks.final_url, checks.redirects {self._RUN_PAGES} "
            f"and checks.final_url != checks.url and checks.final_url in ({shared})",
            [*params, *params, minimum],
        )
        for row in rows:
            redirects = hops.decode(row["redirects"]) if row["redirects"] is not None else ()
            yield row["url"], row["final_url"], redirects

    # -- reading ------------------------------------------------------------
    def _stream(self, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
        """Rows from a second, read-only connection.

        Long scans (the crawl feed, the judging pass) run while the one writer
        commits; a separate connection keeps the two from disturbing each other,
        and rows are yielded, never listed, so memory stays flat.
        """
        return (dict(row) for row in self._stream_rows(sql, params, sqlite3.Row))

    def _stream_rows(self, sql: str, params: list[Any], factory: Any = None) -> Iterator[Any]:
        """`_stream`'s rows as the connection's `factory` makes them: tuples by default."""
        return _read_only_rows(self.path, sql, params, factory)

    _RUN_LINKS = "from run_documents join links on links.content = run_documents.content where run_documents.run_id = ?"

    def unique_urls(self, run_id: int) -> Iterator[tuple[str, Kind]]:
        """Each normalised URL once, with the kind that asks the most of the fetch, in first-cited order."""
        rows = self._stream(
            "select normalized_url, max(kind = ?) as is_image, min(kind) as kind "
            f"{self._RUN_LINKS} group by normalized_url order by min(run_documents.position), min(links.rowid)",
            [Kind.IMAGE.value, self._documents_run(run_id)],
        )
        for row in rows:
            yield row["normalized_url"], Kind.IMAGE if row["is_image"] else Kind(row["kind"])

    def count_unique_urls(self, run_id: int) -> int:
        documents_run = self._documents_run(run_id)
        if self.db.execute(_EVERY_CONTENT_THE_RUNS.format(run="run_id = ?"), [documents_run]).fetchone()[0]:
            # The normalized_url index counts them without joining each link to the run's documents
            # (0.13 s against 1.6 s for 2 million links).
            return int(self.db.execute("select count(distinct normalized_url) from links").fetchone()[0])
        row = self.db.execute(f"select count(distinct normalized_url) {self._RUN_LINKS}", [documents_run]).fetchone()
        return int(row[0])

    def checked_urls(self, run_id: int) -> set[str]:
        """The URLs this run already has a result for (a resumed run checks only the rest)."""
        rows = self.db.query(
            "select checks.url from run_checks join checks on checks.id = run_checks.check_id "
            "where run_checks.run_id = ?",
            [run_id],
        )
        return {row["url"] for row in rows}

    def latest_outcomes(self, urls: Iterable[str]) -> dict[str, PlannedCheck]:
        """The newest stored check of each URL (any run), only the columns a plan decides by: a scheduled
        run reuses most checks, and decoding each whole (its head, its redirects) cost a quarter of
        planning 15,000 URLs (`checks_by_id` reads the few asked again)."""
        columns = ", ".join(PlannedCheck._fields)
        rows = self._rows_for(
            urls,
            lambda marks: (
                f"select {columns} from checks where id in "
                f"(select max(id) from checks where url in ({marks}) group by url)"
            ),
        )
        return {row["url"]: PlannedCheck._make(_planned_values(row)) for row in rows}

    def checks_by_id(self, ids: Iterable[int]) -> dict[int, Check]:
        """Whole checks by id, read 500 at a time (those a plan asks again, those judging cites)."""
        rows = self._rows_for(ids, lambda marks: f"select * from checks where id in ({marks})")
        return {row["id"]: CHECKS.decode(row) for row in rows}

    def _rows_for(self, keys: Iterable[Key], query: Callable[[str], str]) -> Iterator[dict[str, Any]]:
        """The rows of `query(marks)` for these keys, bound 500 at a time (SQLite caps a statement's parameters)."""
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            yield from self.db.query(query(",".join("?" * len(chunk))), chunk)

    def _checks_mark(self, run_id: int) -> int | None:
        """The newest check a finished run may use (runs.checks_until); None while it runs."""
        row = self.db.execute("select checks_until from runs where id = ?", [run_id]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _checks_used(self, run_id: int) -> tuple[int | None, str, list[Any]]:
        """The run's mark (`_checks_mark`), and the ids of the checks it used as SQL with its parameters.

        One check per URL, the newest: while the run runs, of its own pointers (run_checks); once
        finished, up to its mark, of the URLs its documents cite.
        """
        until = self._checks_mark(run_id)
        if until is None:
            return (
                None,
                (
                    "select max(checks.id) from run_checks join checks on checks.id = run_checks.check_id "
                    "where run_checks.run_id = ? group by checks.url"
                ),
                [run_id],
            )
        cited = (
            "select distinct normalized_url from run_documents join links on links.content = run_documents.content "
            "where run_documents.run_id = ?"
        )
        return (
            until,
            f"select max(id) from checks where id <= ? and url in ({cited}) group by url",
            [
                until,
                self._documents_run(run_id),
            ],
        )

    def checks(self, run_id: int, urls: Iterable[str] | None = None) -> dict[str, Check]:
        """The checks a run used, by URL: all of them, or only the given URLs (bounded memory per document)."""
        wanted = None if urls is None else sorted(set(urls))
        if wanted == []:
            return {}
        until, chosen, params = self._checks_used(run_id)
        if wanted is None:
            rows = self.db.query(f"select * from checks where id in ({chosen})", params)
        elif until is None:
            # Driven by the URLs (the checks(url, id) index), each check then looked up among the run's
            # pointers: never a scan of all the run's pointers per document.
            marks = ",".join("?" * len(wanted))
            rows = self.db.query(
                f"select checks.* from checks where checks.url in ({marks}) and exists (select 1 from run_checks "
                "where run_checks.run_id = ? and run_checks.check_id = checks.id)",
                [*wanted, run_id],
            )
        else:  # only the wanted URLs the run cited (by the links index), not a scan of all it cited
            marks = ",".join("?" * len(wanted))
            rows = self.db.query(
                f"select * from checks where id in (select max(id) from checks where id <= ? and url in ({marks}) "
                "and url in (select links.normalized_url from links join run_documents "
                "on run_documents.content = links.content where run_documents.run_id = ? "
                f"and links.normalized_url in ({marks})) group by url)",
                [until, *wanted, self._documents_run(run_id), *wanted],
            )
        return {row["url"]: CHECKS.decode(row) for row in rows}

    def parsed_files(self, keys: Iterable[str]) -> dict[str, ParsedFile]:
        """What parsing gave for these parse keys earlier, where its content is still stored."""
        rows = self._rows_for(
            keys,
            lambda marks: (
                "select parsed_files.key, parsed_files.content, parsed_files.findings from parsed_files "
                f"join contents on contents.hash = parsed_files.content where parsed_files.key in ({marks})"
            ),
        )
        return {row["key"]: ParsedFile(row["content"], decode_findings(row["findings"])) for row in rows}

    def document_positions(self, run_id: int) -> tuple[int, int]:
        """The first position of the run's documents and one past the last (0, 0 without documents)."""
        query = "select min(position), max(position) from run_documents where run_id = ?"
        low, high = self.db.execute(query, [self._documents_run(run_id)]).fetchone()
        return (0, 0) if low is None else (int(low), int(high) + 1)

    def judging(
        self,
        run_id: int,
        *,
        positions: range | None = None,
        key_of: JudgingKey | None = None,
        window: int = 64,
        keep: int = 8192,
    ) -> Iterator[JudgingInput]:
        """Each document of the run in ingest order, with its references and the checks they cite.

        What `checks(run_id, urls)` gives per document, in one streaming read of the run's links,
        each with the id of the check the run used for its URL (the rule of `checks`). Documents
        cite the same images and related pages over and over: each check is decoded once and kept
        while recently cited (at most `keep`), and those not kept are read a window of documents
        at a time. Memory follows the window and the cache, not the corpus.

        `key_of` names a document's judging by what it reads (its path, content and the check of
        each reference); a document judged before under the same key comes with those findings
        (`judged_documents`) and is neither decoded nor given its checks.
        """
        until = self._checks_mark(run_id)
        if until is None:  # unfinished: the newest of its own pointers, as run_urls
            used = (
                "(select checks.id from checks where checks.url = links.normalized_url and exists (select 1 "
                "from run_checks where run_checks.run_id = ? and run_checks.check_id = checks.id) "
                "order by checks.id desc limit 1)"
            )
            params: list[Any] = [run_id]
        else:  # finished: the newest check of the URL up to the run's mark
            used = "(select max(checks.id) from checks where checks.url = links.normalized_url and checks.id <= ?)"
            params = [until]
        documents_run = self._documents_run(run_id)
        part, bounds = ("", []) if positions is None else (_AT_POSITIONS, [positions.start, positions.stop])
        # Tuples, decoded by position: a run cites every URL twenty times over, and this is every citation.
        rows = self._stream_rows(
            f"select run_documents.path, {used}, {LINKS.selected('links')} {self._RUN_LINKS}{part} "
            "order by run_documents.position, links.rowid",
            [*params, documents_run, *bounds],
        )
        links_by_document = itertools.groupby(rows, key=itemgetter(0))
        pending = next(links_by_document, None)
        url_at = 2 + LINKS.position("normalized_url")
        decoded = DecodedChecks(self, keep)
        documents = self._stream_rows(
            f"select run_documents.path, run_documents.content from run_documents where run_documents.run_id = ?{part} "
            "order by run_documents.position",
            [documents_run, *bounds],
        )
        while batch := list(itertools.islice(documents, window)):
            cited: list[list[Any]] = []
            keys: list[str | None] = []
            for path, content in batch:
                rows_of_document = list(pending[1]) if pending is not None and pending[0] == path else []
                if rows_of_document:
                    pending = next(links_by_document, None)
                cited.append(rows_of_document)
                keys.append(
                    key_of(path, content, [(row[url_at], row[1]) for row in rows_of_document]) if key_of else None
                )
            judged = self.judged(key for key in keys if key is not None)
            unjudged = [(i, path, content) for i, (path, content) in enumerate(batch) if keys[i] not in judged]
            data = self._contents_by_hash(content for _, _, content in unjudged)
            links = {
                i: [(LINKS.decode_values(row[2:], document=path), row[1]) for row in cited[i]]
                for i, path, _ in unjudged
            }
            decoded.load(check_id for pairs in links.values() for _, check_id in pairs if check_id is not None)
            for i, (path, content) in enumerate(batch):
                key = keys[i]
                if key is not None and key in judged:
                    yield JudgingInput(path, key, judged[key], None, [], {})
                    continue
                if content not in data:
                    continue  # its content pruned under it: as the join with contents left it out before
                pairs = links[i]
                checks = {link.normalized_url: decoded[check_id] for link, check_id in pairs if check_id is not None}
                document = CONTENTS.decode(data[content], path=path)
                yield JudgingInput(path, key, None, document, [link for link, _ in pairs], checks)

    def _contents_by_hash(self, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {
            row["hash"]: row
            for row in self._rows_for(hashes, lambda marks: f"select * from contents where hash in ({marks})")
        }

    def judged(self, keys: Iterable[str]) -> dict[str, list[Finding]]:
        """The findings judging gave before under each of these keys, if it did (see `judging`)."""
        rows = self._rows_for(keys, lambda marks: f"select key, findings from judged_documents where key in ({marks})")
        return {row["key"]: decode_findings(row["findings"]) for row in rows}

    def keep_judged(self, run_id: int, judged: Iterable[tuple[str, list[Finding] | None]]) -> None:
        """Keep what judging gave for these keys (None: taken from here, so only marked as used by this run)."""
        fresh, reused = [], []
        for key, findings in judged:
            if findings is None:
                reused.append((run_id, key))
            else:
                fresh.append((key, run_id, encode_findings(findings)))
        with self.db.conn:
            self.db.conn.executemany("insert or replace into judged_documents values (?, ?, ?)", fresh)
            self.db.conn.executemany("update judged_documents set run_id = ? where key = ?", reused)

    def forget_judged(self, run_id: int) -> None:
        """Only the last judging counts: the next run compares its documents with this one's."""
        with self.db.conn:
            self.db.conn.execute("delete from judged_documents where run_id != ?", [run_id])

    def reported_checks(self, run_id: int) -> Iterator[ReportedCheck]:
        """The checks a run used, as `checks(run_id)` picks them (by URL, the newest), for the reports: only
        the columns they show, as rows (`ReportedCheck`), in no order. Decoding 15,000 whole Check records
        (every JSON column made a record) cost the report more than writing most formats."""
        _, chosen, params = self._checks_used(run_id)
        rows = self.db.execute(f"select {', '.join(_REPORTED_COLUMNS)} from checks where id in ({chosen})", params)
        redirects = next(c for c in CHECKS.columns if c.name == "redirects").decode
        for row in rows:
            url, kind, status, ok, reason, message, fetched, final, hops, *rest = row
            try:
                yield ReportedCheck._make((
                    url, _KINDS[kind], status, bool(ok), None if reason is None else _REASONS[reason], message,
                    fetched, final, () if hops is None or hops == "[]" else redirects(hops), *rest,
                ))  # fmt: skip
            except (KeyError, ValueError, TypeError) as exc:
                raise DatabaseError(f"table checks: cannot read the check of {url!r}: {exc!r}") from exc

    def reference_source(self, run_id: int) -> ReferenceSource:
        """The run's references for the reports, read anew (and lean) each time they are needed."""
        return ReferenceSource(self.path, run_id)

    def references_by_url(self, run_id: int) -> Iterator[tuple[str, list[LinkRef]]]:
        """Each normalised URL of the run, in URL order, with its references in document order."""
        rows = self._stream(
            f"select run_documents.path as document_path, links.* {self._RUN_LINKS} "
            "order by links.normalized_url, run_documents.position, links.rowid",
            [self._documents_run(run_id)],
        )
        for url, group in itertools.groupby(rows, key=lambda row: row["normalized_url"]):
            yield url, [LINKS.decode(row, document=row["document_path"]) for row in group]

    def findings(self, run_id: int) -> list[Finding]:
        rows = self.db.query("select * from findings where run_id = ? order by rowid", [run_id])
        return [FINDINGS.decode(row) for row in rows]

    def finding_counts(self) -> dict[int, Counter[Severity]]:
        """Findings per run and severity, in one grouped query."""
        counts: dict[int, Counter[Severity]] = defaultdict(Counter)
        for row in self.db.query("select run_id, severity, count(*) as n from findings group by run_id, severity"):
            counts[row["run_id"]][Severity(row["severity"])] = row["n"]
        return counts

    def url_history(
        self, url: str, before_run: int | None = None, limit: int | None = None
    ) -> list[tuple[int, int, Check]]:
        """(run that used it, run that fetched it, check) for a URL, newest run first."""
        found: list[tuple[int, int, Check]] = []
        runs = self.db.execute(
            "select id from runs where id < ? order by id desc", [before_run if before_run is not None else 2**62]
        ).fetchall()
        for (run_id,) in runs:
            if limit is not None and len(found) >= limit:
                break
            check = self.checks(run_id, [url]).get(url)
            if check is not None:
                fetched_by = self.db.execute("select run_id from checks where id = ?", [check.id]).fetchone()[0]
                found.append((run_id, int(fetched_by), check))
        return found

    def urls_that_failed_before(self, run_id: int) -> set[str]:
        """URLs with a failing check fetched by an earlier run: the only ones whose history can flip.

        A URL a run excluded was not asked, so that run says nothing about it.
        """
        rows = self.db.execute(
            "select distinct url from checks where ok = 0 and reason is not ? and run_id < ?",
            [Reason.EXCLUDED.value, run_id],
        )
        return {row[0] for row in rows}

    def past_verdicts(self, url: str, before_run: int, limit: int) -> list[bool]:
        """Whether each of the most recent earlier runs found the URL ok, newest first (runs that excluded it
        left out)."""
        return [check.ok for _, _, check in self.url_history(url, before_run, limit) if not check.excluded]

    def count_documents(self, run_id: int) -> int:
        query = "select count(*) from run_documents where run_id = ?"
        return int(self.db.execute(query, [self._documents_run(run_id)]).fetchone()[0])

    def count_references(self, run_id: int) -> int:
        return int(self.db.execute(f"select count(*) {self._RUN_LINKS}", [self._documents_run(run_id)]).fetchone()[0])

    # -- merging shards (auditor/merge.py) ----------------------------------------
    @contextmanager
    def attached(self, path: Path) -> Iterator[None]:
        """Another auditor database (a shard's), readable as `shard.` on this connection for the block."""
        self.db.conn.execute("attach database ? as shard", [str(path)])
        try:
            yield
        finally:
            self.db.conn.execute("detach database shard")

    def claim_shard_urls(self, shard_run: int, index: int) -> tuple[str, int] | None:
        """Record the URLs the attached shard's run checked as its own; the first one an earlier shard
        already claimed, with that shard, instead (nothing recorded then)."""
        conn = self.db.conn
        conn.execute("create temp table if not exists claimed (url text primary key, shard integer not null)")
        used = (
            "from shard.run_checks join shard.checks on shard.checks.id = shard.run_checks.check_id "
            "where shard.run_checks.run_id = ?"
        )
        twice = conn.execute(
            "select shard.checks.url, claimed.shard from shard.run_checks "
            "join shard.checks on shard.checks.id = shard.run_checks.check_id "
            "join temp.claimed as claimed on claimed.url = shard.checks.url "
            "where shard.run_checks.run_id = ? limit 1",
            [shard_run],
        ).fetchone()
        if twice is not None:
            return str(twice[0]), int(twice[1])
        with conn:
            conn.execute(f"insert or ignore into temp.claimed select shard.checks.url, ? {used}", [index, shard_run])
        return None

    def unclaimed_url(self, shard_documents: int) -> str | None:
        """A URL the attached shard's documents cite that no claimed shard checked, if there is one."""
        row = self.db.conn.execute(
            "select links.normalized_url from shard.run_documents join shard.links as links "
            "on links.content = shard.run_documents.content where shard.run_documents.run_id = ? "
            "and links.normalized_url not in (select url from temp.claimed) limit 1",
            [shard_documents],
        ).fetchone()
        return None if row is None else str(row[0])

    def copy_shard_documents(self, run_id: int, shard_documents: int) -> None:
        """The attached shard's documents, as this run's: contents (and their links) this store lacks, and
        the run's path -> content rows."""
        conn = self.db.conn
        link_columns = ", ".join(["[content]", *(f"[{c.name}]" for c in LINKS.columns)])
        content_columns = ", ".join(["[hash]", *(f"[{c.name}]" for c in CONTENTS.columns)])
        theirs = "select content from shard.run_documents where run_id = ?"
        with conn:
            # Links first: a content already here has its links already.
            conn.execute(
                f"insert into main.links ({link_columns}) select {link_columns} from shard.links "
                f"where content in ({theirs}) and content not in (select hash from main.contents) order by rowid",
                [shard_documents],
            )
            conn.execute(
                f"insert or ignore into main.contents ({content_columns}) select {content_columns} "
                f"from shard.contents where hash in ({theirs})",
                [shard_documents],
            )
            conn.execute(
                "insert into main.run_documents (run_id, path, content, position) "
                "select ?, path, content, position from shard.run_documents where run_id = ?",
                [run_id, shard_documents],
            )

    def copy_shard_checks(self, run_id: int, shard_run: int) -> None:
        """The checks (and host probes) the attached shard's run used, as this run's.

        A check that is already this store's newest of its URL (the shard reused it within --max-age, and
        an earlier merge brought it here) is pointed at, not copied, so history stays one row per fetch.
        """
        conn = self.db.conn
        columns = ", ".join(f"[{c.name}]" for c in CHECKS.columns)
        with conn:
            conn.execute("create temp table if not exists shard_checks (id integer primary key, out_id integer)")
            conn.execute("delete from temp.shard_checks")
            conn.execute(
                "insert or ignore into temp.shard_checks (id) select check_id from shard.run_checks where run_id = ? "
                "union select check_id from shard.host_probes where run_id = ?",
                [shard_run, shard_run],
            )
            conn.execute(
                "update temp.shard_checks set out_id = (select mine.id from shard.checks as theirs "
                "join main.checks as mine on mine.id = (select max(id) from main.checks where url = theirs.url) "
                "where theirs.id = shard_checks.id and mine.checked_at is theirs.checked_at "
                "and mine.kind is theirs.kind and mine.status is theirs.status)"
            )
            conn.execute(
                f"insert into main.checks ([run_id], {columns}) select ?, {columns} from shard.checks "
                "where id in (select id from temp.shard_checks where out_id is null) order by id",
                [run_id],
            )
            # The shards' URLs are disjoint (claim_shard_urls): a URL has one check of this run.
            conn.execute(
                "update temp.shard_checks set out_id = (select mine.id from shard.checks as theirs "
                "join main.checks as mine on mine.url = theirs.url and mine.run_id = ? "
                "where theirs.id = shard_checks.id) where out_id is null",
                [run_id],
            )
            conn.execute(
                "insert or ignore into main.run_checks select ?, out_id from temp.shard_checks "
                "where id in (select check_id from shard.run_checks where run_id = ?)",
                [run_id, shard_run],
            )
            conn.execute(
                "insert or replace into main.host_probes select ?, probes.origin, copied.out_id "
                "from shard.host_probes as probes join temp.shard_checks as copied on copied.id = probes.check_id "
                "where probes.run_id = ?",
                [run_id, shard_run],
            )

    # -- retention ------------------------------------------------------------
    def prune(self, keep_run_ids: Iterable[int]) -> int:
        """Drop every run not kept, then whatever no kept run references; VACUUM. Returns runs dropped."""
        kept = sorted(set(keep_run_ids))
        marks = ",".join("?" * len(kept)) or "null"
        conn = self.db.conn
        with conn:
            # A kept run sharing a dropped run's documents takes the rows over.
            shared = conn.execute(
                f"select id, documents_of from runs where id in ({marks}) and documents_of not in ({marks}) "
                "order by id",
                [*kept, *kept],
            ).fetchall()
            heirs: dict[int, int] = {}
            for run_id, owner in shared:
                heir = heirs.setdefault(owner, run_id)
                if heir == run_id:
                    conn.execute("update run_documents set run_id = ? where run_id = ?", [run_id, owner])
                conn.execute(
                    "update runs set documents_of = ? where id = ?", [None if heir == run_id else heir, run_id]
                )
            dropped = conn.execute(f"delete from runs where id not in ({marks})", kept).rowcount
            for table in ("run_documents", "run_checks", "findings", "host_probes", "judged_documents"):
                conn.execute(f"delete from {table} where run_id not in ({marks})", kept)
            conn.execute("delete from contents where hash not in (select content from run_documents)")
            conn.execute("delete from links where content not in (select hash from contents)")
            conn.execute("delete from parsed_files where content not in (select hash from contents)")
            conn.execute("create temp table if not exists kept_checks (id integer primary key)")
            conn.execute("delete from kept_checks")
            conn.execute("insert or ignore into kept_checks select check_id from run_checks")
            conn.execute("insert or ignore into kept_checks select check_id from host_probes")
            for run_id in kept:
                conn.executemany(
                    "insert or ignore into kept_checks values (?)",
                    [(check.id,) for check in self.checks(run_id).values()],
                )
            conn.execute("delete from checks where id not in (select id from kept_checks)")
            # An archive answer is about a URL some check failed on; with its last check gone, it goes too.
            conn.execute("delete from archived_copies where url not in (select url from checks)")
        self.db.execute("vacuum")
        return int(dropped)


# (document, field, line, kind, url as written, normalised URL): what the reports show of a reference.
CitedRow = tuple[str, str, int | None, Kind, str, str]
_KINDS = {kind.value: kind for kind in Kind}
_REASONS = {reason.value: reason for reason in Reason}


class ReportedCheck(NamedTuple):
    """A check as the reports read it (`Store.reported_checks`): each field a column of the checks table."""

    url: str
    kind: Kind
    status: int | None
    ok: bool
    reason: Reason | None
    message: str | None
    fetched_url: str | None
    final_url: str | None
    redirects: tuple[Hop, ...]
    content_type: str | None
    width: int | None
    height: int | None
    image_format: str | None
    bytes_read: int | None
    elapsed_ms: int | None
    attempts: int | None
    checked_at: str | None
    head: str | None  # as stored: JSON text


class PlannedCheck(NamedTuple):
    """A stored check as a plan reads it (`Store.latest_outcomes`): enough to reuse it or not."""

    id: int
    url: str
    kind: Kind
    ok: bool
    status: int | None
    reason: Reason | None
    message: str | None
    final_url: str | None
    fetched_url: str | None
    checked_at: str

    @property
    def accepted(self) -> bool:
        return is_accepted(self.ok, self.status)

    @property
    def excluded(self) -> bool:
        return self.reason == Reason.EXCLUDED


def _planned_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    reason = row["reason"]
    return (
        row["id"],
        row["url"],
        Kind(row["kind"]),
        bool(row["ok"]),
        row["status"],
        None if reason is None else Reason(reason),
        row["message"],
        row["final_url"],
        row["fetched_url"],
        row["checked_at"] or "",
    )


# The columns of a ReportedCheck, in its order: the enums and the redirects decoded, the page head as stored.
_REPORTED_COLUMNS = ReportedCheck._fields


@dataclass(frozen=True)
class ReferenceSource:
    """A run's references as the reports read them: streamed, never listed.

    A run of 100,000 documents cites two million URLs; each report format
    reads them once, in the order it writes them, from its own read-only
    connection (so it works from any thread and after the writer closed), as
    plain rows: decoding each into a LinkRef would cost more than the writing.
    """

    path: Path
    run_id: int

    # Whose document rows stand for the run's documents is asked at each read: `prune` may move them.
    _RUN = "run_documents.run_id = (select coalesce(documents_of, id) from runs where id = ?)"
    _FROM = f"from run_documents join links on links.content = run_documents.content where {_RUN}"

    def rows(self, *, by_path: bool = False) -> Iterator[CitedRow]:
        """In citation order (documents as ingested), or by document path (each document's in citation order)."""
        order = "run_documents.path" if by_path else "run_documents.position"
        rows = self._query(
            "select run_documents.path, links.field, links.line, links.kind, links.url, links.normalized_url "
            f"{self._FROM} order by {order}, links.rowid"
        )
        kinds = _KINDS
        for document, field, line, kind, url, normalized in rows:
            yield document, field, line, kinds[kind], url, normalized

    def quoted_rows(self) -> Iterator[tuple[str, str, int | None, str, str, str]] | None:
        """`rows()` in citation order with every text already a JSON string (quotes and escapes made by
        SQLite, in C); None where this SQLite quotes otherwise than Python's json module does."""
        if not _sqlite_quotes_as_json():
            return None
        return self._query(
            "select json_quote(run_documents.path), json_quote(links.field), links.line, json_quote(links.kind), "
            f"json_quote(links.url), json_quote(links.normalized_url) {self._FROM} "
            "order by run_documents.position, links.rowid"
        )

    def cited_urls(self) -> Iterator[str]:
        """Each normalised URL the run cites, once, in sorted order."""
        if next(self._query(_EVERY_CONTENT_THE_RUNS.format(run=self._RUN)))[0]:
            # Read off the normalized_url index, sorted and distinct already: on a first run of 2 million
            # links 0.4 s, where joining each to the run's documents and sorting them took 2 to 7 s.
            sql = "select distinct normalized_url from links order by 1"
            rows = _read_only_rows(self.path, sql, [])
        else:
            rows = self._query(f"select distinct links.normalized_url {self._FROM} order by 1")
        for (url,) in rows:
            yield url

    def counts(self) -> Iterator[tuple[str, int]]:
        """(document, references) for each document with references, by path."""
        yield from self._query(
            "select run_documents.path, (select count(*) from links where links.content = run_documents.content) as n "
            f"from run_documents where {self._RUN} and n > 0 order by run_documents.path"
        )

    def _query(self, sql: str) -> Iterator[Any]:
        return _read_only_rows(self.path, sql, [self.run_id])


# Whether every stored content is the content of one run's documents (`{run}`: the condition on
# run_documents that picks them): so in a first run, or any run of a store of one unchanged corpus.
# Then every link is that run's, and the links' own indexes answer for the run without a join.
_EVERY_CONTENT_THE_RUNS = (
    "select (select count(*) from contents) = (select count(distinct content) from run_documents where {run})"
)


def _read_only_rows(path: Path, sql: str, params: list[Any], factory: Any = None) -> Iterator[Any]:
    """The rows of `sql`, read through a connection of their own that cannot write, closed when they end."""
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    reader.row_factory = factory
    try:
        yield from reader.execute(sql, params)
    finally:
        reader.close()


@functools.cache
def _sqlite_quotes_as_json() -> bool:
    """Whether SQLite's json_quote() writes every character as json.dumps(ensure_ascii=False) does."""
    probe = "".join(map(chr, range(0x80))) + "é\u2028\u2029\ufeff\U0001f600"
    try:
        with closing(sqlite3.connect(":memory:")) as connection:
            quoted = connection.execute("select json_quote(?)", [probe]).fetchone()[0]
    except sqlite3.Error:  # a SQLite without its JSON functions
        return False
    return bool(quoted == json.encoder.encode_basestring(probe))


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


class DecodedChecks:
    """Checks by id, decoded once and kept while recently used (LRU, at most `keep`).

    `load` reads the ids not kept, in one query per 500; `[id]` then gives any id of the last load.
    """

    def __init__(self, store: Store, keep: int) -> None:
        self.store, self.keep = store, keep
        self.kept: OrderedDict[int, Check] = OrderedDict()

    def load(self, check_ids: Iterable[int]) -> None:
        wanted = set(check_ids)
        for check_id in wanted & self.kept.keys():
            self.kept.move_to_end(check_id)
        self.kept.update(self.store.checks_by_id(wanted - self.kept.keys()))
        # The ids just loaded stay (a window may cite more than `keep`); the least recently used go.
        excess = len(self.kept) - max(self.keep, len(wanted))
        for _ in range(excess):
            self.kept.popitem(last=False)

    def __getitem__(self, check_id: int) -> Check:
        return self.kept[check_id]


class CheckWriter:
    """A run's fresh checks, committed in batches, each also recorded as what the run saw for its URL."""

    def __init__(self, store: Store, run_id: int, batch_size: int) -> None:
        self.store, self.run_id, self.batch_size = store, run_id, batch_size
        self.pending: list[Check] = []

    def add(self, check: Check) -> None:
        self.pending.append(check)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            self.store.add_checks(self.run_id, batch)


class DocumentWriter:
    """A run's documents: the path each had in this run, and its content and links if not stored yet."""

    def __init__(self, store: Store, run_id: int, batch_size: int) -> None:
        self.store, self.run_id, self.batch_size = store, run_id, batch_size
        self.pending: list[tuple[str, Row | None, list[Row], str | None]] = []
        self.parsed: list[Row] = []
        self.documents = 0  # written so far: the next one's position

    def add(
        self,
        path: str,
        content: Row | None,
        links: list[Row],
        digest: str | None = None,
        *,
        parsed: tuple[str, list[Finding]] | None = None,
    ) -> None:
        """`digest`: the content's `content_hash`, when the caller has it (the ingest workers make it);
        `content` may be None then, if that content is stored (a parse reused: `Store.parsed_files`).
        `parsed`: the file's parse key and offline findings, to keep for the next run."""
        self.pending.append((path, content, links, digest))
        if parsed is not None:
            key, findings = parsed
            self.parsed.append((key, digest or content_hash(content or ()), encode_findings(findings)))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        parsed, self.parsed = self.parsed, []
        if not batch:
            return
        hashes = [digest or content_hash(content or ()) for _, content, _, digest in batch]
        db = self.store.db
        marks = ",".join("?" * len(hashes))
        known = {row[0] for row in db.conn.execute(f"select hash from contents where hash in ({marks})", hashes)}
        documents: list[Row] = []
        contents: list[Row] = []
        links: list[Row] = []
        for (path, content, content_links, _), digest in zip(batch, hashes, strict=True):
            documents.append((self.run_id, path, digest, self.documents))
            self.documents += 1
            if digest not in known:
                if content is None:
                    raise DatabaseError(f"{path}: its stored content {digest} is gone; audit it again")
                known.add(digest)
                contents.append((digest, *content))
                links += [(digest, *link) for link in content_links]
        # One statement per table for the whole batch: executemany stays in C.
        with db.conn:
            db.conn.executemany("insert or replace into run_documents values (?, ?, ?, ?)", documents)
            db.conn.executemany(CONTENTS.insert_sql, contents)
            db.conn.executemany(LINKS.insert_sql, links)
            db.conn.executemany("insert or replace into parsed_files values (?, ?, ?)", parsed)


def _migrate_from_copies_per_run(db: sqlite_utils.Database) -> None:
    """The first release kept a copy of every document, link and check per run; keep each once.

    Runs keep their ids, checks keep their order; each run points at its
    documents' contents and at its checks. One transaction: a kill midway
    leaves the old layout, migrated again on the next open.
    """
    conn = db.conn
    with conn:
        for old in ("documents", "links", "checks"):
            conn.execute(f"alter table [{old}] rename to [v1_{old}]")
        for spec in (CONTENTS, LINKS, CHECKS):
            columns = ", ".join(
                f"[{name}] {'integer primary key' if name == spec.pk else _SQL_TYPES[kind]}"
                for name, kind in spec.schema().items()
            )
            conn.execute(f"create table [{spec.name}] ({columns})")
        for statement in _JOIN_TABLES:
            conn.execute(statement)
        stored: set[str] = set()
        content_of: dict[tuple[int, str], str] = {}
        content_columns = [c.name for c in CONTENTS.columns]
        query = f"select run_id, path, {', '.join(content_columns)} from v1_documents order by rowid"
        for position, (run_id, path, *content) in enumerate(conn.execute(query).fetchall()):
            digest = content_hash(tuple(content))
            content_of[(run_id, path)] = digest
            conn.execute("insert or replace into run_documents values (?, ?, ?, ?)", [run_id, path, digest, position])
            if digest not in stored:
                stored.add(digest)
                conn.execute(CONTENTS.insert_sql, (digest, *content))
        link_columns = [c.name for c in LINKS.columns]
        old_link_columns = {row[1] for row in conn.execute("pragma table_info(v1_links)")}
        select = ", ".join(name if name in old_link_columns else "null" for name in link_columns)
        # A content's links come from the first document seen with it; later copies are the same.
        linked_by: dict[str, tuple[int, str]] = {}
        for run_id, document, *link in conn.execute(
            f"select run_id, document, {select} from v1_links order by rowid"
        ).fetchall():
            owner = content_of.get((run_id, document))
            if owner is None:
                # Links without their document's row (a run killed between the two writes): keep them
                # under an empty content of their own, so the run still lists its references.
                empty = CONTENTS.encode(Document(document, None, {}))
                owner = content_of[(run_id, document)] = content_hash((f"links of {document}", *empty))
                position = conn.execute("select count(*) from run_documents where run_id = ?", [run_id]).fetchone()[0]
                conn.execute("insert into run_documents values (?, ?, ?, ?)", [run_id, document, owner, position])
                if owner not in stored:
                    stored.add(owner)
                    conn.execute(CONTENTS.insert_sql, (owner, *empty))
            if linked_by.setdefault(owner, (run_id, document)) == (run_id, document):
                conn.execute(LINKS.insert_sql, (owner, *link))
        check_columns = [c.name for c in CHECKS.columns]
        old_check_columns = {row[1] for row in conn.execute("pragma table_info(v1_checks)")}
        select = ", ".join(name if name in old_check_columns else "null" for name in check_columns)
        for row in conn.execute(f"select run_id, {select} from v1_checks order by rowid").fetchall():
            cursor = conn.execute(CHECKS.insert_sql, row)
            conn.execute("insert or ignore into run_checks values (?, ?)", [row[0], cursor.lastrowid])
        for old in ("documents", "links", "checks"):
            conn.execute(f"drop table [v1_{old}]")


_SQL_TYPES = {int: "integer", float: "float", str: "text"}
_ARCHIVED_UPSERT = ARCHIVED.insert_sql.replace("insert into", "insert or replace into", 1)

"""Stage 4: the SQLite store (sqlite-utils) — runs, documents, links, checks, findings.

History is kept: every run adds rows under its own run id, so reports can
compare runs and `flaky-link` can look back. Exactly one `Store` writes during
a run; rows go in through `BatchWriter`s, committed every few hundred rows, so
an interrupted run keeps everything it had checked.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from auditor.errors import DatabaseError

RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"

_SCHEMA: dict[str, dict[str, type]] = {
    "runs": {
        "id": int,
        "mode": str,
        "started_at": str,
        "finished_at": str,
        "status": str,
        "corpus": str,
        "documents": int,
        "references": int,
        "urls": int,
        "tool_version": str,
        "config": str,
    },
    "documents": {"run_id": int, "path": str, "ok": int, "data": str, "lines": str},
    "links": {
        "run_id": int,
        "document": str,
        "item": str,
        "field": str,
        "line": int,
        "kind": str,
        "url": str,
        "normalized_url": str,
        "declared_width": int,
        "declared_height": int,
    },
    "checks": {
        "run_id": int,
        "url": str,
        "kind": str,
        "ok": int,
        "status": int,
        "reason": str,
        "message": str,
        "final_url": str,
        "content_type": str,
        "elapsed_ms": int,
        "checked_at": str,
        "attempts": int,
        "redirects": str,
        "bytes_read": int,
        "width": int,
        "height": int,
        "image_format": str,
        "image_error": str,
        "head": str,
    },
    "findings": {
        "run_id": int,
        "code": str,
        "severity": str,
        "document": str,
        "field": str,
        "line": int,
        "url": str,
        "message": str,
        "expected": str,
        "actual": str,
        "details": str,
    },
}
_INDEXES = {
    "documents": [["run_id", "path"]],
    "links": [["run_id", "normalized_url"], ["run_id", "document"]],
    "checks": [["run_id", "url"], ["url", "run_id"]],
    "findings": [["run_id", "code"]],
}
JSON_COLUMNS = {"redirects", "head", "details", "data", "lines", "corpus", "config"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite_utils.Database(self.path)
            self.db.enable_wal()
            self._ensure_schema()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise DatabaseError(f"cannot use database {self.path}: {exc}") from exc

    def _ensure_schema(self) -> None:
        existing = set(self.db.table_names())
        for name, columns in _SCHEMA.items():
            table = self.db.table(name)
            if name not in existing:
                table.create(columns, pk="id" if name == "runs" else None)
                for index in _INDEXES.get(name, []):
                    table.create_index(index, if_not_exists=True)
            else:
                missing = {c: t for c, t in columns.items() if c not in table.columns_dict}
                for column, column_type in missing.items():
                    table.add_column(column, column_type)

    @classmethod
    def open_existing(cls, path: Path) -> Store:
        """A store for reading a past run: the file must exist and be auditor's (never create one)."""
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
        return cls(path)

    def close(self) -> None:
        self.db.close()

    # -- runs ---------------------------------------------------------------
    def start_run(self, *, mode: str, corpus: list[str], tool_version: str, config: dict[str, Any]) -> int:
        table = self.db.table("runs")
        table.insert(
            {
                "mode": mode,
                "started_at": now_iso(),
                "status": RUNNING,
                "corpus": json.dumps(corpus),
                "tool_version": tool_version,
                "config": json.dumps(config, default=str),
            }
        )
        return int(table.last_pk)

    def finish_run(self, run_id: int, *, status: str, **counts: int) -> None:
        self.db.table("runs").update(run_id, {"status": status, "finished_at": now_iso(), **counts})

    def run(self, run_id: int) -> dict[str, Any]:
        try:
            return _decode(self.db.table("runs").get(run_id))
        except sqlite_utils.db.NotFoundError as exc:
            raise DatabaseError(f"{self.path} has no run {run_id}") from exc

    def runs(self) -> list[dict[str, Any]]:
        return [_decode(row) for row in self.db.query("select * from runs order by id")]

    def latest_run_id(self) -> int:
        row = next(self.db.query("select max(id) as id from runs"), None)
        if not row or row["id"] is None:
            raise DatabaseError(f"{self.path} holds no runs yet")
        return int(row["id"])

    def previous_run_id(self, run_id: int) -> int | None:
        """The run before this one over the same corpus, for 'what changed'."""
        corpus = self.run(run_id)["corpus"]
        for row in self.db.query("select id, corpus from runs where id < ? order by id desc", [run_id]):
            if json.loads(row["corpus"] or "[]") == corpus:
                return int(row["id"])
        return None

    # -- writing ------------------------------------------------------------
    def writer(self, table: str, run_id: int, batch_size: int = 500) -> BatchWriter:
        return BatchWriter(self, table, run_id, batch_size)

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        # executemany with the known columns: the hot path of ingesting a large
        # corpus, about 3x faster than sqlite-utils' insert_all, which re-derives
        # columns and types for every batch.
        columns = [c for c in _SCHEMA[table] if c != "id"]
        sql = f"insert into [{table}] ({', '.join(f'[{c}]' for c in columns)}) values ({', '.join('?' * len(columns))})"
        with self.db.conn:
            self.db.conn.executemany(sql, [tuple(row.get(c) for c in columns) for row in rows])

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

    def unique_urls(self, run_id: int) -> Iterator[tuple[str, str]]:
        """Each normalised URL once, with the kind that asks the most of the fetch."""
        rows = self._stream(
            "select normalized_url, max(kind = 'image') as is_image, min(kind) as kind from links "
            "where run_id = ? group by normalized_url order by min(rowid)",
            [run_id],
        )
        for row in rows:
            yield row["normalized_url"], "image" if row["is_image"] else row["kind"]

    def count_unique_urls(self, run_id: int) -> int:
        row = next(self.db.query("select count(distinct normalized_url) as n from links where run_id = ?", [run_id]))
        return int(row["n"])

    def checks(self, run_id: int, urls: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Checks of a run by URL: all of them, or only the given URLs (bounded memory per document)."""
        if urls is None:
            rows = self.db.query("select * from checks where run_id = ?", [run_id])
        else:
            wanted = sorted(set(urls))
            if not wanted:
                return {}
            marks = ",".join("?" * len(wanted))
            rows = self.db.query(f"select * from checks where run_id = ? and url in ({marks})", [run_id, *wanted])
        return {row["url"]: _decode(row) for row in rows}

    def links(self, run_id: int) -> Iterator[dict[str, Any]]:
        return self._stream("select * from links where run_id = ? order by rowid", [run_id])

    def iter_documents(self, run_id: int) -> Iterator[dict[str, Any]]:
        for row in self._stream("select * from documents where run_id = ? order by rowid", [run_id]):
            yield _decode(row)

    def findings(self, run_id: int) -> list[dict[str, Any]]:
        return [
            _decode(row) for row in self.db.query("select * from findings where run_id = ? order by rowid", [run_id])
        ]

    def finding_counts(self) -> dict[int, Counter[str]]:
        """Findings per run and severity, in one grouped query."""
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        for row in self.db.query("select run_id, severity, count(*) as n from findings group by run_id, severity"):
            counts[row["run_id"]][row["severity"]] = row["n"]
        return counts

    def url_history(self, url: str, before_run: int, limit: int) -> list[dict[str, Any]]:
        """The most recent earlier checks of a URL, newest first."""
        return list(
            self.db.query(
                "select run_id, ok, status, reason from checks where url = ? and run_id < ? "
                "order by run_id desc limit ?",
                [url, before_run, limit],
            )
        )

    def count(self, table: str, run_id: int) -> int:
        row = next(self.db.query(f"select count(*) as n from [{table}] where run_id = ?", [run_id]))
        return int(row["n"])


class BatchWriter:
    """Buffers rows for one table and commits them in batches."""

    def __init__(self, store: Store, table: str, run_id: int, batch_size: int) -> None:
        self.store, self.table, self.run_id, self.batch_size = store, table, run_id, batch_size
        self.pending: list[dict[str, Any]] = []
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(_encode({"run_id": self.run_id, **row}))
        if len(self.pending) >= self.batch_size:
            self.flush()

    def add_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        # Taken before the insert: whatever happens during it, no row is ever offered twice.
        rows, self.pending = self.pending, []
        if rows:
            self.store.insert_rows(self.table, rows)
            self.written += len(rows)


def _encode(row: dict[str, Any]) -> dict[str, Any]:
    # A str in a JSON column is taken as already-encoded JSON (the ingest workers encode).
    return {
        key: json.dumps(value, default=str)
        if key in JSON_COLUMNS and not isinstance(value, (str, type(None)))
        else value
        for key, value in row.items()
    }


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in JSON_COLUMNS & out.keys():
        if isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from auditor.errors import DatabaseError
from auditor.store import FINISHED, RUNNING, Store


def _run(store: Store, corpus: list[str] | None = None) -> int:
    return store.start_run(mode="audit", corpus=corpus or ["seeds"], tool_version="t", config={"fail_on": "error"})


def test_tables_wal_and_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    assert set(store.db.table_names()) >= {"runs", "documents", "links", "checks", "findings"}
    assert store.db.journal_mode == "wal"
    run_id = _run(store)
    checks = store.writer("checks", run_id, batch_size=2)
    checks.add(
        {
            "url": "https://a.example/",
            "kind": "page",
            "ok": 1,
            "status": 200,
            "redirects": [{"status": 301, "url": "https://b.example/"}],
            "head": {"title": "T"},
        }
    )
    checks.flush()
    row = store.checks(run_id)["https://a.example/"]
    assert row["redirects"] == [{"status": 301, "url": "https://b.example/"}]
    assert row["head"] == {"title": "T"}
    assert store.run(run_id)["status"] == RUNNING
    store.finish_run(run_id, status=FINISHED, documents=1, references=2, urls=1)
    assert store.run(run_id)["status"] == FINISHED
    assert store.run(run_id)["corpus"] == ["seeds"]


def test_batches_are_committed_as_they_fill(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    store = Store(path)
    run_id = _run(store)
    writer = store.writer("checks", run_id, batch_size=3)
    for index in range(7):
        writer.add({"url": f"https://e.example/{index}", "kind": "page", "ok": 0})
    # A second connection (another process, or the next run after a kill) sees full batches only.
    other = sqlite3.connect(path)
    assert other.execute("select count(*) from checks").fetchone()[0] == 6
    writer.flush()
    assert other.execute("select count(*) from checks").fetchone()[0] == 7


def test_unique_urls_prefers_image_kind_and_keeps_first_seen_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    links = store.writer("links", run_id)
    for url, kind in [("https://b/", "page"), ("https://a/", "page"), ("https://a/", "image"), ("https://b/", "amp")]:
        links.add({"document": "d", "field": "f", "kind": kind, "url": url, "normalized_url": url})
    links.flush()
    assert list(store.unique_urls(run_id)) == [("https://b/", "amp"), ("https://a/", "image")]


def test_history_and_previous_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    first, other, second = _run(store), _run(store, ["elsewhere"]), _run(store)
    for run_id, ok in ((first, 1), (other, 0), (second, 0)):
        w = store.writer("checks", run_id)
        w.add({"url": "https://x/", "kind": "page", "ok": ok})
        w.flush()
    assert store.previous_run_id(second) == first
    assert store.previous_run_id(first) is None
    assert [row["ok"] for row in store.url_history("https://x/", second, 5)] == [0, 1]
    assert store.latest_run_id() == second


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="junk.sqlite"):
        Store(path)


def test_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    with pytest.raises(DatabaseError, match="no run 42"):
        store.run(42)
    with pytest.raises(DatabaseError, match="no runs"):
        store.latest_run_id()

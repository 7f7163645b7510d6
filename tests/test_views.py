"""The SQL views for sqlite-utils and Datasette: the same answers as the Store API, on runs of the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from conftest import make_check
from test_pipeline import _config, _page_doc, _write

from auditor import pipeline
from auditor.model import Mode
from auditor.store import FINDINGS, LINKS, VIEWS, Store

ROOT = Path(__file__).resolve().parent.parent


def _rows(store: Store, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return list(store.db.query(sql, params or []))


def _assert_views_agree(store: Store) -> None:
    for run in store.runs():
        assert run.id is not None
        used = {url: check.id for url, check in store.checks(run.id).items()}
        rows = _rows(store, "select url, check_id from run_urls where run_id = ?", [run.id])
        assert {row["url"]: row["check_id"] for row in rows} == used, f"run {run.id}"
        assert len(rows) == len(used)  # one row per URL
        documents = _rows(store, "select path from run_documents_resolved where run_id = ? order by position", [run.id])
        assert [row["path"] for row in documents] == [unit.path for unit in store.judging(run.id)]
        links = _rows(store, "select * from run_links where run_id = ? order by document, field", [run.id])
        cited = [link for unit in store.judging(run.id) for link in unit.links]
        expected = sorted(cited, key=lambda link: (link.document, link.field))
        assert [LINKS.decode(row, document=row["document"]) for row in links] == expected
    latest = {}
    for run in store.runs():
        if run.status == "finished":
            latest[(run.mode, run.corpus)] = run.id
    rows = _rows(store, "select * from latest_findings")
    assert {row["run_id"] for row in rows} <= set(latest.values())
    for run_id in latest.values():
        assert [FINDINGS.decode(row) for row in rows if row["run_id"] == run_id] == store.findings(run_id)
    status = {row["url"]: row for row in _rows(store, "select * from url_status")}
    newest = store.latest_outcomes(status)
    assert {url: row["check_id"] for url, row in status.items()} == {url: c.id for url, c in newest.items()}
    assert all(bool(row["ok"]) == newest[url].ok for url, row in status.items())


def test_views_return_what_the_store_api_returns(tmp_path: Path, loopback: Any) -> None:
    fine, gone = loopback.url_for("/ok/views-fine"), loopback.url_for("/status/404/views-gone")
    later = loopback.url_for("/ok/views-later")
    _write(tmp_path / "corpus" / "a.md", _page_doc(fine, gone))
    _write(tmp_path / "corpus" / "b.md", _page_doc(fine))
    _write(tmp_path / "corpus" / "c.md", "---\ntitle: ok\nwebUrl: ftp://x.example/\n---\n")  # lint finds it too
    config = _config(tmp_path, max_age=86_400.0)
    first = pipeline.audit(config)
    pipeline.audit(config)  # the same documents: shares the first run's rows, reuses the fine URL
    pipeline.lint(config)
    _write(tmp_path / "corpus" / "b.md", _page_doc(fine, later))
    last = pipeline.audit(config)
    assert last.report.findings and first.report.findings
    store = Store(config.db)
    try:
        runs = store.runs()
        assert [r.mode for r in runs] == [Mode.AUDIT, Mode.AUDIT, Mode.LINT, Mode.AUDIT]
        assert runs[1].documents_of == runs[0].id and all(r.checks_until for r in runs)
        # An unfinished run: its own pointers, a fresh check and a reused one.
        run_id = store.start_run(mode=Mode.AUDIT, corpus=["elsewhere"], tool_version="test", config={})
        store.add_checks(run_id, [make_check(url=gone, ok=False, status=500)])
        store.reuse_checks(run_id, [store.checks(runs[-1].id or 0)[fine].id or 0])
        _assert_views_agree(store)
        assert {row["run_id"] for row in _rows(store, "select run_id from run_urls")} == {r.id for r in store.runs()}
        assert _rows(store, "select ok, status from url_status where url = ?", [gone]) == [{"ok": 0, "status": 500}]
        assert {row["run_id"] for row in _rows(store, "select run_id from latest_findings")} == {runs[2].id, runs[3].id}
        # Pruning moves shared documents to the kept run; the views follow.
        store.prune([runs[1].id or 0, runs[3].id or 0, run_id])
        _assert_views_agree(store)
    finally:
        store.close()


def test_views_are_made_anew_only_when_their_sql_changed(tmp_path: Path) -> None:
    db = tmp_path / "audit.sqlite"
    Store(db).close()
    store = Store(db)
    version = store.db.execute("pragma schema_version").fetchone()[0]
    store.db.execute("drop view url_status")
    store.db.execute("create view url_status as select 1 as url")  # as an older release made it
    store.close()
    store = Store(db)
    try:
        assert store.db.execute("pragma schema_version").fetchone()[0] > version
        assert "checked_at" in store.db.view("url_status").columns_dict
        version = store.db.execute("pragma schema_version").fetchone()[0]
    finally:
        store.close()
    store = Store(db)
    try:
        assert store.db.execute("pragma schema_version").fetchone()[0] == version  # nothing to do: untouched
        assert set(VIEWS) <= set(store.db.view_names())
    finally:
        store.close()


def test_datasette_metadata_describes_what_the_database_has(tmp_path: Path) -> None:
    metadata = yaml.safe_load((ROOT / "metadata.yml").read_text())
    store = Store(tmp_path / "audit.sqlite")
    try:
        (database,) = metadata["databases"].values()
        described = database["tables"]
        assert set(described) == set(store.db.table_names()) | set(store.db.view_names())
        for name, table in described.items():
            assert table["description"].strip(), name
            columns = (store.db.table(name) if name in store.db.table_names() else store.db.view(name)).columns_dict
            assert set(table.get("columns", {})) <= set(columns), name
            for option in ("sort", "sort_desc", "label_column"):
                assert table.get(option) in (None, *columns), (name, option)
            assert set(table.get("facets", [])) <= set(columns), name
    finally:
        store.close()

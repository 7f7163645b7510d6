from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import make_check, make_link

from auditor.corpus import Document
from auditor.errors import DatabaseError
from auditor.model import Check, Code, Evidence, Finding, Hop, Kind, Mode, PageHead, Reason, RunStatus, Severity
from auditor.store import CONTENTS, FINDINGS, LINKS, ReferenceSource, Store


def _run(store: Store, corpus: list[str] | None = None) -> int:
    return store.start_run(mode=Mode.AUDIT, corpus=corpus or ["seeds"], tool_version="t", config={"fail_on": "error"})


def test_tables_wal_and_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    assert set(store.db.table_names()) >= {
        "runs",
        "contents",
        "run_documents",
        "links",
        "checks",
        "run_checks",
        "findings",
    }
    assert store.db.journal_mode == "wal"
    run_id = _run(store)
    checks = store.checks_writer(run_id, batch_size=2)
    written = make_check(redirects=[{"status": 301, "url": "https://b.example/"}], head={"title": "T"})
    checks.add(written)
    checks.flush()
    check = store.checks(run_id)["https://a.example/"]
    assert check == dataclasses.replace(written, id=check.id) and check.id is not None
    assert check.redirects == (Hop(301, "https://b.example/"),)
    assert check.head == PageHead(title="T")
    assert store.run(run_id).status is RunStatus.RUNNING
    store.finish_run(run_id, status=RunStatus.FINISHED, documents=1, references=2, urls=1)
    assert store.run(run_id).status is RunStatus.FINISHED
    assert store.run(run_id).corpus == ("seeds",)


def test_stored_values_are_the_plain_strings(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    findings = store.writer(FINDINGS, run_id)
    findings.add(
        Finding(
            code=Code.DEAD_LINK,
            document="d.md",
            field="webUrl",
            line=3,
            message="m",
            severity=Severity.ERROR,
            details=Evidence(reason="dns"),
        )
    )
    findings.flush()
    code, severity, details = store.db.execute("select code, severity, details from findings").fetchone()
    assert (code, severity, json.loads(details)["reason"]) == ("dead-link", "error", "dns")
    assert store.findings(run_id)[0].code is Code.DEAD_LINK


def test_batches_are_committed_as_they_fill(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    store = Store(path)
    run_id = _run(store)
    writer = store.checks_writer(run_id, batch_size=3)
    for index in range(7):
        writer.add(make_check(url=f"https://e.example/{index}", ok=False))
    # A second connection (another process, or the next run after a kill) sees full batches only.
    other = sqlite3.connect(path)
    assert other.execute("select count(*) from checks").fetchone()[0] == 6
    writer.flush()
    assert other.execute("select count(*) from checks").fetchone()[0] == 7


def test_unique_urls_prefers_image_kind_and_keeps_first_seen_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    cited = [("https://b/", Kind.PAGE), ("https://a/", Kind.PAGE), ("https://a/", Kind.IMAGE), ("https://b/", Kind.AMP)]
    documents = store.documents_writer(run_id)
    for index, (url, kind) in enumerate(cited):
        content = CONTENTS.encode(Document(f"d{index}", {"n": index}, {}))
        documents.add(f"d{index}", content, [LINKS.encode(make_link(document="d", field="f", kind=kind, url=url))])
    documents.flush()
    assert list(store.unique_urls(run_id)) == [("https://b/", "amp"), ("https://a/", "image")]


def test_history_and_previous_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    first, other, second = _run(store), _run(store, ["elsewhere"]), _run(store)
    for run_id, ok in ((first, True), (other, False), (second, False)):
        w = store.checks_writer(run_id)
        w.add(make_check(url="https://x/", ok=ok))
        w.flush()
    assert store.previous_run_id(second) == first
    assert store.previous_run_id(first) is None
    assert store.past_verdicts("https://x/", second, 5) == [False, True]
    assert store.latest_run_id() == second


def test_a_database_of_the_first_release_opens_and_reads(tmp_path: Path) -> None:
    """Tables as 0.1.0 created them: a documents.ok column since dropped, no image columns in checks."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(
            """
            create table runs (id integer primary key, mode text, started_at text, finished_at text, status text,
                corpus text, documents integer, [references] integer, urls integer, tool_version text, config text);
            create table documents (run_id integer, path text, ok integer, data text, lines text);
            create table links (run_id integer, document text, item text, field text, line integer, kind text,
                url text, normalized_url text, declared_width integer, declared_height integer);
            create table checks (run_id integer, url text, kind text, ok integer, status integer, reason text,
                message text, final_url text, content_type text, elapsed_ms integer, checked_at text,
                attempts integer, redirects text, head text);
            create table findings (run_id integer, code text, severity text, document text, field text,
                line integer, url text, message text, expected text, actual text, details text);
            insert into runs values (1, 'audit', '2026-01-01T00:00:00+00:00', '2026-01-01T00:01:00+00:00',
                'finished', '["seeds"]', 1, 1, 1, '0.1.0', '{"fail_on": "error"}');
            insert into documents values (1, 'a.md', 1, '{"title": "T"}', '{"title": 2}');
            insert into checks values (1, 'https://a.example/', 'page', 0, null, 'dns', 'no such name', null,
                null, 12, '2026-01-01T00:00:30+00:00', 1, '[]', null);
            insert into findings values (1, 'dead-link', 'error', 'a.md', 'webUrl', 3, 'https://a.example/',
                'dead link: dns', null, null, '{"reason": "dns", "status": null}');
            """
        )
    store = Store.open_existing(path)
    run = store.run(1)
    assert (run.mode, run.status, run.corpus, run.documents) == (Mode.AUDIT, RunStatus.FINISHED, ("seeds",), 1)
    (unit,) = store.judging(1)
    document = unit.document
    assert document is not None
    assert (document.path, document.data, document.line("title")) == ("a.md", {"title": "T"}, 2)
    check = store.checks(1)["https://a.example/"]
    assert isinstance(check, Check) and (check.ok, check.reason, check.width) == (False, "dns", None)
    (finding,) = store.findings(1)
    assert (finding.code, finding.severity) == (Code.DEAD_LINK, Severity.ERROR)
    assert finding.details == Evidence(reason="dns")
    assert json.loads(store.db.execute("select config from runs").fetchone()[0]) == {"fail_on": "error"}


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


def test_a_reopened_run_keeps_its_own_rows_again(tmp_path: Path) -> None:
    """A run compacted at finish, then stopped while writing reports, resumes with rows of its own."""
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    documents = store.documents_writer(run_id)
    link = make_link(url="https://x/")
    documents.add("d.md", CONTENTS.encode(Document("d.md", {"t": 1}, {})), [LINKS.encode(link)])
    documents.flush()
    checks = store.checks_writer(run_id)
    checks.add(make_check(url="https://x/", ok=False))
    checks.flush()
    store.finish_run(run_id, status=RunStatus.FINISHED)
    assert store.run(run_id).checks_until is not None and not store.checked_urls(run_id)
    store.reopen_run(run_id)
    assert store.run(run_id).checks_until is None
    documents = store.documents_writer(run_id)
    documents.add("d.md", CONTENTS.encode(Document("d.md", {"t": 1}, {})), [LINKS.encode(link)])
    documents.flush()
    checks = store.checks_writer(run_id)
    checks.add(make_check(url="https://x/", ok=True))
    checks.flush()
    assert store.checks(run_id)["https://x/"].ok  # the new check, not the one before the reopen


def test_a_run_that_excluded_a_url_says_nothing_of_its_health(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    failing, excluded_only = "https://a.example/", "https://b.example/"
    first = _run(store)
    store.add_checks(first, [make_check(url=failing, ok=False, status=404)])
    second = _run(store)
    left_out = Check(url=failing, kind=Kind.PAGE, ok=False, reason=Reason.EXCLUDED, message="matches x", attempts=0)
    store.add_checks(second, [left_out, dataclasses.replace(left_out, url=excluded_only)])
    third = _run(store)
    assert store.urls_that_failed_before(third) == {failing}  # an excluded record is no failure
    assert store.past_verdicts(failing, third, 5) == [False]  # the second run is skipped, not a ✗
    (stored,) = [check for _, _, check in store.url_history(failing, third) if check.excluded]
    assert (stored.reason, stored.message, stored.attempts) == (Reason.EXCLUDED, "matches x", 0)


def test_host_probes_are_checks_of_their_own_never_urls_of_the_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    first = _run(store)
    documents = store.documents_writer(first)
    documents.add("d.md", CONTENTS.encode(Document("d.md", {"t": 1}, {})), [LINKS.encode(make_link(url="https://x/a"))])
    documents.flush()
    pages = store.checks_writer(first)
    pages.add(make_check(url="https://x/a"))
    pages.flush()
    probe = make_check(url="https://x/0123-auditor-probe", kind=Kind.PROBE, ok=False, status=404)
    store.add_probes(first, [("https://x", probe)])
    assert set(store.checks(first)) == {"https://x/a"}  # an unfinished run's URLs...
    assert store.run_probes(first) == {
        "https://x": dataclasses.replace(probe, id=store.run_probes(first)["https://x"].id)
    }
    store.finish_run(first, status=RunStatus.FINISHED)
    assert set(store.checks(first)) == {"https://x/a"}  # ...and a finished one's
    assert set(store.run_probes(first)) == {"https://x"}  # kept past the finish

    second = _run(store)
    newer = make_check(url="https://x/4567-auditor-probe", kind=Kind.PROBE, status=200)
    store.add_probes(second, [("https://x", newer)])
    third = _run(store)
    latest = store.latest_probes(["https://x", "https://y"])
    assert set(latest) == {"https://x"} and latest["https://x"].url == newer.url
    store.reuse_probes(third, [("https://x", latest["https://x"].id or 0)])
    assert store.run_probes(third)["https://x"].url == newer.url
    # prune keeps the probes the kept runs used, however old, and drops the rest.
    store.prune([third])
    assert store.db.execute("select url from checks where kind = 'probe'").fetchall() == [(newer.url,)]
    assert store.run_probes(third)["https://x"].url == newer.url


def test_answered_pages_and_shared_redirects_of_a_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    landing = "https://x/archive"
    checks = store.checks_writer(run_id)
    for check in (
        make_check(url="https://x/1", final_url=landing, redirects=[{"status": 301, "url": "https://x/1"}]),
        make_check(url="https://x/2", final_url=landing, redirects=[{"status": 302, "url": "https://x/2"}]),
        make_check(url="https://x/3", final_url="https://x/elsewhere"),
        make_check(url="https://y/amp", kind=Kind.AMP),
        make_check(url="https://z/gone", ok=False, status=404),
        make_check(url="https://z/photo.png", kind=Kind.IMAGE),
    ):
        checks.add(check)
    checks.flush()
    assert sorted(store.answered_page_urls(run_id)) == ["https://x/1", "https://x/2", "https://x/3", "https://y/amp"]
    shared = sorted(store.shared_redirects(run_id, 2))
    assert shared == [
        ("https://x/1", landing, (Hop(301, "https://x/1"),)),
        ("https://x/2", landing, (Hop(302, "https://x/2"),)),
    ]
    assert list(store.shared_redirects(run_id, 3)) == []


def _link_indexes(store: Store) -> set[tuple[str, ...]]:
    return {tuple(index.columns) for index in store.db.table("links").indexes}


def test_a_first_ingest_makes_the_link_indexes_once_at_the_end(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    try:
        run_id = store.start_run(mode=Mode.LINT, corpus=["c"], tool_version="t", config={})
        documents = store.documents_writer(run_id)
        with store.first_ingest():
            assert _link_indexes(store) == set()  # a store with no links yet: none kept in order row by row
            documents.add("c/a.md", CONTENTS.encode(Document("c/a.md", {}, {})), [LINKS.encode(make_link())])
            documents.flush()
        assert _link_indexes(store) == {("content",), ("normalized_url",)}
        with store.first_ingest():  # links are there now: the indexes stay
            assert _link_indexes(store) == {("content",), ("normalized_url",)}
    finally:
        store.close()


def test_the_link_indexes_are_back_after_a_first_ingest_that_failed(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    try:
        with pytest.raises(RuntimeError), store.first_ingest():
            raise RuntimeError("a broken ingest")
        assert _link_indexes(store) == {("content",), ("normalized_url",)}
        with store.db.conn:  # as if killed during a first ingest: the next open makes them
            store.db.conn.execute("drop index idx_links_content")
    finally:
        store.close()
    reopened = Store(tmp_path / "a.sqlite")
    try:
        assert _link_indexes(reopened) == {("content",), ("normalized_url",)}
    finally:
        reopened.close()


def test_judging_gives_each_document_the_checks_the_run_used(tmp_path: Path) -> None:
    """Documents in ingest order, their links, and per URL the check `checks` gives: read by windows of
    two documents, with a cache of one check (evicted ones are read again), before and after finishing."""
    store = Store(tmp_path / "a.sqlite")
    store.add_checks(_run(store), [make_check(url="https://shared/", ok=False)])  # another run's: not used
    run_id = _run(store)
    cited = {"a.md": ["https://shared/", "https://a/"], "b.md": [], "c.md": ["https://c/", "https://shared/"]}
    cited["d.md"] = ["https://a/", "https://unchecked/"]
    documents = store.documents_writer(run_id)
    for path, urls in cited.items():
        links = [LINKS.encode(make_link(document=path, url=url, line=n)) for n, url in enumerate(urls)]
        documents.add(path, CONTENTS.encode(Document(path, {"p": path}, {})), links)
    documents.flush()
    urls = ["https://shared/", "https://a/", "https://c/"]
    store.add_checks(run_id, [make_check(url=url, status=200 + n) for n, url in enumerate(urls)])
    store.add_checks(run_id, [make_check(url="https://a/", status=299)])  # checked again (--resume): the newest
    expected = [
        ("a.md", cited["a.md"], {"https://shared/": 200, "https://a/": 299}),
        ("b.md", [], {}),
        ("c.md", cited["c.md"], {"https://c/": 202, "https://shared/": 200}),
        ("d.md", cited["d.md"], {"https://a/": 299}),
    ]

    def judged(keep: int) -> list[tuple[str, list[str], dict[str, int | None]]]:
        return [
            (unit.path, [link.url for link in unit.links], {url: check.status for url, check in unit.checks.items()})
            for unit in store.judging(run_id, window=2, keep=keep)
        ]

    assert judged(keep=1) == judged(keep=100) == expected
    for _path, urls, statuses in expected:
        assert {url: check.status for url, check in store.checks(run_id, urls).items()} == statuses
    every = {url: check.status for url, check in store.checks(run_id).items()}
    assert every == {"https://shared/": 200, "https://a/": 299, "https://c/": 202}  # the newest of each URL
    assert sorted(check.status for check in store.reported_checks(run_id)) == [200, 202, 299]
    store.finish_run(run_id, status=RunStatus.FINISHED)
    assert {url: check.status for url, check in store.checks(run_id).items()} == every
    assert judged(keep=1) == expected  # by the run's mark now, not its pointers


def _as_reported(check: Check) -> tuple[object, ...]:
    """A check as `reported_checks` gives it: the columns the reports show, the head as stored."""
    head = None if check.head is None else json.dumps(dataclasses.asdict(check.head))
    return (check.url, check.kind, check.status, check.ok, check.reason, check.message, check.fetched_url,
            check.final_url, check.redirects, check.content_type, check.width, check.height, check.image_format,
            check.bytes_read, check.elapsed_ms, check.attempts, check.checked_at, head)  # fmt: skip


def test_the_reports_read_the_checks_a_run_used_lean(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    documents = store.documents_writer(run_id)
    links = [LINKS.encode(make_link(url=url)) for url in ("https://x/", "https://y/")]
    documents.add("d.md", CONTENTS.encode(Document("d.md", {"t": 1}, {})), links)
    documents.flush()
    redirected = make_check(url="https://x/", status=301, redirects=[{"status": 301, "url": "https://z/"}])
    page = make_check(url="https://y/", head={"title": "T é", "published_source": "json-ld"}, fetched_url="https://m/")
    store.add_checks(run_id, [make_check(url="https://x/", ok=False, reason=Reason.DNS), redirected, page])

    def reported() -> list[tuple[object, ...]]:
        return sorted(store.reported_checks(run_id), key=lambda row: str(row[0]))

    running = reported()  # the run's own rows: the newest check of each URL
    assert running == sorted(map(_as_reported, store.checks(run_id).values()), key=lambda row: str(row[0]))
    assert [row[8] for row in running] == [(Hop(301, "https://z/"),), ()]
    store.finish_run(run_id, status=RunStatus.FINISHED)  # compacted: the newest check up to its mark
    store.add_checks(_run(store), [make_check(url="https://y/", ok=False)])  # a later run's: never this one's
    assert reported() == running
    store.db.execute("update checks set kind = 'telepathy' where url = 'https://x/'")
    with pytest.raises(DatabaseError, match="cannot read the check of 'https://x/'"):
        reported()


def test_a_plan_reads_the_newest_check_of_each_url_as_the_whole_check_says(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")
    run_id = _run(store)
    store.add_checks(run_id, [make_check(url="https://a/", status=None, ok=False, reason=Reason.RESET)])
    store.add_checks(
        run_id,
        [
            make_check(url="https://a/", status=403, ok=True, final_url="https://a/x", etag='"1"', head={"title": "T"}),
            make_check(url="https://b/", ok=False, reason=Reason.EXCLUDED, message="--exclude b", checked_at=""),
        ],
    )
    planned = store.latest_outcomes(["https://a/", "https://b/", "https://unknown/"])
    assert planned.keys() == {"https://a/", "https://b/"}
    whole = store.checks_by_id(outcome.id for outcome in planned.values())
    assert whole[planned["https://a/"].id].status == 403  # the newest of the URL's two checks
    for url, outcome in planned.items():
        check = whole[outcome.id]
        assert (check.id, check.url) == (outcome.id, url)
        assert (outcome.id, outcome.kind, outcome.ok, outcome.status, outcome.reason, outcome.message) == (
            check.id, check.kind, check.ok, check.status, check.reason, check.message
        )  # fmt: skip
        assert (outcome.final_url, outcome.fetched_url, outcome.checked_at) == (
            check.final_url, check.fetched_url, check.checked_at
        )  # fmt: skip
        assert (outcome.accepted, outcome.excluded) == (check.accepted, check.excluded)
    assert planned["https://a/"].accepted and planned["https://b/"].excluded


def test_unique_urls_are_counted_and_listed_per_run_whether_or_not_the_store_holds_other_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite")

    def listed(run_id: int) -> list[str]:  # as the reports list them, through a reader of their own
        return list(ReferenceSource(store.path, run_id).cited_urls())

    def ingest(cited: dict[str, list[str]]) -> int:
        run_id = _run(store)
        documents = store.documents_writer(run_id)
        for path, urls in cited.items():
            links = [LINKS.encode(make_link(document=path, url=url, line=n)) for n, url in enumerate(urls)]
            documents.add(path, CONTENTS.encode(Document(path, {"urls": urls}, {})), links)
        documents.flush()
        return run_id

    # a.md and c.md have the same content: its links are stored once.
    first = ingest({"a.md": ["https://x/", "https://y/"], "b.md": ["https://y/"], "c.md": ["https://x/", "https://y/"]})
    # Every stored content is this run's: counted and listed from the links alone.
    assert (store.count_unique_urls(first), listed(first)) == (2, ["https://x/", "https://y/"])
    second = ingest({"d.md": ["https://y/", "https://z/", "https://w/"]})
    # The store holds another run's links now: each run's are found by its documents.
    assert (store.count_unique_urls(first), listed(first)) == (2, ["https://x/", "https://y/"])
    assert (store.count_unique_urls(second), listed(second)) == (3, ["https://w/", "https://y/", "https://z/"])

"""Benchmark (not a test): a 20,000-finding report in headless Chromium.

Builds a store with a generated run (and a previous run, so "new"/"fixed"
exist), renders report.html from it, opens it from disk in Debian's Chromium
and prints how long rendering, loading and filtering take.

    .venv/bin/python bench/report_20k.py [--findings 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from auditor.corpus import Document
from auditor.model import Check, Code, Evidence, Finding, Hop, Kind, LinkRef, Mode, RunStatus, Severity
from auditor.report import build_report
from auditor.report.html import render_html
from auditor.store import CONTENTS, FINDINGS, LINKS, Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS

CODES = [
    ("dead-link", "error"),
    ("link-blocked", "warning"),
    ("redirect", "warning"),
    ("image-size-mismatch", "error"),
    ("title-mismatch", "warning"),
    ("amp-cache-mismatch", "error"),
]
FIELDS = [
    "webUrl",
    "originalUrl",
    "ampWebUrl",
    "cdnAmpWebUrl",
    "images[0].url",
    "related[0].webUrl",
    "related[0].images[0].url",
    "related[1].webUrl",
    "related[1].ampWebUrl",
    "related[2].webUrl",
]


def generate(db: Path, findings: int) -> tuple[Store, int]:
    """Two runs over one corpus: the second has `findings` findings, 10 per document."""
    store = Store(db)
    documents = max(1, findings // len(FIELDS))
    run_ids = []
    for run_number in range(2):
        run_id = store.start_run(mode=Mode.AUDIT, corpus=["corpus"], tool_version="bench", config={"fail_on": "error"})
        texts, checks, found = (
            store.documents_writer(run_id),
            store.checks_writer(run_id),
            store.writer(FINDINGS, run_id),
        )
        for d in range(documents):
            document = f"corpus/{d // 1000:03d}/article-{d:06d}.txt"
            links = []
            for f, field in enumerate(FIELDS):
                host = f"host{(d * 7 + f) % 250}.example"
                url = f"https://{host}/news/{d}/{field.replace('[', '').replace(']', '').replace('.', '-')}"
                line = 5 + f * 3
                link = LinkRef(document=document, item="", field=field, line=line, kind=Kind.PAGE, url=url,
                               normalized_url=url)  # fmt: skip
                links.append(LINKS.encode(link))
                code, severity = CODES[(d + f) % len(CODES)]
                status = {"dead-link": 404, "link-blocked": 403}.get(code, 200)
                checks.add(Check(url=url, kind=Kind.PAGE, ok=status == 200, status=status,
                                 elapsed_ms=50 + (d * 13 + f) % 900))  # fmt: skip
                if run_number == 0 and d % 10 == 0:
                    continue  # these become "new" in the second run
                redirects = (Hop(301, url),) if code == "redirect" else ()
                evidence = Evidence(reason="ok" if status == 200 else f"http {status}", status=status,
                                    final_url=url + "/final" if redirects else None, redirects=redirects)  # fmt: skip
                found.add(
                    Finding(
                        code=Code(code),
                        severity=Severity(severity),
                        document=document,
                        field=field,
                        line=line,
                        url=url,
                        message=f"{code} on {field} of article {d}",
                        expected=f"Expected title {d}" if code == "title-mismatch" else None,
                        actual=f"Actual title {d}" if code == "title-mismatch" else None,
                        details=evidence,
                    )
                )
            texts.add(document, CONTENTS.encode(Document(document, {"title": f"article {d}"}, {})), links)
        for writer in (texts, checks, found):
            writer.flush()
        store.finish_run(
            run_id,
            status=RunStatus.FINISHED,
            documents=documents,
            references=documents * len(FIELDS),
            urls=documents * len(FIELDS),
        )
        run_ids.append(run_id)
    return store, run_ids[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="write report.html here instead of a temporary directory")
    args = parser.parse_args()
    chromium = CHROMIUM or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        store, run_id = generate(Path(tmp) / "bench.sqlite", args.findings)
        generated = time.perf_counter()
        report = build_report(store, run_id)
        modelled = time.perf_counter()
        html = render_html(report)
        rendered = time.perf_counter()
        page_path = out / "report.html"
        page_path.write_text(html, encoding="utf-8")
        data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
        embedded = len(data[1].encode()) / 1e6 if data else 0.0
        print(
            f"findings: {len(report.findings)}; report.html: {len(html.encode()) / 1e6:.1f} MB "
            f"(embedded JSON {embedded:.2f} MB)"
        )
        print(
            f"generate store {generated - started:.2f}s, build model {modelled - generated:.2f}s, "
            f"render HTML {rendered - modelled:.2f}s"
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(page_path.as_uri(), wait_until="commit")
            page.wait_for_selector("html[data-findings-ready=true]", state="attached")
            findings_ready = time.perf_counter() - t0
            page.wait_for_selector("html[data-ready=true]", state="attached")
            all_ready = time.perf_counter() - t0
            page.wait_for_load_state("load")
            loaded = time.perf_counter() - t0
            rows_before = page.locator("#findings-app tbody tr").count()
            status = "#findings-app .pager .status"
            status_before = page.inner_text(status)

            # Filter actions, timed inside the page from the event to the table being redrawn
            # (the handlers are synchronous, so dispatchEvent returns after the redraw).
            filter_ms = page.evaluate("""() => {
                const select = document.getElementById('filter-code');
                select.selectedIndex = 1;
                const t = performance.now();
                select.dispatchEvent(new Event('change'));
                return performance.now() - t;
            }""")
            status_code = page.inner_text(status)
            t1 = time.perf_counter()
            page.fill("#filter-search", "article 1234")
            page.wait_for_function(
                "before => document.querySelector('#findings-app .pager .status').textContent !== before",
                arg=status_code,
            )
            search_s = time.perf_counter() - t1
            status_search = page.inner_text(status)
            sort_ms = page.evaluate("""() => {
                document.getElementById('filter-search').value = '';
                document.getElementById('filter-code').selectedIndex = 0;
                document.getElementById('filter-code').dispatchEvent(new Event('change'));
                const button = document.querySelectorAll('#findings-app th button.sort')[2];
                const t = performance.now();
                button.click();
                return performance.now() - t;
            }""")
            nav = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                return {domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }""")
            browser.close()
        print(
            f"Chromium (from navigation): findings table usable {findings_ready:.2f}s, all tables {all_ready:.2f}s, "
            f"load event {loaded:.2f}s (in-page: DOMContentLoaded {nav['domContentLoaded']:.0f} ms, "
            f"load {nav['load']:.0f} ms)"
        )
        print(f"rows in the DOM: {rows_before}; {status_before}")
        print(f"filter by code: {filter_ms:.0f} ms -> {status_code}")
        print(
            f"search typed (includes the 120 ms debounce and Playwright round trips): {search_s * 1000:.0f} ms "
            f"-> {status_search}"
        )
        print(f"sort all findings by 'where': {sort_ms:.0f} ms")
        print(f"console errors: {errors or 'none'}")
        return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

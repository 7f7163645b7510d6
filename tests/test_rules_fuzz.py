"""Property: no document shape can crash link extraction or the offline rules."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.corpus import Document
from auditor.links import extract_links
from auditor.rules import document_findings, page_findings

FIELDS = ["title", "webUrl", "originalUrl", "ampWebUrl", "cdnAmpWebUrl", "images", "related", "provider",
          "domain", "url", "width", "height", "publishedDateTime", "quality", "published", "topics", "isCached"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(["https://a.example/x", "http://bücher.ch/", "javascript:alert(1)", "https://", "//x",
                     "https://a.example:99999/", "2020-09-22T22:36:00Z", "a.example", ""]),
    st.datetimes(timezones=st.just(timezone.utc)),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(FIELDS), children, max_size=6)),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(FIELDS), values, max_size=10)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_document_shape_is_judged_without_crashing(data: dict[str, Any]) -> None:
    document = Document(path="fuzz.md", data=data, lines={"": 2})
    refs, problems = extract_links(document)
    findings = document_findings(document) + problems
    assert all(f.document == "fuzz.md" and f.code for f in findings)
    checks = {ref.normalized: {"ok": True, "status": 200, "final_url": ref.normalized,
                               "head": {"amphtml": "/x", "canonical": 5, "title": "t", "og_title": None,
                                        "published_time": datetime.now(timezone.utc).isoformat()}}
              for ref in refs}
    page_findings(document, checks)

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import corpus
from auditor.config import ParseLimits
from auditor.corpus import iter_corpus_files, iter_documents, load_document, parse_document
from auditor.errors import InputPathError

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_6e5f9b61bd50d890.txt"


def test_seed_document_has_a_line_for_every_field() -> None:
    document = load_document(SEED)
    assert document.problems == ()
    assert document.data is not None
    assert document.data["provider"]["domain"] == "govtech.com"
    assert document.line("title") == 3
    assert document.line("webUrl") == 7
    assert document.line("images[0].url") == 24
    assert document.line("images[0].width") == 25
    assert document.line("related[2].cdnAmpWebUrl") == 67
    assert document.line("related[1].images[0].url") == 58


def test_line_falls_back_to_the_nearest_parent() -> None:
    document = parse_document("x.md", "---\ntitle: a\nimages:\n  - url: http://a/\n---\n")
    assert document.line("images[0].width") == 4
    assert document.line("nothing.here") == 2  # the first line of the front matter


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (b"just text\n", 1, "no YAML front matter"),
        (b"---\ntitle: a\n", 1, "not closed"),
        (b"---\ntitle: a\nwebUrl: [unclosed\nother: 1\n---\n", 4, "not valid YAML"),
        (b"---\n- a\n- b\n---\n", 2, "must be a mapping"),
        (b"---\n---\nbody\n", None, "must be a mapping"),
        (b"---\ntitle: caf\xe9\n---\n", 2, "not valid UTF-8"),
    ],
)
def test_broken_files_become_invalid_metadata(tmp_path: Path, content: bytes, line: int | None, fragment: str) -> None:
    path = tmp_path / "broken.md"
    path.write_bytes(content)
    document = load_document(path)
    assert document.data is None
    (problem,) = document.problems
    assert problem.code == "invalid-metadata"
    assert fragment in problem.message
    if line is not None:
        assert problem.line == line
    assert problem.document.endswith("broken.md")


@pytest.mark.parametrize(
    ("front", "line", "fragment"),
    [
        # A C1 control character in an excerpt: a Windows-1252 em dash decoded as Latin-1.
        (
            'title: t\nwebUrl: https://a.example/\nexcerpt: "approach\x97no lockdown"\n',
            4,
            "control character U+0097 (probably a mis-decoded '—') at column 19",
        ),
        ('title: café 😀\nexcerpt: "a\x01b"\n', 3, "control character U+0001 at column 12"),
    ],
)
def test_control_character_is_reported_on_its_own_line(front: str, line: int, fragment: str) -> None:
    # PyYAML's reader error carries no line; the finding must still point at the character.
    (problem,) = parse_document("d.md", f"---\n{front}---\nbody\n").problems
    assert (problem.code, problem.line) == ("invalid-metadata", line)
    assert fragment in problem.message


def test_unreadable_file_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "dir.md"
    path.mkdir()
    document = load_document(path)
    assert document.problems[0].code == "invalid-metadata"
    assert "cannot read" in document.problems[0].message


def test_walks_recursively_and_picks_corpus_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "one.txt").write_text("---\ntitle: 1\n---\n")
    (tmp_path / "a" / "two.md").write_text("---\ntitle: 2\n---\n")
    (tmp_path / "a" / "three.yml").write_text("---\ntitle: 3\n---\n")  # front matter by content
    (tmp_path / "a" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.md").write_text("---\ntitle: no\n---\n")
    names = [p.name for p in iter_corpus_files([tmp_path])]
    assert names == ["three.yml", "two.md", "one.txt"] or sorted(names) == ["one.txt", "three.yml", "two.md"]
    assert "x.md" not in names and "image.png" not in names


def test_missing_path_fails_before_any_document(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("---\ntitle: 1\n---\n")
    documents = iter_documents([tmp_path, tmp_path / "missing"])
    with pytest.raises(InputPathError, match="missing"):
        next(documents)


def test_documents_are_streamed_lazily(tmp_path: Path) -> None:
    for index in range(3):
        (tmp_path / f"{index}.md").write_text(f"---\ntitle: t{index}\n---\n")
    documents = iter_documents([tmp_path])
    first = next(documents)
    (tmp_path / "2.md").write_text("---\ntitle: changed\n---\n")
    assert first.data == {"title": "t0"}
    assert [d.data["title"] for d in documents] == ["t1", "changed"]


def test_fast_builder_agrees_with_pyyaml_safe_load() -> None:
    import yaml

    front = (
        "title: t\nn: 3\nf: 2.5\nneg: -1\nhex: 0x1f\nyes_no: true\nnothing: ~\nwhen: 2020-09-22T22:36:00Z\n"
        "day: 2020-09-22\nquoted: '42'\nlist: [1, two, 3.0]\nbase: &base {a: 1, b: 2}\nmerged:\n  <<: *base\n"
        "  c: 3\nalias: *base\nnested:\n  - x: {y: [z]}\nset: !!set {a, b}\n"
    )
    document = parse_document("d.md", f"---\n{front}---\n")
    assert document.data == yaml.safe_load(front)
    assert document.line("nested[0].x.y[0]") == 19
    assert document.line("merged") == 14


def test_alias_cycles_and_deep_nesting_are_findings() -> None:
    document = parse_document("d.md", "---\na: &x [*x]\n---\n")
    assert document.data is None and "deeper" in document.problems[0].message
    deep = "a: " + "[" * 40 + "]" * 40 + "\n"
    assert parse_document("d.md", f"---\n{deep}---\n").problems[0].code == "invalid-metadata"


def test_billion_laughs_is_one_finding_at_the_field_that_expands(billion_laughs: str) -> None:
    document = parse_document("laughs.md", billion_laughs)
    assert document.data is None
    (problem,) = document.problems
    assert problem.code == "invalid-metadata"
    # a..e build 9 + 81 + ... + 59,049 values; f is where 100,000 is crossed (line 8 of the file).
    assert (problem.field, problem.line) == ("f", 8)
    assert "more than 100,000 values" in problem.message and "max_values" in problem.message


def test_aliases_count_each_time_they_are_expanded() -> None:
    front = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    assert parse_document("d.md", f"---\n{front}---\n", ParseLimits(max_values=20)).data is not None
    # 1 mapping + 2 keys + a (4) + b (1 + 3 * 4) = 20 values: over a bound of 19.
    limited = parse_document("d.md", f"---\n{front}---\n", ParseLimits(max_values=19))
    assert limited.data is None and limited.problems[0].field == "b"


def test_a_large_string_repeated_by_aliases_is_bounded_in_characters() -> None:
    front = f's: &s "{"x" * 100_000}"\nl: [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s]\n'
    document = parse_document("d.md", f"---\n{front}---\n", ParseLimits(max_built_chars=500_000))
    (problem,) = document.problems
    assert (problem.field, problem.line) == ("l", 3)
    assert "more than 500,000 characters" in problem.message


def test_merge_keys_and_other_exotic_values_are_counted_too() -> None:
    front = "a: &a {k: [1, 2, 3, 4, 5, 6, 7, 8]}\nb: !!set {x, y}\nc:\n  <<: *a\n"
    assert parse_document("d.md", f"---\n{front}---\n").data == {
        "a": {"k": [1, 2, 3, 4, 5, 6, 7, 8]},
        "b": {"x", "y"},
        "c": {"k": [1, 2, 3, 4, 5, 6, 7, 8]},
    }
    limited = parse_document("d.md", f"---\n{front}---\n", ParseLimits(max_values=20))
    assert limited.data is None and limited.problems[0].field == "c"


def test_front_matter_over_the_size_bound_is_not_read_further(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    with path.open("w") as handle:
        handle.write("---\ntitle: huge\nexcerpt: >\n")
        handle.writelines(f"  line {index} of a long excerpt\n" for index in range(2_000))
        handle.write("---\n")
    document = load_document(path, ParseLimits(max_front_matter_bytes=10_000))
    (problem,) = document.problems
    assert "larger than 10,000 bytes" in problem.message and "max_front_matter_bytes" in problem.message
    assert problem.line == path.read_text()[:10_001].count("\n") + 1  # the line that crosses the bound
    assert load_document(path).data is not None  # the default bound is a megabyte


def test_a_huge_body_and_a_line_without_end_are_never_read_whole(tmp_path: Path) -> None:
    body = tmp_path / "body.md"
    with body.open("wb") as handle:
        handle.write(b"---\ntitle: t\n---\n")
        handle.truncate(3 * 1024 * 1024 * 1024)  # a 3 GB sparse body of zero bytes
    assert load_document(body).data == {"title": "t"}
    endless = tmp_path / "endless.md"
    with endless.open("wb") as handle:
        handle.write(b"---\ntitle: ")
        handle.truncate(3 * 1024 * 1024 * 1024)
    (problem,) = load_document(endless).problems
    assert (problem.line, "larger than 1,048,576 bytes" in problem.message) == (2, True)


_PIECES = [
    b"---",
    b"----",
    b"--- ",
    b"---\r",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b"\x0c",
    b"\x0b",
    b"a: b",
    b"\xef\xbb\xbf",
    b"-",
]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=25),
    st.integers(min_value=1, max_value=200),
    st.one_of(st.integers(min_value=1, max_value=40), st.just(64 * 1024)),
)
def test_front_matter_read_in_one_block_is_what_reading_line_by_line_gives(
    parts: list[bytes], limit: int, block: int
) -> None:
    data = b"".join(parts)

    def outcome(read: object) -> tuple[str, object]:
        try:
            return ("read", read())  # type: ignore[operator]
        except corpus._TooLarge as too_large:
            return ("too large", too_large.line)

    path = Path(corpus.__file__).parent  # any directory: the file is faked below
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(corpus, "_FIRST_READ", block)  # small blocks: every way of falling back is taken
        patch.setattr(Path, "open", lambda self, mode="r": io.BytesIO(data))
        fast = outcome(lambda: corpus._read_front_matter(path, limit))
    assert fast == outcome(lambda: corpus._read_lines(io.BytesIO(data), limit))


def test_values_are_what_pyyaml_s_own_safe_loader_makes() -> None:
    front = (
        "a: 1\nb: '1'\nc: 1.5\nd: true\ne: ~\nf: 2020-01-02T03:04:05Z\ng: 0o17\nh: .inf\ni: yes\nj: 'yes'\n"
        "k: [1, '2', {x: null}]\nl: !!str 12\nm: 2020-01-02\nn: 1_000\no: -0x1F\n"
    )
    for _ in range(2):  # the second time, the tags of plain values come from what the first remembered
        document = parse_document("a.md", f"---\n{front}---\n")
        assert document.data == yaml.load(front, Loader=yaml.SafeLoader)


def test_display_path_resolves_links_and_stays_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("---\n---\n")
    (tmp_path / "linked").symlink_to(tmp_path / "docs")
    (tmp_path / "file-link.md").symlink_to(tmp_path / "docs" / "a.md")
    monkeypatch.chdir(tmp_path)
    cases = ["docs/a.md", "linked/a.md", "file-link.md", "./docs/a.md", "docs/../docs/a.md", "gone.md", "docs", "."]
    for case in [*cases, str(tmp_path / "linked" / "a.md"), "/etc/hostname"]:
        assert corpus.display_path(Path(case)) == corpus._display_path(Path(case)), case
    assert corpus.display_path(Path("linked/a.md")) == "docs/a.md"
    monkeypatch.chdir(tmp_path / "docs")  # the same directory seen from elsewhere: nothing stale is kept
    assert corpus.display_path(Path("../linked/a.md")) == "a.md"
    assert corpus.display_path(Path("/etc/hostname")) == "/etc/hostname"

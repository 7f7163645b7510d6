from __future__ import annotations

from auditor.simhash import MAX_CHARS, distance, simhash

NOT_FOUND = "Page not found | Example News\nSorry, the page you were looking for does not exist. Try the search."
ARTICLE = "Mayor resigns | Example News\nThe mayor of Springfield resigned on Tuesday after months of pressure."


def test_the_same_words_give_the_same_hash() -> None:
    first = simhash(NOT_FOUND)
    assert first is not None and len(first) == 16
    assert simhash(NOT_FOUND) == first
    # Case, spacing, punctuation and compatibility forms are not words.
    assert simhash(NOT_FOUND.upper().replace(" ", "  ").replace(".", "!")) == first
    assert simhash("ＰＡＧＥ not found") == simhash("page not found")


def test_near_equal_texts_are_a_few_bits_apart_and_unrelated_ones_about_half() -> None:
    echoed = simhash(NOT_FOUND + " /2019/05/removed-story")  # a page that echoes the path asked for
    unrelated = simhash(ARTICLE)
    base = simhash(NOT_FOUND)
    assert base and echoed and unrelated
    assert distance(base, echoed) <= 10
    assert distance(base, unrelated) >= 16
    assert distance(base, base) == 0


def test_a_text_without_words_has_no_hash_and_only_the_first_kib_counts() -> None:
    assert simhash("") is None
    assert simhash(" | — … ") is None
    head = "word " * (MAX_CHARS // 5 + 1)  # past the first KiB already
    assert simhash(head + "tail words that come too late") == simhash(head + "other words entirely")

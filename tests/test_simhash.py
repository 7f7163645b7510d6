from __future__ import annotations

import random

from auditor.simhash import MAX_CHARS, _majority, distance, simhash

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


def test_the_bit_sliced_vote_is_the_majority_of_each_bit() -> None:
    rng = random.Random(11)
    for count in [1, 2, 3, 4, 7, 8, 9, 63, 64, 65, 300]:
        hashes = [rng.getrandbits(64) for _ in range(count)]
        hashes[: count // 3] = [hashes[0]] * (count // 3)  # ties and near-ties in many bits
        expected = sum(1 << bit for bit in range(64) if sum(value >> bit & 1 for value in hashes) > count / 2)
        assert _majority(hashes, count) == expected

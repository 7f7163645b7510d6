"""A similarity hash of a short text: near-equal texts get hashes a few bits apart.

Charikar's simhash (as Manku, Jain and Das Sarma used it for near-duplicate web
pages, WWW 2007): every feature of the text is hashed to 64 bits; each bit of
the result is the majority vote of that bit over all features. Changing a few
features moves a few bits, so the Hamming distance between two hashes
estimates how different the texts are, and two unrelated texts land about 32
bits apart.

Features here are the text's words (casefolded, NFKC) and its pairs of
adjacent words, so both the vocabulary and some of the order count; only the
first `MAX_CHARS` characters are read, so the cost is bounded whatever a page
puts in its head.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

BITS = 64
MAX_CHARS = 1024
_WORD = re.compile(r"\w+")


def simhash(text: str) -> str | None:
    """The text's 64-bit simhash as 16 hex digits; None for a text without words."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text[:MAX_CHARS]).casefold())
    if not words:
        return None
    # Each feature counts once: a word repeated down the text does not outvote the rest.
    features = list(dict.fromkeys(words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]))
    return f"{_majority(map(_hash64, features), len(features)):016x}"


def _majority(hashes: Iterable[int], count: int) -> int:
    """The bits set in more than half of `count` hashes.

    Counted bit-sliced: `planes[i]` holds bit i of all 64 counters at once, so adding a hash is a
    ripple of a few whole-integer ANDs and XORs rather than 64 additions (a page's head is hashed
    on every fetch). The counters are then compared with count // 2 + 1 the same way, from the
    most significant bit down.
    """
    planes: list[int] = []
    for value in hashes:
        carry = value
        for i, plane in enumerate(planes):
            planes[i] = plane ^ carry
            carry &= plane
            if not carry:
                break
        if carry:
            planes.append(carry)
    threshold = count // 2 + 1
    above, equal = 0, (1 << BITS) - 1
    for i in reversed(range(max(len(planes), threshold.bit_length()))):
        plane = planes[i] if i < len(planes) else 0
        if threshold >> i & 1:
            equal &= plane
        else:
            above |= equal & plane
            equal &= ~plane
    return above | equal


def _hash64(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")


def distance(a: str, b: str) -> int:
    """Bits in which two hashes differ: 0 for the same text, about 32 for unrelated ones."""
    return (int(a, 16) ^ int(b, 16)).bit_count()

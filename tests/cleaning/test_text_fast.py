"""normalize_text's printable-ASCII fast path equals its general route."""

from __future__ import annotations

import random
import string

import pytest

from cleaning.text import _normalize_full, normalize_text

CASES = [
    "", " ", "   ", "abc", "  a  b  ", "NULL", "n/a", "-", "13912345678", "139 1234 5678",
    "Zhang.Wei@Huawei.COM", "2024-03-15", "a\\b", "~!@#$%^&*()_+{}|:\"<>?`-=[];',./",
    "ACME Co., Ltd.", " x ", "a b", "1.2", "(010) 6275-1234 ext 8",
]  # fmt: skip


@pytest.mark.parametrize("text", CASES)
def test_fast_path_equals_full_route(text: str) -> None:
    assert normalize_text(text) == _normalize_full(text)


def test_fast_path_on_random_printable_ascii() -> None:
    rng = random.Random(5)
    alphabet = string.printable[:95]  # the printable ASCII characters incl. the space
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert normalize_text(text) == _normalize_full(text), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a\tb", "a b"), ("\x00ab\x7f", "ab"), ("a\x1fb", "ab"), ("ＡＢ", "AB"), ("臺灣", "台湾")],
)
def test_non_printable_or_non_ascii_take_the_full_route(text: str, expected: str) -> None:
    assert normalize_text(text) == expected

"""normalize_text's printable-ASCII fast path equals its general route."""

from __future__ import annotations

import random
import string

import pytest

from cleaning.text import _normalize_full, normalize_text, normalize_texts

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


def test_bulk_normalize_texts_equals_one_by_one() -> None:
    """One OpenCC call over newline-joined texts converts each exactly as alone."""
    rng = random.Random(9)
    pieces = ["臺灣", "積體電路", "製造", "股份有限公司", "發展", "後來", "乾淨", "頭髮", "ＡＢＣ",
              " ", "\u200b", "（北京）", "“引號”", "—", "abc", "\t", "\n", "么", "於", "里程",
              "裡面", "㐀", "丽", "\uf900", "臺北市信義區", "著名", "範圍", "鐘錶"]  # fmt: skip
    values: list[str | None] = [
        "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 6))) for _ in range(3000)
    ]
    values += [None, "", "  ", "NULL", "無", "暫無"]
    assert normalize_texts(values) == [normalize_text(v) for v in values]


def test_bulk_ascii_fast_path_equals_one_by_one() -> None:
    """The Arrow route of printable-ASCII values gives ``normalize_text``'s texts, mixed in."""
    rng = random.Random(11)
    alphabet = string.printable[:95] + "   \t\x7f\x00é臺"  # mostly printable ASCII, some not
    values: list[str | None] = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 10))) for _ in range(5000)
    ]
    values += [*CASES, None, "\ud800"]  # a lone surrogate: Arrow refuses it, one by one then
    assert normalize_texts(values) == [normalize_text(v) for v in values]
    assert normalize_texts(values[:-1]) == [normalize_text(v) for v in values[:-1]]

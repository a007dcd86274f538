"""Labelled dates: every unambiguous form to ISO (100 %), ambiguity resolved per source, flags."""

from __future__ import annotations

import pytest

from cleaning import infer_date_order, parse_date

UNAMBIGUOUS: list[tuple[str, str]] = [
    ("2024-03-15", "2024-03-15"),
    ("2024/3/15", "2024-03-15"),
    ("2024/03/15", "2024-03-15"),
    ("2024.3.15", "2024-03-15"),
    ("2024.03.15", "2024-03-15"),
    ("2024年3月15日", "2024-03-15"),
    ("2024年03月15日", "2024-03-15"),
    ("2024 年 3 月 15 日", "2024-03-15"),
    ("2024年3月15号", "2024-03-15"),
    ("二〇二四年三月十五日", "2024-03-15"),
    ("二零二四年十二月三十一日", "2024-12-31"),
    ("20240315", "2024-03-15"),
    ("２０２４－０３－１５", "2024-03-15"),
    ("2024-03-15 10:30:00", "2024-03-15"),
    ("2024-03-15T10:30:00", "2024-03-15"),
    ("2024-03-15T10:30:00Z", "2024-03-15"),
    ("2024-03-15T10:30:00+08:00", "2024-03-15"),
    ("2024/3/15 9:05", "2024-03-15"),
    ("2024-03-15 10:30:00.123", "2024-03-15"),
    ("15/03/2024", "2024-03-15"),
    ("15-03-2024", "2024-03-15"),
    ("15.03.2024", "2024-03-15"),
    ("03/15/2024", "2024-03-15"),
    ("3/15/2024", "2024-03-15"),
    ("31/12/2023", "2023-12-31"),
    ("12/31/2023", "2023-12-31"),
    ("05/05/2024", "2024-05-05"),
    ("15 Mar 2024", "2024-03-15"),
    ("15-Mar-2024", "2024-03-15"),
    ("15th March 2024", "2024-03-15"),
    ("March 15, 2024", "2024-03-15"),
    ("Mar 15 2024", "2024-03-15"),
    ("Sept 1, 2023", "2023-09-01"),
    ("45366", "2024-03-15"),
    ("45366.75", "2024-03-15"),
    ("43831", "2020-01-01"),
    ("1710460800", "2024-03-15"),
    ("1710460800000", "2024-03-15"),
    ("1704038400", "2024-01-01"),  # 2023-12-31T16:00Z is 2024-01-01 in China
    ("2024-02-29", "2024-02-29"),
]

FLAGGED: list[tuple[str, str]] = [
    ("2024-02-30", "date_impossible"),
    ("2023-02-29", "date_impossible"),
    ("2024-13-01", "date_impossible"),
    ("2024年4月31日", "date_impossible"),
    ("32/13/2024", "date_impossible"),
    ("1899-01-01", "date_out_of_range"),
    ("2150-01-01", "date_out_of_range"),
    ("04/05/2024", "date_ambiguous"),
    ("04/05/24", "date_ambiguous"),
    ("2024-03", "date_incomplete"),
    ("2024年3月", "date_incomplete"),
    ("soon", "date_unparsed"),
    ("13912345678", "date_unparsed"),
    ("Foo 15, 2024", "date_unparsed"),
]


@pytest.mark.parametrize(("raw", "iso"), UNAMBIGUOUS)
def test_unambiguous_forms(raw: str, iso: str) -> None:
    assert parse_date(raw) == (iso, None)


def test_unambiguous_accuracy_is_total() -> None:
    assert sum(parse_date(raw)[0] == iso for raw, iso in UNAMBIGUOUS) == len(UNAMBIGUOUS)


@pytest.mark.parametrize(("raw", "issue"), FLAGGED)
def test_flagged(raw: str, issue: str) -> None:
    assert parse_date(raw) == (None, issue)


@pytest.mark.parametrize(
    ("raw", "order", "iso"),
    [
        ("04/05/2024", "dmy", "2024-05-04"),
        ("04/05/2024", "mdy", "2024-04-05"),
        ("04/05/24", "dmy", "2024-05-04"),
        ("04/05/99", "mdy", "1999-04-05"),
        ("15/03/2024", "mdy", None),  # declared order wins; month 15 does not exist
    ],
)
def test_declared_order(raw: str, order: str, iso: str | None) -> None:
    assert parse_date(raw, order)[0] == iso  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "order"),
    [
        (["15/03/2024", "01/02/2024", None], "dmy"),
        (["03/15/2024", "01/02/2024"], "mdy"),
        (["01/02/2024", "2024-03-15"], "auto"),
        (["15/03/2024", "03/15/2024"], "auto"),  # contradictory evidence: never guessed
        ([], "auto"),
    ],
)
def test_infer_order(values: list[str | None], order: str) -> None:
    assert infer_date_order(values) == order


def test_absent_is_not_an_issue() -> None:
    assert parse_date(None) == (None, None)
    assert parse_date("  ") == (None, None)

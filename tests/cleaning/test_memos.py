"""The per-value memos are found, emptied, and parsing after it gives the same answers."""

from __future__ import annotations

from cleaning import normalize_email, parse_address, parse_company_name, parse_date
from cleaning.divisions import division_index
from cleaning.memos import clear_value_memos, value_memos


def _answers() -> tuple[object, ...]:
    return (
        parse_address("广东省深圳市南山区科技园路1号"),
        parse_company_name("深圳市腾飞科技有限公司"),
        normalize_email(" Zhang.San@Example.COM "),
        parse_date("2024/3/5"),
    )


def test_clearing_drops_the_parsed_answers_and_keeps_them_equal() -> None:
    before = _answers()
    held = sum(memo.cache_info().currsize for memo in value_memos())
    assert held >= 4

    dropped = clear_value_memos()

    assert dropped == held
    assert all(memo.cache_info().currsize == 0 for memo in value_memos())
    assert _answers() == before


def test_reference_table_loaders_are_kept() -> None:
    division_index()
    names = {memo.__qualname__ for memo in value_memos()}
    assert "division_index" not in names
    assert {"parse_address", "parse_company_name", "normalize_email", "parse_date"} <= names
    clear_value_memos()
    assert division_index.cache_info().currsize == 1

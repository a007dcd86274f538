"""How the console reads a query and the search keys of a name (table-driven)."""

from __future__ import annotations

import pytest

from console import name_keys, parse_query

QUERIES = [
    {"text": "張偉", "kind": "name", "key": "张伟"},
    {"text": "深圳金福", "kind": "name", "key": "深圳金福"},
    {"text": "Zhang Wei", "kind": "pinyin", "key": "zhangwei"},
    {"text": "szjf", "kind": "pinyin", "key": "szjf"},
    {"text": "138-0013 8000", "kind": "phone", "key": "13800138000"},
    {"text": "+86 21 6888 1234", "kind": "phone", "key": "862168881234"},
    {"text": "Li.Na@Example.COM", "kind": "email", "key": "li.na@example.com"},
    {"text": "91440300MA5F1234X7", "kind": "credit_code", "key": "91440300MA5F1234X7"},
    {"text": "c20261124001", "kind": "customer_id", "key": "C20261124001"},
    {"text": "sales:KH10000003", "kind": "record_key", "key": "sales:KH10000003"},
    {"text": "  ", "kind": "empty", "key": ""},
]


@pytest.mark.parametrize("case", QUERIES, ids=lambda c: c["text"])
def test_parse_query(case: dict) -> None:
    query = parse_query(case["text"])
    assert (query.kind, query.key) == (case["kind"], case["key"])


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("深圳金福", ("深圳金福", "shenzhenjinfu", "szjf")),
        ("臺灣華信", ("台湾华信", "taiwanhuaxin", "twhx")),  # traditional → simplified first
        ("ABC(北京)", ("abc(北京)", "abc(beijing)", "abc(bj)")),
    ],
)
def test_name_keys(name: str, keys: tuple[str, str, str]) -> None:
    assert name_keys(name) == keys

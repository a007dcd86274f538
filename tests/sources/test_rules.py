"""Table-driven rules: header normalization, header-row detection, encodings, Excel cell text."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from sources import CANONICAL_FIELDS, detect_encoding, normalize_header
from sources.headers import detect_header_row, resolve_headers, unique_headers
from sources.read_excel import cell_text

CONTRACTS = Path(__file__).parents[2] / "docs" / "contracts.md"


def test_canonical_fields_match_the_contract_table() -> None:
    text = CONTRACTS.read_text(encoding="utf-8")
    table = text.split("## Canonical fields")[1].split("##")[0]
    first_cells = re.findall(r"^\| (.+?) \|", table, flags=re.M)
    documented = [name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)]
    assert list(CANONICAL_FIELDS) == documented


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("客户名称", "客户名称"),
        (" 客户 名称\u3000", "客户名称"),
        ("ＥＭＡＩＬ", "email"),
        ("E-Mail", "e-mail"),
        ("*客户名称：", "客户名称"),
        ("\ufeff客户编号", "客户编号"),
        ("手机\u200b", "手机"),
        (None, "none"),
    ],
)
def test_normalize_header(header: object, expected: str) -> None:
    assert normalize_header(header) == expected


def test_unique_headers_fill_blanks_and_number_repeats() -> None:
    assert unique_headers(["电话", "", " 电话 ", None]) == [
        "电话",
        "column_2",
        "电话_2",
        "column_4",
    ]


def test_aliases_are_tried_in_order_and_one_header_feeds_two_fields() -> None:
    aliases = {
        "phone": ["手机", "联系电话"],
        "registered_date": ["签约日期"],
        "txn_date": ["签约日期"],
    }
    mapping = resolve_headers(["联系电话", "手机", "签约日期", "备注"], aliases)
    assert mapping.fields == {
        "phone": "手机",
        "registered_date": "签约日期",
        "txn_date": "签约日期",
    }
    assert mapping.unmapped == ["联系电话", "备注"]
    assert mapping.missing(["customer_name", "phone"]) == ["customer_name"]


ALIASES = {"customer_name": ["客户名称"], "phone": ["手机"], "email": ["邮箱"]}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["客户名称", "手机"], ["a", "1"]], 0),
        ([["客户清单", "", ""], ["", "", ""], ["客户名称", "手机", "邮箱"]], 2),
        ([["导出人：客户名称"], ["客户名称", "手机"]], 1),  # title mentioning one header
        ([["编号", "名称"], ["1", "a"]], 0),  # nothing matches: first non-blank row
        ([["", ""], ["x", "客户名称"], ["客户名称", "手机"]], 2),
    ],
)
def test_detect_header_row(rows: list[list[str]], expected: int) -> None:
    assert detect_header_row(rows, ALIASES) == expected


CHINESE = "客户编号,客户名称,地址\nK001,北京星辰科技有限公司,北京市海淀区中关村大街1号\n" * 3


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (CHINESE.encode("utf-8-sig"), "utf-8-sig"),
        (CHINESE.encode("gbk"), "gb18030"),
        (CHINESE.encode("gb18030"), "gb18030"),
        (CHINESE.encode("utf-16"), "utf-16"),
        (CHINESE.encode("utf-16-le"), "utf-16-le"),
        (CHINESE.encode("utf-16-be"), "utf-16-be"),
        (b"id,name\n1,plain ascii\n", "utf-8"),
        (CHINESE.encode("utf-8")[:50], "utf-8"),  # sample cut inside a character
    ],
)
def test_detect_encoding(data: bytes, expected: str) -> None:
    assert detect_encoding(data) == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (13912345678.0, "13912345678"),
        (1.101011990010112e17, "110101199001011200"),
        (1002, "1002"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (-3.0, "-3"),
        (True, "TRUE"),
        ("0106123456", "0106123456"),
        ('=HYPERLINK("a")', '=HYPERLINK("a")'),
        ("", None),
        (None, None),
        (dt.date(2024, 3, 15), "2024-03-15"),
        (dt.datetime(2024, 3, 15), "2024-03-15"),
        (dt.datetime(2024, 3, 15, 10, 30), "2024-03-15 10:30:00"),
        (dt.time(9, 5), "09:05:00"),
    ],
)
def test_excel_cell_text(cell: object, expected: str | None) -> None:
    assert cell_text(cell) == expected

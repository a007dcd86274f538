"""表1/表2/表3 registers: the seed's headers, row counts against the warehouse, formats, masking."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from warehouse import read_table
from warehouse.filing import ArchivedDocument, archive_numbers, record_documents
from warehouse.registers import (
    REGISTER_1,
    REGISTER_2,
    REGISTER_3,
    Period,
    contact_text,
    customers_as_of,
    format_register,
    interaction_kind,
    mask_for_role,
    register_1,
    register_2,
    register_3,
    write_register_xlsx,
)

SEED_1 = ["客户编号", "客户名称", "客户类型", "联系人", "联系方式", "所属行业", "客户等级",
          "地址(省市区)", "开户日期"]  # fmt: skip
SEED_2 = ["客户编号", "记录日期", "交互类型(拜访/沟通/需求变更)", "参与人员", "内容概述",
          "结果跟进", "附件名称"]  # fmt: skip
SEED_3 = ["归档编号", "客户编号", "归档日期", "资料类型(合同/资质/记录)", "归档份数",
          "存储位置(电子/纸质)", "经办人", "审核人"]  # fmt: skip
SECRET = b"k" * 32


def _read_xlsx(path) -> list[list[object]]:
    book = CalamineWorkbook.from_path(str(path))
    return book.get_sheet_by_index(0).to_python()


def test_headers_are_the_seeds():
    assert list(REGISTER_1.values()) == SEED_1
    assert list(REGISTER_2.values()) == SEED_2
    assert list(REGISTER_3.values()) == SEED_3


@pytest.mark.parametrize(
    "text, expected",
    [("2026-11", (2026, 11, date(2026, 11, 30), 4)), ("2024-02", (2024, 2, date(2024, 2, 29), 1))],
)
def test_period(text, expected):
    p = Period.parse(text)
    assert (p.year, p.month, p.end, p.quarter) == expected


@pytest.mark.parametrize("bad", ["2026-13", "202611", "2026-1", "x"])
def test_period_refuses(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse(bad)


@pytest.mark.parametrize(
    "channel, kind", [("上门服务", "拜访"), ("visit", "拜访"), ("电话", "沟通"), (None, "沟通")]
)
def test_interaction_kind(channel, kind):
    assert interaction_kind(channel) == kind


@pytest.mark.parametrize(
    "phone, email, expected",
    [
        ("+8613900000003", None, "13900000003"),  # mobile
        ("+862121058196", None, "02121058196"),  # Shanghai fixed line: trunk 0 back
        ("+864008123456", None, "4008123456"),  # 400 service number
        ("+85221234567", None, "+85221234567"),  # Hong Kong stays E.164
        (None, "a@b.cn", "a@b.cn"),
        (None, None, None),
    ],
)
def test_contact_text(phone, email, expected):
    assert contact_text(phone, email) == expected


def test_register_1_xlsx_matches_warehouse(warehouse_two_runs, tmp_path):
    customers = read_table(warehouse_two_runs, "golden.customers")
    frame = format_register(register_1(customers), "表1")
    path = write_register_xlsx(frame, "表1", tmp_path / "t1.xlsx")
    rows = _read_xlsx(path)
    assert rows[0] == SEED_1
    body = rows[1:]
    assert len(body) == len(customers)  # one row per customer
    by_id = {r[0]: dict(zip(SEED_1, r, strict=True)) for r in body}
    star = by_id["C20240315001"]
    assert star["客户名称"] == "北京星河科技有限公司"
    assert star["客户类型"] == "企业"
    assert star["联系方式"] == "13900000003"  # the phone after the change, national digits
    assert star["地址(省市区)"] == "北京市海淀区"  # municipality not repeated
    assert by_id["C20200101001"]["客户类型"] == "个人"
    for row in body:
        assert re.fullmatch(r"[ABC]类", row[6]), row
        assert row[8] == "" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", row[8]), row


def test_register_1_as_of_the_period_end(warehouse_two_runs):
    customers = read_table(warehouse_two_runs, "golden.customers")
    history = read_table(warehouse_two_runs, "golden.customers_history")

    def phones(day: date) -> dict:
        t1 = register_1(customers_as_of(customers, history, day))
        return dict(zip(t1["customer_id"], t1["phone"], strict=True))

    assert phones(date(2025, 5, 31)) == {}  # nothing published before the first run
    june = phones(date(2025, 6, 30))
    assert june["C20240315001"] == "+8613900000002"  # before the change of 2025-07-01
    assert phones(date(2025, 7, 31))["C20240315001"] == "+8613900000003"
    assert set(june) == set(customers["customer_id"])


def test_register_2_lists_interactions_and_changes_of_the_period(warehouse_two_runs):
    interactions = read_table(warehouse_two_runs, "golden.interactions")
    history = read_table(warehouse_two_runs, "golden.customers_history")
    may = register_2(interactions, history, Period(2025, 5), {"service": "客服部"})
    assert may["customer_id"].tolist() == ["C20240315001"]
    assert may.loc[0, "interaction_kind"] == "沟通"
    assert may.loc[0, "participants"] == "客服部"
    assert may.loc[0, "record_date"] == "2025-05-20"
    july = register_2(interactions, history, Period(2025, 7))
    changes = july[july["interaction_kind"] == "需求变更"]
    expected = history[(history["change_type"] == "updated")]
    assert len(changes) == len(expected) > 0
    assert changes["subject"].str.contains("phone").all()  # the reason names the change
    assert register_2(interactions, history, Period(2024, 1)).empty


def test_formula_cells_are_neutralized(tmp_path):
    frame = pd.DataFrame(
        {c: ['=HYPERLINK("http://x")' if c == "customer_name" else None] for c in REGISTER_1}
    )
    frame = frame.assign(email=None, province=None, city=None, district=None)
    out = format_register(frame, "表1")
    rows = _read_xlsx(write_register_xlsx(out, "表1", tmp_path / "f.xlsx"))
    assert rows[1][1].startswith("'=")


def test_register_3_from_filing_records(tmp_path):
    from warehouse import connect

    con = connect(tmp_path / "w.duckdb")
    on = date(2026, 11, 30)
    numbers = archive_numbers(con, on, 2)
    assert numbers == ["GD202611-00001", "GD202611-00002"]
    record_documents(
        con,
        [
            ArchivedDocument(n, cid, on, "档案", 1, "电子", "张三", "李四", f"{cid}.pdf", "0" * 64)
            for n, cid in zip(numbers, ["C20240315001", "C20200101001"], strict=True)
        ],
    )
    assert archive_numbers(con, on, 1) == ["GD202611-00003"]  # never reused
    docs = read_table(con, "filing.documents")
    t3 = format_register(register_3(docs, Period(2026, 11)), "表3")
    assert list(t3.columns) == SEED_3
    assert t3["归档日期"].tolist() == ["2026-11-30"] * 2
    assert register_3(docs, Period(2026, 10)).empty
    rows = _read_xlsx(write_register_xlsx(t3, "表3", tmp_path / "t3.xlsx"))
    assert len(rows) == 3 and rows[1][4] == 1


def test_analyst_masking(warehouse_two_runs):
    customers = read_table(warehouse_two_runs, "golden.customers")
    clear = register_1(customers)
    masked = format_register(mask_for_role(clear, "analyst", SECRET), "表1")
    plain = format_register(mask_for_role(clear, "steward"), "表1")
    assert plain["客户编号"].tolist() == clear["customer_id"].tolist()
    assert not set(masked["客户编号"]) & set(clear["customer_id"])  # pseudonyms
    row = masked[masked["客户类型"] == "个人"].iloc[0]
    assert row["客户名称"] == "王*"
    assert re.fullmatch(r"136\*{4}\d{4}", row["联系方式"])
    assert "北京星河科技有限公司" in masked["客户名称"].tolist()  # enterprise names kept
    with pytest.raises(PermissionError):
        mask_for_role(clear, "ops")

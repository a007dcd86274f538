"""clean_records on a small mixed raw frame: nothing lost, raw kept, issues and facts extracted."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cleaning import CleaningOptions, clean_records
from cleaning.pipeline import RECORD_COLUMNS


def _issues(records: pd.DataFrame, key: str) -> set[str]:
    row = records.set_index("record_key").loc[key]
    return {i["code"] for i in json.loads(row["issues"])}


def test_every_row_survives_once_with_contract_columns(mixed_raw: pd.DataFrame) -> None:
    result = clean_records(mixed_raw, CleaningOptions(departments={"crm": "销售部"}))
    assert list(result.records.columns) == list(RECORD_COLUMNS)
    assert sorted(result.records["record_key"]) == sorted(mixed_raw["record_key"])
    assert result.records["source_row"].dtype == "Int64"


def test_raw_values_kept_and_fields_cleaned(mixed_raw: pd.DataFrame) -> None:
    rec = clean_records(mixed_raw).records.set_index("record_key")
    first = rec.loc["crm:1"]
    assert first["customer_name_raw"] == "北京某某（上海）科技有限公司杭州分公司"
    assert first["name_key"] == "某某科技" and first["branch"] == "杭州分公司"
    assert first["phone"] == "+861062751234" and first["phone_ext"] == "8001"
    assert first["contact_name"] == "张伟" and first["contact_title"] == "经理"
    assert first["division_code"] == "110108" and first["district"] == "海淀区"
    assert first["industry_code"] == "I" and first["credit_code_valid"]
    assert first["registered_date"] == "2024-03-15"  # crm inferred day-first
    assert rec.loc["crm:2", "registered_date"] == "2024-02-01"
    assert rec.loc["crm:2", "customer_type"] == "individual"
    assert rec.loc["crm:2", "email"] == "w@qq.com" and rec.loc["crm:2", "email_is_free"]
    assert rec.loc["crm:4", "customer_name"] == "台湾积体电路制造股份有限公司"
    assert rec.loc["crm:5", "name_key"] == "acme"
    assert rec.loc["svc:2", "registered_date"] == "2024-04-05"  # svc inferred month-first
    assert rec.loc["svc:1", "name_key"] == rec.loc["svc:2", "name_key"]
    assert pd.isna(rec.loc["svc:1", "branch"]) and rec.loc["svc:2", "branch"] == "上海分公司"


def test_issues_recorded(mixed_raw: pd.DataFrame) -> None:
    rec = clean_records(mixed_raw).records
    # crm:3 has no customer name but a contact person: an individual named after the contact
    assert {"name_from_contact", "phone_invalid", "industry_unmapped", "date_impossible"} <= (
        _issues(rec, "crm:3")
    )
    assert "credit_code_invalid" in _issues(rec, "crm:4")
    assert "email_invalid" in _issues(rec, "crm:5")
    assert "phone_invalid" in _issues(rec, "svc:1")
    assert "customer_type_inferred" not in _issues(rec, "svc:1")
    for text in rec["issues"]:
        assert isinstance(json.loads(text), list)


def test_follow_up_and_facts(mixed_raw: pd.DataFrame) -> None:
    result = clean_records(mixed_raw, CleaningOptions(departments={"crm": "销售部"}))
    fu = result.follow_up
    crm3 = fu[fu["record_key"] == "crm:3"]
    assert set(crm3["missing"]) == {"contact"}
    assert set(crm3["department"]) == {"销售部"}
    assert set(fu[fu["record_key"] == "svc:1"]["department"]) == {"svc"}
    assert result.transactions["txn_amount"].tolist() == [12000.0]
    assert result.interactions["record_key"].tolist() == ["crm:2", "svc:1"]
    assert result.interactions["satisfaction"].iloc[0] == 4.0
    assert "xyz" in set(result.unmapped_industries["industry_raw"])


def test_shared_switchboard_flagged() -> None:
    raw = pd.DataFrame(
        {
            "record_key": [f"s:{i}" for i in range(4)],
            "source_system": "s",
            "customer_name": ["华信科技有限公司", "远东物流有限公司", "金飞电子有限公司", "丁公司"],
            "phone": ["010-62751234", "010 6275 1234", "+86 10 62751234", "13912345678"],
        },
        dtype="string",
    )
    rec = clean_records(raw).records
    assert rec["phone_shared"].tolist() == [True, True, True, False]


def test_declared_date_order_wins() -> None:
    raw = pd.DataFrame(
        {"record_key": ["a:1"], "source_system": "a", "registered_date": ["04/05/2024"]},
        dtype="string",
    )
    assert clean_records(raw).records["registered_date"].isna().all()  # ambiguous, flagged
    rec = clean_records(raw, CleaningOptions(date_order={"a": "dmy"})).records
    assert rec["registered_date"].tolist() == ["2024-05-04"]


def test_type_inferred_for_latin_names_and_int_source_row() -> None:
    raw = pd.DataFrame(
        {
            "record_key": pd.Series(["a:1", "a:2", "a:3"], dtype="string"),
            "source_system": pd.Series(["a", "a", "a"], dtype="string"),
            "source_row": pd.Series([1, 2, 3], dtype="int64"),  # as the raw contract says
            "customer_name": pd.Series(["Acme Trading", "John Smith", "李娜"], dtype="string"),
        }
    )
    rec = clean_records(raw).records
    assert rec["customer_type"].tolist() == ["enterprise", "individual", "individual"]
    assert rec["name_key"].tolist() == ["acmetrading", "johnsmith", "李娜"]
    assert rec["source_row"].tolist() == [1, 2, 3]


def test_empty_frame() -> None:
    raw = pd.DataFrame({"record_key": [], "source_system": []}, dtype="string")
    result = clean_records(raw)
    assert len(result.records) == 0 and list(result.records.columns) == list(RECORD_COLUMNS)
    assert len(result.follow_up) == 0 and len(result.transactions) == 0


def test_individual_without_name_is_named_after_contact_and_org_without_name_is_not() -> None:
    raw = pd.DataFrame(
        {
            "record_key": ["m:1", "m:2", "m:3"],
            "source_system": "m",
            "source_record_id": ["1", "2", "3"],
            "customer_name": [None, None, None],
            "contact_name": ["王芳女士", None, "李雷"],
            "credit_code": [None, None, "91110108551385082Q"],  # m:3 is an enterprise
            "phone": ["13912345678", "13912345679", "13912345670"],
        }
    )
    records = clean_records(raw).records
    rec = records.set_index("record_key")
    assert rec.loc["m:1", "customer_name"] == "王芳"
    assert rec.loc["m:1", "name_key"] == "王芳"
    assert "name_from_contact" in _issues(records, "m:1")
    assert pd.isna(rec.loc["m:2", "customer_name"]) and "missing_name" in _issues(records, "m:2")
    assert pd.isna(rec.loc["m:3", "customer_name"])  # a company is never named after a person


@pytest.mark.parametrize("token", ["NULL", "null", "无", "-", "/", "N/A", "暂无", "—", "（空）"])
def test_placeholders_are_missing_but_raw_kept(token: str) -> None:
    raw = pd.DataFrame(
        {
            "record_key": ["a:1"],
            "source_system": "a",
            "source_record_id": ["1"],
            "customer_name": ["北京测试科技有限公司"],
            "credit_code": [token],
            "email": [token],
            "txn_amount": ["0"],  # a real zero amount is not a placeholder
        }
    )
    result = clean_records(raw)
    rec = result.records.set_index("record_key")
    assert pd.isna(rec.loc["a:1", "credit_code"])
    assert pd.isna(rec.loc["a:1", "email"])
    assert rec.loc["a:1", "credit_code_raw"] == token
    assert "placeholder_missing" in _issues(result.records, "a:1")
    assert "credit_code_invalid" not in _issues(result.records, "a:1")
    assert result.transactions["txn_amount"].tolist() == [0.0]

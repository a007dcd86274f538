"""The clean and raw suites: each critical rule fails on a broken frame, warnings never block."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations import CHECKS, blocking_failures, validate_clean, validate_raw

pytestmark = pytest.mark.usefixtures("gx")


def _by_name(outcomes: list) -> dict:
    return {o.name: o for o in outcomes}


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[row], column] = value
    return frame


def test_good_clean_records_pass(clean_records: pd.DataFrame) -> None:
    outcomes = validate_clean(clean_records)
    assert {o.name: o.observed for o in outcomes if not o.success} == {}
    assert {o.name for o in outcomes} == {n for n, s in CHECKS.items() if s.layer == "clean"}


CLEAN_CASES = [
    # (check, column, bad value, row) — each defect is one cleaning bug
    ("clean_record_key_unique", "record_key", "crm:1", 1),
    ("clean_record_key_not_null", "record_key", None, 2),
    ("clean_customer_type_in_set", "customer_type", "个人", 3),
    ("clean_phone_e164", "phone", "13912345678", 0),  # national form, not E.164
    ("clean_email_format", "email", "Info@XingChen.cn", 0),  # not lowercased
    ("clean_email_format", "email", "info.xingchen.cn", 0),  # no @
    ("clean_dates_iso", "registered_date", "2021/03/04", 0),
    ("clean_dates_iso", "updated_at", "2023-02-29", 0),  # not a real date
    ("clean_province_known", "province", "北京", 0),  # short form
    ("clean_industry_code_known", "industry_code", "Z", 0),
]


@pytest.mark.parametrize(
    ("check", "column", "value", "row"), CLEAN_CASES, ids=[f"{c[0]}:{c[2]}" for c in CLEAN_CASES]
)
def test_clean_critical_checks_fail_and_block(clean_records, check, column, value, row) -> None:
    outcome = _by_name(validate_clean(_set(clean_records, row, column, value)))[check]
    assert outcome.critical and not outcome.success
    assert outcome in blocking_failures([outcome])


def test_clean_critical_cases_cover_the_catalog() -> None:
    critical = {n for n, s in CHECKS.items() if s.layer == "clean" and s.critical}
    assert critical - {"clean_required_columns"} == {c[0] for c in CLEAN_CASES}


def test_clean_missing_required_column_blocks(clean_records) -> None:
    outcome = _by_name(validate_clean(clean_records.drop(columns=["customer_type"])))[
        "clean_required_columns"
    ]
    assert not outcome.success and outcome.critical
    assert outcome.observed["missing_columns"] == ["customer_type"]


WARNING_CASES = [
    ("clean_credit_code_format", "credit_code", "9111010812345", 0),
    ("clean_credit_code_flag_consistent", "credit_code_valid", False, 0),  # code is valid
    ("clean_issues_json", "issues", "[{broken", 0),
    ("clean_customer_name_filled", "customer_name", None, 0),  # 1 of 6 missing < 95 %
]


@pytest.mark.parametrize(
    ("check", "column", "value", "row"), WARNING_CASES, ids=[c[0] for c in WARNING_CASES]
)
def test_clean_warnings_fail_without_blocking(clean_records, check, column, value, row) -> None:
    outcomes = validate_clean(_set(clean_records, row, column, value))
    outcome = _by_name(outcomes)[check]
    assert not outcome.success and not outcome.critical
    assert blocking_failures(outcomes) == []


def test_unknown_industry_accepted_when_configured(clean_records) -> None:
    frame = _set(clean_records, 0, "industry_code", "I65")
    outcomes = _by_name(validate_clean(frame, known_industry_codes={"I65", "F", "I"}))
    assert outcomes["clean_industry_code_known"].success


def test_absent_optional_column_is_recorded_as_skipped(clean_records) -> None:
    outcome = _by_name(validate_clean(clean_records.drop(columns=["email"])))["clean_email_format"]
    assert outcome.success
    assert outcome.observed == {"skipped": "column 'email' absent"}


@pytest.fixture()
def raw_rows(clean_records: pd.DataFrame) -> pd.DataFrame:
    frame = clean_records[["record_key", "source_system", "customer_name", "phone"]].copy()
    frame["source_file"] = "crm_2024-03-15.csv"
    frame["source_row"] = [str(i) for i in range(1, len(frame) + 1)]
    return frame.astype("string")


def test_good_raw_delivery_passes(raw_rows) -> None:
    outcomes = validate_raw(raw_rows, "crm", ["customer_name", "phone"], previous_row_count=5)
    assert {o.name: o.observed for o in outcomes if not o.success} == {}
    assert all(o.observed["source_system"] == "crm" for o in outcomes)


@pytest.mark.parametrize(
    ("check", "mutate", "previous"),
    [
        ("raw_not_empty", lambda f: f.iloc[0:0], None),
        ("raw_required_columns", lambda f: f.drop(columns=["phone"]), None),
        ("raw_required_columns", lambda f: f.drop(columns=["source_file"]), None),
        ("raw_record_key_not_null", lambda f: _set(f, 2, "record_key", None), None),
        ("raw_record_key_unique", lambda f: _set(f, 2, "record_key", "crm:1"), None),
        ("raw_row_count_band", lambda f: f, 20),  # 6 rows vs 20 last time: truncated export
        (
            "raw_row_count_band",
            lambda f: pd.concat([f] * 3, ignore_index=True).assign(
                record_key=lambda d: "crm:" + d.index.astype("string")
            ),
            5,
        ),
    ],
    ids=["empty", "missing-field", "missing-lineage", "null-key", "dup-key", "shrunk", "grew"],
)
def test_raw_critical_checks_fail_and_block(raw_rows, check, mutate, previous) -> None:
    outcomes = validate_raw(mutate(raw_rows), "crm", ["customer_name", "phone"], previous)
    outcome = _by_name(outcomes)[check]
    assert outcome.critical and not outcome.success
    assert outcome in blocking_failures(outcomes)


def test_raw_blank_required_field_is_a_warning(raw_rows) -> None:
    frame = raw_rows.assign(phone=["  ", "", None, "+8613800001111", None, ""])
    outcomes = validate_raw(frame, "crm", ["customer_name", "phone"], None)
    outcome = _by_name(outcomes)["raw_required_fields_filled"]
    assert not outcome.success and not outcome.critical
    assert blocking_failures(outcomes) == []


def test_raw_band_is_validated(raw_rows) -> None:
    with pytest.raises(ValueError, match="band"):
        validate_raw(raw_rows, "crm", [], None, band=-0.1)

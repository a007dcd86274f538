"""The quarterly audit sample is stratified, proportional, reproducible and complete."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from expectations.audit_sample import CHECKER_COLUMNS, draw_audit_sample


@pytest.fixture()
def golden() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = 200
    ids = [f"C20240315{i:03d}" for i in range(1, n + 1)]
    customers = pd.DataFrame({
        "customer_id": ids,
        "customer_name": [f"客户{i}" for i in range(n)],
        "tier": ["A" if i % 10 == 0 else "B" if i % 3 == 0 else "C" for i in range(n)],
        "province": ["北京市" if i % 2 else ("上海市" if i % 7 else None) for i in range(n)],
    }).astype("string")  # fmt: skip
    crosswalk = pd.DataFrame({
        "record_key": [f"crm:{i}" for i in range(n)] + [f"erp:{i}" for i in range(0, n, 4)],
        "customer_id": ids + ids[::4],
    }).astype("string")  # fmt: skip
    records = pd.DataFrame({
        "record_key": crosswalk["record_key"],
        "source_system": crosswalk["record_key"].str.split(":").str[0],
        "customer_name": "x",
    })  # fmt: skip
    return customers, crosswalk, records


def test_every_stratum_gets_its_share(golden) -> None:
    customers, crosswalk, records = golden
    sample = draw_audit_sample(customers, crosswalk, records, 0.1, "2024Q1")
    assert set(zip(sample.strata["tier"], sample.strata["region"], strict=True)) >= {
        ("A", "未知"),
        ("C", "北京市"),
    }
    for row in sample.strata.itertuples():
        assert row.sampled == math.ceil(round(row.customers * 0.1, 9))
    assert len(sample.customers) == sample.strata["sampled"].sum()
    assert sample.customers["customer_id"].is_unique


def test_same_seed_same_sample_other_seed_differs(golden) -> None:
    first = draw_audit_sample(*golden, 0.1, "2024Q1").customers["customer_id"].tolist()
    again = draw_audit_sample(*golden, 0.1, "2024Q1").customers["customer_id"].tolist()
    other = draw_audit_sample(*golden, 0.1, "2024Q2").customers["customer_id"].tolist()
    shuffled = golden[0].sample(frac=1, random_state=3)
    reordered = draw_audit_sample(shuffled, *golden[1:], 0.1, "2024Q1").customers
    assert first == again == reordered["customer_id"].tolist()
    assert first != other


def test_worksheet_has_all_source_records_and_blank_checker_columns(golden) -> None:
    customers, crosswalk, records = golden
    sample = draw_audit_sample(customers, crosswalk, records, 0.2, 7)
    chosen = set(sample.customers["customer_id"])
    expected = crosswalk[crosswalk["customer_id"].isin(chosen)]["record_key"]
    assert sorted(sample.worksheet["record_key"]) == sorted(expected)
    assert set(CHECKER_COLUMNS) <= set(sample.worksheet.columns)
    assert sample.worksheet[list(CHECKER_COLUMNS)].isna().all().all()
    assert {"golden_customer_name", "record_customer_name", "source_system"} <= set(
        sample.worksheet.columns
    )


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_fraction_is_validated(golden, fraction) -> None:
    with pytest.raises(ValueError, match="fraction"):
        draw_audit_sample(*golden, fraction, 1)

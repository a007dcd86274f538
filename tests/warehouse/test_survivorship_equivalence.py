"""The array-based survivorship gives exactly the values and lineage of the pandas reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.warehouse import _survive_reference as reference
from warehouse.settings import GoldenSettings, SurvivorshipRule
from warehouse.survivorship import record_dates, survive

# value pools with the awkward cases: nulls, blanks, whitespace-only, near-duplicates, CJK
POOLS = {
    "customer_name": ["北京星辰科技有限公司", "星辰科技", "Acme Ltd", " ", None, "ACME LTD", ""],
    "customer_type": ["enterprise", "individual", None, "enterprise"],
    "contact_name": ["张伟", "王芳", None, "  ", "李娜"],
    "phone": ["+8613912345678", "+862112345678", None, "+8613800000000"],
    "email": ["a@qq.com", "b@acme.com", None, ""],
    "address": ["北京市海淀区中关村大街1号", "上海市浦东新区世纪大道100号", None],
    "province": ["北京市", "上海市", None],
    "city": ["北京市", "上海市", None],
    "district": ["海淀区", "浦东新区", None, " "],
    "industry_code": ["I", "C", None],
    "industry": ["信息传输、软件和信息技术服务业", "制造业", None],
    "credit_code": ["91110108MA01234567", None, None, "91310115MA1K234567"],
    "registered_date": ["2020-01-05", "2019-12-31", None, "2021-07-01"],
}
DATES = ["2024-01-01", "2023-06-30", None, "2024-01-01", "2022-02-28", "not a date"]
SOURCES = ["sales", "service", "marketing", "finance", "erp"]


def _records(seed: int, customers: int = 120, rows: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "record_key": [f"k{i:05d}" for i in rng.permutation(rows)],
            "customer_id": [f"C20240101{c:03d}" for c in rng.integers(0, customers, rows)],
            "source_system": rng.choice(SOURCES, rows),
            "source_record_id": [f"r{i}" for i in range(rows)],
            "ingested_at": "2024-02-01T00:00:00",
            "updated_at": [DATES[i] for i in rng.integers(0, len(DATES), rows)],
        }
    )
    for col, pool in POOLS.items():
        frame[col] = pd.array([pool[i] for i in rng.integers(0, len(pool), rows)], dtype="str")
    return frame.astype({c: "str" for c in frame.columns})


RULE_SETS = {
    "default": GoldenSettings(),
    "every_strategy": GoldenSettings(
        survivorship=[
            SurvivorshipRule(attribute="customer_name", strategy="longest"),
            SurvivorshipRule(attribute="customer_type", strategy="most_frequent"),
            SurvivorshipRule(attribute="registered_date", strategy="earliest"),
            SurvivorshipRule(
                attribute="address", strategy="most_complete", companions=["province", "city"]
            ),
            SurvivorshipRule(
                attribute="phone", strategy="source_priority", source_priority=["service", "erp"]
            ),
            SurvivorshipRule(attribute="email", strategy="most_frequent"),
            SurvivorshipRule(attribute="contact_name", strategy="earliest"),
        ],
        default_source_priority=["finance", "sales"],
    ),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("rules", sorted(RULE_SETS))
def test_survive_equals_reference(seed: int, rules: str) -> None:
    records = _records(seed)
    settings = RULE_SETS[rules]
    values, lineage = survive(records, settings)
    ref_values, ref_lineage = reference.survive(records, settings)
    pd.testing.assert_frame_equal(
        values[ref_values.columns].astype("string"), ref_values.astype("string")
    )
    pd.testing.assert_frame_equal(
        lineage.astype({"value": "string", "candidates": "int64"}),
        ref_lineage.astype({"value": "string", "candidates": "int64"}),
        check_dtype=False,
    )
    assert lineage["candidates"].dtype == "int64"


def test_survive_accepts_precomputed_dates() -> None:
    records = _records(7)
    settings = GoldenSettings()
    given = survive(records, settings, dates=record_dates(records))
    computed = survive(records, settings)
    pd.testing.assert_frame_equal(given[0], computed[0])
    pd.testing.assert_frame_equal(given[1], computed[1])


def test_survive_customer_without_any_value_gets_null_and_no_lineage() -> None:
    records = _records(3, customers=5, rows=40)
    records.loc[records["customer_id"] == "C20240101000", "email"] = None
    values, lineage = survive(records, GoldenSettings())
    row = values.set_index("customer_id").loc["C20240101000"]
    assert pd.isna(row["email"])
    gone = (lineage["customer_id"] == "C20240101000") & (lineage["attribute"] == "email")
    assert not gone.any()

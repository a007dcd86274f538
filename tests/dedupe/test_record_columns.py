"""`record_columns`: the clean columns the matcher reads are enough to prepare identically."""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe import MatchSettings, record_columns
from dedupe.prepare import prepare_records

_DECLARED = MatchSettings(
    comparisons=[
        "name_key",
        {"name": "wechat", "field": "wechat_id", "levels": ["exact"]},  # from `attributes`
        {"name": "industry", "field": "industry", "levels": ["exact"]},  # a clean column
    ],
    blocking_rules=["phone", {"name": "wx", "keys": ["first(wechat_id, 3)"]}],
)


def _records(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    records = synthetic[0].copy()
    n = len(records)
    # lineage, raw values and issues the matcher never reads
    records["source_file"] = "landing/sales/2026-01-01/x.csv"
    records["customer_name_raw"] = records["customer_name"].astype("string") + " (raw)"
    records["issues"] = "[]"
    records["industry"] = ["制造业" if i % 3 else "零售业" for i in range(n)]
    records["attributes"] = [f'{{"wechat_id": "WX{i % 50}"}}' for i in range(n)]
    return records


@pytest.mark.parametrize("settings", [None, _DECLARED], ids=["defaults", "declared"])
def test_preparing_only_the_matcher_columns_gives_the_same_frame(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], settings: MatchSettings | None
) -> None:
    records = _records(synthetic)
    wanted = record_columns(settings)
    narrow = records[[c for c in records.columns if c in wanted]]
    assert "source_file" not in narrow and "issues" not in narrow
    assert "customer_name_raw" not in narrow
    pd.testing.assert_frame_equal(
        prepare_records(narrow, settings), prepare_records(records, settings)
    )


def test_declared_fields_and_their_attributes_are_read() -> None:
    wanted = record_columns(_DECLARED)
    assert {"record_key", "name_key", "phone", "industry", "attributes"} <= wanted
    # the defaults compare clean columns only: the attributes JSON stays in the warehouse
    assert "attributes" not in record_columns()

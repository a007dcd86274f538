"""Tests for diffing two snapshots: added, removed, merged customers and attribute changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from warehouse.archive import ArchiveError, diff_snapshots, publish_snapshot


def _customers(rows: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "customer_name", "phone"])
    frame["updated_run_id"] = "r"
    return frame


def _crosswalk(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_key", "customer_id"])


BEFORE = {
    "golden.customers": _customers(
        [
            ("C20240101001", "北京星河科技有限公司", "+8613900000001"),
            ("C20240101002", "星河科技", None),  # a duplicate, merged in the next run
            ("C20240101003", "王芳", "+8613900000003"),  # leaves the archive
            ("C20240101004", "Acme Ltd", "+442079460000"),
        ]
    ),
    "golden.crosswalk": _crosswalk(
        [
            ("crm:1", "C20240101001"),
            ("erp:7", "C20240101002"),
            ("svc:3", "C20240101003"),
            ("crm:4", "C20240101004"),
        ]
    ),
}


def _after(with_events: bool) -> dict[str, pd.DataFrame]:
    tables = {
        "golden.customers": _customers(
            [
                ("C20240101001", "北京星河科技有限公司", "+8613900000009"),  # phone changed
                ("C20240101004", "Acme Trading Ltd", None),  # name changed, phone removed
                ("C20240102001", "上海云帆贸易有限公司", None),  # new customer
            ]
        ).assign(updated_run_id="r2"),
        "golden.crosswalk": _crosswalk(
            [
                ("crm:1", "C20240101001"),
                ("erp:7", "C20240101001"),
                ("crm:4", "C20240101004"),
                ("crm:9", "C20240102001"),
            ]
        ),
    }
    if with_events:
        tables["golden.customer_ids"] = pd.DataFrame(
            {
                "customer_id": ["C20240101002"],
                "event": ["merged"],
                "other_customer_id": ["C20240101001"],
                "run_id": ["r2"],
                "run_date": ["2024-01-02"],
            }
        )
    return tables


@pytest.mark.parametrize(("with_events", "evidence"), [(True, "event"), (False, "crosswalk")])
def test_diff_finds_added_removed_merged_and_changes(
    tmp_path: Path, with_events: bool, evidence: str
) -> None:
    a = publish_snapshot(BEFORE, tmp_path, "r1", datetime(2024, 1, 1, 2))
    b = publish_snapshot(_after(with_events), tmp_path, "r2", datetime(2024, 1, 2, 2))
    assert a is not None and b is not None
    diff = diff_snapshots(a.path, b.path)
    assert diff.added["customer_id"].tolist() == ["C20240102001"]
    assert diff.removed["customer_id"].tolist() == ["C20240101003"]
    assert diff.merged[["customer_id", "merged_into", "evidence"]].values.tolist() == [
        ["C20240101002", "C20240101001", evidence]
    ]
    frame = diff.changes[["customer_id", "column", "old", "new"]].astype(object)
    changes = frame.where(frame.notna(), None).values.tolist()
    assert changes == [
        ["C20240101001", "phone", "+8613900000001", "+8613900000009"],
        ["C20240101004", "customer_name", "Acme Ltd", "Acme Trading Ltd"],
        ["C20240101004", "phone", "+442079460000", None],
    ]  # updated_run_id changes are bookkeeping, not attribute changes
    assert diff.summary() == {
        "added": 1,
        "removed": 1,
        "merged": 1,
        "changed_customers": 2,
        "attribute_changes": 3,
    }
    assert diff.table_row_counts["golden.customers"] == (4, 3)


def test_diff_of_identical_snapshots_is_empty(tmp_path: Path) -> None:
    a = publish_snapshot(BEFORE, tmp_path, "r1", datetime(2024, 1, 1))
    b = publish_snapshot(BEFORE, tmp_path, "r2", datetime(2024, 1, 2), skip_if_unchanged=False)
    assert a is not None and b is not None
    assert diff_snapshots(a.path, b.path).summary() == dict.fromkeys(
        ["added", "removed", "merged", "changed_customers", "attribute_changes"], 0
    )


def test_diff_reports_schema_change(tmp_path: Path) -> None:
    a = publish_snapshot(BEFORE, tmp_path, "r1", datetime(2024, 1, 1))
    wider = {**BEFORE, "golden.customers": BEFORE["golden.customers"].assign(tier="A")}
    b = publish_snapshot(wider, tmp_path, "r2", datetime(2024, 1, 2))
    assert a is not None and b is not None
    diff = diff_snapshots(a.path, b.path)
    assert diff.columns_added == ["tier"] and diff.columns_removed == []
    assert diff.summary()["attribute_changes"] == 0


def test_diff_refuses_duplicate_keys(tmp_path: Path) -> None:
    dup = {"golden.customers": _customers([("C1", "a", None), ("C1", "b", None)])}
    a = publish_snapshot(dup, tmp_path, "r1", datetime(2024, 1, 1))
    assert a is not None
    with pytest.raises(ArchiveError, match="duplicate"):
        diff_snapshots(a.path, a.path)

"""The Arrow set comparison behind crosswalk coverage and customer links equals the pandas one."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations._golden_frames import _set_comparison, customer_links, record_coverage

LABELS = ("covered", "missing_from_crosswalk", "not_in_clean")


def _reference(left_values: pd.Series, right_values: pd.Series, key: str) -> pd.DataFrame:
    """The pandas Index implementation it replaced (the slow reference)."""
    left = pd.Index(left_values.dropna().unique())
    right = pd.Index(right_values.dropna().unique())
    keys = left.union(right)
    status = pd.Series(LABELS[0], index=keys, dtype="string")
    status[~keys.isin(left)] = LABELS[1]
    status[~keys.isin(right)] = LABELS[2]
    return pd.DataFrame({key: keys.astype("string"), "status": status.to_numpy()})


CASES = {
    "same": (["a", "b", "c"], ["c", "b", "a"]),
    "left_only_and_right_only": (["sales:1", "sales:2"], ["sales:2", "service:9"]),
    "nulls_and_repeats": (["x", None, "x", "y"], [None, "y", "y", "z"]),
    "empty_left": ([], ["a", "b"]),
    "empty_right": (["a"], []),
    "both_empty": ([], []),
    "cjk_and_case_sort": (["客户B", "客户A", "b", "B"], ["客户A", "B", "ä", "a"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_set_comparison_equals_reference(case: str) -> None:
    left, right = (pd.Series(v, dtype="str") for v in CASES[case])
    fast = _set_comparison(left, right, "record_key", LABELS)
    slow = _reference(left, right, "record_key")
    assert fast["record_key"].tolist() == slow["record_key"].tolist()
    assert fast["status"].tolist() == slow["status"].tolist()
    assert list(fast.columns) == ["record_key", "status"]


def test_record_coverage_statuses() -> None:
    crosswalk = pd.DataFrame({"record_key": ["sales:1", "sales:3"]})
    records = pd.DataFrame({"record_key": ["sales:1", "sales:2"]})
    frame = record_coverage(crosswalk, records)
    assert dict(zip(frame["record_key"], frame["status"], strict=True)) == {
        "sales:1": "covered",
        "sales:2": "missing_from_crosswalk",
        "sales:3": "not_in_clean",
    }


def test_customer_links_statuses() -> None:
    customers = pd.DataFrame({"customer_id": ["C20240101001", "C20240101002"]})
    crosswalk = pd.DataFrame({"customer_id": ["C20240101001", "C20240101001", "C20240101009"]})
    frame = customer_links(customers, crosswalk)
    assert frame.set_index("customer_id")["status"].to_dict() == {
        "C20240101001": "linked",
        "C20240101002": "no_crosswalk_rows",
        "C20240101009": "missing_customer",
    }

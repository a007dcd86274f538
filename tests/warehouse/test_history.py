"""SCD2 history: a changed phone closes the old version, the point-in-time query finds it."""

from __future__ import annotations

from datetime import date

import pandas as pd

from tests.warehouse.conftest import RUN1, RUN2
from warehouse import customer_as_of, run_sql, update_history

CID = "C20240315001"


def test_phone_change_closes_old_row_and_opens_new_with_reason(warehouse_two_runs):
    rows = run_sql(
        warehouse_two_runs,
        "SELECT * FROM golden.customers_history WHERE customer_id = ? ORDER BY valid_from",
        [CID],
    )
    assert len(rows) == 2
    old, new = rows.iloc[0], rows.iloc[1]
    assert old["phone"] == "+8613900000002"
    assert pd.Timestamp(old["valid_to"]).date() == RUN2
    assert old["closed_reason"] == "changed: phone"
    assert not old["is_current"]
    assert new["phone"] == "+8613900000003"
    assert pd.Timestamp(new["valid_from"]).date() == RUN2
    assert pd.isna(new["valid_to"]) and new["is_current"]
    assert (new["change_type"], new["change_reason"], new["run_id"]) == (
        "updated",
        "changed: phone",
        "run-2",
    )


def test_unchanged_customers_keep_one_open_row(warehouse_two_runs):
    counts = run_sql(
        warehouse_two_runs,
        "SELECT customer_id, count(*) AS n FROM golden.customers_history GROUP BY 1",
    ).set_index("customer_id")["n"]
    assert counts.to_dict() == {CID: 2, "C20200101001": 1, "C20250520001": 1}


def test_point_in_time_query_returns_the_old_phone_for_the_old_date(warehouse_two_runs):
    before = customer_as_of(warehouse_two_runs, CID, date(2025, 6, 30))
    after = customer_as_of(warehouse_two_runs, CID, RUN2)
    unknown = customer_as_of(warehouse_two_runs, CID, date(2025, 5, 31))
    assert before["phone"].tolist() == ["+8613900000002"]
    assert after["phone"].tolist() == ["+8613900000003"]
    assert unknown.empty
    macro = run_sql(
        warehouse_two_runs, f"SELECT phone FROM analytics.customer_as_of('{CID}', '2025-06-30')"
    )
    assert macro["phone"].tolist() == ["+8613900000002"]
    everyone = run_sql(warehouse_two_runs, "SELECT * FROM analytics.customers_as_of('2025-06-30')")
    assert len(everyone) == 3


def test_changed_log_view_lists_the_change(warehouse_two_runs):
    changes = run_sql(
        warehouse_two_runs,
        "SELECT * FROM analytics.customer_changes WHERE change_type = 'updated'",
    )
    assert changes["changed_attributes"].tolist() == ["phone"]


def _customers(**values) -> pd.DataFrame:
    base = {
        "customer_id": "C1", "customer_name": "甲", "customer_type": "individual",
        "contact_name": None, "phone": "+8613800000001", "email": None, "address": None,
        "province": None, "city": None, "district": None, "industry_code": None,
        "industry": None, "credit_code": None, "registered_date": None, "tier": "C",
        "lifecycle": "active", "is_returning": False,
    }  # fmt: skip
    rows = values.pop("rows", [{}])
    return pd.DataFrame([{**base, **r} for r in rows])


def test_merged_customer_is_closed_with_the_merge_as_reason():
    first = update_history(None, _customers(rows=[{}, {"customer_id": "C2"}]), "r1", RUN1)
    events = pd.DataFrame(
        {"customer_id": ["C2"], "event": ["merged_into"], "other_customer_id": ["C1"]}
    )
    second = update_history(first, _customers(), "r2", RUN2, id_events=events)
    c2 = second[second["customer_id"] == "C2"].iloc[0]
    assert c2["closed_reason"] == "merged into C1"
    assert not c2["is_current"]
    assert second[second["customer_id"] == "C1"]["is_current"].tolist() == [True]


def test_same_state_twice_changes_nothing():
    first = update_history(None, _customers(), "r1", RUN1)
    second = update_history(first, _customers(), "r2", RUN2)
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))


def test_tier_and_lifecycle_changes_are_recorded():
    first = update_history(None, _customers(), "r1", RUN1)
    second = update_history(first, _customers(rows=[{"lifecycle": "churned"}]), "r2", RUN2)
    assert second["change_reason"].tolist()[-1] == "changed: lifecycle"


def test_a_delivery_is_the_reason_of_changed_values_not_of_a_lifecycle_move():
    """Regression: a night with both kinds of change failed (NA reason in a string concat)."""
    first = update_history(None, _customers(rows=[{}, {"customer_id": "C2"}]), "r1", RUN1)
    ids = ["C1", "C2"]
    changed = _customers(
        rows=[{"phone": "+8613900000999"}, {"customer_id": "C2", "lifecycle": "churned"}]
    )
    reasons = pd.Series(["delivery sales/2024-03-16/crm.csv"] * 2, index=ids)
    second = update_history(first, changed, "r2", RUN2, delivery_reasons=reasons)
    opened = second[second["is_current"]].set_index("customer_id")["change_reason"]
    assert opened[ids[0]] == "changed: phone (delivery sales/2024-03-16/crm.csv)"
    assert opened[ids[1]] == "changed: lifecycle"


def test_a_night_with_only_lifecycle_moves_keeps_the_plain_reason():
    first = update_history(None, _customers(), "r1", RUN1)
    reasons = pd.Series(["delivery sales/2024-03-16/crm.csv"], index=["C1"])
    second = update_history(
        first, _customers(rows=[{"lifecycle": "churned"}]), "r2", RUN2, delivery_reasons=reasons
    )
    assert second["change_reason"].tolist()[-1] == "changed: lifecycle"

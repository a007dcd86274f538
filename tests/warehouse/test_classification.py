"""Lifecycle and tier on hand-built customers, including the 3-year dormant boundary."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from warehouse import ClassificationSettings, TierThreshold, classify, customer_type

AS_OF = date(2025, 7, 1)

# case, sources, registered_date, transactions [(date, amount)], lifecycle, tier, is_returning
CASES = [
    ("lead only", ["marketing"], "2025-06-01", [], "potential", "C", None),
    ("no business at all", ["sales"], None, [], "potential", "C", None),
    ("registered only, recent", ["sales"], "2025-05-01", [], "new", "C", False),
    ("first contract 90 days ago", ["sales"], None, [("2025-04-02", 5000.0)], "new", "C", False),
    ("first contract 91 days ago", ["sales"], None, [("2025-04-01", 5000.0)], "active", "C",
     False),
    ("big and recent", ["sales"], None, [("2024-01-01", 10.0), ("2025-03-01", 1_200_000.0)],
     "active", "A", True),
    ("big but 200 days ago", ["sales"], None, [("2023-01-01", 1.0), ("2024-12-13", 1_500_000.0)],
     "active", "B", True),
    ("mid revenue", ["sales", "service"], None, [("2023-01-01", 1.0), ("2025-06-01", 150_000.0)],
     "active", "B", True),
    ("364 days without business", ["sales"], None, [("2024-07-02", 100.0)], "active", "C", False),
    ("365 days without business", ["sales"], None, [("2024-07-01", 100.0)], "churned", "C",
     False),
    ("one day short of 3 years", ["sales"], None, [("2022-07-02", 100.0)], "churned", "C",
     False),
    ("exactly 3 years", ["sales"], None, [("2022-07-01", 100.0)], "dormant", "C", False),
    ("more than 3 years", ["finance"], None, [("2020-01-01", 9e6)], "dormant", "C", False),
    ("lead that bought", ["marketing"], None, [("2025-06-20", 10.0)], "new", "C", False),
    ("future-dated contract ignored", ["sales"], None, [("2026-01-01", 9e6)], "potential", "C",
     None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "sources", "registered", "txns", "lifecycle", "tier", "returning"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_lifecycle_and_tier(case, sources, registered, txns, lifecycle, tier, returning):
    customers = pd.DataFrame({"customer_id": ["C1"], "registered_date": [registered]})
    record_sources = pd.DataFrame({"customer_id": "C1", "source_system": sources})
    transactions = pd.DataFrame(
        {
            "customer_id": "C1",
            "txn_date": [pd.Timestamp(d) for d, _ in txns],
            "txn_amount": [a for _, a in txns],
        }
    )
    row = classify(customers, transactions, record_sources, ClassificationSettings(), AS_OF)
    row = row.iloc[0]
    assert row["lifecycle"] == lifecycle
    assert row["tier"] == tier
    if returning is None:
        assert pd.isna(row["is_returning"])
    else:
        assert bool(row["is_returning"]) is returning


def test_thresholds_come_from_settings():
    customers = pd.DataFrame({"customer_id": ["C1"], "registered_date": [None]})
    sources = pd.DataFrame({"customer_id": ["C1"], "source_system": ["sales"]})
    txns = pd.DataFrame(
        {"customer_id": ["C1"], "txn_date": [pd.Timestamp("2025-06-01")], "txn_amount": [500.0]}
    )
    settings = ClassificationSettings(
        tier_a=TierThreshold(min_revenue_12m=400, max_days_since_business=60),
        tier_b=TierThreshold(min_revenue_12m=100, max_days_since_business=365),
        new_within_days=10,
    )
    row = classify(customers, txns, sources, settings, AS_OF).iloc[0]
    assert (row["tier"], row["lifecycle"]) == ("A", "active")


def test_many_customers_classified_at_once():
    n = 1000
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "registered_date": None})
    sources = pd.DataFrame({"customer_id": customers["customer_id"], "source_system": "sales"})
    txns = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "txn_date": pd.Timestamp("2025-06-01") - pd.to_timedelta(range(n), unit="D"),
            "txn_amount": 1.0,
        }
    )
    out = classify(customers, txns, sources, ClassificationSettings(), AS_OF)
    # customer i last (and first) bought i + 30 days before AS_OF
    assert out["lifecycle"].value_counts().to_dict() == {
        "churned": 665,  # 365 … 1029 days
        "active": 274,  # 91 … 364 days
        "new": 61,  # 30 … 90 days
    }
    assert out["customer_id"].tolist() == customers["customer_id"].tolist()


@pytest.mark.parametrize(
    ("declared", "credit_code", "expected"),
    [
        ("individual", "91110108MA01ABCDE1", "enterprise"),
        ("individual", None, "individual"),
        ("enterprise", None, "enterprise"),
        (None, None, "individual"),
        (None, "  ", "individual"),
    ],
)
def test_customer_type(declared, credit_code, expected):
    out = customer_type(
        pd.Series([declared], dtype="string"), pd.Series([credit_code], dtype="string")
    )
    assert out.iloc[0] == expected


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="tier_a"):
        ClassificationSettings(
            tier_a=TierThreshold(min_revenue_12m=1, max_days_since_business=1),
            tier_b=TierThreshold(min_revenue_12m=10, max_days_since_business=1),
        )

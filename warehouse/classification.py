"""Customer classification: type, tier A/B/C (RFM-style), lifecycle and new vs returning."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from warehouse.settings import ClassificationSettings

LIFECYCLES = ("potential", "new", "active", "churned", "dormant", "deleted_at_source")
"""Lifecycle stages; ``deleted_at_source`` (已在来源删除): every record deleted at its source."""
TIERS = ("A", "B", "C")
CLASS_COLUMNS = [
    "customer_id",
    "first_business_date",
    "last_business_date",
    "revenue_12m",
    "transactions_12m",
    "tier",
    "lifecycle",
    "is_returning",
]


def customer_type(declared: pd.Series, credit_code: pd.Series) -> pd.Series:
    """Enterprise when a credit code is present, else the surviving declared type.

    Args:
        declared: the surviving ``customer_type`` (enterprise/individual) per customer.
        credit_code: the surviving 统一社会信用代码 per customer.

    Returns:
        ``enterprise`` / ``individual`` (``individual`` when nothing says otherwise).
    """
    has_code = credit_code.notna() & (credit_code.astype("string").str.strip() != "")
    out = declared.astype("string").where(declared.notna(), "individual")
    return out.mask(has_code.fillna(False), "enterprise")


def _business(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per customer: first/last business date, 12-month revenue and count, distinct dates."""
    cols = ["first_txn", "last_txn", "revenue_12m", "transactions_12m", "business_days"]
    if transactions is None or transactions.empty:
        return pd.DataFrame(columns=cols).rename_axis("customer_id")
    t = transactions[["customer_id", "txn_date", "txn_amount"]].copy()
    t["txn_date"] = pd.to_datetime(t["txn_date"], errors="coerce").astype("datetime64[s]")
    t = t[t["txn_date"].notna() & (t["txn_date"] <= as_of)]
    window = t["txn_date"] > as_of - pd.Timedelta(days=365)
    t["amount_12m"] = t["txn_amount"].astype("float64").fillna(0.0).where(window, 0.0)
    t["in_12m"] = window.astype("int64")
    return t.groupby("customer_id").agg(
        first_txn=("txn_date", "min"),
        last_txn=("txn_date", "max"),
        revenue_12m=("amount_12m", "sum"),
        transactions_12m=("in_12m", "sum"),
        business_days=("txn_date", "nunique"),
    )


def classify(
    customers: pd.DataFrame,
    transactions: pd.DataFrame | None,
    record_sources: pd.DataFrame,
    settings: ClassificationSettings,
    as_of: date,
) -> pd.DataFrame:
    """Derive tier, lifecycle and new-vs-returning for every customer as of a date.

    Business (合作) is a transaction; a customer without transactions whose records are not all
    marketing leads counts its ``registered_date`` (开户/签约日期) as its one business date.
    Lifecycle: ``potential`` no business known; ``dormant`` last business at least
    ``dormant_after_years`` calendar years ago (停止合作满3年 → 休眠档案); ``churned`` at least
    ``churned_after_days`` days ago; ``new`` first business within ``new_within_days``;
    else ``active``. Tier: A/B when 12-month revenue, transaction count and recency reach the
    tier's thresholds, else C. ``is_returning``: business on two or more distinct dates.

    Args:
        customers: ``customer_id`` and ``registered_date`` per customer.
        transactions: ``customer_id, txn_date, txn_amount`` (transactions after ``as_of`` ignored).
        record_sources: ``customer_id, source_system`` of every source record.
        settings: the classification thresholds.
        as_of: the classification date (the run date).

    Returns:
        One row per customer with the columns of ``CLASS_COLUMNS``.
    """
    day = pd.Timestamp(as_of)
    out = customers[["customer_id"]].copy()
    biz = _business(transactions if transactions is not None else pd.DataFrame(), day)
    if biz.empty:  # no business at all (e.g. a first night with zero records): keep key types
        biz.index = pd.Index([], dtype=out["customer_id"].dtype, name=biz.index.name)
    out = out.merge(biz, left_on="customer_id", right_index=True, how="left")
    lead = record_sources["source_system"].isin(settings.lead_sources)
    non_lead = (~lead).groupby(record_sources["customer_id"]).sum()
    leads_only = out["customer_id"].map(non_lead).fillna(0).eq(0).to_numpy()
    registered = pd.to_datetime(
        customers["registered_date"].astype("string").str.slice(0, 10),
        format="%Y-%m-%d",
        errors="coerce",
    ).astype("datetime64[s]")
    registered = registered.where(registered <= day).where(~leads_only)
    first = out["first_txn"].astype("datetime64[s]").fillna(registered)
    last = out["last_txn"].astype("datetime64[s]").fillna(registered)
    since_last = (day - last).dt.days
    since_first = (day - first).dt.days
    dormant_from = day - pd.DateOffset(years=settings.dormant_after_years)
    lifecycle = np.select(
        [
            last.isna().to_numpy(),
            (last <= dormant_from).to_numpy(),
            (since_last >= settings.churned_after_days).to_numpy(),
            (since_first <= settings.new_within_days).to_numpy(),
        ],
        ["potential", "dormant", "churned", "new"],
        default="active",
    )
    revenue = out["revenue_12m"].astype("float64").fillna(0.0)
    count = out["transactions_12m"].astype("float64").fillna(0).astype("int64")

    def _meets(threshold_name: str) -> np.ndarray:
        t = getattr(settings, threshold_name)
        return (
            (revenue >= t.min_revenue_12m)
            & (count >= t.min_transactions_12m)
            & (since_last <= t.max_days_since_business).fillna(False)
        ).to_numpy(dtype=bool)

    tier = np.select([_meets("tier_a"), _meets("tier_b")], ["A", "B"], default="C")
    returning = pd.Series(
        out["business_days"].astype("float64").fillna(1).to_numpy() >= 2, dtype="boolean"
    ).mask(last.isna().to_numpy())
    return pd.DataFrame(
        {
            "customer_id": out["customer_id"].to_numpy(),
            "first_business_date": first.to_numpy(),
            "last_business_date": last.to_numpy(),
            "revenue_12m": revenue.to_numpy(),
            "transactions_12m": count.to_numpy(),
            "tier": pd.array(tier, dtype="string"),
            "lifecycle": pd.array(lifecycle, dtype="string"),
            "is_returning": returning.array,
        }
    )


def reclassify_candidates_sql(
    settings: ClassificationSettings, previous: date, current: date, where: str
) -> tuple[str, list[date]]:
    """SQL of the published customers whose classification may differ between two run dates.

    With unchanged inputs, :func:`classify` gives another answer on ``current`` than on
    ``previous`` only when a threshold crosses one of the customer's business dates: a
    transaction or registration date entering the past (``<= as_of``) or leaving the 12-month
    window, or a business date crossing the new, churned, dormant or tier recency bound. Every
    such bound is ``as_of`` minus a fixed offset, so a customer with no transaction or
    registration date within the shifted ranges keeps its classification. The set returned is a
    superset (ranges widened by a day); callers re-classify it with :func:`classify`.

    Args:
        settings: the classification thresholds (the same as the published state's).
        previous: the run date the published classification is as of.
        current: this run's date.
        where: an SQL condition on ``customer_id`` selecting the customers to consider.

    Returns:
        ``(sql, parameters)``: the SQL yields one ``customer_id`` column over
        ``golden.customers`` and ``golden.transactions``.
    """
    low, high = sorted((previous, current))
    day = pd.Timedelta(days=1)
    offsets = {
        pd.Timedelta(days=d)
        for d in (
            0,
            365,
            settings.churned_after_days,
            settings.new_within_days,
            settings.tier_a.max_days_since_business,
            settings.tier_b.max_days_since_business,
        )
    }
    shifts: list[pd.Timedelta | pd.DateOffset] = sorted(offsets)
    shifts.append(pd.DateOffset(years=settings.dormant_after_years))  # as classify's dormant_from
    ranges: list[date] = []
    for shift in shifts:
        ranges += [
            (pd.Timestamp(low) - shift - day).date(),
            (pd.Timestamp(high) - shift + day).date(),
        ]
    n = len(ranges) // 2
    between = " OR ".join(["{col} BETWEEN ? AND ?"] * n)
    sql = (
        f"SELECT customer_id FROM golden.customers WHERE {where} AND"
        f" ({between.format(col='registered_date::DATE')})"
        f" UNION SELECT customer_id FROM golden.transactions WHERE {where} AND"
        f" ({between.format(col='txn_date::DATE')})"
    )
    return sql, ranges + ranges

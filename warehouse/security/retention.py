"""Retention (not snapshot retention): dormant customers, and processed landing files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

RetentionAction = Literal["anonymize", "delete"]
_ACTIVITY = ("last_seen", "updated_at", "last_txn_date", "last_interaction_date")


def anonymize_dormant(
    customers: pd.DataFrame,
    years: int,
    today: date,
    action: RetentionAction = "anonymize",
    facts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Customers dormant for at least ``years`` years, with the action to take (a plan).

    Dormant means the latest activity — ``last_seen``/``updated_at`` of the customer and the
    latest date in ``facts`` (transactions/interactions: ``customer_id`` + a date column) —
    lies ``years`` or more before ``today``. Customers with no activity date at all are not
    planned (they are listed with action ``review`` so a person decides; nothing is lost).

    Apply each row with ``erase_customer(..., reason="retention", mode=action)`` (``delete``
    → ``mode="erase"``) and log the plan to the audit log.

    Args:
        customers: ``golden.customers``.
        years: the retention period in years (≥ 1).
        today: the run date.
        action: ``anonymize`` (keep counts, drop identifiers) or ``delete``.
        facts: optional rows with ``customer_id`` and date columns (``txn_date``, …).

    Returns:
        ``customer_id, last_activity, dormant_days, action``.

    Raises:
        ValueError: ``years`` < 1 or an unknown action.
    """
    if years < 1:
        raise ValueError(f"retention period must be at least 1 year, got {years}")
    if action not in ("anonymize", "delete"):
        raise ValueError(f"unknown retention action {action!r}")
    dates = [
        pd.to_datetime(customers[c], errors="coerce", format="mixed")
        for c in _ACTIVITY
        if c in customers
    ]
    latest = (
        pd.concat(dates, axis=1).max(axis=1) if dates else pd.Series(pd.NaT, index=customers.index)
    )
    frame = pd.DataFrame({"customer_id": customers["customer_id"].astype("string"), "last": latest})
    if facts is not None and len(facts):
        fact_dates = [
            pd.to_datetime(facts[c], errors="coerce", format="mixed")
            for c in facts.columns
            if c.endswith("_date")
        ]
        if fact_dates:
            per = (
                pd.DataFrame(
                    {
                        "customer_id": facts["customer_id"].astype("string"),
                        "d": pd.concat(fact_dates, axis=1).max(axis=1),
                    }
                )
                .groupby("customer_id")["d"]
                .max()
            )
            frame["last"] = pd.concat([frame["last"], frame["customer_id"].map(per)], axis=1).max(
                axis=1
            )
    cutoff = pd.Timestamp(today) - pd.DateOffset(years=years)
    dormant = frame["last"] <= cutoff
    unknown = frame["last"].isna()
    out = frame[dormant | unknown].copy()
    out["dormant_days"] = (pd.Timestamp(today) - out["last"]).dt.days.astype("Int64")
    out["action"] = action
    out.loc[out["last"].isna(), "action"] = "review"
    out["last_activity"] = out["last"].dt.strftime("%Y-%m-%d").astype("string")
    return out[["customer_id", "last_activity", "dormant_days", "action"]].reset_index(drop=True)


def dormant_plan(
    con: duckdb.DuckDBPyConnection, years: int, today: date, action: RetentionAction
) -> pd.DataFrame | None:
    """`anonymize_dormant` over the published golden layer (None when nothing is published).

    The activity facts are the transactions' ``txn_date`` and interactions' ``interaction_date``.
    """
    from warehouse.db import read_table

    customers = read_table(con, "golden.customers")
    facts = [
        t[["customer_id", c]]
        for name, c in (("golden.transactions", "txn_date"), ("golden.interactions",
                                                              "interaction_date"))
        if (t := read_table(con, name)) is not None and c in t
    ]  # fmt: skip
    if customers is None:
        return None
    return anonymize_dormant(
        customers, years, today, action=action, facts=pd.concat(facts) if facts else None
    )


def expired_landing_files(
    landing_dir: Path,
    processed: Mapping[str, tuple[str, date | None]],
    today: date,
    days: int,
    sha256: Callable[[Path], str],
) -> list[Path]:
    """Landing files older than ``days`` that a run has already ingested (safe to delete).

    A file qualifies when its path (relative to ``landing_dir``) is in ``processed`` with the
    same sha256 as on disk (a file changed since it was ingested is kept for the next run)
    and its delivery date — the ``YYYY-MM-DD`` folder, else its modification day — is more
    than ``days`` days before ``today``.

    Args:
        landing_dir: the landing folder.
        processed: relative path → (sha256 recorded at ingest, delivery date or None).
        today: the reference day.
        days: ``security.landing_retention_days``.
        sha256: the file hash function (``sources.deliveries.file_sha256``).

    Returns:
        The files to delete, in path order.
    """
    out: list[Path] = []
    for relative, (digest, delivered) in sorted(processed.items()):
        path = Path(landing_dir) / relative
        if not path.is_file():
            continue
        day = delivered or datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
        if (today - day).days > days and sha256(path) == digest:
            out.append(path)
    return out

"""`customer-archive deliveries list | withdraw`: the delivery log and taking a delivery back."""

from __future__ import annotations

import sys

import pandas as pd

from warehouse.versions import DeliveryNotFound, list_deliveries, withdraw_deliveries

from ..access import actor, audit, open_warehouse
from ..settings import ArchiveConfig
from .render import render_frame

__all__ = ["deliveries_list", "deliveries_withdraw", "withdraw"]


def withdraw(
    cfg: ArchiveConfig, delivery: str, reason: str, source: str | None = None
) -> pd.DataFrame:
    """Withdraw a delivery (file or date folder) and audit it; the next run leaves it out.

    Args:
        cfg: The project configuration.
        delivery: Landing-relative file or folder (``sales/2026-11-25``).
        reason: Why (required).
        source: Only this source's files.

    Returns:
        The files withdrawn (empty when they were withdrawn already).

    Raises:
        DeliveryNotFound: when no ingested delivery matches.
    """
    with open_warehouse(cfg) as con:
        rows = withdraw_deliveries(con, delivery, reason, withdrawn_by=actor(), source=source)
    audit(
        cfg,
        "withdraw_delivery",
        delivery,
        details={"reason": reason, "files": rows["path"].tolist(), "source": source},
    )
    return rows


def deliveries_list(cfg: ArchiveConfig, source: str | None = None, limit: int = 50) -> int:
    """Print the delivered files, newest delivery date first, with their withdrawal."""
    with open_warehouse(cfg, read_only=True) as con:
        frame = list_deliveries(con)
    if source:
        frame = frame[frame["source_system"] == source]
    if frame.empty:
        print("no deliveries yet")
        return 0
    shown = frame.drop(columns=["sha256"], errors="ignore")
    if pd.api.types.is_datetime64_any_dtype(shown["delivery_date"]):  # a date, not a midnight
        shown = shown.assign(delivery_date=shown["delivery_date"].dt.date)
    print(render_frame(shown, max_rows=limit))
    return 0


def deliveries_withdraw(
    cfg: ArchiveConfig, delivery: str, reason: str, source: str | None = None
) -> int:
    """Withdraw a delivery and say what the next run will do; exit 1 when nothing matches."""
    try:
        rows = withdraw(cfg, delivery, reason, source)
    except DeliveryNotFound as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if rows.empty:
        print(f"{delivery}: already withdrawn")
        return 0
    for r in rows.itertuples():
        print(f"withdrawn {r.source_system}: {r.path}")
    print("the next run leaves these rows out; the earlier versions are current again")
    return 0

"""`customer-archive deliveries list | withdraw`: the delivery log and taking a delivery back."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from warehouse.versions import DeliveryNotFound, list_deliveries, withdraw_deliveries

from .access import actor, audit, open_warehouse
from .settings import ArchiveConfig


def add_deliveries_parser(
    sub: argparse._SubParsersAction, add_common: object
) -> argparse.ArgumentParser:
    """Add the ``deliveries`` command (``list`` / ``withdraw``) to the CLI's subparsers."""
    p = sub.add_parser("deliveries", help="list delivered files; withdraw a bad delivery")
    add_common(p)  # type: ignore[operator]
    p.add_argument("action", choices=["list", "withdraw"])
    p.add_argument(
        "delivery",
        nargs="?",
        help="withdraw: a landing path (file, or a folder such as sales/2026-11-24)",
    )
    p.add_argument("--reason", default=None, help="withdraw: why (required, audited)")
    p.add_argument("--source", default=None, help="only this source's files")
    p.add_argument("--limit", type=int, default=50, help="list: rows shown (newest first)")
    return p


def withdraw(
    cfg: ArchiveConfig, delivery: str, reason: str, source: str | None = None
) -> pd.DataFrame:
    """Withdraw a delivery (file or folder) and audit it; the next run leaves it out.

    Args:
        cfg: The project configuration.
        delivery: Landing-relative file or folder.
        reason: Why (required).
        source: Only this source's files.

    Returns:
        The files withdrawn (empty when they were withdrawn already).
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


def deliveries_command(cfg: ArchiveConfig, args: argparse.Namespace) -> int:
    """Run ``deliveries list`` or ``deliveries withdraw``; return the exit code."""
    if args.action == "list":
        with open_warehouse(cfg, read_only=True) as con:
            frame = list_deliveries(con)
        if args.source:
            frame = frame[frame["source_system"] == args.source]
        if frame.empty:
            print("no deliveries yet")
            return 0
        shown = frame.head(args.limit).drop(columns=["sha256"], errors="ignore")
        with pd.option_context("display.max_columns", 20, "display.width", 200):
            print(shown.to_string(index=False))
        return 0
    if not args.delivery or not args.reason:
        print("withdraw needs a DELIVERY (landing path) and --reason", file=sys.stderr)
        return 2
    try:
        rows = withdraw(cfg, args.delivery, args.reason, args.source)
    except DeliveryNotFound as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if rows.empty:
        print(f"{args.delivery}: already withdrawn")
        return 0
    for r in rows.itertuples():
        print(f"withdrawn {r.source_system}: {r.path}")
    print("the next run leaves these rows out; the earlier versions are current again")
    return 0

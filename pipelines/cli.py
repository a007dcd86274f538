"""The `customer-archive` command line: demo data, runs, SQL and the operator commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .settings import DEFAULT_CONFIG, ConfigError, load_config


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="project YAML (archive.yml)")
    p.add_argument("--warehouse", default=None, help="DuckDB file (overrides the config)")


def _cmd_demo(args: argparse.Namespace) -> int:
    from sources.demo import write_demo

    out = Path(args.out)
    stamp = out / "demo.json"
    wanted = {"entities": args.entities, "seed": args.seed, "delivery_date": args.delivery_date}
    if stamp.exists() and not args.force and json.loads(stamp.read_text()) == wanted:
        print(f"demo data already in {out} ({args.entities} entities, seed {args.seed})")
        return 0
    files = write_demo(out, args.entities, args.seed, args.delivery_date)
    stamp.write_text(json.dumps(wanted))
    counts = ", ".join(f"{k} {v}" for k, v in files.record_counts.items())
    print(f"wrote demo exports to {out}/landing ({counts}); ground truth in {files.truth_csv}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import (
        configure_progress_logging,
        evaluate_against_truth,
        format_summary,
        run_pipeline,
    )

    configure_progress_logging()
    outcome = run_pipeline(args.config, args.warehouse, args.run_date)
    if args.demo_truth and outcome.success:
        cfg = load_config(
            args.config, warehouse=args.warehouse and str(Path(args.warehouse).resolve())
        )
        outcome.accuracy = evaluate_against_truth(cfg, Path(args.demo_truth))
    print(format_summary(outcome))
    if outcome.blocked:
        return 3
    return 0 if outcome.success else 1


def _cmd_sql(args: argparse.Namespace) -> int:
    from .query import run_query

    query = Path(args.file).read_text(encoding="utf-8") if args.file else args.query
    if not query:
        print("give a query or --file", file=sys.stderr)
        return 2
    cfg = load_config(args.config, warehouse=args.warehouse and str(Path(args.warehouse).resolve()))
    from warehouse.security import resolve_role

    role = args.role or resolve_role()
    return run_query(cfg, query, args.format, args.output, args.max_rows, role=role)


def _cfg(args: argparse.Namespace):
    wh = str(Path(args.warehouse).resolve()) if getattr(args, "warehouse", None) else None
    return load_config(args.config, warehouse=wh)


def _cmd_review(args: argparse.Namespace) -> int:
    from .access import open_warehouse
    from .stewardship import record_decision, review_queue

    cfg = _cfg(args)
    if args.action == "list":
        with open_warehouse(cfg, read_only=True) as con:
            queue = review_queue(con, args.limit)
        if queue.empty:
            print("the review queue is empty")
        else:
            import pandas as pd

            with pd.option_context("display.max_columns", 30, "display.width", 220):
                print(queue.to_string(index=False))
        return 0
    from .access import audit

    with open_warehouse(cfg) as con:
        record_decision(con, args.left, args.right, args.decision, args.by, args.note or "")
    audit(
        cfg,
        "review_decision",
        f"{args.left}~{args.right}",
        details={"decision": args.decision, "by": args.by, "note": args.note or ""},
    )
    print(f"recorded {args.decision} for {args.left} ~ {args.right}; the next run honours it")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from .access import open_warehouse
    from .stewardship import explain_customer, explain_records

    cfg = _cfg(args)
    with open_warehouse(cfg, read_only=True) as con:
        if args.customer:
            print(explain_customer(con, cfg, args.customer))
        elif args.left and args.right:
            print(explain_records(con, cfg, args.left, args.right))
        else:
            print("explain needs --customer ID or LEFT RIGHT record keys", file=sys.stderr)
            return 2
    return 0


def _cmd_ids(args: argparse.Namespace) -> int:
    from .access import open_warehouse
    from .stewardship import resolve_id

    cfg = _cfg(args)
    with open_warehouse(cfg, read_only=True) as con:
        current = resolve_id(con, args.customer_id)
    print(current if current == args.customer_id else f"{args.customer_id} → {current}")
    return 0


def _cmd_snapshots(args: argparse.Namespace) -> int:
    from .archive_ops import snapshots_command

    return snapshots_command(_cfg(args), args)


def _cmd_deliveries(args: argparse.Namespace) -> int:
    from .deliveries_ops import deliveries_command

    return deliveries_command(_cfg(args), args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .archive_ops import report_command

    return report_command(_cfg(args), args)


def _cmd_audit(args: argparse.Namespace) -> int:
    from .archive_ops import audit_command

    return audit_command(_cfg(args), args)


def _cmd_erase(args: argparse.Namespace) -> int:
    from .security_ops import erase

    return erase(_cfg(args), args.customer, args.reason, args.mode)


def _cmd_retention(args: argparse.Namespace) -> int:
    from .security_ops import retention

    return retention(_cfg(args), args.years, args.apply, args.limit, args.today)


def _cmd_keys(args: argparse.Namespace) -> int:
    from .security_ops import mart_key, rotate_keys

    return rotate_keys(_cfg(args)) if args.action == "rotate" else mart_key(_cfg(args))


def _cmd_audit_log(args: argparse.Namespace) -> int:
    from warehouse.security import AuditLog

    cfg = _cfg(args)
    result = AuditLog(cfg.resolve(cfg.security.audit_log)).verify()
    if result.ok:
        print(f"audit log intact: {result.entries} entries, hash chain verified")
        return 0
    print(f"audit log TAMPERED at line {result.first_bad_line}: {result.reason}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="customer-archive",
        description="客户档案 — departmental customer exports into one golden customer archive.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="write the demo departmental exports (with ground truth)")
    p.add_argument("--entities", type=int, default=5000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="data/demo")
    p.add_argument("--delivery-date", default="2026-11-23")
    p.add_argument("--force", action="store_true", help="rewrite even if present")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("run", help="run the whole pipeline once (executor: scale.executor)")
    _add_common(p)
    p.add_argument("--run-date", default=None, help="replay a date (YYYY-MM-DD)")
    p.add_argument("--demo-truth", default=None, help="truth.csv: print precision/recall/F1")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sql", help="query the warehouse (read-only) and print the result")
    _add_common(p)
    p.add_argument("query", nargs="?", default=None)
    p.add_argument("--file", default=None, help="read the query from a .sql file")
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    p.add_argument("--output", default=None, help="write to a file instead of stdout")
    p.add_argument("--max-rows", type=int, default=50, help="rows shown in table format")
    p.add_argument(
        "--role",
        choices=["admin", "steward", "analyst", "ops"],
        default=None,
        help="default $CUSTOMER_ARCHIVE_ROLE or admin; analyst reads the masked mart only",
    )
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser("review", help="steward review of uncertain matches")
    review = p.add_subparsers(dest="action", required=True)
    r = review.add_parser("list", help="pairs awaiting a decision, side by side")
    _add_common(r)
    r.add_argument("--limit", type=int, default=20)
    r.set_defaults(func=_cmd_review)
    r = review.add_parser("decide", help="record match / no-match for two records")
    _add_common(r)
    r.add_argument("left", help="record key, e.g. sales:KH10000001")
    r.add_argument("right", help="record key")
    r.add_argument("--decision", choices=["match", "no-match"], required=True)
    r.add_argument("--by", default=os.environ.get("USER", "steward"), help="who decides")
    r.add_argument("--note", default=None)
    r.set_defaults(func=_cmd_review)

    p = sub.add_parser("explain", help="why two records or one customer were (not) merged")
    _add_common(p)
    p.add_argument("left", nargs="?", help="record key, e.g. sales:KH10000001")
    p.add_argument("right", nargs="?", help="record key")
    p.add_argument("--customer", default=None, help="a customer_id (old merged ids resolve)")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("ids", help="resolve an old customer_id to the current one")
    _add_common(p)
    p.add_argument("customer_id")
    p.set_defaults(func=_cmd_ids)

    p = sub.add_parser("snapshots", help="list, verify, diff or restore archive snapshots")
    _add_common(p)
    p.add_argument("action", choices=["list", "verify", "diff", "restore"])
    p.add_argument("ids", nargs="*", help="snapshot id(s) or folder(s)")
    p.set_defaults(func=_cmd_snapshots)

    from .deliveries_ops import add_deliveries_parser

    add_deliveries_parser(sub, _add_common).set_defaults(func=_cmd_deliveries)

    p = sub.add_parser("report", help="write (and open) the HTML quality report of a run")
    _add_common(p)
    p.add_argument("--run", default=None, help="run id (default: the latest)")
    p.add_argument("--open", action="store_true", help="open it in a browser")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("audit", help="draw the quarterly audit sample worksheet")
    _add_common(p)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seed", default=None, help="default: the current quarter, e.g. 2026Q4")
    p.add_argument("--out", default=None, help="worksheet path (.xlsx or .csv)")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("erase", help="erase a customer's personal data everywhere (PIPL/GDPR)")
    _add_common(p)
    p.add_argument("--customer", required=True, help="customer_id (C…)")
    p.add_argument("--reason", required=True, help="request reference, kept in the tombstone")
    p.add_argument("--mode", choices=["erase", "anonymize"], default="erase")
    p.set_defaults(func=_cmd_erase)

    p = sub.add_parser("retention", help="anonymize/delete customers dormant for N years")
    _add_common(p)
    p.add_argument("--years", type=int, default=None, help="default security.retention_years")
    p.add_argument("--apply", action="store_true", help="do it (default: print the plan)")
    p.add_argument("--limit", type=int, default=None, help="at most this many customers")
    p.add_argument("--today", default=None, help="reference date (YYYY-MM-DD)")
    p.set_defaults(func=_cmd_retention)

    p = sub.add_parser("keys", help="rotate the master key; print the analyst mart key")
    _add_common(p)
    p.add_argument(
        "action",
        choices=["rotate", "mart-key"],
        help="rotate the master key, or print the analyst mart key to hand to analysts",
    )
    p.set_defaults(func=_cmd_keys)

    p = sub.add_parser("audit-log", help="verify the hash-chained audit log")
    _add_common(p)
    p.add_argument("action", choices=["verify"])
    p.set_defaults(func=_cmd_audit_log)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `customer-archive` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""The `customer-archive` argument parser: it turns each sub-command into one typed call."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from ..settings import default_config_path
from . import commands
from .commands import load_project
from .errors import EXIT_USAGE, DataError, UsageError, report

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and the CLI's usage exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: usage error: {message} (see {self.prog} --help)\n")


def _fraction(text: str) -> float:
    """An argparse type: a float in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], e.g. 0.1 for 10 %; got {text}")
    return value


def _positive(text: str) -> int:
    """An argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {text}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=None,
        help="project YAML (default $CUSTOMER_ARCHIVE_CONFIG or archive.yml)",
    )
    p.add_argument("--warehouse", default=None, help="DuckDB file (overrides the config)")
    p.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error (also $CUSTOMER_ARCHIVE_DEBUG=1)",
    )


def _config(a: argparse.Namespace) -> Path:
    return Path(a.config) if a.config else default_config_path()


def _cfg(a: argparse.Namespace):
    return load_project(_config(a), a.warehouse)


def _snapshots(a: argparse.Namespace) -> int:
    from .archive import snapshots_command

    return snapshots_command(_cfg(a), a.action, a.ids)


def _report(a: argparse.Namespace) -> int:
    from .archive import report_command

    return report_command(_cfg(a), a.run, a.open)


def _audit(a: argparse.Namespace) -> int:
    from .archive import audit_command

    return audit_command(_cfg(a), a.fraction, a.seed, a.out)


def _erase(a: argparse.Namespace) -> int:
    from .security import erase

    return erase(_cfg(a), a.customer, a.reason, a.mode)


def _retention(a: argparse.Namespace) -> int:
    from .security import retention

    return retention(_cfg(a), a.years, a.apply, a.limit, a.today)


def _deliveries_list(a: argparse.Namespace) -> int:
    from .deliveries import deliveries_list

    return deliveries_list(_cfg(a), a.source, a.limit)


def _deliveries_withdraw(a: argparse.Namespace) -> int:
    from .deliveries import deliveries_withdraw

    return deliveries_withdraw(_cfg(a), a.delivery, a.reason, a.source)


def _console(a: argparse.Namespace) -> int:
    from .console import console_command

    return console_command(_cfg(a), a.host, a.port, a.by, a.user_header)


def _keys(a: argparse.Namespace) -> int:
    from .security import mart_key, rotate_keys

    return rotate_keys(_cfg(a)) if a.action == "rotate" else mart_key(_cfg(a))


def _filing(a: argparse.Namespace) -> int:
    from . import filing as f

    cfg = _cfg(a)
    try:
        return _filing_call(f, cfg, a)
    except PermissionError as exc:
        raise UsageError(f"not allowed: {exc}") from exc
    except FileExistsError as exc:
        raise DataError(f"already archived: {exc}") from exc


def _filing_call(f, cfg, a: argparse.Namespace) -> int:
    if a.handler == "export registers":
        return f.export_registers_command(cfg, a.period, a.role, a.out)
    if a.handler == "export dossier":
        return f.export_dossier_command(cfg, a.customer, a.period, a.date, a.role, a.out)
    if a.handler == "package":
        return f.package_command(cfg, a.action, a.period, a.date, a.ids)
    if a.handler == "dormant":
        return f.dormant_command(cfg, a.action, a.customers, a.reason, a.date)
    return f.reverify_command(cfg, a.as_of, a.out)


HANDLERS: dict[str, Handler] = {
    "demo": lambda a: commands.demo(
        Path(a.out), a.entities, a.seed, a.delivery_date, force=a.force
    ),
    "run": lambda a: commands.run(
        _config(a), a.warehouse, a.run_date, Path(a.demo_truth) if a.demo_truth else None
    ),
    "sql": lambda a: commands.sql(
        _cfg(a),
        a.query,
        Path(a.file) if a.file else None,
        a.format,
        a.output,
        a.max_rows,
        a.role,
    ),
    "review list": lambda a: commands.review_list(_cfg(a), a.limit),
    "review decide": lambda a: commands.review_decide(
        _cfg(a), a.left, a.right, a.decision, a.by, a.note
    ),
    "explain": lambda a: commands.explain(_cfg(a), a.left, a.right, a.customer),
    "ids": lambda a: commands.ids(_cfg(a), a.customer_id),
    "evaluate": lambda a: commands.evaluate(
        _cfg(a),
        Path(a.truth) if a.truth else None,
        a.labels,
        Path(a.cases) if a.cases else None,
        Path(a.errors) if a.errors else None,
    ),
    "snapshots": _snapshots,
    "deliveries list": _deliveries_list,
    "deliveries withdraw": _deliveries_withdraw,
    "report": _report,
    "audit": _audit,
    "erase": _erase,
    "retention": _retention,
    "keys": _keys,
    "console": _console,
    "audit-log": lambda a: (
        commands.audit_log_verify(_cfg(a))
        if a.action == "verify"
        else commands.audit_log_rechain(_cfg(a))
    ),
    "export registers": _filing,
    "export dossier": _filing,
    "package": _filing,
    "dormant": _filing,
    "reverify": _filing,
}


def _add_filing(sub: argparse._SubParsersAction) -> None:
    """The archive office's commands (seed 004): export, package, dormant, reverify."""
    roles = ["admin", "steward", "analyst", "ops"]
    p = sub.add_parser("export", help="表1/表2/表3 registers (XLSX) or 客户档案 dossiers (PDF)")
    export = p.add_subparsers(dest="what", required=True)
    r = export.add_parser("registers", help="表1/表2/表3 of a month with the seed's headers")
    _add_common(r)
    r.add_argument("--period", required=True, help="YYYY-MM")
    r.add_argument("--role", choices=roles, default=None, help="default $CUSTOMER_ARCHIVE_ROLE")
    r.add_argument("--out", default=None, help="folder (default filing.dir/registers/…)")
    r.set_defaults(handler="export registers")
    r = export.add_parser("dossier", help="one PDF per customer: <客户编号>_档案_<YYYYMMDD>.pdf")
    _add_common(r)
    r.add_argument("--customer", action="append", default=[], help="customer id (repeatable)")
    r.add_argument("--period", default=None, help="YYYY-MM: customers new or changed then")
    r.add_argument("--date", default=None, help="archive date printed and in the name (today)")
    r.add_argument("--role", choices=roles, default=None, help="steward or admin")
    r.add_argument("--out", default=None, help="folder (default filing.dir/dossiers)")
    r.set_defaults(handler="export dossier")

    p = sub.add_parser("package", help="monthly / yearly archive packages (归档), verify them")
    _add_common(p)
    p.add_argument("action", choices=["monthly", "yearly", "due", "verify"])
    p.add_argument("ids", nargs="*", help="verify: package folders (default: all)")
    p.add_argument("--period", default=None, help="monthly: YYYY-MM; yearly: YYYY")
    p.add_argument(
        "--date",
        default=None,
        help="archive date (default: the due working day; due: the day to check, default today)",
    )
    p.set_defaults(handler="package", trailing="ids")

    p = sub.add_parser("dormant", help="休眠档案: review candidates, approve the move (audited)")
    _add_common(p)
    p.add_argument("action", choices=["review", "approve"])
    p.add_argument("customers", nargs="*", help="approve: customer ids")
    p.add_argument("--reason", default=None, help="approval reference (required to approve)")
    p.add_argument("--date", default=None, help="approval date (default today)")
    p.set_defaults(handler="dormant", trailing="customers")

    p = sub.add_parser("reverify", help="每年回访: key contact data unconfirmed for 12 months")
    _add_common(p)
    p.add_argument("--as-of", default=None, help="reference date (default today)")
    p.add_argument("--out", default=None, help="XLSX path")
    p.set_defaults(handler="reverify")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = _Parser(
        prog="customer-archive",
        description="客户档案 — departmental customer exports into one golden customer archive.",
        epilog="Exit codes: 0 ok, 1 run failed, 2 usage/configuration, 3 publishing blocked, "
        "4 data/query, 5 busy, 6 security, 70 internal error (see docs/cli.md).",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="write the demo departmental exports (with ground truth)")
    p.add_argument("--entities", type=_positive, default=5000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="data/demo")
    p.add_argument("--delivery-date", default="2026-11-23")
    p.add_argument("--force", action="store_true", help="rewrite even if present")
    p.set_defaults(handler="demo")

    p = sub.add_parser("run", help="run the whole pipeline once (executor: scale.executor)")
    _add_common(p)
    p.add_argument("--run-date", default=None, help="replay a date (YYYY-MM-DD)")
    p.add_argument("--demo-truth", default=None, help="truth.csv: print precision/recall/F1")
    p.set_defaults(handler="run")

    p = sub.add_parser("sql", help="query the warehouse (read-only) and print the result")
    _add_common(p)
    p.add_argument("query", nargs="?", default=None)
    p.add_argument("--file", default=None, help="read the query from a .sql file")
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    p.add_argument("--output", default=None, help="write to a file instead of stdout")
    p.add_argument("--max-rows", type=_positive, default=50, help="rows shown in table format")
    p.add_argument(
        "--role",
        choices=["admin", "steward", "analyst", "ops"],
        default=None,
        help="default $CUSTOMER_ARCHIVE_ROLE or admin; analyst reads the masked mart only",
    )
    p.set_defaults(handler="sql")

    p = sub.add_parser("review", help="steward review of uncertain matches")
    review = p.add_subparsers(dest="action", required=True)
    r = review.add_parser("list", help="pairs awaiting a decision, side by side")
    _add_common(r)
    r.add_argument("--limit", type=_positive, default=20)
    r.set_defaults(handler="review list")
    r = review.add_parser("decide", help="record match / no-match for two records")
    _add_common(r)
    r.add_argument("left", help="record key, e.g. sales:KH10000001")
    r.add_argument("right", help="record key")
    r.add_argument("--decision", choices=["match", "no-match"], required=True)
    r.add_argument("--by", default=os.environ.get("USER", "steward"), help="who decides")
    r.add_argument("--note", default=None)
    r.set_defaults(handler="review decide")

    p = sub.add_parser("explain", help="why two records or one customer were (not) merged")
    _add_common(p)
    p.add_argument("left", nargs="?", help="record key, e.g. sales:KH10000001")
    p.add_argument("right", nargs="?", help="record key")
    p.add_argument("--customer", default=None, help="a customer_id (old merged ids resolve)")
    p.set_defaults(handler="explain", trailing=("left", "right"))

    p = sub.add_parser(
        "evaluate", help="precision/recall of the customers against your labelled sample"
    )
    _add_common(p)
    p.add_argument(
        "--truth",
        default=None,
        help="CSV: record_key (or source_system, source_record_id), entity_id[, hard_case]",
    )
    p.add_argument(
        "--labels",
        default=None,
        help="CSV of labelled pairs (left_key, right_key, decision), or 'steward' for the "
        "recorded steward decisions",
    )
    p.add_argument("--cases", default=None, help="CSV: entity_id, hard_case (per-case split)")
    p.add_argument("--errors", default=None, help="folder for missed_pairs.csv, false_pairs.csv")
    p.set_defaults(handler="evaluate")

    p = sub.add_parser("ids", help="resolve an old customer_id to the current one")
    _add_common(p)
    p.add_argument("customer_id")
    p.set_defaults(handler="ids")

    p = sub.add_parser(
        "snapshots", help="list, verify, diff or restore archive snapshots; publish a full one"
    )
    _add_common(p)
    p.add_argument("action", choices=["list", "verify", "diff", "restore", "full"])
    p.add_argument("ids", nargs="*", help="snapshot id(s) or folder(s)")
    p.set_defaults(handler="snapshots", trailing="ids")

    p = sub.add_parser("deliveries", help="list delivered files; withdraw a bad delivery")
    deliveries = p.add_subparsers(dest="action", required=True)
    r = deliveries.add_parser("list", help="delivered files, newest date first, with withdrawals")
    _add_common(r)
    r.add_argument("--source", default=None, help="only this source's files")
    r.add_argument("--limit", type=_positive, default=50, help="rows shown")
    r.set_defaults(handler="deliveries list")
    r = deliveries.add_parser(
        "withdraw", help="take a bad delivery back: the next run restores the versions before it"
    )
    _add_common(r)
    r.add_argument("delivery", help="landing path: a file, or a folder such as sales/2026-11-25")
    r.add_argument("--reason", required=True, help="why (kept in the withdrawal and audit log)")
    r.add_argument("--source", default=None, help="only this source's files")
    r.set_defaults(handler="deliveries withdraw")

    p = sub.add_parser("report", help="write (and open) the HTML quality report of a run")
    _add_common(p)
    p.add_argument("--run", default=None, help="run id (default: the latest)")
    p.add_argument("--open", action="store_true", help="open it in a browser")
    p.set_defaults(handler="report")

    p = sub.add_parser("audit", help="draw the quarterly audit sample worksheet")
    _add_common(p)
    p.add_argument("--fraction", type=_fraction, default=0.1, help="share sampled, in (0, 1]")
    p.add_argument("--seed", default=None, help="default: the current quarter, e.g. 2026Q4")
    p.add_argument("--out", default=None, help="worksheet path (.xlsx or .csv)")
    p.set_defaults(handler="audit")

    p = sub.add_parser("erase", help="erase a customer's personal data everywhere (PIPL/GDPR)")
    _add_common(p)
    p.add_argument("--customer", required=True, help="customer_id (C…)")
    p.add_argument("--reason", required=True, help="request reference, kept in the tombstone")
    p.add_argument("--mode", choices=["erase", "anonymize"], default="erase")
    p.set_defaults(handler="erase")

    p = sub.add_parser("retention", help="anonymize/delete customers dormant for N years")
    _add_common(p)
    p.add_argument("--years", type=_positive, default=None, help="default security.retention_years")
    p.add_argument("--apply", action="store_true", help="do it (default: print the plan)")
    p.add_argument("--limit", type=_positive, default=None, help="at most this many customers")
    p.add_argument("--today", default=None, help="reference date (YYYY-MM-DD)")
    p.set_defaults(handler="retention")

    p = sub.add_parser("console", help="the steward console: review queue, customers, search")
    _add_common(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: this machine only)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--by",
        default=os.environ.get("CUSTOMER_ARCHIVE_ACTOR") or os.environ.get("USER", "steward"),
        help="who decides (default $CUSTOMER_ARCHIVE_ACTOR or $USER)",
    )
    p.add_argument(
        "--user-header",
        default=None,
        help="header set by a login proxy naming the signed-in steward (e.g. X-Remote-User)",
    )
    p.set_defaults(handler="console")

    p = sub.add_parser("keys", help="rotate the master key; print the analyst mart key")
    _add_common(p)
    p.add_argument(
        "action",
        choices=["rotate", "mart-key"],
        help="rotate the master key, or print the analyst mart key to hand to analysts",
    )
    p.set_defaults(handler="keys")

    p = sub.add_parser(
        "audit-log",
        help="verify the hash-chained audit log against its anchors (warehouse, snapshots), "
        "or re-chain a log written before query texts were redacted",
    )
    _add_common(p)
    p.add_argument("action", choices=["verify", "rechain"])
    p.set_defaults(handler="audit-log")
    _add_filing(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `customer-archive` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse fills `action ids*` at the first positional it meets, so in `snapshots verify
    # --config a.yml ID` the ID comes back unparsed: it belongs to the command's id list
    # (a list), and in `explain L --config a.yml R` R belongs to the first optional positional
    # argparse left empty (a tuple of names, filled in order)
    trailing = getattr(args, "trailing", None)
    if extra and (trailing is None or any(x.startswith("-") for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra and isinstance(trailing, tuple):
        empty = [name for name in trailing if getattr(args, name) is None]
        if len(extra) > len(empty):
            parser.error(f"unrecognized arguments: {' '.join(extra[len(empty) :])}")
        for name, value in zip(empty, extra, strict=False):
            setattr(args, name, value)
    elif extra:
        setattr(args, trailing, [*getattr(args, trailing), *extra])
    return report(lambda: HANDLERS[args.handler](args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())

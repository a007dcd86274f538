"""The `customer-archive` commands as typed functions; `pipelines.cli.main` parses into them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..settings import ArchiveConfig, load_config

__all__ = [
    "audit_log_verify",
    "demo",
    "evaluate",
    "explain",
    "ids",
    "load_project",
    "review_decide",
    "review_list",
    "run",
    "sql",
]


def load_project(config: str | Path, warehouse: str | None = None) -> ArchiveConfig:
    """The project configuration, with ``warehouse`` (resolved against the working folder)."""
    wh = str(Path(warehouse).resolve()) if warehouse else None
    return load_config(config, warehouse=wh)


def demo(out: Path, entities: int, seed: int, delivery_date: str, force: bool = False) -> int:
    """Write the demo departmental exports (with ground truth) unless already there."""
    from sources.demo import write_demo

    stamp = out / "demo.json"
    wanted = {"entities": entities, "seed": seed, "delivery_date": delivery_date}
    if stamp.exists() and not force and json.loads(stamp.read_text()) == wanted:
        print(f"demo data already in {out} ({entities} entities, seed {seed})")
        return 0
    files = write_demo(out, entities, seed, delivery_date)
    stamp.write_text(json.dumps(wanted))
    counts = ", ".join(f"{k} {v}" for k, v in files.record_counts.items())
    print(f"wrote demo exports to {out}/landing ({counts}); ground truth in {files.truth_csv}")
    return 0


def run(
    config: str | Path,
    warehouse: str | None = None,
    run_date: str | None = None,
    demo_truth: Path | None = None,
) -> int:
    """Run the whole pipeline once and print its summary (exit 3 when publishing was blocked)."""
    from ..runner import (
        configure_progress_logging,
        evaluate_against_truth,
        format_summary,
        run_pipeline,
    )

    configure_progress_logging()
    outcome = run_pipeline(config, warehouse, run_date)
    if demo_truth and outcome.success:
        outcome.accuracy = evaluate_against_truth(load_project(config, warehouse), demo_truth)
    print(format_summary(outcome))
    if outcome.blocked:
        return 3
    return 0 if outcome.success else 1


def sql(
    cfg: ArchiveConfig,
    query: str | None,
    file: Path | None = None,
    fmt: str = "table",
    output: str | None = None,
    max_rows: int = 50,
    role: str | None = None,
) -> int:
    """Query the warehouse read-only (as ``role``) and print or write the result."""
    from warehouse.security import resolve_role

    from .query import run_query

    text = file.read_text(encoding="utf-8") if file else query
    if not text:
        print("give a query or --file", file=sys.stderr)
        return 2
    return run_query(cfg, text, fmt, output, max_rows, role=role or resolve_role())


def review_list(cfg: ArchiveConfig, limit: int = 20) -> int:
    """Print the pairs awaiting a steward decision, side by side."""
    from ..access import open_warehouse
    from .stewardship import review_queue

    with open_warehouse(cfg, read_only=True) as con:
        queue = review_queue(con, limit)
    if queue.empty:
        print("the review queue is empty")
    else:
        from .render import render_frame

        print(render_frame(queue.round({"probability": 4}), max_rows=limit))
    return 0


def review_decide(
    cfg: ArchiveConfig, left: str, right: str, decision: str, by: str, note: str | None = None
) -> int:
    """Record a steward's match / no-match for two records (the next run honours it)."""
    from .errors import DataError
    from .stewardship import decide_audited

    try:
        decide_audited(cfg, [(left, right, decision)], by, note or "")
    except ValueError as exc:  # unknown record keys: the user's to fix, not a bug
        raise DataError(f"{exc} (keys are source:record_id, e.g. from `review list`)") from exc
    print(f"recorded {decision} for {left} ~ {right}; the next run honours it")
    return 0


def explain(
    cfg: ArchiveConfig,
    left: str | None = None,
    right: str | None = None,
    customer: str | None = None,
) -> int:
    """Print why two records or one customer were (not) merged."""
    from ..access import open_warehouse
    from .errors import DataError, UsageError
    from .stewardship import explain_customer, explain_records

    if not customer and not (left and right):
        raise UsageError("explain needs --customer ID or LEFT RIGHT record keys")
    with open_warehouse(cfg, read_only=True) as con:
        try:
            text = (
                explain_customer(con, cfg, customer)
                if customer
                else explain_records(con, cfg, str(left), str(right))
            )
        except KeyError as exc:  # an unknown customer id or record key: the user's to fix
            raise DataError(str(exc.args[0]) if exc.args else str(exc)) from exc
    print(text)
    return 0


def evaluate(
    cfg: ArchiveConfig,
    truth: Path | None = None,
    labels: str | None = None,
    cases: Path | None = None,
    errors: Path | None = None,
) -> int:
    """Print the accuracy of the published customers against a labelled sample, errors classed.

    `truth`: a CSV of ``record_key`` (or ``source_system, source_record_id``) and ``entity_id``
    (optionally ``hard_case``); `labels`: a CSV of labelled pairs (``left_key, right_key,
    decision``) or ``steward`` for the decisions recorded with ``review decide``.
    """
    import pandas as pd

    from dedupe.evaluate import evaluate_run, format_report
    from sources.demo import read_truth
    from warehouse import read_table

    from ..access import open_warehouse

    if (truth is None) == (labels is None):
        print("evaluate needs --truth FILE or --labels FILE|steward (one of them)", file=sys.stderr)
        return 2
    sample = read_truth(truth) if truth is not None else None
    pairs_file = None if labels in (None, "steward") else pd.read_csv(labels, dtype=str)
    with open_warehouse(cfg, read_only=True) as con:
        crosswalk = read_table(con, "golden.crosswalk")
        if crosswalk is None:
            print("golden.crosswalk is missing: nothing published yet", file=sys.stderr)
            return 1
        pairs = read_table(con, "match.pairs")
        decided = read_table(con, "match.decisions") if labels == "steward" else None
    if labels == "steward" and (decided is None or decided.empty):
        print("no steward decisions recorded yet (customer-archive review decide)", file=sys.stderr)
        return 1
    report = evaluate_run(
        crosswalk,
        pairs,
        truth=sample,
        labels=decided if labels == "steward" else pairs_file,
        cases=pd.read_csv(cases, dtype=str) if cases is not None else None,
        match_threshold=cfg.matching.match_threshold,
        review_threshold=cfg.matching.review_threshold,
    )
    source = str(truth) if truth is not None else f"labelled pairs ({labels})"
    print(format_report(report, f"accuracy of golden.crosswalk against {source}"))
    if errors is not None:
        errors.mkdir(parents=True, exist_ok=True)
        report.missed_pairs.to_csv(errors / "missed_pairs.csv", index=False)
        report.false_pairs.to_csv(errors / "false_pairs.csv", index=False)
        print(f"  error pairs written to {errors}/missed_pairs.csv, false_pairs.csv")
    return 0


def ids(cfg: ArchiveConfig, customer_id: str) -> int:
    """Print the current customer_id an old (merged) one resolves to."""
    from ..access import open_warehouse
    from .stewardship import resolve_id

    with open_warehouse(cfg, read_only=True) as con:
        current = resolve_id(con, customer_id)
    print(current if current == customer_id else f"{customer_id} → {current}")
    return 0


def audit_anchors(cfg: ArchiveConfig) -> dict[str, tuple[int, str]]:
    """Where the audit log's head is anchored: the warehouse and each snapshot manifest."""
    from warehouse.security.audit_anchor import read_audit_head, snapshot_anchors

    from ..access import open_warehouse

    snapshots = snapshot_anchors(cfg.resolve(cfg.archive_dir))
    anchors = {f"snapshot {k}": v for k, v in snapshots.items()}
    if cfg.resolve(cfg.warehouse).exists():
        with open_warehouse(cfg, read_only=True) as con:
            head = read_audit_head(con)
        if head is not None:
            anchors["warehouse security.audit_head"] = head
    return anchors


def audit_log_verify(cfg: ArchiveConfig) -> int:
    """Verify the hash chain of the audit log and that every anchored head is still in it."""
    from warehouse.security import AuditLog

    log_ = AuditLog(cfg.resolve(cfg.security.audit_log))
    anchors = audit_anchors(cfg)
    result = log_.verify(anchors=anchors.values())
    if result.ok:
        print(
            f"audit log intact: {result.entries} entries, hash chain verified against "
            f"{len(anchors)} anchors (warehouse, snapshot manifests)"
        )
        return 0
    print(f"audit log TAMPERED at line {result.first_bad_line}: {result.reason}", file=sys.stderr)
    return 1


def audit_log_rechain(cfg: ArchiveConfig) -> int:
    """Redact a log written before redaction existed; the chain is rebuilt with a map."""
    from warehouse.security import AuditLog

    from ..access import actor, anchor_audit_head

    log_ = AuditLog(cfg.resolve(cfg.security.audit_log))
    try:
        out = log_.rechain(actor=actor(), anchors=audit_anchors(cfg).values())
    except ValueError as exc:
        print(f"audit log not re-chained: {exc}", file=sys.stderr)
        return 1
    anchor_audit_head(cfg, log_.head())
    print(
        f"audit log re-chained: {out['entries']} entries, {out['changed']} redacted; "
        f"old head {out['old_head'][0]} → map {out['map'].name} (sha256 {out['map_sha256'][:16]}…)"
    )
    return 0

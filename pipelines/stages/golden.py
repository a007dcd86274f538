"""The golden stage: stable customer IDs and the new golden state, staged in ``staging.*``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from dedupe import assign_customer_ids
from warehouse import build_golden, read_table, table_exists
from warehouse.golden import RECORD_COLUMNS
from warehouse.match_state import best_scores
from warehouse.ops import read_required, require_tables
from warehouse.publish import carry_forward_run_ids, stage_golden

from .context import RunContext, StageResult

log = logging.getLogger("customer_archive")

__all__ = ["GoldenStats", "golden_stage"]


@dataclass(kw_only=True)
class GoldenStats(StageResult):
    """What the golden stage built."""

    golden_customers: int
    crosswalk_rows: int
    ids_created: int
    merges: int
    splits: int


def golden_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> GoldenStats:
    """Assign stable customer IDs and build the new golden state into ``staging.*``."""
    hint = "run the clean and match stages"
    require_tables(con, ("clean.records", "match.clusters", "match.pairs"), hint)
    records, clusters = read_required(
        con, ("clean.records", "match.clusters"), hint, columns={"clean.records": RECORD_COLUMNS}
    )
    previous = read_table(con, "golden.crosswalk")
    id_history = read_table(con, "golden.customer_ids")
    existing_ids: list[str] = []
    if id_history is not None:
        existing_ids = id_history["customer_id"].dropna().astype(str).unique().tolist()
    ids = assign_customer_ids(
        clusters,
        previous[["record_key", "customer_id"]] if previous is not None else None,
        ctx.run_date,
        existing_ids=existing_ids,
    )
    golden = build_golden(
        records,
        ids.assignments,
        best_scores(con),
        read_table(con, "clean.transactions") if table_exists(con, "clean.transactions") else None,
        read_table(con, "clean.interactions") if table_exists(con, "clean.interactions") else None,
        ctx.config.golden,
        ctx.run_id,
        ctx.run_date,
    )
    golden.customers = carry_forward_run_ids(
        golden.customers, read_table(con, "golden.customers"), ["customer_id"], "updated_run_id"
    )
    golden.attribute_lineage = carry_forward_run_ids(
        golden.attribute_lineage,
        read_table(con, "golden.attribute_lineage"),
        ["customer_id", "attribute"],
        "run_id",
    )
    events = ids.events.assign(run_id=ctx.run_id, run_date=ctx.run_date.isoformat())
    stage_golden(con, golden.as_dict(), events)
    counts = events["event"].value_counts().to_dict() if len(events) else {}
    stats = GoldenStats(
        golden_customers=len(golden.customers),
        crosswalk_rows=len(golden.crosswalk),
        ids_created=int(counts.get("created", 0)),
        merges=int(counts.get("merged_into", 0)),
        splits=int(counts.get("split_from", 0)),
    )
    log.info(
        "golden     customers=%d (new ids=%d merges=%d splits=%d)",
        stats.golden_customers,
        stats.ids_created,
        stats.merges,
        stats.splits,
    )
    return stats

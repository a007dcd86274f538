"""The clean stage: the current version of every record into ``clean.*`` (incrementally)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import duckdb

from cleaning import (
    CleaningOptions,
    clean_records,
    date_order_frame,
    incremental_clean,
    worker_pool,
)
from cleaning.incremental import CLEAN_TABLES
from warehouse import read_table, replace_tables
from warehouse.versions import create_version_views, current_raw_rows, mark_deleted_at_source

from .context import RunContext, StageResult, load_sources

log = logging.getLogger("customer_archive")

__all__ = ["CleanStats", "clean_stage"]


@dataclass(kw_only=True)
class CleanStats(StageResult):
    """What the clean stage did (``mode``: ``incremental`` or ``full``)."""

    mode: str
    raw_rows: int
    clean_records: int
    transactions: int
    interactions: int
    follow_up: int
    deleted_at_source: int = 0


def clean_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> CleanStats:
    """Clean the current version of every record into ``clean.*`` (one transaction).

    ``raw.<source>`` holds every version of every record; ``warehouse.versions`` picks the
    current one per ``record_key`` (delivery date → updated_at → arrival, withdrawn deliveries
    left out) with ``deleted_at_source``, which is carried onto ``clean.records``.
    """
    sources_cfg = load_sources(ctx.config)
    raw = current_raw_rows(con, sources_cfg.sources)
    create_version_views(con, sources_cfg.sources)
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in sources_cfg.sources},
        departments={s.name: s.department for s in sources_cfg.sources},
    )
    result = None
    with worker_pool(ctx.config.scale.clean_workers):  # distinct values parsed in chunks
        if ctx.config.clean_incremental:
            previous = {name: read_table(con, f"clean.{name}") for name in CLEAN_TABLES}
            result = incremental_clean(previous, raw, options)
        mode = "incremental" if result is not None else "full"
        if result is None:
            result = clean_records(raw, options)
    result = replace(result, records=mark_deleted_at_source(result.records, raw))
    replace_tables(
        con,
        {
            "clean.records": result.records,
            "clean.transactions": result.transactions,
            "clean.interactions": result.interactions,
            "clean.follow_up": result.follow_up,
            "clean.unmapped_industries": result.unmapped_industries,
            "clean.date_orders": date_order_frame(raw, options),
        },
    )
    stats = CleanStats(
        mode=mode,
        raw_rows=len(raw),
        clean_records=len(result.records),
        transactions=len(result.transactions),
        interactions=len(result.interactions),
        follow_up=len(result.follow_up),
        deleted_at_source=int(result.records["deleted_at_source"].notna().sum()),
    )
    log.info(
        "clean      (%s) records=%d transactions=%d interactions=%d follow_up=%d",
        mode,
        stats.clean_records,
        stats.transactions,
        stats.interactions,
        stats.follow_up,
    )
    return stats

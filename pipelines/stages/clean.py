"""The clean stage: every active raw row into ``clean.*`` (incrementally when it can)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from cleaning import CleaningOptions, clean_records, date_order_frame, incremental_clean
from cleaning.incremental import CLEAN_TABLES
from sources import CANONICAL_FIELDS
from warehouse import read_table, replace_tables
from warehouse.raw import active_raw_rows

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


def clean_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> CleanStats:
    """Clean every active raw row into ``clean.*`` (replaced in one transaction)."""
    sources_cfg = load_sources(ctx.config)
    names = [s.name for s in sources_cfg.sources]
    raw = active_raw_rows(con, names, CANONICAL_FIELDS)
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in sources_cfg.sources},
        departments={s.name: s.department for s in sources_cfg.sources},
    )
    result = None
    if ctx.config.clean_incremental:
        previous = {name: read_table(con, f"clean.{name}") for name in CLEAN_TABLES}
        result = incremental_clean(previous, raw, options)
    mode = "incremental" if result is not None else "full"
    if result is None:
        result = clean_records(raw, options)
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

"""Steward commands' warehouse reads and writes: the review queue, decisions, explanations, IDs."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from dedupe import resolve_customer_id
from dedupe import stewardship as steward
from warehouse import read_table, replace_tables

from ..settings import ArchiveConfig
from ..stages import latest_params

DECISIONS = steward.DECISIONS


def review_queue(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pd.DataFrame:
    """The pairs awaiting a steward, most likely matches first, without those already decided."""
    return steward.pending_review(
        read_table(con, "match.review_queue"), read_table(con, "match.decisions"), limit
    )


def record_decision(
    con: duckdb.DuckDBPyConnection,
    left_key: str,
    right_key: str,
    decision: str,
    decided_by: str,
    note: str = "",
) -> pd.DataFrame:
    """Store a steward decision in ``match.decisions``; the next run honours it.

    Raises:
        ValueError: unknown decision, or a record key that is not in ``clean.records``.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    records = read_table(con, "clean.records", ["record_key"])
    known = set(records["record_key"]) if records is not None else set()
    row = steward.with_decision(
        read_table(con, "match.decisions"),
        known,
        left_key,
        right_key,
        decision,
        decided_by,
        datetime.now(UTC).isoformat(timespec="seconds"),
        note,
    )
    replace_tables(con, {"match.decisions": row})
    return row


def explain_records(
    con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, left_key: str, right_key: str
) -> str:
    """Why two records were (not) merged: per-field levels, weights, score, clusters."""
    records = read_table(con, "clean.records")
    params = latest_params(con)
    if records is None or params is None:
        raise RuntimeError("no match run yet: run the pipeline first")
    return steward.explain_records(
        records,
        left_key,
        right_key,
        params,
        cfg.matching,
        read_table(con, "golden.crosswalk"),
        read_table(con, "match.decisions"),
    )


def explain_customer(con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, customer_id: str) -> str:
    """Why a golden customer holds the records it holds: each record and its links."""
    history = read_table(con, "golden.customer_ids")
    crosswalk = read_table(con, "golden.crosswalk")
    if crosswalk is None:
        raise RuntimeError("nothing published yet: run the pipeline first")
    return steward.explain_customer(
        customer_id,
        history,
        crosswalk,
        read_table(con, "match.pairs"),
        cfg.matching.review_threshold,
        cfg.matching.match_threshold,
    )


def resolve_id(con: duckdb.DuckDBPyConnection, customer_id: str) -> str:
    """The current customer_id of an old (possibly merged) one."""
    history = read_table(con, "golden.customer_ids")
    if history is None:
        raise RuntimeError("no ID history yet: run the pipeline first")
    return resolve_customer_id(customer_id, history)

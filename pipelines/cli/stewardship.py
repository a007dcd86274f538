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
from .errors import DataError

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


def decide_audited(
    cfg: ArchiveConfig,
    decisions: list[tuple[str, str, str]],
    decided_by: str,
    note: str = "",
    channel: str = "cli",
) -> pd.DataFrame:
    """Record steward decisions under the run lock and audit each one (CLI and console alike).

    Args:
        cfg: the project configuration.
        decisions: ``(left_key, right_key, decision)`` triples, decision in :data:`DECISIONS`.
        decided_by: who decides (kept in ``match.decisions`` and the audit log).
        note: free text kept beside each decision.
        channel: where the decision was taken (``cli``, ``console``), in the audit details.

    Returns:
        ``match.decisions`` after the last one.

    Raises:
        ValueError: an unknown decision or record key (nothing after it is recorded).
        warehouse.archive.RunLockedError: a pipeline run or another writer holds the lock.
    """
    from ..access import audit, open_warehouse, run_lock

    table = pd.DataFrame()
    with run_lock(cfg), open_warehouse(cfg) as con:
        for left, right, decision in decisions:
            table = record_decision(con, left, right, decision, decided_by, note)
            # record keys and the note's text stay in the warehouse (erasable); the log keeps
            # keyed pseudonyms of the keys and the note's length, so it never holds personal data
            audit(
                cfg,
                "review_decision",
                audited_pair(cfg, left, right),
                details={
                    "decision": decision,
                    "by": decided_by,
                    "note_chars": len(note),
                    "via": channel,
                },
            )
    return table


def audited_pair(cfg: ArchiveConfig, left: str, right: str) -> str:
    """How a decided pair is named in the audit log: keyed pseudonyms of both record keys
    (``?~?`` when the archive has no key to derive them from)."""
    from warehouse.security import pseudonym

    from ..access import keyring

    ring = keyring(cfg)
    if ring is None:
        return "?~?"
    secret = ring.derive("audit")
    return f"{pseudonym(left, secret, 'R')}~{pseudonym(right, secret, 'R')}"


def explain_records(
    con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, left_key: str, right_key: str
) -> str:
    """Why two records were (not) merged: per-field levels, weights, score, clusters."""
    from warehouse.match_explain import last_link_rows

    pair = "record_key IN ($1, $2)"
    keys = [left_key, right_key]
    records = read_table(con, "clean.records", where=pair, params=keys)
    params = latest_params(con)
    if records is None or params is None:
        raise RuntimeError("no match run yet: run the pipeline first")
    # the records as the link prepared them among all the others: a name carried in several
    # places or a phone shared by many names is known there, not from the two alone
    prepared, stored = last_link_rows(con, left_key, right_key)
    return steward.explain_records(
        records,
        left_key,
        right_key,
        params,
        cfg.matching,
        read_table(con, "golden.crosswalk", ["record_key", "customer_id"], pair, keys),
        read_table(con, "match.decisions"),
        prepared,
        stored,
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
    if not history["customer_id"].astype(str).eq(customer_id).any():
        raise DataError(f"unknown customer_id {customer_id!r}: no customer ever had this id")
    return resolve_customer_id(customer_id, history)

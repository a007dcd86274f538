"""Steward work on the match layer: the review queue, decisions, explanations, ID look-ups."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

from dedupe import explain_pair, resolve_customer_id
from warehouse import read_table, replace_tables

from ..settings import ArchiveConfig
from ..stages import latest_params

DECISIONS = ("match", "no-match")
_SHOWN = ("customer_name", "contact_name", "phone", "email", "city", "credit_code")


def review_queue(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pd.DataFrame:
    """The pairs awaiting a steward, most likely matches first, without those already decided."""
    queue = read_table(con, "match.review_queue")
    if queue is None or queue.empty:
        return pd.DataFrame(columns=["left_key", "right_key", "probability", "reason"])
    decided = read_table(con, "match.decisions")
    if decided is not None and len(decided):
        done = set(zip(decided["left_key"], decided["right_key"], strict=True))
        keep = [
            (lk, rk) not in done and (rk, lk) not in done
            for lk, rk in zip(queue["left_key"], queue["right_key"], strict=True)
        ]
        queue = queue[keep]
    cols = ["left_key", "right_key", "probability", "reason"]
    for f in _SHOWN:
        for side in ("left", "right"):
            if f"{side}_{f}" in queue.columns:
                cols.append(f"{side}_{f}")
    return queue.sort_values("probability", ascending=False)[cols].head(limit)


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
    records = read_table(con, "clean.records")
    known = set(records["record_key"]) if records is not None else set()
    missing = [k for k in (left_key, right_key) if k not in known]
    if missing:
        raise ValueError(f"unknown record key(s): {missing}")
    if left_key == right_key:
        raise ValueError("a record cannot be decided against itself")
    lk, rk = sorted((left_key, right_key))
    row = pd.DataFrame(
        [
            {
                "left_key": lk,
                "right_key": rk,
                "decision": decision,
                "decided_by": decided_by,
                "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "note": note,
            }
        ]
    )
    old = read_table(con, "match.decisions")
    if old is not None and len(old):
        old = old[~((old["left_key"] == lk) & (old["right_key"] == rk))]
        row = pd.concat([old, row], ignore_index=True)
    replace_tables(con, {"match.decisions": row})
    return row


def _record(records: pd.DataFrame, key: str) -> pd.Series:
    hit = records[records["record_key"] == key]
    if hit.empty:
        raise KeyError(f"record {key!r} is not in clean.records")
    return hit.iloc[0]


def explain_records(
    con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, left_key: str, right_key: str
) -> str:
    """Why two records were (not) merged: per-field levels, weights, score, clusters."""
    records = read_table(con, "clean.records")
    params = latest_params(con)
    if records is None or params is None:
        raise RuntimeError("no match run yet: run the pipeline first")
    expl = explain_pair(
        _record(records, left_key), _record(records, right_key), params, cfg.matching
    )
    text = expl.to_text()
    crosswalk = read_table(con, "golden.crosswalk")
    if crosswalk is not None:
        ids = crosswalk.set_index("record_key")["customer_id"]
        a, b = ids.get(left_key), ids.get(right_key)
        same = "the same customer" if a == b else "different customers"
        text += f"\npublished: {left_key} → {a}, {right_key} → {b} ({same})"
    decisions = read_table(con, "match.decisions")
    if decisions is not None and len(decisions):
        lk, rk = sorted((left_key, right_key))
        hit = decisions[(decisions["left_key"] == lk) & (decisions["right_key"] == rk)]
        for d in hit.itertuples():
            text += f"\nsteward decision: {d.decision} by {d.decided_by} at {d.decided_at}"
    return text


def explain_customer(con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, customer_id: str) -> str:
    """Why a golden customer holds the records it holds: each record and its links."""
    history = read_table(con, "golden.customer_ids")
    cid = resolve_customer_id(customer_id, history) if history is not None else customer_id
    crosswalk = read_table(con, "golden.crosswalk")
    if crosswalk is None:
        raise RuntimeError("nothing published yet: run the pipeline first")
    members = crosswalk[crosswalk["customer_id"] == cid]
    if members.empty:
        raise KeyError(f"customer {customer_id!r} is not in golden.crosswalk")
    lines = []
    if cid != customer_id:
        lines.append(f"{customer_id} was merged into {cid}")
    lines.append(f"customer {cid}: {len(members)} source records")
    for m in members.itertuples():
        lines.append(f"  {m.record_key}  ({m.source_system}, match score {m.match_score:.4f})")
    pairs = read_table(con, "match.pairs")
    if pairs is not None and len(pairs):
        keys = set(members["record_key"])
        inner = pairs[pairs["left_key"].isin(keys) & pairs["right_key"].isin(keys)]
        lines.append(f"scored links inside the customer: {len(inner)}")
        for p in inner.sort_values("probability", ascending=False).head(20).itertuples():
            lines.append(
                f"  {p.left_key} ~ {p.right_key}: probability {p.probability:.4f} ({p.decision})"
            )
        outer = pairs[
            (pairs["left_key"].isin(keys) ^ pairs["right_key"].isin(keys))
            & (pairs["probability"] >= cfg.matching.review_threshold)
        ]
        if len(outer):
            lines.append("near misses with other customers (not merged):")
            for p in outer.sort_values("probability", ascending=False).head(10).itertuples():
                lines.append(f"  {p.left_key} ~ {p.right_key}: {p.probability:.4f} ({p.decision})")
    return "\n".join(lines)


def resolve_id(con: duckdb.DuckDBPyConnection, customer_id: str) -> str:
    """The current customer_id of an old (possibly merged) one."""
    history = read_table(con, "golden.customer_ids")
    if history is None:
        raise RuntimeError("no ID history yet: run the pipeline first")
    return resolve_customer_id(customer_id, history)

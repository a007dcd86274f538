"""Steward work on the match layer, frames in and frames or text out: queue, decisions, explain."""

from __future__ import annotations

import pandas as pd

from dedupe.explain import explain_pair
from dedupe.ids import resolve_customer_id
from dedupe.model import ModelParams
from dedupe.settings import MatchSettings

DECISIONS = ("match", "no-match")
_SHOWN = ("customer_name", "contact_name", "phone", "email", "city", "credit_code")

__all__ = [
    "DECISIONS",
    "explain_customer",
    "explain_records",
    "pending_review",
    "with_decision",
]


def pending_review(
    queue: pd.DataFrame | None, decided: pd.DataFrame | None, limit: int = 20
) -> pd.DataFrame:
    """The pairs awaiting a steward, most likely matches first, without those already decided."""
    if queue is None or queue.empty:
        return pd.DataFrame(columns=["left_key", "right_key", "probability", "reason"])
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


def with_decision(
    old: pd.DataFrame | None,
    known_keys: set[str],
    left_key: str,
    right_key: str,
    decision: str,
    decided_by: str,
    decided_at: str,
    note: str = "",
) -> pd.DataFrame:
    """``match.decisions`` with one steward decision added (replacing one on the same pair).

    Raises:
        ValueError: unknown decision, or a record key that is not in ``known_keys``.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    missing = [k for k in (left_key, right_key) if k not in known_keys]
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
                "decided_at": decided_at,
                "note": note,
            }
        ]
    )
    if old is not None and len(old):
        old = old[~((old["left_key"] == lk) & (old["right_key"] == rk))]
        row = pd.concat([old, row], ignore_index=True)
    return row


def _record(records: pd.DataFrame, key: str) -> pd.Series:
    hit = records[records["record_key"] == key]
    if hit.empty:
        raise KeyError(f"record {key!r} is not in clean.records")
    return hit.iloc[0]


def explain_records(
    records: pd.DataFrame,
    left_key: str,
    right_key: str,
    params: ModelParams,
    settings: MatchSettings,
    crosswalk: pd.DataFrame | None,
    decisions: pd.DataFrame | None,
    prepared: pd.DataFrame | None = None,
    stored: pd.DataFrame | None = None,
) -> str:
    """Why two records were (not) merged: per-field levels, weights, score, clusters.

    `prepared` holds the two records as the last link prepared them (left, right; see
    `explain_pair`), `stored` the last link's row of the pair in ``match.pairs`` (if scored).
    """
    expl = explain_pair(
        _record(records, left_key), _record(records, right_key), params, settings, prepared
    )
    text = expl.to_text()
    if stored is not None and len(stored):
        row = stored.iloc[0]
        text += (
            f"\nlast link: scored by rule {row['rule']}, probability {row['probability']:.4f},"
            f" decision {row['decision']}"
        )
    if crosswalk is not None:
        ids = crosswalk.set_index("record_key")["customer_id"]
        a, b = ids.get(left_key), ids.get(right_key)
        same = "the same customer" if a == b else "different customers"
        text += f"\npublished: {left_key} → {a}, {right_key} → {b} ({same})"
    if decisions is not None and len(decisions):
        lk, rk = sorted((left_key, right_key))
        hit = decisions[(decisions["left_key"] == lk) & (decisions["right_key"] == rk)]
        for d in hit.itertuples():
            text += f"\nsteward decision: {d.decision} by {d.decided_by} at {d.decided_at}"
    return text


def link_class(probability: float, review_threshold: float, match_threshold: float) -> str:
    """A scored link's class by its own probability: ``match``, ``review`` or ``below``."""
    if probability >= match_threshold:
        return "match"
    return "review" if probability >= review_threshold else "below"


def explain_customer(
    customer_id: str,
    history: pd.DataFrame | None,
    crosswalk: pd.DataFrame,
    pairs: pd.DataFrame | None,
    review_threshold: float,
    match_threshold: float = 0.95,
) -> str:
    """Why a golden customer holds the records it holds: each record and its links.

    Each link is labelled by its own class: ``match`` (probability ≥ the match threshold),
    ``review`` (between the thresholds) or ``below`` (under the review threshold); a link
    below the match threshold inside a customer says that its records are joined through
    other links (or a steward decision), not by this pair's evidence.
    """
    cid = resolve_customer_id(customer_id, history) if history is not None else customer_id
    members = crosswalk[crosswalk["customer_id"] == cid]
    if members.empty:
        raise KeyError(f"customer {customer_id!r} is not in golden.crosswalk")
    lines = []
    if cid != customer_id:
        lines.append(f"{customer_id} was merged into {cid}")
    lines.append(f"customer {cid}: {len(members)} source records")
    for m in members.itertuples():
        lines.append(f"  {m.record_key}  ({m.source_system}, match score {m.match_score:.4f})")
    if pairs is not None and len(pairs):
        keys = set(members["record_key"])
        inner = pairs[pairs["left_key"].isin(keys) & pairs["right_key"].isin(keys)]
        lines.append(f"scored links inside the customer: {len(inner)}")
        for p in inner.sort_values("probability", ascending=False).head(20).itertuples():
            label = link_class(p.probability, review_threshold, match_threshold)
            if label != "match":
                label += ", joined through other links"
            lines.append(
                f"  {p.left_key} ~ {p.right_key}: probability {p.probability:.4f} ({label})"
            )
        outer = pairs[
            (pairs["left_key"].isin(keys) ^ pairs["right_key"].isin(keys))
            & (pairs["probability"] >= review_threshold)
        ]
        if len(outer):
            lines.append("near misses with other customers (not merged):")
            for p in outer.sort_values("probability", ascending=False).head(10).itertuples():
                label = link_class(p.probability, review_threshold, match_threshold)
                lines.append(
                    f"  {p.left_key} ~ {p.right_key}: probability {p.probability:.4f} ({label})"
                )
    return "\n".join(lines)

"""Hard rules and steward decisions that override the model's scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.comparisons import PairContext

DECISION_COLUMNS: tuple[str, ...] = (
    "left_key",
    "right_key",
    "decision",
    "decided_by",
    "decided_at",
)
STEWARD_DECISIONS = frozenset({"match", "no-match"})


class DecisionError(ValueError):
    """Steward decisions are malformed (missing columns or unknown decision values)."""


def hard_rule_reasons(ctx: PairContext, merge_branches: bool) -> np.ndarray:
    """Reason a pair may never merge ('credit_code_conflict', 'branch_conflict') or None.

    Args:
        ctx: candidate pairs over the prepared frame.
        merge_branches: when True, headquarters and branches may merge.

    Returns:
        Object array with one reason or None per pair.
    """
    reasons = np.full(len(ctx), None, dtype=object)
    if not merge_branches:
        lc, rc = ctx.pair_codes("branch")
        reasons[lc != rc] = "branch_conflict"
    lv, rv = ctx.flag("credit_code_valid")
    credit_conflict = lv & rv & ~ctx.null("credit_code") & ~ctx.exact("credit_code")
    reasons[credit_conflict] = "credit_code_conflict"
    if "id_number_valid" in ctx.prepared:
        lv, rv = ctx.flag("id_number_valid")
        if (lv & rv).any():  # two valid 居民身份证号 that differ: two people
            id_conflict = lv & rv & ~ctx.null("id_number") & ~ctx.exact("id_number")
            reasons[id_conflict] = "id_number_conflict"
    return reasons


NAME_COMPATIBLE_JW = 0.8
"""Jaro–Winkler on name keys at or above which two names are compatible (张伟 / 张玮)."""


def _names_compatible(prepared: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Whether the two records' names may be one person: either missing, equal key or pinyin,
    Jaro–Winkler ≥ 0.8, one a surname-only prefix of the other, or a compatible mask (张*)."""
    from rapidfuzz.distance import JaroWinkler

    from dedupe.levels import masked_compatible

    names = prepared["name_key"].to_numpy(dtype=object)
    pinyins = prepared["name_pinyin"].to_numpy(dtype=object)
    masks = prepared["name_key_masked"].to_numpy(dtype=object)
    out = np.zeros(len(left), dtype=bool)
    for i, (a, b) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        na, nb, ma, mb = names[a], names[b], masks[a], masks[b]
        if (na is None and ma is None) or (nb is None and mb is None):
            out[i] = True
        elif na is not None and nb is not None:
            out[i] = (
                na == nb or pinyins[a] == pinyins[b] or na.startswith(nb) or nb.startswith(na)
                or JaroWinkler.normalized_similarity(na, nb) >= NAME_COMPATIBLE_JW
            )  # fmt: skip
        else:
            mask, other = (ma, nb if nb is not None else mb) if ma is not None else (mb, na)
            out[i] = masked_compatible(mask, other)
    return out


def id_number_matches(prepared: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Pairs that must match: the same valid 居民身份证号 and compatible names.

    Args:
        prepared: the prepared records.
        left, right: pair positions.

    Returns:
        Boolean mask per pair.
    """
    if "id_number_valid" not in prepared or not len(left):
        return np.zeros(len(left), dtype=bool)
    valid = prepared["id_number_valid"].to_numpy(dtype=bool)
    same = valid[left] & valid[right]
    if not same.any():
        return same
    ids = prepared["id_number"].to_numpy(dtype=object)
    at = np.nonzero(same)[0]
    at = at[ids[left[at]] == ids[right[at]]]
    out = np.zeros(len(left), dtype=bool)
    out[at] = _names_compatible(prepared, left[at], right[at])
    return out


def normalize_decisions(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """Latest steward decision per unordered pair, with left_key < right_key.

    Args:
        decisions: rows of (left_key, right_key, decision, decided_by, decided_at).

    Returns:
        One row per pair: left_key, right_key, decision ('match' | 'no-match'), decided_by,
        decided_at.

    Raises:
        DecisionError: when a column is missing or a decision value is unknown.
    """
    if decisions is None or decisions.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS})
    missing = [c for c in ("left_key", "right_key", "decision") if c not in decisions.columns]
    if missing:
        raise DecisionError(f"steward decisions lack column(s) {missing}")
    frame = decisions.copy()
    for column in ("decided_by", "decided_at"):
        if column not in frame.columns:
            frame[column] = None
    frame["decision"] = frame["decision"].astype("string").str.strip().str.lower()
    frame["decision"] = frame["decision"].str.replace("_", "-", regex=False)
    bad = frame.loc[~frame["decision"].isin(list(STEWARD_DECISIONS)), "decision"]
    if len(bad):
        raise DecisionError(
            f"unknown steward decision(s) {sorted(set(map(str, bad)))}; use 'match' or 'no-match'"
        )
    left = frame["left_key"].astype(str)
    right = frame["right_key"].astype(str)
    frame["left_key"] = np.where(left < right, left, right)
    frame["right_key"] = np.where(left < right, right, left)
    frame = frame[frame["left_key"] != frame["right_key"]]
    frame["_order"] = np.arange(len(frame))
    frame = frame.sort_values(["decided_at", "_order"], na_position="first", kind="stable")
    frame = frame.drop_duplicates(["left_key", "right_key"], keep="last")
    return frame[list(DECISION_COLUMNS)].reset_index(drop=True)

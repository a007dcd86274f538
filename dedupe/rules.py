"""Hard rules and steward decisions that override the model's scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.comparisons import Comparison, PairContext
from dedupe.settings import HARD_RULES_DEFAULT

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


HARD_RULES: tuple[str, ...] = HARD_RULES_DEFAULT
"""The hard rules (`matching.hard_rules`), weakest first: a later reason overwrites an earlier
one on the same pair. `branch_conflict` also needs `merge_branches: false`."""


def hard_rule_reasons(
    ctx: PairContext,
    merge_branches: bool,
    levels: dict[str, np.ndarray] | None = None,
    comparisons: dict[str, Comparison] | None = None,
    rules: tuple[str, ...] | list[str] = HARD_RULES,
) -> np.ndarray:
    """Reason a pair may never merge ('credit_code_conflict', 'id_number_conflict',
    'branch_conflict', 'name_conflict', 'place_conflict') or None.

    Args:
        ctx: candidate pairs over the prepared frame.
        merge_branches: when True, headquarters and branches may merge.
        levels: level codes already computed for these pairs (reused when they hold the
            `name_key` / `place` comparisons).
        comparisons: the run's comparisons by name: name_conflict reads its `name_key`,
            place_conflict its `place`, and neither applies when the run does not compare
            that (a declared person set such as FEBRL's); None = the built-in comparisons.
        rules: the hard rules applied (`matching.hard_rules`).

    Returns:
        Object array with one reason or None per pair.
    """
    reasons = np.full(len(ctx), None, dtype=object)
    if comparisons is None:
        from dedupe.levels import builtin_comparisons

        comparisons = builtin_comparisons()
    if not merge_branches and "branch_conflict" in rules:
        # offices compared by place (北京分公司 = 北京办事处 = 有限公司（北京）); a bracketed
        # place qualifier (branch_soft) is compatible with the head office (no branch)
        lc, rc = ctx.pair_codes("branch_key")
        ls, rs = ctx.flag("branch_soft")
        soft = (ls & (rc < 0)) | (rs & (lc < 0))
        reasons[(lc != rc) & ~soft] = "branch_conflict"
    levels = levels or {}
    if "place_conflict" in rules and "place" in comparisons:
        place = comparisons["place"]
        reasons[distinct_places(ctx, levels.get("place"), place)] = "place_conflict"
    if "name_conflict" in rules and "name_key" in comparisons:
        name = comparisons["name_key"]
        reasons[distinct_names(ctx, levels.get("name_key"), name)] = "name_conflict"
    if "credit_code_conflict" in rules:
        lv, rv = ctx.flag("credit_code_valid")
        credit_conflict = lv & rv & ~ctx.null("credit_code") & ~ctx.exact("credit_code")
        reasons[credit_conflict] = "credit_code_conflict"
    if "id_number_conflict" in rules and "id_number_valid" in ctx.prepared:
        lv, rv = ctx.flag("id_number_valid")
        if (lv & rv).any():  # two valid 居民身份证号 that differ: two people
            id_conflict = lv & rv & ~ctx.null("id_number") & ~ctx.exact("id_number")
            reasons[id_conflict] = "id_number_conflict"
    return reasons


def distinct_places(
    ctx: PairContext, codes: np.ndarray | None = None, place: Comparison | None = None
) -> np.ndarray:
    """Two organisations (or two people) known to be in different cities.

    A Chinese company name is unique only within the region that registered it: the same
    trade name in another city is another company (city twins), and offices of one group are
    told apart by the branch rule (pairs with a branch office are left to it). The place is the
    `place` comparison's (branch office, registered name, address, landline area code); a
    province-only place is compatible with its cities.
    """
    if place is None:
        from dedupe.levels import builtin_comparisons

        place = builtin_comparisons()["place"]
    codes = place.evaluate(ctx) if codes is None else codes
    apart = codes >= place.labels.index("province")
    lb, rb = ctx.pair_codes("branch_key")
    apart &= (lb < 0) & (rb < 0)  # offices: the branch rule (and merge_branches) decides
    lo, ro = ctx.flag("is_org")
    lp, rp = ctx.flag("is_person")
    return apart & ((lo & ro) | (lp & rp))


def distinct_names(
    ctx: PairContext, codes: np.ndarray | None = None, name: Comparison | None = None
) -> np.ndarray:
    """Two organisations (or two people, full names) whose names agree at no level of the
    `name_key` comparison — not equal, alike, same sound or trade name, nor a short form — and
    are not one slip apart (`dedupe.similarity.one_slip`: a look-alike typo, a stray region).

    Such records are two customers whatever else they share: companies in one building share a
    switchboard, small firms give their bookkeeping agent's (代账公司) phone and e-mail, a family
    shares a home phone and address. Mixed pairs (a person and a company) are left to the model:
    a contact person's lead often stands for the company.
    """
    if name is None:
        from dedupe.levels import builtin_comparisons

        name = builtin_comparisons()["name_key"]
    lo, ro = ctx.flag("is_org")
    lp, rp = ctx.flag("is_person")
    unlike = (name.evaluate(ctx) if codes is None else codes) == len(name.levels) + 1
    unlike &= (lo & ro) | (lp & rp)
    if unlike.any():
        with ctx.focused(unlike):
            unlike &= ctx.similarity("name_key", "one_slip") < 1.0
    return unlike


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

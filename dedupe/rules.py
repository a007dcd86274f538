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


def hard_rule_reasons(
    ctx: PairContext, merge_branches: bool, levels: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """Reason a pair may never merge ('credit_code_conflict', 'branch_conflict',
    'name_conflict', 'place_conflict') or None.

    Args:
        ctx: candidate pairs over the prepared frame.
        merge_branches: when True, headquarters and branches may merge.
        levels: level codes already computed for these pairs (reused when they hold the
            `name_key` / `place` comparisons).

    Returns:
        Object array with one reason or None per pair.
    """
    reasons = np.full(len(ctx), None, dtype=object)
    if not merge_branches:
        # offices compared by place (北京分公司 = 北京办事处 = 有限公司（北京）); a bracketed
        # place qualifier (branch_soft) is compatible with the head office (no branch)
        lc, rc = ctx.pair_codes("branch_key")
        ls, rs = ctx.flag("branch_soft")
        soft = (ls & (rc < 0)) | (rs & (lc < 0))
        reasons[(lc != rc) & ~soft] = "branch_conflict"
    levels = levels or {}
    reasons[distinct_places(ctx, levels.get("place"))] = "place_conflict"
    names_differ = distinct_names(ctx, levels.get("name_key"))
    reasons[names_differ] = "name_conflict"
    lv, rv = ctx.flag("credit_code_valid")
    credit_conflict = lv & rv & ~ctx.null("credit_code") & ~ctx.exact("credit_code")
    reasons[credit_conflict] = "credit_code_conflict"
    return reasons


def distinct_places(ctx: PairContext, codes: np.ndarray | None = None) -> np.ndarray:
    """Two organisations (or two people) known to be in different cities.

    A Chinese company name is unique only within the region that registered it: the same
    trade name in another city is another company (city twins), and offices of one group are
    told apart by the branch rule (pairs with a branch office are left to it). The place is the
    `place` comparison's (branch office, registered name, address, landline area code); a
    province-only place is compatible with its cities.
    """
    from dedupe.comparisons import COMPARISONS

    place = COMPARISONS["place"]
    codes = place.evaluate(ctx) if codes is None else codes
    apart = codes >= place.labels.index("province")
    lb, rb = ctx.pair_codes("branch_key")
    apart &= (lb < 0) & (rb < 0)  # offices: the branch rule (and merge_branches) decides
    lo, ro = ctx.flag("is_org")
    lp, rp = ctx.flag("is_person")
    return apart & ((lo & ro) | (lp & rp))


def distinct_names(ctx: PairContext, codes: np.ndarray | None = None) -> np.ndarray:
    """Two organisations (or two people, full names) whose names agree at no level of the
    `name_key` comparison — not equal, alike, same sound or trade name, nor a short form — and
    are not one slip apart (`dedupe.similarity.one_slip`: a look-alike typo, a stray region).

    Such records are two customers whatever else they share: companies in one building share a
    switchboard, small firms give their bookkeeping agent's (代账公司) phone and e-mail, a family
    shares a home phone and address. Mixed pairs (a person and a company) are left to the model:
    a contact person's lead often stands for the company.
    """
    from dedupe.comparisons import COMPARISONS

    name = COMPARISONS["name_key"]
    lo, ro = ctx.flag("is_org")
    lp, rp = ctx.flag("is_person")
    unlike = (name.evaluate(ctx) if codes is None else codes) == len(name.levels) + 1
    unlike &= (lo & ro) | (lp & rp)
    if unlike.any():
        with ctx.focused(unlike):
            unlike &= ctx.similarity("name_key", "one_slip") < 1.0
    return unlike


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

"""Explanations (匹配解释): why two records were or were not merged, field by field."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedupe.comparisons import PairContext, compute_levels
from dedupe.levels import comparisons_for
from dedupe.model import ModelParams, score_pairs, tf_adjustment
from dedupe.prepare import prepare_records
from dedupe.rules import hard_rule_reasons
from dedupe.scoring import evidence_rules
from dedupe.settings import MatchSettings


@dataclass(frozen=True)
class FieldEvidence:
    """One comparison's contribution: values, level reached, m, u and weight in bits."""

    comparison: str
    left: str
    right: str
    level: str
    m: float
    u: float
    weight: float


@dataclass
class Explanation:
    """Why a pair scores as it does; `to_text()` renders it for a steward."""

    left_key: str
    right_key: str
    fields: list[FieldEvidence]
    tf_adjustment: float
    prior_weight: float
    score: float
    probability: float
    hard_rule: str | None
    verdict: str
    notes: list[str] = field(default_factory=list)

    @property
    def weight(self) -> float:
        """The shown match weight: fields + term-frequency bonus + prior (bits); it gives the
        model probability ``1 / (1 + 2**-weight)``."""
        return self.score + self.prior_weight

    @property
    def model_probability(self) -> float:
        """The probability the weight gives (before any evidence rule)."""
        return float(1.0 / (1.0 + np.exp2(-np.clip(self.weight, -60, 60))))

    def to_text(self) -> str:
        """Human-readable explanation."""
        lines = [f"{self.left_key}  vs  {self.right_key}", ""]
        lines.append(f"{'comparison':<14}{'level':<22}{'weight':>8}   left | right")
        for ev in self.fields:
            lines.append(
                f"{ev.comparison:<14}{ev.level:<22}{ev.weight:>+8.2f}   {ev.left} | {ev.right}"
            )
        lines.append(f"{'tf adjustment':<36}{self.tf_adjustment:>+8.2f}")
        lines.append(f"{'prior (λ)':<36}{self.prior_weight:>+8.2f}")
        lines.append(
            f"match weight {self.weight:+.2f} bits → probability {self.model_probability:.4f}"
        )
        if abs(self.probability - self.model_probability) > 1e-9:
            lines.append(
                f"evidence rule: probability set to {self.probability:.4f} "
                "(a declared 'alone'/'sufficient' level decides, not the sum)"
            )
        if self.hard_rule:
            lines.append(f"hard rule: {self.hard_rule} (never merged)")
        lines.append(f"verdict: {self.verdict}")
        lines.extend(self.notes)
        return "\n".join(lines)


def _display(value: object) -> str:
    return "∅" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def explain_pair(
    left: pd.Series | dict[str, object],
    right: pd.Series | dict[str, object],
    params: ModelParams,
    settings: MatchSettings | None = None,
    prepared: pd.DataFrame | None = None,
) -> Explanation:
    """Explain the score of one pair of clean records.

    Args:
        left: one clean record (fields as in clean.records).
        right: the other record.
        params: model parameters (from `LinkResult.params` or the warehouse).
        settings: matching settings; None = defaults.
        prepared: the two records as the link prepared them among all the records (rows of
            ``match.prepared``, left then right), so the explanation is the link's own score;
            None = prepared here from the two records alone, and the facts that depend on the
            other records (an organisation's name carried in several places, the sole holder
            of a person's name, a phone shared by many names) are those of the two only (a
            note says so).

    Returns:
        The per-field evidence, total weight, probability, hard rule and verdict.
    """
    settings = settings or MatchSettings()
    rows = [dict(left), dict(right)]
    lkey = str(rows[0].get("record_key") or "left")
    rkey = str(rows[1].get("record_key") or "right")
    notes = ["clustering may still join or split the pair through other records of the clusters"]
    if prepared is None:
        rows[0]["record_key"], rows[1]["record_key"] = "0", "1"
        prepared = prepare_records(pd.DataFrame(rows), settings)
        notes.append(
            "prepared from these two records alone: facts that depend on the other records "
            "(a name in several places, a name's sole holder, a shared phone) may differ "
            "from the link's"
        )
    else:
        keys = [str(k) for k in prepared["record_key"]]
        if keys != [lkey, rkey]:
            raise ValueError(f"prepared rows are {keys}, expected [{lkey!r}, {rkey!r}]")
        prepared = prepared.reset_index(drop=True)
    ctx = PairContext(prepared, np.array([0]), np.array([1]))
    comparisons = comparisons_for(settings)
    params.check(comparisons)
    levels = compute_levels(ctx, comparisons)
    bonus = np.zeros(1)
    if settings.tf_adjustment:
        bonus = tf_adjustment(
            prepared, np.array([0]), levels, comparisons, params, settings.tf_max_bonus
        )
    score, probability = score_pairs(levels, comparisons, params, bonus)
    probability = evidence_rules(probability, levels, comparisons, settings.match_threshold)
    evidence = []
    for comp in comparisons:
        code = int(levels[comp.name][0])
        cp = params.comparisons[comp.name]
        column = comp.columns[0]
        evidence.append(
            FieldEvidence(
                comp.name,
                _display(prepared.at[0, column]),
                _display(prepared.at[1, column]),
                comp.labels[code],
                float(cp.m[code]),
                float(cp.u[code]),
                float(cp.weights()[code]),
            )
        )
    hard = hard_rule_reasons(
        ctx, settings.merge_branches, levels, {c.name: c for c in comparisons}, settings.hard_rules
    )[0]
    p = float(probability[0])
    if hard:
        verdict = "no_match (hard rule)"
    elif p >= settings.match_threshold:
        verdict = "match"
    elif p >= settings.review_threshold:
        verdict = "review"
    else:
        verdict = "no_match"
    return Explanation(
        lkey,
        rkey,
        evidence,
        float(bonus[0]),
        float(np.log2(params.prior / (1 - params.prior))),
        float(score[0]),
        p,
        hard,
        verdict,
        notes,
    )

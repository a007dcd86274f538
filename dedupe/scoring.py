"""Score candidate pairs (levels, hard rules, match weight) in bounded chunks; estimate params."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.comparisons import NULL_LEVEL, Comparison, PairContext, compute_levels
from dedupe.levels import comparisons_for, rules_for
from dedupe.model import ComparisonParams, ModelParams, score_pairs, term_frequencies, tf_adjustment
from dedupe.pairset import PairSet
from dedupe.rules import hard_rule_reasons
from dedupe.settings import MatchSettings
from dedupe.training import estimate_m, estimate_prior, estimate_u, initial_m, level_shares

PARTIAL_MAX_BITS = 4.0
"""Cap on the match weight (bits) of a partial-evidence level (a masked phone or name agreeing
with a full one): far below what a match needs, so a masked value never makes a match alone."""
CHUNK_PAIRS = 1_000_000
"""Pairs compared at a time: similarity caches and temporaries stay bounded in memory."""


def levels_and_hard(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    comparisons: list[Comparison],
    merge_branches: bool,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Level codes per comparison and hard-rule reasons per pair, computed chunk by chunk.

    Args:
        prepared: the prepared records.
        left, right: pair positions.
        comparisons: comparisons to evaluate.
        merge_branches: whether HQ and branches may merge (else a hard rule).
        codes: a run-wide cache of factorized columns over all records (shared by chunks);
            None = a fresh cache when there are several chunks.

    Returns:
        (comparison name → int8 level codes, object array of hard-rule reasons or None).
    """
    levels: dict[str, list[np.ndarray]] = {c.name: [] for c in comparisons}
    hard: list[np.ndarray] = []
    if codes is None and len(left) > CHUNK_PAIRS:
        codes = {}
    for start in range(0, max(len(left), 1), CHUNK_PAIRS):
        ctx = PairContext(prepared, left[start:start + CHUNK_PAIRS],
                          right[start:start + CHUNK_PAIRS], codes)
        for name, level in compute_levels(ctx, comparisons).items():
            levels[name].append(level)
        hard.append(hard_rule_reasons(ctx, merge_branches))
    return {k: np.concatenate(v) for k, v in levels.items()}, np.concatenate(hard)


def estimate_params(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    levels: dict[str, np.ndarray],
    settings: MatchSettings,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> ModelParams:
    """u from random pairs, m by EM per blocking rule, then λ over all record pairs.

    Args:
        prepared: the prepared records.
        left, right: candidate pair positions.
        levels: their level codes per comparison.
        settings: matching settings (seed, EM limits, prior, tf settings).
        codes: run-wide cache of factorized columns (see `levels_and_hard`).

    Returns:
        The estimated model parameters.
    """
    comparisons = comparisons_for(settings)
    ctx = PairContext(prepared, left, right, codes)
    # A comparison null on every candidate pair (no id numbers in this data) has nothing to
    # learn: it keeps its declared starting m and a flat u, and costs EM nothing.
    active = [c for c in comparisons if bool((levels[c.name] != NULL_LEVEL).any())]
    u = estimate_u(prepared, active, settings.u_sample_pairs, settings.seed)
    rules = rules_for(settings)
    m, iterations = estimate_m(
        ctx, levels, active, rules, u,
        settings.em_max_iterations, settings.em_tolerance, settings.seed,
    )
    for comp in comparisons:
        if comp.name not in m:
            m[comp.name] = initial_m(comp)
            u[comp.name] = level_shares(np.zeros(1, dtype=np.int8), None, len(comp.labels))
    for comp in comparisons:
        for code in comp.partial_levels:
            m[comp.name][code] = min(m[comp.name][code], u[comp.name][code] * 2**PARTIAL_MAX_BITS)
    params = ModelParams(
        prior=0.5,
        comparisons={
            c.name: ComparisonParams(list(c.labels), m[c.name].tolist(), u[c.name].tolist())
            for c in comparisons
        },
        iterations=iterations,
    )
    for comp in comparisons:
        if comp.tf_column is not None:
            params.set_tf_table(comp.tf_column, term_frequencies(prepared, comp.tf_column))
    score, _ = _score(prepared, left, levels, comparisons, params, settings)
    params.prior = estimate_prior(score, len(prepared), settings.prior)
    return params


def _score(
    prepared: pd.DataFrame,
    left: np.ndarray,
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    params: ModelParams,
    settings: MatchSettings,
) -> tuple[np.ndarray, np.ndarray]:
    bonus = None
    if settings.tf_adjustment:
        bonus = tf_adjustment(prepared, left, levels, comparisons, params, settings.tf_max_bonus)
    return score_pairs(levels, comparisons, params, bonus)


def score_candidates(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    rule: np.ndarray,
    settings: MatchSettings,
    params: ModelParams | None,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[PairSet, ModelParams]:
    """Compare, apply hard rules and score candidate pairs; estimate params when None.

    Args:
        prepared: the prepared records.
        left, right: candidate pair positions (left < right).
        rule: blocking rule label per pair.
        settings: matching settings.
        params: model parameters to score with; None = estimate them from these pairs.
        codes: run-wide cache of factorized columns (see `levels_and_hard`).

    Returns:
        (the scored pairs, the parameters used).
    """
    comparisons = comparisons_for(settings)
    levels, hard = levels_and_hard(
        prepared, left, right, comparisons, settings.merge_branches, codes
    )
    if params is None:
        params = estimate_params(prepared, left, right, levels, settings, codes)
    else:
        params.check(comparisons)
    score, probability = _score(prepared, left, levels, comparisons, params, settings)
    return PairSet.build(left, right, rule, levels, score, probability, hard), params

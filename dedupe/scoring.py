"""Score candidate pairs (levels, hard rules, match weight) in bounded chunks; estimate params."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dedupe.comparisons import (
    NULL_LEVEL,
    SIMILARITY_MEMO,
    Comparison,
    PairContext,
    compute_levels,
    sufficient,
    uncorroborated,
)
from dedupe.levels import comparisons_for, rules_for
from dedupe.model import (
    ComparisonParams,
    ModelParams,
    posterior,
    score_pairs,
    term_frequencies,
    tf_adjustment,
)
from dedupe.pairset import PairSet
from dedupe.rules import HARD_RULES, hard_rule_reasons
from dedupe.settings import MatchSettings
from dedupe.training import (
    estimate_m,
    estimate_prior,
    estimate_u,
    initial_m,
    level_shares,
    refine_m,
    unmatched_u,
)

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
    hard_rules: Sequence[str] = HARD_RULES,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Level codes per comparison and hard-rule reasons per pair, computed chunk by chunk.

    Args:
        prepared: the prepared records.
        left, right: pair positions.
        comparisons: comparisons to evaluate.
        merge_branches: whether HQ and branches may merge (else a hard rule).
        codes: a run-wide cache of factorized columns over all records (shared by chunks);
            None = a fresh cache when there are several chunks.
        hard_rules: the hard rules applied (`matching.hard_rules`).

    Returns:
        (comparison name → int8 level codes, object array of hard-rule reasons or None).
    """
    levels, hard, names = levels_and_hard_codes(
        prepared, left, right, comparisons, merge_branches, codes, hard_rules
    )
    return levels, np.array([*names, None], dtype=object)[hard]


def levels_and_hard_codes(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    comparisons: list[Comparison],
    merge_branches: bool,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    hard_rules: Sequence[str] = HARD_RULES,
) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """`levels_and_hard` with the hard rules as codes: one int16 per pair, not an object.

    Each chunk's levels are written into arrays sized for all pairs (no list of chunks
    concatenated at the end: one copy of the levels, not two).

    Returns:
        (comparison name → int8 level codes, int16 code per pair into the hard-rule names
        (-1 = none), the names in order of first appearance).
    """
    n = len(left)
    levels = {c.name: np.empty(n, dtype=np.int8) for c in comparisons}
    by_name = {c.name: c for c in comparisons}
    hard = np.empty(n, dtype=np.int16)
    names: list[str] = []
    if codes is None and n > CHUNK_PAIRS:
        codes = {}
    for start in range(0, max(n, 1), CHUNK_PAIRS):
        stop = min(start + CHUNK_PAIRS, n)
        ctx = PairContext(prepared, left[start:stop], right[start:stop], codes)
        chunk = compute_levels(ctx, comparisons)
        for name, level in chunk.items():
            levels[name][start:stop] = level
        reasons = hard_rule_reasons(ctx, merge_branches, chunk, by_name, tuple(hard_rules))
        found, uniques = pd.factorize(reasons, use_na_sentinel=True)
        for value in uniques:
            if value not in names:
                names.append(str(value))
        lookup = np.array([names.index(str(v)) for v in uniques] + [-1], dtype=np.int16)
        hard[start:stop] = lookup[found]
    return levels, hard, names


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
    return _estimate(prepared, left, right, levels, settings, codes)[0]


def _estimate(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    levels: dict[str, np.ndarray],
    settings: MatchSettings,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[ModelParams, np.ndarray]:
    """u from random pairs, m by EM per blocking rule, then λ over all record pairs.

    Args:
        prepared: the prepared records.
        left, right: candidate pair positions.
        levels: their level codes per comparison.
        settings: matching settings (seed, EM limits, prior, tf settings).
        codes: run-wide cache of factorized columns (see `levels_and_hard`).

    Returns:
        (the estimated parameters, the match weight of every pair under them).
    """
    comparisons = comparisons_for(settings)
    ctx = PairContext(prepared, left, right, codes)
    # A comparison null on every candidate pair (no id numbers in this data) has nothing to
    # learn: it keeps its declared starting m and a flat u, and costs EM nothing (the anchor
    # refinement below keeps its m too: it has no observed anchor pairs).
    active = [c for c in comparisons if bool((levels[c.name] != NULL_LEVEL).any())]
    u = estimate_u(prepared, active, settings.u_sample_pairs, settings.seed, codes)
    rules = rules_for(settings)
    m, iterations = estimate_m(
        ctx, levels, active, rules, u,
        settings.em_max_iterations, settings.em_tolerance, settings.seed,
    )
    for comp in comparisons:
        if comp.name not in m:
            m[comp.name] = initial_m(comp)
            u[comp.name] = level_shares(np.zeros(1, dtype=np.int8), None, len(comp.labels))
    _cap_partial(m, u, comparisons)
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
            scope = prepared
            if comp.tf_without is not None and comp.tf_without in prepared:
                scope = prepared[~prepared[comp.tf_without].to_numpy(dtype=bool)]
            params.set_tf_table(comp.tf_column, term_frequencies(scope, comp.tf_column))
    score, _ = _score(prepared, left, levels, comparisons, params, settings)
    params.prior = estimate_prior(score, len(prepared), settings.prior)
    # anchor pairs: m of each field from the pairs the other fields call matches
    bonus = score - score_pairs(levels, comparisons, params, None)[0]
    pair_prior = _pair_prior(params.prior, len(prepared), len(left))
    for _ in range(_REFINE_ROUNDS):
        for c in comparisons:  # random pairs hold matches too (a share λ): take them out of u
            params.comparisons[c.name].u = unmatched_u(
                u[c.name], np.asarray(params.comparisons[c.name].m), params.prior
            ).tolist()
        m = refine_m(
            levels, comparisons, {k: np.asarray(v.m) for k, v in params.comparisons.items()},
            {k: np.asarray(v.u) for k, v in params.comparisons.items()}, pair_prior, bonus,
        )
        _cap_partial(m, {k: np.asarray(v.u) for k, v in params.comparisons.items()}, comparisons)
        for c in comparisons:
            params.comparisons[c.name].m = m[c.name].tolist()
        score, _ = _score(prepared, left, levels, comparisons, params, settings)
        bonus = score - score_pairs(levels, comparisons, params, None)[0]
        params.prior = estimate_prior(score, len(prepared), settings.prior)
        pair_prior = _pair_prior(params.prior, len(prepared), len(left))
    return params, score


_REFINE_ROUNDS = 1


def _cap_partial(
    m: dict[str, np.ndarray], u: dict[str, np.ndarray], comparisons: list[Comparison]
) -> None:
    """Partial-evidence levels (masked values) weigh at most `PARTIAL_MAX_BITS` (in place)."""
    for comp in comparisons:
        for code in comp.partial_levels:
            m[comp.name][code] = min(m[comp.name][code], u[comp.name][code] * 2**PARTIAL_MAX_BITS)


def _pair_prior(prior: float, n_records: int, n_pairs: int) -> float:
    """λ among candidate pairs: expected matches (λ over all pairs) per candidate pair."""
    matches = prior * n_records * (n_records - 1) / 2
    return float(np.clip(matches / max(n_pairs, 1), 1e-4, 0.5))


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


def evidence_rules(
    probability: np.ndarray,
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    match_threshold: float,
) -> np.ndarray:
    """The model's probability after the levels' `alone` and `sufficient` declarations.

    A look-alike name with nothing else in common goes to review at most (another firm one
    character away in the same city looks just like a typo); one person's mobile, one mailbox,
    one credit code make a match on their own (hard rules still keep bookkeeping agents,
    families and offices apart).

    Args:
        probability: posterior per pair (not modified).
        levels: level codes per comparison.
        comparisons: the comparisons.
        match_threshold: the auto-merge threshold.

    Returns:
        The adjusted probabilities.
    """
    out = probability.copy()
    weak = uncorroborated(levels, comparisons)
    out[weak] = np.minimum(out[weak], np.nextafter(match_threshold, 0))
    strong = sufficient(levels, comparisons) & ~weak
    out[strong] = np.maximum(out[strong], match_threshold)
    return out


def score_candidates_compact(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    rule: tuple[np.ndarray, list[str]],
    settings: MatchSettings,
    params: ModelParams | None,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[PairSet, ModelParams]:
    """`score_candidates` over coded labels: no object per pair for rules or hard rules.

    Args:
        prepared, left, right, settings, params, codes: as for `score_candidates`.
        rule: (code per pair, the rule names the codes index), e.g. `encode_labels`.

    Returns:
        (the scored pairs, the parameters used): the same pairs, levels, scores and labels.
    """
    comparisons = comparisons_for(settings)
    levels, hard, hard_names = levels_and_hard_codes(
        prepared, left, right, comparisons, settings.merge_branches, codes, settings.hard_rules
    )
    if codes is not None:
        for key in [k for k in codes if k.startswith(SIMILARITY_MEMO)]:
            del codes[key]
    if params is None:
        params, score = _estimate(prepared, left, right, levels, settings, codes)
        probability = posterior(score, params.prior)
    else:
        params.check(comparisons)
        score, probability = _score(prepared, left, levels, comparisons, params, settings)
    probability = evidence_rules(probability, levels, comparisons, settings.match_threshold)
    return PairSet(
        left, right, rule[0], np.asarray(score, np.float64), probability, levels, hard,
        list(rule[1]), hard_names,
    ), params


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
        prepared, left, right, comparisons, settings.merge_branches, codes, settings.hard_rules
    )
    if codes is not None:
        # similarities remembered per pair of values serve the blocking filters and the level
        # chunks; scoring reads levels only: freed before EM (recomputed if ever asked again)
        for key in [k for k in codes if k.startswith(SIMILARITY_MEMO)]:
            del codes[key]
    if params is None:  # the estimate's last scoring is this one (λ aside): reuse it
        params, score = _estimate(prepared, left, right, levels, settings, codes)
        probability = posterior(score, params.prior)
    else:
        params.check(comparisons)
        score, probability = _score(prepared, left, levels, comparisons, params, settings)
    probability = evidence_rules(probability, levels, comparisons, settings.match_threshold)
    return PairSet.build(left, right, rule, levels, score, probability, hard), params

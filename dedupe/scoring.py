"""Score candidate pairs (levels, hard rules, match weight) in bounded chunks; estimate params."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from dedupe.comparisons import (
    NULL_LEVEL,
    SCORER_CACHES,
    Comparison,
    PairContext,
    compute_levels,
    sufficient,
    uncorroborated,
)
from dedupe.levels import comparisons_for, rules_for
from dedupe.model import _CLAMP as _TF_CLAMP  # the floor `model.tf_bonus` puts under a share
from dedupe.model import (
    ComparisonParams,
    ModelParams,
    posterior,
    score_pairs,
    term_frequencies,
    tf_bonus,
)
from dedupe.pairset import PairSet
from dedupe.rules import HARD_RULES, hard_rule_reasons
from dedupe.settings import MatchSettings
from dedupe.similarity import in_order, scoring_threads
from dedupe.training import (
    estimate_m,
    estimate_prior,
    hand_back_thread_heaps,
    initial_m,
    level_shares,
    outside_candidates,
    random_pair_levels,
    random_pairs,
    refine_m,
    scored_u,
)

PARTIAL_MAX_BITS = 4.0
"""Cap on the match weight (bits) of a partial-evidence level (a masked phone or name agreeing
with a full one): far below what a match needs, so a masked value never makes a match alone."""
CHUNK_PAIRS = 1_000_000
"""Pairs compared at a time: similarity caches and temporaries stay bounded in memory."""
MIN_THREAD_PAIRS = 200_000
"""Fewer pairs than this per thread are compared in one thread (a pool costs more)."""


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
    threads = max(1, min(scoring_threads(), -(-n // MIN_THREAD_PAIRS)))
    # with several threads, as many pairs in flight as one thread holds: the same memory
    # (a chunk's masks, similarities and temporaries: ≈ 150 MB a million pairs)
    size = max(min(CHUNK_PAIRS // threads, -(-n // threads)), 1)
    if codes is None and n > size:
        codes = {}

    def chunk(start: int) -> tuple[np.ndarray, list[str]]:
        """Levels of the chunk at `start` (written in place), its hard rules as local codes."""
        stop = min(start + size, n)
        # intp positions: every gather of a column's codes indexes with them (int32
        # positions are converted again on each gather); the chunk's masks are remembered;
        # the similarity memo is read (what blocking scored), not grown: a value pair met
        # in two chunks is scored twice (the same score), but no memo of every value pair
        # is held (≈ 45 bytes a candidate pair) nor copied on each chunk's insertion
        ctx = PairContext(
            prepared,
            left[start:stop].astype(np.intp),
            right[start:stop].astype(np.intp),
            codes,
            remember=True,
            grow_memo=False,
        )
        found = compute_levels(ctx, comparisons)
        for name, level in found.items():
            levels[name][start:stop] = level
        reasons = hard_rule_reasons(ctx, merge_branches, found, by_name, tuple(hard_rules))
        local, uniques = pd.factorize(reasons, use_na_sentinel=True)
        return local.astype(np.int16), [str(v) for v in uniques]

    starts = range(0, max(n, 1), size)
    if threads == 1 or len(starts) == 1:
        results: Iterable[tuple[np.ndarray, list[str]]] = map(chunk, starts)
        pool = None
    else:
        # chunks side by side: numpy, rapidfuzz and pandas' factorization release the GIL;
        # each chunk writes its own slice, and the hard-rule names are numbered below in
        # chunk order, as one thread numbers them
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="levels")
        results = pool.map(chunk, starts)
    try:
        for start, (local, uniques) in zip(starts, results, strict=True):
            for value in uniques:
                if value not in names:
                    names.append(value)
            lookup = np.array([names.index(v) for v in uniques] + [-1], dtype=np.int16)
            hard[start : start + len(local)] = lookup[local]
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return levels, hard, names


def estimate_params(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    levels: dict[str, np.ndarray],
    settings: MatchSettings,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    separated: np.ndarray | None = None,
) -> ModelParams:
    """u from random pairs, m by EM per blocking rule, then λ over all record pairs.

    Args:
        prepared: the prepared records.
        left, right: candidate pair positions.
        levels: their level codes per comparison.
        settings: matching settings (seed, EM limits, prior, tf settings).
        codes: run-wide cache of factorized columns (see `levels_and_hard`).
        separated: candidate pairs a hard rule keeps apart (`training.scored_u`); None = none.

    Returns:
        The estimated model parameters.
    """
    return _estimate(prepared, left, right, levels, settings, codes, separated)[0]


def _estimate(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    levels: dict[str, np.ndarray],
    settings: MatchSettings,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    separated: np.ndarray | None = None,
) -> tuple[ModelParams, np.ndarray]:
    """u from random pairs, m by EM per blocking rule, then λ over all record pairs.

    Args:
        prepared: the prepared records.
        left, right: candidate pair positions.
        levels: their level codes per comparison.
        settings: matching settings (seed, EM limits, prior, tf settings).
        codes: run-wide cache of factorized columns (see `levels_and_hard`).
        separated: candidate pairs a hard rule keeps apart (`training.scored_u`); None = none.

    Returns:
        (the estimated parameters, the match weight of every pair under them).
    """
    comparisons = comparisons_for(settings)
    ctx = PairContext(prepared, left, right, codes)
    # A comparison null on every candidate pair (no id numbers in this data) has nothing to
    # learn: it keeps its declared starting m and a flat u, and costs EM nothing (the anchor
    # refinement below keeps its m too: it has no observed anchor pairs).
    active = [c for c in comparisons if bool((levels[c.name] != NULL_LEVEL).any())]
    sample_left, sample_right = random_pairs(len(prepared), settings.u_sample_pairs, settings.seed)
    random_levels, sample_decided = _sample_levels(
        prepared, active, comparisons, sample_left, sample_right, settings, codes
    )
    # the sample's threads freed their temporaries into their own heaps: handed back first
    hand_back_thread_heaps()
    u = {c.name: level_shares(random_levels[c.name], None, len(c.labels)) for c in active}
    rules = rules_for(settings)
    m, iterations = estimate_m(
        ctx,
        levels,
        active,
        rules,
        u,
        settings.em_max_iterations,
        settings.em_tolerance,
        settings.seed,
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
    # the term-frequency bonus depends on the tf tables alone (fixed from here on): once
    tf = _tf(prepared, left, levels, comparisons, params, settings, codes)
    base = _weight_sum(levels, comparisons, params)
    # `score_pairs` adds the bonus last: base + tf is its score, bit for bit
    score = base if tf is None else base + tf
    params.prior = estimate_prior(score, len(prepared), settings.prior)
    # u where each level's pairs are: random pairs outside the candidates, the candidates'
    # expected non-matches counted all (`training.scored_u`); the posteriors move with u
    outside = outside_candidates(sample_left, sample_right, left, right, len(prepared))
    for _ in range(_U_ROUNDS):
        found = scored_u(
            random_levels,
            outside,
            levels,
            score,
            params.prior,
            separated,
            len(prepared),
            active,
            sample_decided,
        )
        for c in active:
            params.comparisons[c.name].u = found[c.name].tolist()
        del score, base
        base = _weight_sum(levels, comparisons, params)
        score = base if tf is None else base + tf
        params.prior = estimate_prior(score, len(prepared), settings.prior)
    del random_levels, outside, sample_decided
    # anchor pairs: m of each field from the pairs the other fields call matches
    bonus = _bonus(score, base)
    del base
    pair_prior = _pair_prior(params.prior, len(prepared), len(left))
    for round_ in range(_REFINE_ROUNDS):
        del score  # recomputed below: refine_m reads the bonus (one array per pair less)
        m = refine_m(
            levels,
            comparisons,
            {k: np.asarray(v.m) for k, v in params.comparisons.items()},
            {k: np.asarray(v.u) for k, v in params.comparisons.items()},
            pair_prior,
            bonus,
        )
        # the pair arrays alive at once (8 bytes a pair each: 110 MB at 1 M) are the EM
        # peak: each is let go as soon as it was last read (the bonus before the next
        # one is computed; the tf bonus and the bonus after the last round)
        bonus = None
        _cap_partial(m, {k: np.asarray(v.u) for k, v in params.comparisons.items()}, comparisons)
        for c in comparisons:
            params.comparisons[c.name].m = m[c.name].tolist()
        base = _weight_sum(levels, comparisons, params)
        score = base if tf is None else base + tf
        if round_ == _REFINE_ROUNDS - 1:
            tf = None
        else:
            bonus = _bonus(score, base)
        del base
        params.prior = estimate_prior(score, len(prepared), settings.prior)
        pair_prior = _pair_prior(params.prior, len(prepared), len(left))
    return params, score


def _sample_levels(
    prepared: pd.DataFrame,
    active: list[Comparison],
    comparisons: list[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    settings: MatchSettings,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The random pairs' level codes (`active` comparisons: `training.random_pair_levels`)
    and which of them the score would decide (no hard rule keeps them apart).

    With a run-wide cache of factorized columns (the full link), the pairs are cut into
    `scoring_threads` chunks computed side by side, as `levels_and_hard_codes` computes the
    candidates' (each pair's levels and hard rules depend on its two records alone; the
    cache is shared): the same codes as in one piece.
    """
    by_name = {c.name: c for c in comparisons}
    threads = scoring_threads() if codes is not None else 1
    size = max(-(-len(left) // threads), 1)

    def chunk(start: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        lo, hi = left[start : start + size], right[start : start + size]
        found = random_pair_levels(prepared, active, lo, hi, codes)
        reasons = hard_rule_reasons(
            PairContext(prepared, lo, hi, codes, grow_memo=False),
            settings.merge_branches,
            found,
            by_name,
            settings.hard_rules,
        )
        return found, pd.isna(reasons)

    parts = in_order(chunk, range(0, max(len(left), 1), size), threads, "sample")
    if len(parts) == 1:
        return parts[0]
    levels = {c.name: np.concatenate([p[0][c.name] for p in parts]) for c in active}
    return levels, np.concatenate([p[1] for p in parts])


def _bonus(score: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``score - base`` (the tf bonus as `refine_m` reads it), written over `base` when
    `score` is another array: element by element the same subtraction, one array less."""
    if score is base:
        return score - base
    return np.subtract(score, base, out=base)


_REFINE_ROUNDS = 1
_U_ROUNDS = 3
"""Rounds of `training.scored_u`: each re-scores the pairs under the u it found."""


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
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    bonus = _tf(prepared, left, levels, comparisons, params, settings, codes)
    return score_pairs(levels, comparisons, params, bonus)


def _weight_sum(
    levels: dict[str, np.ndarray], comparisons: list[Comparison], params: ModelParams
) -> np.ndarray:
    """`score_pairs`' match weight without a tf bonus (the same additions in the same order),
    without its posterior: EM reads only the weights."""
    n_pairs = len(next(iter(levels.values()))) if levels else 0
    score = np.zeros(n_pairs, dtype=np.float64)
    tables = [(params.comparisons[c.name].weights(), levels[c.name]) for c in comparisons]

    def chunk(start: int) -> None:
        """The chunk's weights added up in comparison order (into `score`'s slice)."""
        out = score[start : start + WEIGHT_CHUNK]
        taken = np.empty(len(out), dtype=np.float64)
        for weights, codes in tables:
            np.take(weights, codes[start : start + WEIGHT_CHUNK], out=taken)
            out += taken

    # chunks side by side (NumPy releases the GIL): element by element the same additions
    in_order(chunk, range(0, n_pairs, WEIGHT_CHUNK), scoring_threads(), "weights")
    hand_back_thread_heaps()
    return score


WEIGHT_CHUNK = 1_000_000
"""Pairs `_weight_sum` weighs at a time (one thread's share of the work)."""


def _tf(
    prepared: pd.DataFrame,
    left: np.ndarray,
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    params: ModelParams,
    settings: MatchSettings,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None,
) -> np.ndarray | None:
    """`model.tf_adjustment` (None when the settings turn it off), read through the run's
    factorized columns when `codes` holds them: one lookup per distinct value met, not a
    Python object per pair hashed again. The bonus of a value is the same float either way."""
    if not settings.tf_adjustment:
        return None
    total = np.zeros(len(left), dtype=np.float64)
    for comp in comparisons:
        if comp.tf_column is None or comp.name not in levels:
            continue
        exact = levels[comp.name] == 1
        known = None if codes is None else codes.get(comp.tf_column)
        bonus = (
            None
            if known is None
            else _tf_by_codes(known, left, exact, params, settings.tf_max_bonus, comp.tf_column)
        )
        if bonus is None:
            values = prepared[comp.tf_column].to_numpy(dtype=object)[left]
            bonus = tf_bonus(values, exact, params, settings.tf_max_bonus, comp.tf_column)
        total += bonus
    return total


def _tf_by_codes(
    known: tuple[np.ndarray, np.ndarray],
    left: np.ndarray,
    exact: np.ndarray,
    params: ModelParams,
    max_bonus: float,
    column: str,
) -> np.ndarray | None:
    """`model.tf_bonus` of the left values at `exact` pairs from the column's codes and
    distinct values; None when an exact pair's left value is null (left to `tf_bonus`)."""
    out = np.zeros(len(left), dtype=np.float64)
    if not exact.any():
        return out
    column_codes, uniques = known
    at = column_codes[left[exact]]
    if (at < 0).any():
        return None
    met = np.zeros(len(uniques), dtype=bool)
    met[at] = True
    used = np.nonzero(met)[0]
    slot = np.zeros(len(uniques), dtype=np.int64)
    slot[used] = np.arange(len(used))
    table = params.tf_table(column)
    freq = np.array(
        [table.values.get(str(u), table.default) for u in uniques[used].tolist()],
        dtype=np.float64,
    )
    bonus = np.clip(np.log2(table.reference / np.maximum(freq, _TF_CLAMP)), -max_bonus, max_bonus)
    out[exact] = bonus[slot[at]]
    return out


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
        for key in [k for k in codes if k.startswith(SCORER_CACHES)]:
            del codes[key]
    from dedupe.link import return_free_memory  # (dedupe.link imports this module)

    # what the chunks' threads freed (each thread allocates from its own heap) goes back
    return_free_memory()
    if params is None:
        params, score = _estimate(
            prepared, left, right, levels, settings, codes, separated=hard >= 0
        )
        # EM's per-pair temporaries (≈ 0.9 GB freed but kept at 1 M records) go back before
        # the posterior and the evidence rules allocate theirs
        return_free_memory()
        probability = posterior(score, params.prior)
    else:
        params.check(comparisons)
        score, probability = _score(prepared, left, levels, comparisons, params, settings, codes)
    probability = evidence_rules(probability, levels, comparisons, settings.match_threshold)
    return PairSet(
        left,
        right,
        rule[0],
        np.asarray(score, np.float64),
        probability,
        levels,
        hard,
        list(rule[1]),
        hard_names,
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
        for key in [k for k in codes if k.startswith(SCORER_CACHES)]:
            del codes[key]
    if params is None:  # the estimate's last scoring is this one (λ aside): reuse it
        params, score = _estimate(
            prepared, left, right, levels, settings, codes, separated=pd.notna(hard)
        )
        probability = posterior(score, params.prior)
    else:
        params.check(comparisons)
        score, probability = _score(prepared, left, levels, comparisons, params, settings)
    probability = evidence_rules(probability, levels, comparisons, settings.match_threshold)
    return PairSet.build(left, right, rule, levels, score, probability, hard), params

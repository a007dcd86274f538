"""Estimate Fellegi–Sunter parameters robustly: u from random pairs, m by EM per blocking rule.

Why not plain EM over all candidate pairs: blocking makes the candidate non-matches agree on the
blocked fields far more often than random pairs do (every `contact_city` pair agrees on contact
and city), and EM then happily calls *that* group the matches — the model collapses. Following
the Splink training scheme we therefore

1. fix u from random record pairs (what agreement looks like between unrelated records);
2. estimate m by EM separately on the pairs of each blocking rule, with u fixed, ignoring the
   comparisons the rule's key determines, and average m over the rules (weighted by the expected
   number of matches each rule saw);
3. estimate λ — the probability that two *random* records match — by EM over all record pairs,
   treating pairs outside the candidates as non-matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dedupe.blocking import BlockingRule
from dedupe.comparisons import NULL_LEVEL, Comparison, PairContext, compute_levels
from dedupe.similarity import in_order, scoring_threads

_SMOOTH = 0.5  # pseudo-count per level so no level collapses to probability 0
_M_FLOOR = 1e-4  # m never falls below this (EM on small rules can starve a level)
_MIN_RULE_PAIRS = 30  # rules with fewer pairs in blocks do not train m
_RULE_SAMPLE = 100_000  # pairs per rule used by EM
_LAMBDA_ITERATIONS = 50


@dataclass(frozen=True)
class TrainingResult:
    """m, u per comparison (arrays over the level codes), λ and EM iterations run."""

    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior: float
    iterations: int


def level_shares(levels: np.ndarray, weights: np.ndarray | None, n_levels: int) -> np.ndarray:
    """Share of each non-null level among `levels` (weighted), with a pseudo-count per level."""
    return _shares(np.bincount(levels, weights=weights, minlength=n_levels))


def _shares(counts: np.ndarray) -> np.ndarray:
    """`level_shares` of per-level counts (null level dropped, a pseudo-count per level)."""
    counts = counts.astype(np.float64)
    counts[NULL_LEVEL] = 0.0
    counts[1:] += _SMOOTH
    return counts / counts.sum()


def random_pairs(n_records: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly random pairs of distinct records (positions), `n_pairs` draws at most.

    Args:
        n_records: number of records.
        n_pairs: number of random pairs drawn (capped at the number of distinct pairs).
        seed: random seed (deterministic).

    Returns:
        (left, right) positions; draws of a record with itself are dropped.
    """
    rng = np.random.default_rng(seed)
    size = min(n_pairs, max(n_records * (n_records - 1) // 2, 1))
    left = rng.integers(0, max(n_records, 1), size=size)
    right = rng.integers(0, max(n_records, 1), size=size)
    keep = left != right
    return left[keep], right[keep]


def random_pair_levels(
    prepared: pd.DataFrame,
    comparisons: list[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Level codes of random pairs (`random_pairs`) per comparison."""
    # the run's cache is read, its similarity memo not grown: no later step looks up a
    # random pair's similarity
    ctx = PairContext(prepared, left, right, codes, grow_memo=False)
    return compute_levels(ctx, comparisons)


def estimate_u(
    prepared: pd.DataFrame,
    comparisons: list[Comparison],
    n_pairs: int,
    seed: int,
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """u probabilities per level from uniformly random record pairs.

    Args:
        prepared: output of `prepare_records`.
        comparisons: comparisons to evaluate.
        n_pairs: number of random pairs drawn (capped at the number of distinct pairs).
        seed: random seed (the estimate is deterministic).
        codes: run-wide cache of factorized columns (reused, not recomputed).

    Returns:
        Comparison name → u per level code (null level 0).
    """
    left, right = random_pairs(len(prepared), n_pairs, seed)
    levels = random_pair_levels(prepared, comparisons, left, right, codes)
    return {c.name: level_shares(levels[c.name], None, len(c.labels)) for c in comparisons}


def outside_candidates(
    sample_left: np.ndarray,
    sample_right: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    n_records: int,
) -> np.ndarray:
    """Which random pairs are *not* candidate pairs (in either order).

    The candidates are looked up in the sample's sorted distinct keys a chunk at a time (no
    copy of every candidate pair's key at once).
    """
    keys = np.minimum(sample_left, sample_right).astype(np.int64) * n_records + np.maximum(
        sample_left, sample_right
    )
    distinct, inverse = np.unique(keys, return_inverse=True)
    found = np.zeros(len(distinct), dtype=bool)
    if len(distinct) == 0:
        return np.ones(len(keys), dtype=bool)
    # only candidates both of whose records are in the sample can be one of its pairs: a
    # cheap gather settles the others before the search
    drawn = np.zeros(n_records, dtype=bool)
    drawn[sample_left] = True
    drawn[sample_right] = True

    def chunk(start: int) -> np.ndarray:
        """Positions in `distinct` of the sample pairs among the chunk's candidates."""
        lo = left[start : start + _REFINE_CHUNK]
        hi = right[start : start + _REFINE_CHUNK]
        keep = drawn[lo] & drawn[hi]
        lo = lo[keep].astype(np.int64)
        hi = hi[keep].astype(np.int64)
        cand = np.minimum(lo, hi) * n_records + np.maximum(lo, hi)
        pos = np.minimum(np.searchsorted(distinct, cand), len(distinct) - 1)
        return pos[distinct[pos] == cand]

    # chunks side by side (NumPy releases the GIL); the found pairs marked in chunk order
    starts = range(0, len(left), _REFINE_CHUNK)
    for hits in in_order(chunk, starts, scoring_threads(), "outside"):
        found[hits] = True
    hand_back_thread_heaps()
    return ~found[inverse]


def scored_u(
    random_levels: dict[str, np.ndarray],
    outside: np.ndarray,
    levels: dict[str, np.ndarray],
    score: np.ndarray,
    prior: float,
    separated: np.ndarray | None,
    n_records: int,
    comparisons: list[Comparison],
    sample_decided: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """u among non-matches, each level counted where its pairs are.

    A level that mostly duplicates reach among random pairs (the same full company name) is
    seen a dozen times in 200,000 random pairs, nearly all of them matches: its u was the
    difference of two near-equal handfuls, and the seed of the sample moved pairwise F1 on
    the external corpus between 0.91 and 0.96. Such pairs are candidates (blocking brings
    records with one name together), so they are counted there, all of them:

    u(level) = [random pairs in the level that are *not* candidates (nearly all non-matches)
    as a share of the random pairs] + [the expected non-matches among the candidate pairs in
    the level, Σ(1 − posterior), as a share of all record pairs].

    The score only decides pairs no hard rule keeps apart, so the candidates' part is taken
    among those: candidate pairs a rule separates (`separated`) are not counted, and the
    count is a share of the pairs left to the score (`sample_decided`: the random pairs no
    rule separates), u = P(level | non-match, decided). Offices of one group and city twins
    share the full name; the branch and place rules separate them, and counted in, a few
    thousand of them made an exact company name look twenty times commoner among the pairs
    the score decides than it is. For common levels the candidates add next to nothing and
    the estimate is the random pairs' share, as before.

    Args:
        random_levels: level codes of the random pairs per comparison.
        outside: which random pairs are not candidates (`outside_candidates`).
        levels: level codes of the candidate pairs per comparison.
        score: match weight (bits) of each candidate pair under the current parameters.
        prior: λ, the match probability of two random records.
        separated: candidate pairs a hard rule keeps apart (None: none).
        sample_decided: random pairs no hard rule keeps apart (None: all).
        n_records: number of records.
        comparisons: the comparisons to estimate (those in `random_levels`).

    Returns:
        Comparison name → u per level code (null level 0), summing to 1.
    """
    counted = {c.name: np.zeros(len(c.labels), dtype=np.float64) for c in comparisons}

    def chunk(start: int) -> list[np.ndarray]:
        """Each comparison's expected non-matches per level among the chunk's pairs."""
        stop = start + _REFINE_CHUNK
        nonmatch = _posterior(score[start:stop], prior)
        np.subtract(1.0, nonmatch, out=nonmatch)  # 1 − posterior, in place: the same floats
        if separated is not None:
            nonmatch[separated[start:stop]] = 0.0
        return [
            np.bincount(levels[c.name][start:stop], weights=nonmatch, minlength=len(c.labels))
            for c in comparisons
        ]

    # chunks side by side (NumPy releases the GIL), added up in chunk order as one thread
    # adds them: the same sums
    starts = range(0, len(score), _REFINE_CHUNK)
    for found in in_order(chunk, starts, scoring_threads(), "u"):
        for c, per_level in zip(comparisons, found, strict=True):
            counted[c.name] += per_level
    hand_back_thread_heaps()
    total = max(n_records * (n_records - 1) / 2, 1.0)
    out = {}
    for c in comparisons:
        sample = random_levels[c.name]
        present = sample != NULL_LEVEL
        n_present = int(present.sum())
        if n_present == 0:  # no random pair holds this field: the sample's shares as before
            out[c.name] = level_shares(sample, None, len(c.labels))
            continue
        # pairs of records that both hold the field, estimated from the sample, and of
        # those the pairs left to the score
        pairs_present = total * n_present / len(sample)
        decided = pairs_present
        if sample_decided is not None:
            decided *= max(int((present & sample_decided).sum()), 1) / n_present
        share = np.bincount(sample[present & outside], minlength=len(c.labels)) / n_present
        u = share + counted[c.name] / decided
        # half a pair among all pairs: a level nothing reached is rare, not impossible
        u = np.maximum(u, 0.5 / pairs_present)
        u[NULL_LEVEL] = 0.0
        out[c.name] = u / u.sum()
    return out


def initial_m(comp: Comparison) -> np.ndarray:
    """Starting m per level from the comparison's declared `m_init` values."""
    values = np.array([0.0, *(lv.m_init for lv in comp.levels), comp.else_m], dtype=np.float64)
    return values / values.sum()


def _weights(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    w = np.log2(np.maximum(m, _M_FLOOR) / np.maximum(u, 1e-9))
    w[NULL_LEVEL] = 0.0
    return w


def hand_back_thread_heaps() -> None:
    """After a step run in `scoring_threads` threads: `dedupe.link.return_free_memory`, so
    what they freed into their own heaps (glibc keeps one per thread) goes back to the system
    and the next step's arrays do not stack on it. Nothing when the steps run in one thread."""
    if scoring_threads() <= 1:
        return
    from dedupe.link import return_free_memory  # (dedupe.link imports this module)

    return_free_memory()


def _posterior(score: np.ndarray, prior: float) -> np.ndarray:
    """1 / (1 + 2^−clip(score + log2(λ/(1−λ)), ±60)), in one array (the same operations
    element by element as written out, without a temporary per step: EM calls it often)."""
    out = score + np.log2(prior / (1.0 - prior))
    np.clip(out, -60, 60, out=out)
    np.negative(out, out=out)
    np.exp2(out, out=out)
    out += 1.0
    np.divide(1.0, out, out=out)
    return out


def _em_rule(
    levels: dict[str, np.ndarray],
    trained: list[Comparison],
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    max_iterations: int,
    tolerance: float,
) -> tuple[dict[str, np.ndarray], float, int]:
    """EM for m (u fixed) over one rule's pairs; returns (m, expected matches, iterations)."""
    m = {c.name: m[c.name].copy() for c in trained}
    n_pairs = len(next(iter(levels.values())))
    lam = 0.5
    p = np.zeros(n_pairs)
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - iterations reported
        score = np.zeros(n_pairs, dtype=np.float64)
        for c in trained:
            score += _weights(m[c.name], u[c.name])[levels[c.name]]
        p = _posterior(score, lam)
        delta = 0.0
        for c in trained:
            new_m = level_shares(levels[c.name], p, len(c.labels))
            delta = max(delta, float(np.abs(new_m - m[c.name]).max()))
            m[c.name] = new_m
        new_lam = float(np.clip(p.mean(), 1e-4, 1 - 1e-4))
        delta = max(delta, abs(new_lam - lam))
        lam = new_lam
        if delta < tolerance:
            break
    return m, float(p.sum()), iterations


_Job = tuple[list[Comparison], dict[str, np.ndarray]]
"""One rule's EM: the comparisons it trains and their levels on its sampled pairs."""


def _rule_pairs(ctx: PairContext, rule: BlockingRule) -> np.ndarray:
    """Positions of the candidate pairs that agree on the rule's key (whichever rule
    labelled them)."""
    return ctx.agreeing(rule.key)


def estimate_m(
    ctx: PairContext,
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    rules: list[BlockingRule],
    u: dict[str, np.ndarray],
    max_iterations: int,
    tolerance: float,
    seed: int,
) -> tuple[dict[str, np.ndarray], int]:
    """m per comparison: EM on each blocking rule's pairs, averaged over rules.

    Args:
        ctx: the candidate pairs.
        levels: their level codes per comparison.
        comparisons: comparisons to estimate.
        rules: blocking rules used for training (each ignores the comparisons it determines).
        u: fixed u per comparison.
        max_iterations: EM iteration cap per rule.
        tolerance: EM stops when no probability moves more than this.
        seed: seed for sampling large rules.

    Returns:
        (m per comparison, total EM iterations). Comparisons no rule could train keep their
        declared starting m.
    """
    start = {c.name: initial_m(c) for c in comparisons}
    sums = {c.name: np.zeros(len(c.labels)) for c in comparisons}
    mass = dict.fromkeys(start, 0.0)
    rng = np.random.default_rng(seed)
    total_iterations = 0
    # each rule's sample drawn in rule order (one random stream), its EM run on its own
    jobs: list[_Job] = []
    for rule in rules:
        if not rule.trains:
            continue
        idx = _rule_pairs(ctx, rule)
        if len(idx) < _MIN_RULE_PAIRS:
            continue
        if len(idx) > _RULE_SAMPLE:
            idx = np.sort(rng.choice(idx, size=_RULE_SAMPLE, replace=False))
        trained = [c for c in comparisons if c.name not in rule.determines]
        if not trained:
            continue
        jobs.append((trained, {c.name: levels[c.name][idx] for c in trained}))

    hand_back_thread_heaps()  # what the agreeing pairs' threads freed, before EM's threads allocate

    def em(job: _Job) -> tuple[dict[str, np.ndarray], float, int]:
        return _em_rule(job[1], job[0], start, u, max_iterations, tolerance)

    # the rules' EM side by side, summed in rule order as one thread sums them
    for (trained, _), (m_rule, matches, iterations) in zip(
        jobs, in_order(em, jobs, scoring_threads(), "em"), strict=True
    ):
        total_iterations += iterations
        for c in trained:
            sums[c.name] += matches * m_rule[c.name]
            mass[c.name] += matches
    m = {}
    for c in comparisons:
        est = sums[c.name] / mass[c.name] if mass[c.name] > 0 else start[c.name]
        est = np.maximum(est, _M_FLOOR)
        est[NULL_LEVEL] = 0.0
        m[c.name] = est / est.sum()
    return m, total_iterations


def estimate_prior(bayes_factor_bits: np.ndarray, n_records: int, fixed: float | None) -> float:
    """λ = P(two random records match), by EM over all pairs (non-candidates count as no-match).

    Args:
        bayes_factor_bits: match weight (log2 Bayes factor) of every candidate pair.
        n_records: number of records (all pairs = n·(n−1)/2).
        fixed: a configured λ; returned unchanged when given.

    Returns:
        λ in (0, 1).
    """
    if fixed is not None:
        return fixed
    total = max(n_records * (n_records - 1) / 2, 1.0)
    if len(bayes_factor_bits) == 0:  # no candidate pairs (0–2 records: a first, empty night)
        return float(np.clip(1.0 / total, 1e-12, 0.5))
    lam = max(n_records / 2, 1.0) / total  # start: every record has one duplicate
    for _ in range(_LAMBDA_ITERATIONS):
        new = posterior_sum(bayes_factor_bits, lam) / total
        new = float(np.clip(new, 1e-12, 0.5))
        if abs(np.log(new / lam)) < 1e-4:
            lam = new
            break
        lam = new
    hand_back_thread_heaps()
    return lam


_PAIRWISE_LEAF = 1 << 20
"""Most elements `pairwise_sum` hands one ``np.sum`` call (≥ 129: see `pairwise_parts`)."""


def pairwise_parts(n: int, leaf: int | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` parts of an array of `n` elements cut where NumPy's pairwise
    summation cuts it, each at most `leaf` (default `_PAIRWISE_LEAF`) long (`pairwise_sum`
    adds them back).

    ``np.sum`` of a contiguous float64 array adds the sums of its two halves, the first half
    ``n // 2`` rounded down to a multiple of 8, recursively while a half is longer than 128
    elements (``pairwise_sum`` in NumPy's ``loops_utils.h``): cut at the same places, the
    parts' sums added as the recursion adds them give the whole array's sum bit for bit.
    """
    leaf = max(_PAIRWISE_LEAF if leaf is None else leaf, 129)
    parts: list[tuple[int, int]] = []

    def cut(start: int, size: int) -> None:
        if size <= leaf:
            parts.append((start, start + size))
            return
        half = size // 2
        half -= half % 8
        cut(start, half)
        cut(start + half, size - half)

    cut(0, n)
    return parts


def pairwise_sum(sums: list[float], n: int, leaf: int | None = None) -> float:
    """The sum of an array of `n` elements from its `pairwise_parts` sums, added in the order
    of NumPy's pairwise recursion (the same float as ``np.sum`` of the whole array)."""
    leaf = max(_PAIRWISE_LEAF if leaf is None else leaf, 129)
    at = iter(sums)

    def add(size: int) -> float:
        if size <= leaf:
            return next(at)
        half = size // 2
        half -= half % 8
        first = add(half)
        return first + add(size - half)

    return float(add(n))


def posterior_sum(score: np.ndarray, prior: float) -> float:
    """``_posterior(score, prior).sum()``, bit for bit, in `scoring_threads` threads.

    The posteriors are summed a `pairwise_parts` part at a time (at most two parts' arrays
    alive, not one of every pair), the parts side by side: NumPy releases the GIL.
    """
    score = np.ascontiguousarray(score, dtype=np.float64)
    parts = pairwise_parts(len(score))
    threads = scoring_threads()
    if threads <= 1 or len(parts) <= 1:
        return float(_posterior(score, prior).sum())

    def part(bounds: tuple[int, int]) -> float:
        return _posterior(score[bounds[0] : bounds[1]], prior).sum()

    return pairwise_sum(in_order(part, parts, threads, "prior"), len(score))


_ANCHOR = 0.99  # leave-one-out posterior at which a pair vouches for a field's m
_MIN_ANCHORS = 50  # fewer anchor pairs than this: keep the EM estimate of that field
_REFINE_CHUNK = 1_000_000  # pairs weighed at a time by `refine_m`


def refine_m(
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    m: dict[str, np.ndarray],
    u: dict[str, np.ndarray],
    prior: float,
    bonus: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """m of each comparison re-estimated on the pairs the *other* comparisons call matches.

    EM over candidate pairs lets the many look-alike non-matches that blocking brings (same
    trade name, same common surname) into the match class, which inflates m of disagreement
    levels: a different phone or another city then costs almost nothing and a full name alone
    wins too little. Here, for each comparison, the pairs whose posterior *without* that
    comparison is ≥ 0.99 serve as anchor matches and its m is their level shares — the
    comparison's own evidence never selects the pairs it is estimated on (fields are taken as
    conditionally independent, as the model itself assumes).

    Args:
        levels: level codes per comparison over the candidate pairs.
        comparisons: the comparisons.
        m, u: current estimates per comparison.
        prior: λ for the candidate pairs' posterior.
        bonus: term-frequency bonus (bits) per pair, or None.

    Returns:
        Refined m per comparison.
    """
    if not comparisons:
        return m
    n_pairs = len(levels[comparisons[0].name])
    weights = {c.name: _weights(m[c.name], u[c.name]) for c in comparisons}
    counts = {c.name: np.zeros(len(c.labels), dtype=np.int64) for c in comparisons}
    observed_total = dict.fromkeys(counts, 0)
    # in chunks of pairs: the per-pair sums are the same float operations in the same order,
    # and the anchor counts are integers, so the result does not depend on the chunking
    # (one float64 array per comparison over all pairs was the match stage's EM peak)
    # (chunks side by side in threads hold as many pairs as one chunk: the same memory)
    threads = scoring_threads()
    size = max(_REFINE_CHUNK // threads, 1)

    def chunk(start: int) -> dict[str, tuple[int, np.ndarray]]:
        stop = min(start + size, n_pairs)
        parts = {c.name: weights[c.name][levels[c.name][start:stop]] for c in comparisons}
        total = (
            np.zeros(stop - start, dtype=np.float64)
            if bonus is None
            else bonus[start:stop].astype(np.float64)
        )
        for part in parts.values():
            total = total + part
        found = {}
        for c in comparisons:
            codes = levels[c.name][start:stop]
            anchor = _posterior(total - parts[c.name], prior) >= _ANCHOR
            observed = anchor & (codes != NULL_LEVEL)
            found[c.name] = (
                int(observed.sum()),
                np.bincount(codes[observed], minlength=len(c.labels)),
            )
        return found

    starts = list(range(0, n_pairs, size))
    for found in in_order(chunk, starts, threads if len(starts) > 1 else 1, "refine"):
        for name, (observed, per_level) in found.items():
            observed_total[name] += observed
            counts[name] += per_level
    out = {}
    for c in comparisons:
        if observed_total[c.name] < _MIN_ANCHORS:
            out[c.name] = m[c.name]
            continue
        est = _shares(counts[c.name])
        est = np.maximum(est, _M_FLOOR)
        est[NULL_LEVEL] = 0.0
        out[c.name] = est / est.sum()
    return out

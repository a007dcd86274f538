"""String similarity scorers (相似度) applied in bulk to distinct value pairs, in C not per pair."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein, Indel, Jaro, JaroWinkler, Levenshtein

CONTAINS_MIN_LENGTH = 5
"""`contains` scores 0 when the shorter value has fewer characters than this."""
WORKERS = 1
"""Threads rapidfuzz uses per bulk call: 1 unless a stage sets it with :func:`scoring_workers`
(``scale.workers``). Scores do not depend on it: each pair is scored alone."""

T = TypeVar("T")
R = TypeVar("R")
BulkScorer = Callable[[Sequence[str], Sequence[str]], np.ndarray]
Lengths = tuple[np.ndarray, np.ndarray]
"""Characters of each left and each right value (what `len` counts), when already known."""
PRUNABLE = frozenset({"contains"})
"""Scorers that skip pairs which cannot reach the caller's threshold (reported as 0)."""


def prefix(a: str, b: str) -> float:
    """1.0 when one value starts with the other (a surname-only 刘 vs 刘浩然), else 0.0."""
    return 1.0 if a.startswith(b) or b.startswith(a) else 0.0


def rotation(a: str, b: str) -> float:
    """1.0 when one value is a rotation of the other (liuxinyi vs xinyiliu: name order swapped)."""
    return 1.0 if len(a) == len(b) and len(a) >= 4 and a in b + b else 0.0


def contains(a: str, b: str) -> float:
    """Partial similarity of the shorter value inside the longer (0 when the shorter is < 5 long).

    A short address (长江街107号) inside a full one (天津市南开区长江街107号长江商务中心1818室).
    """
    if min(len(a), len(b)) < CONTAINS_MIN_LENGTH:
        return 0.0
    return fuzz.partial_ratio(a, b) / 100.0


def _aligned_mismatches(a: str, b: str) -> int:
    """Characters that differ where two strings overlap when aligned at the start."""
    return sum(x != y for x, y in zip(a, b, strict=False))


def one_slip(a: str, b: str) -> float:
    """1.0 when two names are one slip apart: aligned at the start or at the end they differ
    in at most one character (凯夭 / 凯天数据, 西按信讯食品 / 新讯食品, 孙亥 / 孙海), or one
    contains the other (创泰 in 添津创泰网络科技); else 0.0.
    """
    if min(len(a), len(b)) < 2:
        return 0.0
    if a in b or b in a:
        return 1.0
    front = _aligned_mismatches(a, b)
    back = _aligned_mismatches(a[::-1], b[::-1])
    return 1.0 if min(front, back) <= 1 else 0.0


def _closeness(distance: Callable[..., int]) -> Callable[[str, str], float]:
    """1 / (1 + edit distance in characters): 1.0 equal, 0.5 one edit, 0.33 two edits …"""
    return lambda a, b: 1.0 / (1.0 + distance(a, b))


REFERENCE: dict[str, Callable[[str, str], float]] = {
    "one_slip": one_slip,
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "jaro": Jaro.normalized_similarity,
    "levenshtein": _closeness(Levenshtein.distance),
    "damerau_levenshtein": _closeness(DamerauLevenshtein.distance),
    "ratio": Indel.normalized_similarity,
    "prefix": prefix,
    "rotation": rotation,
    "contains": contains,
}
"""Per-pair definition of each scorer: the bulk scorers return these values rounded to float32."""


@contextmanager
def scoring_workers(workers: int) -> Iterator[None]:
    """Score bulk pairs with ``workers`` rapidfuzz threads inside this block (-1 = all cores).

    Args:
        workers: Threads per bulk call (rapidfuzz's ``workers``); 1 = the calling thread only.

    Yields:
        None; the previous setting is restored when the block ends.
    """
    global WORKERS
    before, WORKERS = WORKERS, workers
    try:
        yield
    finally:
        WORKERS = before


def scoring_threads() -> int:
    """Threads the matcher may run side by side (chunks of pairs, blocking rules, EM rules):
    the `scoring_workers` setting (``scale.workers``; -1 = every core, 1 = one thread).
    Results never depend on it: each thread computes its own part, gathered in order."""
    return max(1, os.cpu_count() or 1) if WORKERS < 0 else max(1, WORKERS)


def in_order(func: Callable[[T], R], items: Sequence[T], threads: int, name: str) -> list[R]:
    """``[func(item) for item in items]``, computed by up to `threads` threads.

    For work that releases the GIL (numpy, rapidfuzz, Arrow): the results come back in the
    items' order whichever thread finished first, so callers combine them as one thread does.
    """
    if threads <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix=name) as pool:
        return list(pool.map(func, items))


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(values, dtype=np.dtypes.StringDType())


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Round to float32 (what rapidfuzz's cpdist returns by default) and widen again.

    Level thresholds have always been applied to float32 similarities (0.7 rounds to
    0.69999999, 0.79999999 to 0.8): keeping that rounding keeps every level as it was.
    """
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def _bulk_rapidfuzz(scorer: Callable[..., float], scale: float) -> BulkScorer:
    def _score(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        out = process.cpdist(a, b, scorer=scorer, workers=WORKERS, dtype=np.float64)
        return _as_float32(np.asarray(out, dtype=np.float64) / scale)

    return _score


def _bulk_prefix(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    sa, sb = _strings(a), _strings(b)
    hit = np.strings.startswith(sa, sb) | np.strings.startswith(sb, sa)
    return hit.astype(np.float64)


def _bulk_rotation(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    sa, sb = _strings(a), _strings(b)
    la, lb = np.strings.str_len(sa), np.strings.str_len(sb)
    hit = (la == lb) & (la >= 4)
    at = np.nonzero(hit)[0]
    if len(at):
        doubled = np.strings.add(sb[at], sb[at])
        hit[at] = np.strings.find(doubled, sa[at]) >= 0
    return hit.astype(np.float64)


def _bulk_contains(
    a: Sequence[str],
    b: Sequence[str],
    at_least: float = 0.0,
    lengths: Lengths | None = None,
    indel: np.ndarray | None = None,
) -> np.ndarray:
    """`contains` per pair; with `at_least` > 0, pairs that cannot reach it score 0 unscored.

    partial_ratio scores the shorter value s (length m) against substrings w of the longer t,
    200·LCS(s, w) / (m + |w|); LCS(s, w) ≤ min(LCS(s, t), |w|), so the score is at most
    200·L / (m + L) with L = LCS(s, t). L comes from the integer Indel distance
    (|s| + |t| − 2L), which rapidfuzz computes far faster than partial_ratio; `indel` gives
    it where the caller knows it already (-1 = not known: computed here).
    """
    out = np.zeros(len(a), dtype=np.float64)
    la, lb = lengths if lengths is not None else (_lengths(a), _lengths(b))
    shorter = np.minimum(la, lb)
    keep = shorter >= CONTAINS_MIN_LENGTH
    cutoff = at_least * 100.0 * (1.0 - 1e-9)  # a hair lower: never prune a borderline pair
    if cutoff > 0 and keep.any():
        at = np.nonzero(keep)[0]
        distance = np.full(len(at), -1, dtype=np.int64) if indel is None else indel[at]
        unknown = np.nonzero(distance < 0)[0]
        if len(unknown):
            distance[unknown] = process.cpdist(
                _pick(a, at[unknown]),
                _pick(b, at[unknown]),
                scorer=Indel.distance,
                workers=WORKERS,
                dtype=np.int64,
            )
        lcs = (la[at] + lb[at] - distance) // 2
        bound = 200.0 * lcs / (shorter[at] + lcs)
        keep[at[bound < cutoff]] = False
    at = np.nonzero(keep)[0]
    if len(at):
        scores = process.cpdist(
            _pick(a, at),
            _pick(b, at),
            scorer=fuzz.partial_ratio,
            workers=WORKERS,
            dtype=np.float64,
            score_cutoff=cutoff,
        )
        out[at] = _as_float32(np.asarray(scores, dtype=np.float64) / 100.0)
    return out


def indel_from_ratio(ratio: np.ndarray, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """The integer Indel distance back from the `ratio` scorer's similarity of the same pairs.

    ratio is 1 − d / (|a| + |b|) rounded to float32 (relative error ≤ 2⁻²⁴): d is the
    nearest integer to (1 − ratio)·(|a| + |b|) while |a| + |b| < 2²² characters."""
    total = la.astype(np.int64) + lb
    if len(total) and int(total.max()) >= 1 << 22:
        raise ValueError("values too long to recover their Indel distance from a ratio")
    return np.rint((1.0 - ratio) * total).astype(np.int64)


def _pick(values: Sequence[str], at: np.ndarray) -> np.ndarray:
    """The values at positions `at`, as an object array (no Python list built per pair)."""
    return np.asarray(values, dtype=object)[at]


def _lengths(values: Sequence[str]) -> np.ndarray:
    """Characters per value (code points, as `len` and rapidfuzz count them)."""
    return np.fromiter(map(len, values), dtype=np.int64, count=len(values))


def value_lengths(values: np.ndarray) -> np.ndarray:
    """`len` of each of a column's distinct values (int32): the pairs' lengths are gathered
    from it (`score_pairs_of_values(lengths=…)`), not counted again pair by pair."""
    return np.fromiter(map(len, values.tolist()), dtype=np.int32, count=len(values))


def _bulk_one_slip(
    a: Sequence[str], b: Sequence[str], lengths: Lengths | None = None
) -> np.ndarray:
    """`one_slip` in bulk: Hamming distance with padding counts the length difference too."""
    from rapidfuzz.distance import Hamming

    la, lb = lengths if lengths is not None else (_lengths(a), _lengths(b))
    extra = np.abs(la.astype(np.int64) - lb)
    kwargs = {"pad": True}
    front = (
        process.cpdist(
            a, b, scorer=Hamming.distance, scorer_kwargs=kwargs, workers=WORKERS, dtype=np.int64
        )
        - extra
    )
    ra, rb = [s[::-1] for s in a], [s[::-1] for s in b]
    back = (
        process.cpdist(
            ra, rb, scorer=Hamming.distance, scorer_kwargs=kwargs, workers=WORKERS, dtype=np.int64
        )
        - extra
    )
    contained = (
        process.cpdist(
            a, b, scorer=fuzz.partial_ratio, workers=WORKERS, dtype=np.float64, score_cutoff=100.0
        )
        >= 100.0
    )
    hit = (np.minimum(front, back) <= 1) | contained
    return (hit & (np.minimum(la, lb) >= 2)).astype(np.float64)


def _bulk_closeness(distance: Callable[..., int]) -> BulkScorer:
    def _score(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        out = process.cpdist(a, b, scorer=distance, workers=WORKERS, dtype=np.int64)
        return _as_float32(1.0 / (1.0 + np.asarray(out, dtype=np.float64)))

    return _score


BULK: dict[str, BulkScorer] = {
    "one_slip": _bulk_one_slip,
    "jaro_winkler": _bulk_rapidfuzz(JaroWinkler.normalized_similarity, 1.0),
    "jaro": _bulk_rapidfuzz(Jaro.normalized_similarity, 1.0),
    "levenshtein": _bulk_closeness(Levenshtein.distance),
    "damerau_levenshtein": _bulk_closeness(DamerauLevenshtein.distance),
    "ratio": _bulk_rapidfuzz(Indel.normalized_similarity, 1.0),
    "prefix": _bulk_prefix,
    "rotation": _bulk_rotation,
    "contains": _bulk_contains,
}
"""Scorer name → function scoring two equally long lists of strings pair by pair."""


def score_pairs_of_values(
    scorer: str,
    a: Sequence[str],
    b: Sequence[str],
    at_least: float = 0.0,
    lengths: Lengths | None = None,
    indel: np.ndarray | None = None,
) -> np.ndarray:
    """Similarity in [0, 1] of each (a[i], b[i]), as `REFERENCE[scorer]` defines it.

    Args:
        scorer: one of `BULK` (jaro_winkler, ratio, prefix, rotation, contains).
        a, b: equally long lists (or object arrays) of non-null strings.
        at_least: for the `PRUNABLE` scorers, similarities below this may be reported as 0
            (pairs that provably cannot reach it are not scored); exact at or above it.
        lengths: ``len`` of each value of `a` and of `b`, when the caller knows them (e.g.
            gathered from its distinct values' lengths): the scorers that read lengths
            (contains, one_slip) then do not count them pair by pair. Same scores.
        indel: for `contains`, the Indel distance of each pair where known (-1 where not,
            e.g. from the `ratio` scorer: `indel_from_ratio`): its pruning pass reads it
            instead of computing it again. Same scores.

    Returns:
        float64 similarity per pair.

    Raises:
        KeyError: unknown scorer name.
    """
    if len(a) != len(b):
        raise ValueError(f"score_pairs_of_values needs equally long lists ({len(a)} != {len(b)})")
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64)
    try:
        if scorer in PRUNABLE:
            return _bulk_contains(a, b, at_least, lengths, indel)
        if scorer == "one_slip":
            return _bulk_one_slip(a, b, lengths)
        return BULK[scorer](a, b)
    except UnicodeEncodeError:
        # numpy strings are UTF-8: a lone surrogate cannot be stored; score those pairs exactly.
        func = REFERENCE[scorer]
        return _as_float32(np.array([func(x, y) for x, y in zip(a, b, strict=True)]))

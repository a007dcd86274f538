"""Field comparisons (字段比对): declarative levels evaluated in bulk over candidate pairs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedupe.similarity import (
    PRUNABLE,
    in_order,
    indel_from_ratio,
    score_pairs_of_values,
    scoring_threads,
    value_lengths,
)

NULL_LEVEL = 0
SIMILARITY_MEMO = "\x00similarity:"
"""Prefix of the run-wide cache entries remembering similarities per pair of values."""
VALUE_LENGTHS = "\x00lengths:"
"""Prefix of the run-wide cache entries holding the lengths of a column's distinct values
(read by the scorers of `LENGTH_SCORERS`): dropped with the similarity memo after the levels."""
SCORER_CACHES = (SIMILARITY_MEMO, VALUE_LENGTHS)
"""Prefixes of the run-wide cache entries only similarity scoring reads (`str.startswith`)."""
LENGTH_SCORERS = frozenset({"contains", "one_slip"})
"""Scorers that read the values' lengths: given them from the column's distinct values."""
CACHE_LOCK = threading.RLock()
"""Held while a shared cache entry (factorized column, transformed codes) is computed: chunks
scored in parallel threads (`dedupe.scoring.levels_and_hard_codes`) compute each entry once."""


def column_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Factorized codes of a column (int64, -1 = null) and its distinct values (object)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


AGREEING_CHUNK = 1_000_000
"""Pairs `PairContext.agreeing` compares at a time (one thread's share)."""


class PairContext:
    """Candidate pairs over a prepared frame, with per-column caches of distinct-value work."""

    def __init__(
        self,
        prepared: pd.DataFrame,
        left: np.ndarray,
        right: np.ndarray,
        codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        *,
        remember: bool = False,
        grow_memo: bool = True,
    ) -> None:
        """Args:
        prepared: the prepared records.
        left, right: pair positions into `prepared`.
        codes: a run-wide cache of factorized columns (shared by contexts), or None.
        remember: keep each column's `exact`, `null`, `present` and `flag` masks (one byte
            a pair each) for this context's lifetime: the levels of one chunk ask for the
            same column's masks many times (every level of a comparison, the hard rules).
            Meant for chunks of bounded size; the masks are read-only.
        grow_memo: with a run-wide cache, add the similarities this context scores to the
            cache's memo (False: only read what is there, e.g. what blocking scored). The
            full link's level chunks read it only: a memo of every distinct value pair of a
            14 M-pair link is ≈ 0.6 GB, and each insertion copied it whole.
        """
        self.prepared = prepared
        self.left = left
        self.right = right
        # Few records involved (incremental runs): factorize only their values.
        self._rows: np.ndarray | None = None
        self._pos: tuple[np.ndarray, np.ndarray] = (left, right)
        if codes is None and 0 < len(left) < len(prepared):
            rows = np.unique(np.concatenate([left, right]))
            if 2 * len(rows) < len(prepared):
                self._rows = rows
                self._pos = (np.searchsorted(rows, left), np.searchsorted(rows, right))
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {} if codes is None else codes
        # with a run-wide cache the codes index all records: similarities scored for one set
        # of pairs (a sorted neighbourhood's filter) are looked up, not scored again, later
        self._shared = codes is not None and grow_memo
        self._sims: dict[tuple[str, str, float], tuple[np.ndarray, np.ndarray]] = {}
        self._focus: np.ndarray | None = None
        self._masks: dict[tuple[str, str], tuple[np.ndarray, ...]] | None = {} if remember else None

    def __len__(self) -> int:
        return len(self.left)

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Factorized codes of `column` (-1 = null) and its distinct values."""
        found = self._codes.get(column)
        if found is None:
            with CACHE_LOCK:
                found = self._codes.get(column)
                if found is None:
                    values = self.prepared[column]
                    if self._rows is not None:
                        values = values.iloc[self._rows]
                    found = self._codes[column] = column_codes(values)
        return found

    def pair_codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        codes, _ = self.codes(column)
        return codes[self._pos[0]], codes[self._pos[1]]

    def _remembered(
        self, kind: str, column: str, compute: Callable[[], tuple[np.ndarray, ...]]
    ) -> tuple[np.ndarray, ...]:
        """`compute()`, kept per (kind, column) when this context remembers its masks."""
        if self._masks is None:
            return compute()
        found = self._masks.get((kind, column))
        if found is None:
            found = compute()
            for mask in found:
                mask.flags.writeable = False  # shared by every caller: never edited in place
            self._masks[(kind, column)] = found
        return found

    def null(self, column: str) -> np.ndarray:
        def compute() -> tuple[np.ndarray, ...]:
            lc, rc = self.pair_codes(column)
            return ((lc < 0) | (rc < 0),)

        return self._remembered("null", column, compute)[0]

    def exact(self, column: str) -> np.ndarray:
        def compute() -> tuple[np.ndarray, ...]:
            lc, rc = self.pair_codes(column)
            return ((lc == rc) & (lc >= 0),)

        return self._remembered("exact", column, compute)[0]

    def agreeing(self, column: str, chunk: int | None = None) -> np.ndarray:
        """``np.nonzero(self.exact(column))[0]``: the pairs whose values of `column` are
        present and equal, found `chunk` (default `AGREEING_CHUNK`) pairs at a time in
        `scoring_threads` threads (NumPy releases the GIL), without the mask or the codes of
        every pair at once."""
        chunk = AGREEING_CHUNK if chunk is None else chunk
        codes, _ = self.codes(column)
        left, right = self._pos

        def part(start: int) -> np.ndarray:
            lc = codes[left[start : start + chunk]]
            rc = codes[right[start : start + chunk]]
            return np.nonzero((lc == rc) & (lc >= 0))[0] + start

        parts = in_order(part, range(0, len(left), chunk), scoring_threads(), "agree")
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)

    def present(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Whether each side of each pair has a value in `column`."""

        def compute() -> tuple[np.ndarray, ...]:
            lc, rc = self.pair_codes(column)
            return lc >= 0, rc >= 0

        lp, rp = self._remembered("present", column, compute)
        return lp, rp

    def transformed_codes(
        self, column: str, name: str, func: Callable[[object], object]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pair codes of `func` applied to `column` (once per distinct value; None = null)
        and the distinct transformed values the codes index.

        Cached under `name(column)` with the column codes, so chunks sharing a cache agree.
        """
        key = f"{name}({column})"
        if key not in self._codes:
            with CACHE_LOCK:
                if key not in self._codes:
                    codes, uniques = self.codes(column)
                    mapped = pd.Series([func(u) for u in uniques.tolist()], dtype=object)
                    sub, values = column_codes(mapped)
                    self._codes[key] = (np.where(codes >= 0, sub[np.maximum(codes, 0)], -1), values)
        codes, values = self._codes[key]
        return codes[self._pos[0]], codes[self._pos[1]], values

    def flag(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        def compute() -> tuple[np.ndarray, ...]:
            values = self.prepared[column].to_numpy(dtype=bool)
            return values[self.left], values[self.right]

        lf, rf = self._remembered("flag", column, compute)
        return lf, rf

    @contextmanager
    def focused(self, mask: np.ndarray) -> Iterator[None]:
        """Within the block, tests need to be right only where `mask` holds (lazy similarity).

        `Comparison.evaluate` focuses each level on the pairs no earlier level decided, so a
        costly similarity is computed only for pairs whose level it can still change.
        """
        before, self._focus = self._focus, mask
        try:
            yield
        finally:
            self._focus = before

    def similarity(self, column: str, scorer: str, at_least: float = 0.0) -> np.ndarray:
        """Similarity in [0, 1], computed once per distinct pair of values (0 when null).

        Inside `focused(mask)` only the pairs under `mask` are guaranteed to be scored (the
        rest may read 0 until a later call needs them); each pair is scored at most once.
        With `at_least`, a `PRUNABLE` scorer may report similarities below it as 0.
        """
        bound = at_least if scorer in PRUNABLE else 0.0
        key = (column, scorer, bound)
        lc, rc = self.pair_codes(column)
        if key not in self._sims:
            self._sims[key] = (np.zeros(len(lc), dtype=np.float64), (lc < 0) | (rc < 0))
        out, done = self._sims[key]
        todo = ~done if self._focus is None else self._focus & ~done
        if todo.any():
            _, uniques = self.codes(column)
            width = np.int64(len(uniques) + 1)
            pair = lc[todo] * width + rc[todo]
            if self._shared:  # sorted: merged into the sorted memo below
                distinct, inverse = np.unique(pair, return_inverse=True)
            else:  # hashed: each pair of values is scored alone, in any order
                inverse, distinct = pd.factorize(pair)
            scores = np.zeros(len(distinct), dtype=np.float64)
            memo_key = f"{SIMILARITY_MEMO}{column}:{scorer}:{bound}"
            known_ids, known = self._codes.get(memo_key, (np.zeros(0, np.int64), np.zeros(0)))
            at = np.minimum(np.searchsorted(known_ids, distinct), max(len(known_ids) - 1, 0))
            hit = (known_ids[at] == distinct) if len(known_ids) else np.zeros(len(distinct), bool)
            scores[hit] = known[at[hit]]
            new = ~hit
            if new.any():
                # object arrays of the values (no Python list per pair); a scorer that reads
                # lengths gathers them from the distinct values' (counted once a run)
                ia, ib = distinct[new] // width, distinct[new] % width
                lengths = indel = None
                if scorer in LENGTH_SCORERS:
                    counted = self._value_lengths(column, uniques)
                    lengths = (counted[ia], counted[ib])
                if scorer == "contains" and bound > 0:
                    assert lengths is not None
                    indel = self._known_indel(column, todo, inverse, new, lengths)
                scores[new] = score_pairs_of_values(
                    scorer, uniques[ia], uniques[ib], bound, lengths=lengths, indel=indel
                )
                if self._shared:
                    # merged in place of a sort: both are sorted and disjoint, so inserting
                    # gives the sorted union (one new array each, not four)
                    at_new = np.searchsorted(known_ids, distinct[new])
                    self._codes[memo_key] = (
                        np.insert(known_ids, at_new, distinct[new]),
                        np.insert(known, at_new, scores[new]),
                    )
            out[todo] = scores[inverse]
            done |= todo
        return out

    def _known_indel(
        self,
        column: str,
        todo: np.ndarray,
        inverse: np.ndarray,
        new: np.ndarray,
        lengths: tuple[np.ndarray, np.ndarray],
    ) -> np.ndarray | None:
        """The Indel distance of the value pairs `contains` is about to score (`new` of the
        distinct value pairs of the `todo` pairs, `inverse` mapping one to the other), from
        the `ratio` similarity this context already has for the same pairs (the address
        comparison's first levels): -1 where it has none; None when it has no ratio."""
        ratio = self._sims.get((column, "ratio", 0.0))
        if ratio is None:
            return None
        values, done = ratio
        pairs = np.nonzero(todo)[0]
        # one pair of each distinct value pair (the last one met: any holds the same values)
        first = np.empty(len(new), dtype=np.int64)
        first[inverse] = pairs
        first = first[new]
        known = done[first]
        out = np.full(len(first), -1, dtype=np.int64)
        out[known] = indel_from_ratio(values[first[known]], lengths[0][known], lengths[1][known])
        return out

    def _value_lengths(self, column: str, uniques: np.ndarray) -> np.ndarray:
        """`len` of each distinct value of `column` (cached with its codes; freed with the
        similarity memo once the levels are done: `SCORER_CACHES`)."""
        key = f"{VALUE_LENGTHS}{column}"
        found = self._codes.get(key)
        if found is None:
            with CACHE_LOCK:
                found = self._codes.get(key)
                if found is None:
                    found = self._codes[key] = (value_lengths(uniques), np.zeros(0))
        return found[0]


Test = Callable[[PairContext], np.ndarray]


def exact(column: str) -> Test:
    """Both values present and equal."""
    return lambda ctx: ctx.exact(column)


def similar(column: str, threshold: float, scorer: str = "jaro_winkler") -> Test:
    """Both values present and rapidfuzz similarity ≥ threshold."""
    return lambda ctx: ctx.similarity(column, scorer, threshold) >= threshold


def either_flag(column: str) -> Test:
    """The boolean flag is set on either side."""

    def _test(ctx: PairContext) -> np.ndarray:
        lf, rf = ctx.flag(column)
        return lf | rf

    return _test


def both_flags(column: str) -> Test:
    """The boolean flag is set on both sides."""

    def _test(ctx: PairContext) -> np.ndarray:
        lf, rf = ctx.flag(column)
        return lf & rf

    return _test


def either_null(column: str) -> Test:
    """The value is missing on either side (e.g. a place known only to province level)."""
    return lambda ctx: ctx.null(column)


def negate(test: Test) -> Test:
    """Logical not of a test."""
    return lambda ctx: ~test(ctx)


def all_of(*tests: Test) -> Test:
    """Logical and of tests."""

    def _test(ctx: PairContext) -> np.ndarray:
        result = tests[0](ctx)
        for t in tests[1:]:
            result = result & t(ctx)
        return result

    return _test


def any_of(*tests: Test) -> Test:
    """Logical or of tests."""

    def _test(ctx: PairContext) -> np.ndarray:
        result = tests[0](ctx)
        for t in tests[1:]:
            result = result | t(ctx)
        return result

    return _test


@dataclass(frozen=True)
class Level:
    """One comparison level: the first level (in order) whose test holds wins."""

    label: str
    test: Test
    m_init: float
    alone: bool = True
    """False: the level cannot make a match by itself — the pair also needs a level of an
    `identity` comparison (a look-alike name may be another firm one character away)."""
    sufficient: bool = False
    """True: the level identifies the customer on its own (one person's mobile, one mailbox, one
    credit code): the pair is a match unless a hard rule or another comparison's disagreement
    (`else`) of an `identity` comparison speaks against it."""


@dataclass(frozen=True)
class Comparison:
    """A field comparison: null when any `null_columns` value is missing, else levels, else `else`.

    Level codes: 0 = null (no evidence), 1..k = `levels` in order, k+1 = else. A null column
    with a `masked_columns` companion (phone → phone_masked) is null only when both are.
    `partial_levels` (level codes) are partial evidence — masked values — whose weight is
    capped (`dedupe.scoring.PARTIAL_MAX_BITS`) so they never make a match alone.
    """

    name: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    null_columns: tuple[str, ...] = ()
    else_m: float = 0.05
    tf_column: str | None = None
    tf_without: str | None = None
    """Flag column of records left out of the term frequencies (the tf-adjusted level 1 does
    not apply to them: organisations have their own exact level)."""
    identity: bool = False
    """Its agreeing levels identify a customer (phone, e-mail, contact, address, credit code),
    corroborating a level that cannot stand alone."""
    masked_columns: dict[str, str] = field(default_factory=dict)
    partial_levels: tuple[int, ...] = ()
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", ("null", *(lv.label for lv in self.levels), "else"))

    def evaluate(self, ctx: PairContext) -> np.ndarray:
        """Level code per candidate pair (int8)."""
        out = np.full(len(ctx), len(self.levels) + 1, dtype=np.int8)
        undecided = np.ones(len(ctx), dtype=bool)
        null = np.zeros(len(ctx), dtype=bool)
        for column in self.null_columns or self.columns[:1]:
            if column in self.masked_columns:  # a masked value is evidence, not a null
                lf, rf = ctx.present(column)
                lm, rm = ctx.present(self.masked_columns[column])
                null |= ~((lf | lm) & (rf | rm))
            else:
                null |= ctx.null(column)
        out[null] = NULL_LEVEL
        undecided &= ~null
        for code, level in enumerate(self.levels, start=1):
            if not undecided.any():
                break
            with ctx.focused(undecided):
                hit = level.test(ctx) & undecided
            out[hit] = code
            undecided &= ~hit
        return out


def __getattr__(name: str) -> object:
    """`COMPARISONS`: the built-in comparisons (`dedupe.defaults`) compiled by `dedupe.levels`.

    Resolved lazily because the compiler builds on this module (an import cycle otherwise).
    """
    if name == "COMPARISONS":
        from dedupe.levels import builtin_comparisons

        return builtin_comparisons()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def uncorroborated(levels: dict[str, np.ndarray], comparisons: list[Comparison]) -> np.ndarray:
    """Pairs resting on a level that cannot stand alone, with no `identity` level agreeing.

    Args:
        levels: level codes per comparison.
        comparisons: the comparisons the codes belong to.

    Returns:
        Boolean mask per pair (such pairs may go to review, never merge on their own).
    """
    n = len(next(iter(levels.values()))) if levels else 0
    weak = np.zeros(n, dtype=bool)
    backed = np.zeros(n, dtype=bool)
    for comp in comparisons:
        codes = levels[comp.name]
        for code, level in enumerate(comp.levels, start=1):
            if not level.alone:
                weak |= codes == code
        if comp.identity:
            backed |= (codes > NULL_LEVEL) & (codes <= len(comp.levels))
            for code in comp.partial_levels:  # a masked value is partial evidence only
                backed &= codes != code
    return weak & ~backed


def sufficient(levels: dict[str, np.ndarray], comparisons: list[Comparison]) -> np.ndarray:
    """Pairs at a `sufficient` level with no `identity` comparison disagreeing (its else level).

    Args:
        levels: level codes per comparison.
        comparisons: the comparisons the codes belong to.

    Returns:
        Boolean mask per pair (such pairs match unless a hard rule forbids it).
    """
    n = len(next(iter(levels.values()))) if levels else 0
    strong = np.zeros(n, dtype=bool)
    against = np.zeros(n, dtype=bool)
    for comp in comparisons:
        codes = levels[comp.name]
        for code, level in enumerate(comp.levels, start=1):
            if level.sufficient:
                strong |= codes == code
        if comp.identity:
            against |= codes == len(comp.levels) + 1
    return strong & ~against


def compute_levels(ctx: PairContext, comparisons: list[Comparison]) -> dict[str, np.ndarray]:
    """Evaluate every comparison over the candidate pairs.

    Args:
        ctx: the candidate pairs and their prepared frame.
        comparisons: comparisons to evaluate.

    Returns:
        Comparison name → level codes (int8, one per pair).
    """
    return {c.name: c.evaluate(ctx) for c in comparisons}

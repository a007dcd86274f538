"""Blocking (分块): declarative rules that generate candidate pairs in bulk, with hot-key caps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dedupe.comparisons import CACHE_LOCK, column_codes
from dedupe.similarity import in_order, scoring_threads

MIN_THREAD_RECORDS = 20_000
"""Fewer records than this are blocked rule after rule in one thread (a pool costs more)."""
Codes = dict[str, tuple[np.ndarray, np.ndarray]]
"""Cache of factorized prepared columns: column → (int64 codes, -1 = null; distinct values);
also `<column>@layout` → (rank position inside the block order, block sizes)."""


def cached_codes(prepared: pd.DataFrame, column: str, codes: Codes | None) -> np.ndarray:
    """Codes of `column` over all records, from (and stored in) the cache when given."""
    if codes is None:
        return column_codes(prepared[column])[0]
    if column not in codes:
        with CACHE_LOCK:  # rules blocked side by side factorize a shared key once
            if column not in codes:
                codes[column] = column_codes(prepared[column])
    return codes[column][0]


@dataclass(frozen=True)
class BlockingRule:
    """Records sharing the value of `key` (a prepared column) become candidate pairs.

    Rules are declared as `dedupe.specs.BlockingRuleSpec` and compiled by `dedupe.levels`.

    Attributes:
        name: rule name reported in `blocking_stats` and `pairs.rule`.
        key: column of the prepared frame (see `dedupe.prepare`) holding the blocking key.
        max_block_size: blocks larger than this are windowed; None = the settings' value.
        determines: comparisons whose outcome the key fixes (agreeing on the key implies
            agreeing on them); they are not trained on this rule's pairs.
        window: neighbours per record in an oversize block; None = the settings' value.
        order: prepared column whose sort order windows oversize blocks (a sorted
            neighbourhood when every block is oversize): `name_key`, or `name_reversed` to
            bring together names that differ early (泰聚 / 太聚) rather than late.
        trains: whether EM estimates m on this rule's pairs (False for rules whose pairs are
            nearly all non-matches, such as a sorted neighbourhood: EM learns little there).
        min_similarity: (column, scorer, threshold): only pairs this alike are candidates — a
            sorted neighbourhood keeps the neighbours whose names could be one firm's.
    """

    name: str
    key: str
    max_block_size: int | None = None
    determines: tuple[str, ...] = ()
    window: int | None = None
    order: str = "name_key"
    trains: bool = True
    min_similarity: tuple[str, str, float] | None = None

    def keeps(
        self,
        prepared: pd.DataFrame,
        left: np.ndarray,
        right: np.ndarray,
        codes: Codes | None = None,
    ) -> np.ndarray:
        """Which of the rule's (left, right) pairs pass `min_similarity` (all without one).

        `codes` is the run-wide cache of factorized columns (see `generate_candidates`).
        """
        if self.min_similarity is None or len(left) == 0:
            return np.ones(len(left), dtype=bool)
        from dedupe.comparisons import PairContext

        column, scorer, threshold = self.min_similarity
        if codes is not None:
            cached_codes(prepared, column, codes)
        ctx = PairContext(prepared, left, right, codes)
        return ctx.similarity(column, scorer) >= threshold


def __getattr__(name: str) -> object:
    """`BLOCKING_RULES`: the built-in rules (`dedupe.defaults`) compiled by `dedupe.levels`.

    Resolved lazily because the compiler builds on this module (an import cycle otherwise).
    """
    if name == "BLOCKING_RULES":
        from dedupe.levels import builtin_blocking_rules

        return builtin_blocking_rules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class CandidatePairs:
    """Candidate pairs as positions into the prepared frame (left < right) and per-rule stats."""

    left: np.ndarray
    right: np.ndarray
    rule: np.ndarray
    stats: pd.DataFrame


def rule_rank(
    prepared: pd.DataFrame, rule: BlockingRule, rank: np.ndarray, codes: Codes | None
) -> np.ndarray:
    """The order windowing `rule`'s oversize blocks: `rank` for `name_key`, else computed."""
    if rule.order == "name_key":
        return rank
    name = f"{rule.order}@rank"
    if codes is None:
        return order_rank(prepared, rule.order)
    with CACHE_LOCK:  # rules blocked side by side rank a shared order once
        if name not in codes:
            codes[name] = (order_rank(prepared, rule.order), np.empty(0, np.int64))
    return codes[name][0]


def order_rank(prepared: pd.DataFrame, column: str = "name_key") -> np.ndarray:
    """Rank of each record in (column, record_key) order, used to window oversize blocks."""
    names = prepared[column].fillna("").astype(str)
    table = pa.table({"name": pa.array(names, type=pa.string()), "at": np.arange(len(prepared))})
    order = pc.sort_indices(
        table, sort_keys=[("name", "ascending"), ("at", "ascending")]
    ).to_numpy()
    rank = np.empty(len(prepared), dtype=np.int64)
    rank[order] = np.arange(len(prepared))
    return rank


def block_pairs(
    codes: np.ndarray,
    rank: np.ndarray,
    max_block_size: int,
    window: int,
    focus: np.ndarray | None = None,
    hot: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs of positions sharing a block code; oversize blocks only pair neighbours in `rank`.

    Args:
        codes: block code per record (-1 = no key, never paired).
        rank: ordering of records inside a block (for windowing oversize blocks).
        max_block_size: blocks with more members are windowed.
        window: neighbours paired with each record in an oversize block.
        focus: when given, only blocks holding a focus record are expanded and only pairs
            touching a focus record are returned (the same pairs a full run would make).
        hot: block codes whose every pair is returned too (blocks that lost a member, so
            pairs between unchanged records may appear), used with `focus`.

    Returns:
        (left, right, oversize_blocks) with left < right positions.
    """
    valid = codes >= 0
    if focus is not None:
        extra = hot if hot is not None else np.empty(0, np.int64)
        expanded = np.union1d(np.unique(codes[focus & valid]), extra)
        valid &= np.isin(codes, expanded)
    idx = np.nonzero(valid)[0]
    if len(idx) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0
    order = np.lexsort((rank[idx], codes[idx]))
    members = idx[order]
    block = codes[members]
    _, counts = np.unique(block, return_counts=True)
    size = np.repeat(counts, counts)
    oversize = size > max_block_size
    lefts: list[np.ndarray] = []
    rights: list[np.ndarray] = []
    limit = max(max_block_size - 1, window)
    for d in range(1, limit + 1):
        same = block[:-d] == block[d:]
        if not same.any():
            break
        if d > window:
            same &= ~oversize[:-d]
        pos = np.nonzero(same)[0]
        lefts.append(members[pos])
        rights.append(members[pos + d])
    left = np.concatenate(lefts) if lefts else np.empty(0, np.int64)
    right = np.concatenate(rights) if rights else np.empty(0, np.int64)
    left, right = np.minimum(left, right), np.maximum(left, right)
    if focus is not None:
        keep = focus[left] | focus[right]
        if hot is not None and len(hot):
            keep |= np.isin(codes[left], hot)
        left, right = left[keep], right[keep]
    return left, right, int((counts > max_block_size).sum())


def generate_candidates(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    max_block_size: int,
    window: int,
    focus: np.ndarray | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    hot_values: pd.DataFrame | None = None,
    codes: Codes | None = None,
    rank: np.ndarray | None = None,
) -> CandidatePairs:
    """Union of the pairs of every rule (first rule wins the label), deduplicated.

    Args:
        prepared: output of `prepare_records`.
        rules: blocking rules to apply, in priority order.
        max_block_size: default cap for rules without their own.
        window: neighbours per record in oversize blocks.
        focus: restrict to pairs touching these records (incremental runs).
        extra: additional (left, right) position pairs labelled `steward` (decided pairs).
        hot_values: prepared rows (old versions of changed records) whose blocks are expanded
            whole: they lost a member, so a windowed block may now pair all its members.
        codes: run-wide cache of factorized columns (filled as needed).
        rank: `order_rank(prepared)` when already computed.

    Returns:
        The candidate pairs and `stats` (rule, pairs, new_pairs, oversize_blocks).
    """
    n = len(prepared)
    ids, rule_at, names, stats = _candidate_ids(
        prepared, rules, max_block_size, window, focus, extra, hot_values, codes, rank
    )
    labels = np.array(names, dtype=object)[rule_at] if names else np.empty(0, dtype=object)
    return CandidatePairs(ids // max(n, 1), ids % max(n, 1), labels, stats)


@dataclass
class CandidateCodes:
    """Candidate pairs as compact numbers: int32 positions (left < right), int16 rule codes.

    Attributes:
        left, right: record positions into the prepared frame.
        rule: per pair, the index into `rule_names` of the first rule that produced it.
        rule_names: the rules (and `steward`) in priority order.
        stats: rule, pairs, new_pairs, oversize_blocks.
    """

    left: np.ndarray
    right: np.ndarray
    rule: np.ndarray
    rule_names: list[str]
    stats: pd.DataFrame


def generate_candidate_codes(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    max_block_size: int,
    window: int,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    codes: Codes | None = None,
) -> CandidateCodes:
    """`generate_candidates` (same pairs, same order, same first rule) as compact numbers.

    No object per pair for the rule labels, and positions as int32 (8 bytes a pair, not
    16): a full link at 1 M records holds 14 M candidate pairs through scoring.
    """
    n = len(prepared)
    ids, rule_at, names, stats = _candidate_ids(
        prepared, rules, max_block_size, window, None, extra, None, codes, None
    )
    kind = np.int32 if n < 2**31 else np.int64
    width = np.int64(max(n, 1))
    left = (ids // width).astype(kind)
    right = (ids % width).astype(kind)
    del ids
    return CandidateCodes(left, right, rule_at.astype(np.int16), names, stats)


def _candidate_ids(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    max_block_size: int,
    window: int,
    focus: np.ndarray | None,
    extra: tuple[np.ndarray, np.ndarray] | None,
    hot_values: pd.DataFrame | None,
    codes: Codes | None,
    rank: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, list[str], pd.DataFrame]:
    """(distinct pair ids left·n + right ascending, first rule index per id, rule names,
    stats): the work of `generate_candidates`."""
    n = len(prepared)
    rank = order_rank(prepared) if rank is None else rank

    def pairs_of(rule: BlockingRule) -> tuple[np.ndarray, int]:
        """The rule's pair ids (left·n + right) and its oversize blocks."""
        key_codes = cached_codes(prepared, rule.key, codes)
        cap = rule.max_block_size or max_block_size
        hot = None
        if hot_values is not None and len(hot_values):
            hot = _hot_codes(prepared, rule.key, key_codes, hot_values, codes)
        left, right, oversize = block_pairs(
            key_codes,
            rule_rank(prepared, rule, rank, codes),
            cap,
            rule.window or window,
            focus,
            hot,
        )
        kept = rule.keeps(prepared, left, right, codes)
        left, right = left[kept], right[kept]
        return left * np.int64(n) + right, oversize

    # rules side by side (sorts, similarity scoring: numpy and rapidfuzz release the GIL),
    # their pairs gathered in rule order: the union is the one thread's
    threads = scoring_threads() if n >= MIN_THREAD_RECORDS else 1
    found = in_order(pairs_of, rules, threads, "blocking")
    names = [rule.name for rule in rules]
    parts = [part for part, _ in found]
    oversizes = [oversize for _, oversize in found]
    del found
    if threads > 1:
        from dedupe.link import return_free_memory  # (dedupe.link imports this module)

        # the rules' threads freed their temporaries into their own glibc heaps, which the
        # union (this thread) cannot reuse: handed back first (≈ 0.9 GB kept at 1 M records)
        return_free_memory()
    return union_candidates(n, names, parts, oversizes, extra)


def union_candidates(
    n: int,
    names: list[str],
    parts: list[np.ndarray],
    oversizes: list[int],
    extra: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, list[str], pd.DataFrame]:
    """The rules' pair ids (left·n + right) with the steward-decided pairs, as one set.

    Args:
        n: the number of records (pair ids are left·n + right).
        names, parts, oversizes: per blocking rule, its name, pair ids and oversize blocks
            (extended here by the steward pairs).
        extra: steward-decided pairs (left and right positions), or None.

    Returns:
        (distinct pair ids ascending, first rule index per id, rule names, blocking stats).
    """
    if extra is not None and len(extra[0]):
        el, er = np.minimum(*extra), np.maximum(*extra)
        names.append("steward")
        parts.append(el[el != er] * np.int64(n) + er[el != er])
        oversizes.append(0)
    ids, rule_at, pairs, new = _first_rule_union(parts)
    stats = pd.DataFrame(
        {"rule": names, "pairs": pairs, "new_pairs": new, "oversize_blocks": oversizes},
        columns=["rule", "pairs", "new_pairs", "oversize_blocks"],
    )
    return ids, rule_at, names, stats


def _first_rule_union(parts: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Union of pair ids over rules in priority order, with one sort over all of them.

    Args:
        parts: pair ids (left·n + right, duplicates allowed) per rule, in priority order.

    Returns:
        (distinct ids ascending, index of the first rule holding each, distinct ids per rule,
        ids per rule that no earlier rule holds) — the same as unioning rule by rule.
    """
    if not parts:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty
    bits = max(1, int(len(parts) - 1).bit_length())
    largest = max((int(p.max()) for p in parts if len(p)), default=0)
    if largest >= 1 << (62 - bits):
        raise ValueError(f"too many records to number their pairs in int64 ({largest=})")
    total = sum(len(p) for p in parts)
    keyed = np.empty(total, dtype=np.int64)
    at = 0
    for r, part in enumerate(parts):
        # id in the high bits, rule index in the low bits: sorting orders by (id, rule).
        np.left_shift(part, bits, out=keyed[at : at + len(part)])
        keyed[at : at + len(part)] |= r
        at += len(part)
    keyed.sort()
    if total:
        distinct = np.empty(total, dtype=bool)
        distinct[0] = True
        np.not_equal(keyed[1:], keyed[:-1], out=distinct[1:])
        keyed = keyed[distinct]
    rule = (keyed & ((1 << bits) - 1)).astype(np.int64)
    ids = keyed >> bits
    del keyed
    first = np.ones(len(ids), dtype=bool)
    if len(ids):
        np.not_equal(ids[1:], ids[:-1], out=first[1:])
    pairs = np.bincount(rule, minlength=len(parts))
    new = np.bincount(rule[first], minlength=len(parts))
    return ids[first], rule[first], pairs, new


def _hot_codes(
    prepared: pd.DataFrame,
    column: str,
    key_codes: np.ndarray,
    hot_values: pd.DataFrame,
    codes: Codes | None,
) -> np.ndarray:
    """Block codes of the values in `hot_values[column]`."""
    wanted = hot_values[column].dropna().unique()
    if len(wanted) == 0:
        return np.empty(0, np.int64)
    if codes is not None and column in codes:
        found = pd.Index(codes[column][1]).get_indexer(wanted)
    else:
        at = np.nonzero(prepared[column].isin(wanted).to_numpy(dtype=bool))[0]
        found = key_codes[at]
    return np.unique(found[found >= 0]).astype(np.int64)


def _layout(
    column: str, key: np.ndarray, rank: np.ndarray, codes: Codes | None
) -> tuple[np.ndarray, np.ndarray]:
    """(position of each record in (block, rank) order, size per block), cached per run."""
    name = f"{column}@layout"
    if codes is not None and name in codes:
        return codes[name]
    sizes = np.bincount(key[key >= 0])
    order = np.lexsort((rank, key))
    position = np.empty(len(key), dtype=np.int64)
    position[order] = np.arange(len(key))
    if codes is not None:
        codes[name] = (position, sizes)
    return position, sizes


def still_blocked(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    max_block_size: int,
    window: int,
    left: np.ndarray,
    right: np.ndarray,
    codes: Codes | None = None,
    rank: np.ndarray | None = None,
) -> np.ndarray:
    """Whether a full run over `prepared` would generate each (left, right) pair.

    A pair is generated by a rule when both records share its key and the block is small enough,
    or the two sit within `window` places of each other in the block's name order. Incremental
    runs use this to drop reused pairs that a grown (now windowed) block no longer produces.

    Args:
        prepared: output of `prepare_records` (the records of the current run).
        rules: blocking rules in use.
        max_block_size: default cap for rules without their own.
        window: neighbours per record in oversize blocks.
        left, right: pair positions.
        codes: run-wide cache of factorized columns (filled as needed).
        rank: `order_rank(prepared)` when already computed.

    Returns:
        Boolean mask per pair.
    """
    rank = order_rank(prepared) if rank is None else rank
    keep = np.zeros(len(left), dtype=bool)
    for rule in rules:
        key = cached_codes(prepared, rule.key, codes)
        lc = key[left]
        same = (lc == key[right]) & (lc >= 0)
        if not same.any():
            continue
        position, sizes = _layout(
            f"{rule.key}/{rule.order}", key, rule_rank(prepared, rule, rank, codes), codes
        )
        sl, sr = left[same], right[same]
        ok = sizes[key[sl]] <= (rule.max_block_size or max_block_size)
        ok |= np.abs(position[sl] - position[sr]) <= (rule.window or window)
        ok[ok] = rule.keeps(prepared, sl[ok], sr[ok], codes)
        keep[np.nonzero(same)[0][ok]] = True
    return keep

"""Scale-out by blocking shard: generate and score each shard's pairs apart, cluster once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from dedupe.assemble import CompactLink, LinkResult, assemble_compact, decision_positions
from dedupe.blocking import (
    BlockingRule,
    block_pairs,
    generate_candidates,
    order_rank,
    rule_rank,
)
from dedupe.levels import rules_for
from dedupe.model import ModelParams
from dedupe.pairset import PairSet, arrow_strings, concat_pairs
from dedupe.prepare import prepare_records
from dedupe.review import REVIEW_FIELDS
from dedupe.rules import normalize_decisions
from dedupe.scoring import (
    comparisons_for,
    estimate_params,
    levels_and_hard,
    score_candidates,
)
from dedupe.settings import MatchSettings

_STATS_COLUMNS = ["rule", "pairs", "new_pairs", "oversize_blocks"]


# Columns a shard's frame carries besides the prepared columns: the record's position in the
# whole prepared frame, and per rule r its block facts computed over every record.
AT_COLUMN = "_shard_at"
_FACTS = ("code", "small", "position", "shard", "previous", "first")


def _fact(r: int, name: str) -> str:
    return f"_shard_r{r}_{name}"


@dataclass
class _RuleBlocks:
    """One rule's blocks: per record its block code, whether its block is windowed, its rank
    position and shard.

    Every array is per record of `prepared` (the whole frame or one shard's records) and holds
    the figures of the whole set: codes, sizes and positions compare across records exactly
    as over every record, whichever subset of records is at hand.
    """

    rule: BlockingRule
    cap: int
    codes: np.ndarray  # block code (-1 = no key)
    small: np.ndarray  # the record's block has at most `cap` members (every pair is made)
    position: np.ndarray  # place in (block code, rank) order over every record
    shard: np.ndarray  # shard scoring the record's block, or its segment of a split block
    previous: np.ndarray  # a split block's previous segment's shard (-1 = none, or not needed)
    first: np.ndarray  # the record is its block's first in rank order
    window: int | None = None
    prepared: pd.DataFrame | None = None

    def split(self) -> np.ndarray:
        """Which records are in a block split into segments (`previous` set or past segment 0)."""
        return self.previous != _UNSPLIT

    def generates(self, left: np.ndarray, right: np.ndarray, window: int) -> np.ndarray:
        """Whether this rule's blocking (with windowing of oversize blocks) yields each pair."""
        out = self._blocks(left, right, self.window or window)
        if self.rule.min_similarity is not None and self.prepared is not None and out.any():
            out[out] = self.rule.keeps(self.prepared, left[out], right[out])
        return out

    def _blocks(self, left: np.ndarray, right: np.ndarray, window: int) -> np.ndarray:
        lc = self.codes[left]
        same = (lc == self.codes[right]) & (lc >= 0)
        small = np.zeros(len(left), dtype=bool)
        small[same] = self.small[left[same]]
        near = np.abs(self.position[left] - self.position[right]) <= window
        return same & (small | near)


_UNSPLIT = -2  # `previous` of a record whose block is not split


def segment_length(records: int, shards: int, window: int) -> int:
    """Records per segment of a split block: one shard's share, longer than the window."""
    return max(window + 1, -(-records // shards))


def _rule_blocks(
    prepared: pd.DataFrame,
    rules: list[BlockingRule],
    max_block_size: int,
    shards: int,
    window: int = 1,
) -> list[_RuleBlocks]:
    """Every rule's blocks over all of `prepared` (the whole set of records).

    A block goes to the shard its key hashes to. An oversize block (windowed: only records
    within the window of each other in rank order are paired) longer than a shard's share
    of the records (`segment_length`) is split into segments of that length in rank order,
    segment k to shard (hash + k) mod shards: the pairs starting in a segment are scored by
    its shard, which also needs the first `window` records of the next segment. So a key
    that most records share (a record kind, a switchboard phone) spreads over every shard.
    """
    name_rank = order_rank(prepared)
    # kept per record and rule for every record: as narrow as `shard_frames` stores them
    index, shard_type = _fact_types(len(prepared), shards)
    out = []
    for rule in rules:
        rank = rule_rank(prepared, rule, name_rank, None)
        codes, uniques = pd.factorize(prepared[rule.key], use_na_sentinel=True)
        codes = codes.astype(np.int64)
        order = np.lexsort((rank, codes))
        position = np.empty(len(codes), dtype=np.int64)
        position[order] = np.arange(len(codes))
        # Content hash of the key value: the same block lands in the same shard in any process.
        values = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
        shard = pd.util.hash_pandas_object(values, index=False).to_numpy() % np.uint64(shards)
        keyed = codes >= 0
        sizes = np.bincount(codes[keyed], minlength=len(uniques))
        size = np.zeros(len(codes), dtype=np.int64)
        size[keyed] = sizes[codes[keyed]]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        # keyless records sort first (code -1): a block's first position is past them
        offset = np.full(len(codes), -1, dtype=np.int64)
        first = int((~keyed).sum())
        offset[keyed] = position[keyed] - first - starts[codes[keyed]]
        cap = rule.max_block_size or max_block_size
        segment = segment_length(len(prepared), shards, rule.window or window)
        split = keyed & (size > cap) & (size > segment)
        home = np.zeros(len(codes), dtype=np.int64)
        home[keyed] = shard.astype(np.int64)[codes[keyed]]
        part = np.where(split, offset // segment, 0)
        record_shard = np.where(keyed, (home + part) % shards, -1)
        # the first `window` records of a segment also serve the previous segment's shard
        head = split & (part > 0) & (offset % segment < (rule.window or window))
        previous = np.where(split, -1, _UNSPLIT)
        previous[head] = (home[head] + part[head] - 1) % shards
        out.append(
            _RuleBlocks(
                rule,
                cap,
                codes.astype(index),
                size <= cap,
                position.astype(index),
                record_shard.astype(shard_type),
                previous.astype(shard_type),
                offset == 0,
                rule.window,
                prepared,
            )
        )
        del codes, position, record_shard, previous, offset, home, part, size, rank
    return out


def _fact_types(records: int, shards: int) -> tuple[type[np.signedinteger], type[np.signedinteger]]:
    """The integer types of the block facts: positions and codes, shards."""
    index = np.int32 if records < np.iinfo(np.int32).max else np.int64
    shard_type = np.int16 if shards < np.iinfo(np.int16).max else np.int32
    return index, shard_type


def _frame_blocks(
    frame: pd.DataFrame, rules: list[BlockingRule], max_block_size: int
) -> list[_RuleBlocks]:
    """The rules' blocks as a shard's frame carries them (see `shard_frames`)."""
    return [
        _RuleBlocks(
            rule,
            rule.max_block_size or max_block_size,
            *(frame[_fact(r, f)].to_numpy() for f in _FACTS),
            rule.window,
            frame,
        )
        for r, rule in enumerate(rules)
    ]


def shard_frames(
    prepared: pd.DataFrame, settings: MatchSettings, shards: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Each shard's records: what `score_shard` needs of the whole set, one shard at a time.

    A shard holds the records whose key falls in one of its blocks for *any* rule: every
    member of every block of the shard, so each of its pairs has both records at hand. Beside
    the prepared columns a record carries its position in `prepared` (`AT_COLUMN`) and, per
    rule, its block code, whether its block is windowed, its rank position and shard, computed
    over every record (the facts deciding which rule generates a pair first), so the pairs,
    labels and scores are those of the whole set. Rows keep the order of `prepared`.

    Args:
        prepared: every prepared record.
        settings: matching settings.
        shards: number of shards (≥ 1).

    Yields:
        (shard, its frame) for shard 0 … shards − 1.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    blocks = _rule_blocks(
        prepared, rules_for(settings), settings.max_block_size, shards, settings.block_window
    )
    index, shard_type = _fact_types(len(prepared), shards)
    for shard in range(shards):
        member = np.zeros(len(prepared), dtype=bool)
        for rb in blocks:
            member |= (rb.shard == shard) | (rb.previous == shard)
        rows = np.nonzero(member)[0]
        frame = prepared.iloc[rows].reset_index(drop=True)
        facts: dict[str, np.ndarray] = {AT_COLUMN: rows.astype(np.int64)}
        for r, rb in enumerate(blocks):
            facts[_fact(r, "code")] = rb.codes[rows].astype(index)
            facts[_fact(r, "small")] = rb.small[rows]
            facts[_fact(r, "position")] = rb.position[rows].astype(index)
            facts[_fact(r, "shard")] = rb.shard[rows].astype(shard_type)
            facts[_fact(r, "previous")] = rb.previous[rows].astype(shard_type)
            facts[_fact(r, "first")] = rb.first[rows]
        yield shard, pd.concat([frame, pd.DataFrame(facts)], axis=1)


def write_shard_files(
    prepared: pd.DataFrame, settings: MatchSettings, shards: int, folder: Path
) -> list[Path]:
    """Write each shard's frame (`shard_frames`) to its own file in `folder`, shard by shard.

    Returns:
        The file of shard s at position s; `read_shard_file` reads one back.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard, frame in shard_frames(prepared, settings, shards):
        path = folder / f"shard_{shard:04d}.pkl"
        # pickled, not Parquet: object columns with None, booleans and pandas' string columns
        # come back exactly as prepared (Parquet reads object text back as `str` columns)
        frame.to_pickle(path, protocol=5)
        paths.append(path)
        del frame
    return paths


def read_shard_file(path: Path) -> pd.DataFrame:
    """One shard's frame as `write_shard_files` wrote it."""
    frame = pd.read_pickle(path)
    if not isinstance(frame, pd.DataFrame) or AT_COLUMN not in frame:
        raise ValueError(f"{path} is not a shard file (no {AT_COLUMN} column)")
    return frame


def score_shard(
    frame: pd.DataFrame,
    settings: MatchSettings,
    params: ModelParams,
    shard: int,
    shards: int,
) -> tuple[PairSet, pd.DataFrame]:
    """Generate and score the candidate pairs of one blocking shard from its own records.

    Every rule's blocks are split by a hash of their key value. A pair belongs to the shard of
    the block of the *first* rule that generates it (the rule that labels it in a full run), so
    each pair is scored in exactly one shard and the union over shards is the full run's set.

    Args:
        frame: the shard's records as `shard_frames` gives them.
        settings: matching settings (those the frame was made with).
        params: model parameters (estimated once, before sharding).
        shard: this shard's number, 0 ≤ shard < shards.
        shards: number of shards.

    Returns:
        (the shard's scored pairs sorted by (left, right), as positions into the whole
        prepared frame; per-rule stats of the shard).
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    if AT_COLUMN not in frame:
        raise ValueError(f"the frame of shard {shard} has no {AT_COLUMN} column")
    rules = rules_for(settings)
    blocks = _frame_blocks(frame, rules, settings.max_block_size)
    at = frame[AT_COLUMN].to_numpy(dtype=np.int64)
    n = np.int64(len(frame))
    ids: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    rows = []
    for r, rb in enumerate(blocks):
        left, right, oversize = _own_pairs(rb, shard, rb.window or settings.block_window)
        kept = rb.rule.keeps(frame, left, right)
        left, right = left[kept], right[kept]
        owned = np.ones(len(left), dtype=bool)
        for earlier in blocks[:r]:
            owned &= ~earlier.generates(left, right, settings.block_window)
        pair_id = np.unique(left[owned] * n + right[owned])
        ids.append(pair_id)
        labels.append(np.full(len(pair_id), rb.rule.name, dtype=object))
        rows.append((rb.rule.name, len(left), len(pair_id), oversize))
    all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
    all_labels = np.concatenate(labels) if labels else np.empty(0, dtype=object)
    order = np.argsort(all_ids, kind="stable")
    all_ids, all_labels = all_ids[order], all_labels[order]
    pairs, _ = score_candidates(
        frame, all_ids // max(n, 1), all_ids % max(n, 1), all_labels, settings, params
    )
    # local → global positions: rows keep the whole frame's order, so the sort order holds
    pairs.left, pairs.right = at[pairs.left], at[pairs.right]
    return pairs, pd.DataFrame(rows, columns=_STATS_COLUMNS)


def _own_pairs(rb: _RuleBlocks, shard: int, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The pairs of a rule's blocks (and split blocks' segments) that `shard` generates.

    Positions order a block's members by rank as over every record. A split block's
    records at hand (the shard's segments, the next segments' first `window` records, and
    records here for other rules) are paired within the window of their *global* positions,
    and a pair belongs to the segment of its first record.

    Returns:
        (left, right, oversize blocks counted here) over the frame's rows.
    """
    split = rb.split()
    whole = np.where(~split & (rb.shard == shard), rb.codes, -1)
    left, right, oversize = block_pairs(whole, rb.position, rb.cap, window)
    near = np.where(split & ((rb.shard == shard) | (rb.previous == shard)), rb.codes, -1)
    if not (near >= 0).any():
        return left, right, oversize
    # a cap of 1: every block here is windowed
    sl, sr, _ = block_pairs(near, rb.position, 1, window)
    first = np.where(rb.position[sl] < rb.position[sr], sl, sr)
    keep = (np.abs(rb.position[sl] - rb.position[sr]) <= window) & (rb.shard[first] == shard)
    oversize += int((rb.first & split & (rb.shard == shard)).sum())
    return np.concatenate([left, sl[keep]]), np.concatenate([right, sr[keep]]), oversize


def shard_pairs(
    prepared: pd.DataFrame,
    settings: MatchSettings,
    params: ModelParams,
    shard: int,
    shards: int,
) -> tuple[PairSet, pd.DataFrame]:
    """`score_shard` from every prepared record: cuts the shard's frame out first.

    Args:
        prepared: every prepared record.
        settings, params, shard, shards: as for `score_shard`.

    Returns:
        As `score_shard`: positions into `prepared`.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    frames = shard_frames(prepared, settings, shards)
    frame = next(f for s, f in frames if s == shard)
    return score_shard(frame, settings, params, shard, shards)


def _steward_pairs(
    prepared: pd.DataFrame,
    settings: MatchSettings,
    params: ModelParams,
    dl: np.ndarray,
    dr: np.ndarray,
) -> tuple[PairSet, tuple[str, int, int, int]]:
    """Decided pairs no blocking rule generates (scored here, labelled 'steward')."""
    rules = rules_for(settings)
    n = np.int64(len(prepared))
    keep = dl != dr
    pair_id = np.unique(dl[keep] * n + dr[keep])
    left, right = pair_id // n, pair_id % n
    blocked = np.zeros(len(left), dtype=bool)
    # no decided pair: every rule's blocks over every record are not needed
    for rb in _rule_blocks(prepared, rules, settings.max_block_size, 1) if len(left) else []:
        blocked |= rb.generates(left, right, settings.block_window)
    new = ~blocked
    label = np.full(int(new.sum()), "steward", dtype=object)
    pairs, _ = score_candidates(prepared, left[new], right[new], label, settings, params)
    return pairs, ("steward", len(pair_id), int(new.sum()), 0)


@dataclass
class ShardSetup:
    """What every shard needs and what finishing needs: computed once, before sharding.

    Attributes:
        prepared: the prepared records (in order; the shards get their own records from
            `shard_frames`).
        decided: steward decisions as (left positions, right positions, codes).
        params: the model parameters all shards score with.
        warnings: messages collected while preparing (e.g. decisions on unknown records).
        steward: the decided pairs no blocking rule generates, scored, and their stats row
            (computed here, where every record's blocks are at hand: finishing needs no
            blocking over every record).
    """

    prepared: pd.DataFrame
    decided: tuple[np.ndarray, np.ndarray, np.ndarray]
    params: ModelParams
    warnings: list[str]
    steward: tuple[PairSet, tuple[str, int, int, int]] | None = None


def prepare_sharded(
    records: pd.DataFrame,
    settings: MatchSettings,
    decisions: pd.DataFrame | None = None,
    params: ModelParams | None = None,
) -> ShardSetup:
    """Prepare records, place steward decisions and get the params, once for all shards.

    Args:
        records: clean.records.
        settings: matching settings.
        decisions: steward decisions.
        params: model parameters; None = estimated here on the full candidate set, exactly as
            `link_records` estimates them.

    Returns:
        The setup `shard_pairs` (via ``setup.prepared``/``setup.params``) and `finish_sharded` use.
    """
    warnings: list[str] = []
    prepared = prepare_records(records, settings)
    del records  # the caller may have handed them over: not held through training
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    decided = decision_positions(normalize_decisions(decisions), keys, warnings)
    del keys
    if params is None:
        params = _train(prepared, settings, decided)
    steward = _steward_pairs(prepared, settings, params, decided[0], decided[1])
    return ShardSetup(prepared, decided, params, warnings, steward)


def finish_sharded(
    setup: ShardSetup,
    settings: MatchSettings,
    results: list[tuple[PairSet, pd.DataFrame]],
) -> LinkResult:
    """Union the shards' pairs (plus steward-only pairs) and cluster once over the union.

    Args:
        setup: the setup the shards were scored from.
        settings: matching settings (the same the shards used).
        results: every shard's `shard_pairs` result, in any order, each shard exactly once.

    Returns:
        The LinkResult over all records, equal to the single-process `link_records` result.

    Raises:
        ValueError: no shard results were given.
    """
    return finish_compact(setup, settings, list(results)).to_result()


def finish_compact(
    setup: ShardSetup,
    settings: MatchSettings,
    results: list[tuple[PairSet, pd.DataFrame]],
) -> CompactLink:
    """`finish_sharded` without the frame of every pair: the pairs stay numbers.

    The pipeline's finishing step writes ``match.pairs`` from the result a batch at a time
    (as the single-process full match does); ``.to_result()`` is `finish_sharded`'s result.
    Each shard's pairs are let go of (``results`` is emptied) once they are concatenated.

    Raises:
        ValueError: no shard results were given.
    """
    if not results:
        raise ValueError("finish_sharded needs the results of at least one shard")
    prepared, decided, params = setup.prepared, setup.decided, setup.params
    steward, steward_row = setup.steward or _steward_pairs(
        prepared, settings, params, decided[0], decided[1]
    )
    stats = pd.concat([r[1] for r in results]).groupby("rule", sort=False).sum().reset_index()
    if len(decided[0]):
        stats = pd.concat([stats, pd.DataFrame([steward_row], columns=_STATS_COLUMNS)])
    parts = [r[0] for r in results] + [steward]
    results.clear()
    pairs = sorted_union(parts, len(prepared))
    del parts
    stats = stats.reset_index(drop=True)
    return assemble_compact(prepared, pairs, decided, settings, params, stats, list(setup.warnings))


FINISH_COLUMNS = (
    "record_key",
    # `assemble.exclusive_codes`
    "id_number",
    "id_number_valid",
    "credit_code",
    "credit_code_valid",
    "branch_key",
    "branch_soft",
    "customer_type",
    # `rules.id_number_matches` (`_names_compatible`)
    "name_key",
    "name_key_masked",
    "name_pinyin",
)
"""The prepared columns assembling reads of every record (`finishing_frame`)."""


RowReader = Callable[[np.ndarray, list[str]], dict[str, np.ndarray]]
"""Reads the given fields of the prepared records at sorted positions (`prepared_rows`)."""


def finishing_frame(prepared: pd.DataFrame) -> pd.DataFrame:
    """What `finish_compact` reads of every prepared record: `FINISH_COLUMNS` (those present).

    The review queue's record fields (`REVIEW_FIELDS`) not among them are placeholders
    (None): the queue holds a few thousand pairs, and `fill_review_fields` fills their
    fields from the records' rows afterwards. So the finishing step holds a few columns of
    every record instead of the whole prepared frame.
    """
    columns: dict[str, object] = {c: prepared[c] for c in FINISH_COLUMNS if c in prepared}
    for name in REVIEW_FIELDS:
        if name not in columns:
            columns[name] = np.full(len(prepared), None, dtype=object)
    return pd.DataFrame(columns, index=prepared.index)


def fill_review_fields(
    queue: pd.DataFrame,
    keys: pd.Series,
    rows: RowReader,
) -> None:
    """Put the records' fields into a review queue built from a `finishing_frame`.

    Args:
        queue: `CompactLink.review_queue` (changed in place: ``left_<field>`` and
            ``right_<field>`` for every `REVIEW_FIELDS` field).
        keys: the record keys in prepared order (``finishing_frame(...)["record_key"]``).
        rows: reads the given fields of the records at sorted positions (`prepared_rows`).
    """
    if not len(queue):
        return
    index = pd.Index(keys)
    lpos = index.get_indexer(queue["left_key"])
    rpos = index.get_indexer(queue["right_key"])
    if (lpos < 0).any() or (rpos < 0).any():
        raise ValueError("a review pair names a record the prepared records do not hold")
    wanted = np.unique(np.concatenate([lpos, rpos]))
    values = rows(wanted, list(REVIEW_FIELDS))
    at_left, at_right = np.searchsorted(wanted, lpos), np.searchsorted(wanted, rpos)
    # as `review.build_review_queue` makes them from the prepared columns
    for name in REVIEW_FIELDS:
        column = values[name]
        queue[f"left_{name}"] = pd.array(column[at_left], dtype="string")
        queue[f"right_{name}"] = pd.array(column[at_right], dtype="string")


def write_prepared_file(batches: pa.RecordBatchReader, path: Path) -> int:
    """Write the prepared records' record batches (``match.prepared``'s rows, in order) to an
    Arrow IPC stream file, batch by batch; returns the rows written."""
    written = 0
    with (
        pa.OSFile(str(path), "wb") as sink,
        pa.ipc.new_stream(
            sink, batches.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")
        ) as writer,
    ):
        for batch in batches:
            writer.write_batch(batch)
            written += batch.num_rows
    return written


def read_prepared_file(path: Path) -> pa.RecordBatchReader:
    """`write_prepared_file`'s batches, read one at a time (not memory-mapped).

    The batches come from the system allocator, not Arrow's pool: a batch let go of goes
    back at once (≈ 40 MB less resident at 200 k records than with the default pool, which
    kept a second decompressed batch)."""
    return pa.ipc.open_stream(pa.OSFile(str(path), "rb"), memory_pool=pa.system_memory_pool())


def prepared_rows(path: Path, positions: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
    """The `columns` of the records at sorted `positions` (rows of `write_prepared_file`'s
    file) as object arrays (str or None), read a batch at a time."""
    out: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    start = 0
    for batch in read_prepared_file(path):
        lo, hi = np.searchsorted(positions, [start, start + batch.num_rows])
        if hi > lo:
            local = pa.array(positions[lo:hi] - start)
            for c in columns:
                out[c].append(np.array(batch.column(c).take(local).to_pylist(), dtype=object))
        start += batch.num_rows
    if len(positions) and positions[-1] >= start:
        raise ValueError(f"{path} holds {start} records: no record at {int(positions[-1])}")
    return {
        c: np.concatenate(parts) if parts else np.empty(0, dtype=object) for c, parts in out.items()
    }


def sorted_union(parts: list[PairSet], n: int) -> PairSet:
    """``concat_pairs(parts)`` sorted by (left, right) (stable), built a field at a time.

    Each field is concatenated, put in order and dropped from the parts before the next, so
    the union costs about one copy of the pairs, not two (the concatenation and its sorted
    copy). The parts are emptied.

    Args:
        parts: scored pair sets (each shard's, the steward-only pairs).
        n: number of prepared records (the pair ids' base).
    """
    if not parts:
        return concat_pairs(parts)
    order = np.argsort(np.concatenate([p.ids(n) for p in parts]), kind="stable")
    rule_names = sorted({name for p in parts for name in p.rule_names})
    hard_names = sorted({name for p in parts for name in p.hard_names})

    empty = np.empty(0, dtype=np.int8)

    def gather(field: str, names: list[str] | None = None) -> np.ndarray:
        """One field of every part, concatenated in order; dropped from the parts."""
        pieces = []
        for p in parts:
            values = getattr(p, field)
            pieces.append(values if names is None else _recoded(values, _names(p, field), names))
            setattr(p, field, empty)
        return np.concatenate(pieces)[order]

    def gather_levels(name: str) -> np.ndarray:
        return np.concatenate([p.levels.pop(name) for p in parts])[order]

    left, right = gather("left"), gather("right")
    rule = gather("rule", rule_names)
    score, probability = gather("score"), gather("probability")
    levels = {name: gather_levels(name) for name in list(parts[0].levels)}
    hard = gather("hard", hard_names)
    return PairSet(left, right, rule, score, probability, levels, hard, rule_names, hard_names)


def _names(pairs: PairSet, field: str) -> list[str]:
    """The labels behind a coded field of `pairs` (``rule`` or ``hard``)."""
    return pairs.rule_names if field == "rule" else pairs.hard_names


def _recoded(codes: np.ndarray, names: list[str], target: list[str]) -> np.ndarray:
    """Codes over `names` as codes over `target` (which holds every name), as `concat_pairs`
    recodes them."""
    lookup = np.array([target.index(name) for name in names] + [-1], dtype=np.int16)
    return lookup[codes]


def link_sharded(
    records: pd.DataFrame,
    settings: MatchSettings | None = None,
    decisions: pd.DataFrame | None = None,
    params: ModelParams | None = None,
    shards: int = 2,
    executor: Executor | None = None,
) -> LinkResult:
    """`link_records`, with pair generation and scoring split into blocking shards.

    Shards run on `executor` (e.g. a `ProcessPoolExecutor`) or one after the other in this
    process (bounded memory per shard). Pairs are unioned and clustering runs once over the
    union, since clusters cross shards. The result equals `link_records(records, settings,
    decisions, params)`: same pairs, probabilities, clusters and blocking stats.

    Args:
        records: clean.records.
        settings: matching settings; None = defaults.
        decisions: steward decisions.
        params: model parameters; None = estimated once here, before sharding (that needs the
            full candidate set in this process: pass params from a previous run to scale out).
        shards: number of shards (≥ 1).
        executor: where to run the shards; None = sequentially in this process.

    Returns:
        The LinkResult over all records.
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    settings = settings or MatchSettings()
    setup = prepare_sharded(records, settings, decisions, params)
    params = setup.params
    # each shard gets its own records only (`shard_frames`), not the whole prepared frame
    frames = shard_frames(setup.prepared, settings, shards)
    if executor is None:
        results = [score_shard(f, settings, params, s, shards) for s, f in frames]
    else:
        futures = [executor.submit(score_shard, f, settings, params, s, shards) for s, f in frames]
        results = [f.result() for f in futures]
    return finish_sharded(setup, settings, results)


def _train(
    prepared: pd.DataFrame,
    settings: MatchSettings,
    decided: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> ModelParams:
    """Estimate params on the full candidate set, as `link_records` does."""
    rules = rules_for(settings)
    cand = generate_candidates(
        prepared,
        rules,
        settings.max_block_size,
        settings.block_window,
        extra=(decided[0], decided[1]),
    )
    levels, hard = levels_and_hard(
        prepared,
        cand.left,
        cand.right,
        comparisons_for(settings),
        settings.merge_branches,
        hard_rules=settings.hard_rules,
    )
    return estimate_params(
        prepared, cand.left, cand.right, levels, settings, separated=pd.notna(hard)
    )

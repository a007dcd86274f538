"""Scale-out by blocking shard: generate and score each shard's pairs apart, cluster once."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dedupe.assemble import LinkResult, assemble, decision_positions
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
from dedupe.rules import normalize_decisions
from dedupe.scoring import (
    comparisons_for,
    estimate_params,
    levels_and_hard,
    score_candidates,
)
from dedupe.settings import MatchSettings

_STATS_COLUMNS = ["rule", "pairs", "new_pairs", "oversize_blocks"]


@dataclass
class _RuleBlocks:
    """One rule's blocks over the prepared frame: code, block size and rank position per record."""

    rule: BlockingRule
    cap: int
    codes: np.ndarray
    sizes: np.ndarray
    position: np.ndarray
    shard: np.ndarray
    rank: np.ndarray
    window: int | None = None
    prepared: pd.DataFrame | None = None

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
        small[same] = self.sizes[lc[same]] <= self.cap
        near = np.abs(self.position[left] - self.position[right]) <= window
        return same & (small | near)


def _rule_blocks(
    prepared: pd.DataFrame, rules: list[BlockingRule], max_block_size: int, shards: int
) -> list[_RuleBlocks]:
    name_rank = order_rank(prepared)
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
        shard = (pd.util.hash_pandas_object(values, index=False).to_numpy() % np.uint64(shards))
        out.append(_RuleBlocks(
            rule, rule.max_block_size or max_block_size, codes,
            np.bincount(codes[codes >= 0], minlength=len(uniques)), position,
            shard.astype(np.int64), rank, rule.window, prepared,
        ))
    return out


def shard_pairs(
    prepared: pd.DataFrame,
    settings: MatchSettings,
    params: ModelParams,
    shard: int,
    shards: int,
) -> tuple[PairSet, pd.DataFrame]:
    """Generate and score the candidate pairs of one blocking shard.

    Every rule's blocks are split by a hash of their key value. A pair belongs to the shard of
    the block of the *first* rule that generates it (the rule that labels it in a full run), so
    each pair is scored in exactly one shard and the union over shards is the full run's set.

    Args:
        prepared: the prepared records (identical in every shard).
        settings: matching settings.
        params: model parameters (estimated once, before sharding).
        shard: this shard's number, 0 ≤ shard < shards.
        shards: number of shards.

    Returns:
        (the shard's scored pairs sorted by (left, right), per-rule stats of the shard).
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is outside 0..{shards - 1}")
    rules = rules_for(settings)
    blocks = _rule_blocks(prepared, rules, settings.max_block_size, shards)
    n = np.int64(len(prepared))
    ids: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    rows = []
    for r, rb in enumerate(blocks):
        if len(rb.shard) == 0:  # no record has this rule's key (e.g. no id numbers)
            mine = np.full(len(rb.codes), -1, dtype=np.int64)
        else:
            mine = np.where((rb.codes >= 0) & (rb.shard[np.maximum(rb.codes, 0)] == shard),
                            rb.codes, -1)
        left, right, oversize = block_pairs(
            mine, rb.rank, rb.cap, rb.window or settings.block_window
        )
        kept = rb.rule.keeps(prepared, left, right)
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
    pairs, _ = score_candidates(prepared, all_ids // n, all_ids % n, all_labels, settings, params)
    return pairs, pd.DataFrame(rows, columns=_STATS_COLUMNS)


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
    for rb in _rule_blocks(prepared, rules, settings.max_block_size, 1):
        blocked |= rb.generates(left, right, settings.block_window)
    new = ~blocked
    label = np.full(int(new.sum()), "steward", dtype=object)
    pairs, _ = score_candidates(prepared, left[new], right[new], label, settings, params)
    return pairs, ("steward", len(pair_id), int(new.sum()), 0)


@dataclass
class ShardSetup:
    """What every shard needs and what finishing needs: computed once, before sharding.

    Attributes:
        prepared: the prepared records (every shard gets the whole frame).
        decided: steward decisions as (left positions, right positions, codes).
        params: the model parameters all shards score with.
        warnings: messages collected while preparing (e.g. decisions on unknown records).
    """

    prepared: pd.DataFrame
    decided: tuple[np.ndarray, np.ndarray, np.ndarray]
    params: ModelParams
    warnings: list[str]


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
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    decided = decision_positions(normalize_decisions(decisions), keys, warnings)
    if params is None:
        params = _train(prepared, settings, decided)
    return ShardSetup(prepared, decided, params, warnings)


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
    if not results:
        raise ValueError("finish_sharded needs the results of at least one shard")
    prepared, decided, params = setup.prepared, setup.decided, setup.params
    steward, steward_row = _steward_pairs(prepared, settings, params, decided[0], decided[1])
    stats = pd.concat([r[1] for r in results]).groupby("rule", sort=False).sum().reset_index()
    if len(decided[0]):
        stats = pd.concat([stats, pd.DataFrame([steward_row], columns=_STATS_COLUMNS)])
    pairs = concat_pairs([r[0] for r in results] + [steward])
    pairs = pairs.take(np.argsort(pairs.ids(len(prepared)), kind="stable"))
    stats = stats.reset_index(drop=True)
    return assemble(prepared, pairs, decided, settings, params, stats, list(setup.warnings))


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
    prepared, params = setup.prepared, setup.params
    if executor is None:
        results = [shard_pairs(prepared, settings, params, s, shards) for s in range(shards)]
    else:
        futures = [
            executor.submit(shard_pairs, prepared, settings, params, s, shards)
            for s in range(shards)
        ]
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
        prepared, rules, settings.max_block_size, settings.block_window,
        extra=(decided[0], decided[1]),
    )
    levels, hard = levels_and_hard(
        prepared, cand.left, cand.right, comparisons_for(settings), settings.merge_branches,
        hard_rules=settings.hard_rules,
    )
    return estimate_params(
        prepared, cand.left, cand.right, levels, settings, separated=pd.notna(hard)
    )


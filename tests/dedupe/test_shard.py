"""Sharded linking gives exactly the single-process result (pairs, probabilities, clusters)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest

from dedupe import LinkResult, MatchSettings, link_records, link_sharded
from dedupe.shard import shard_pairs
from tests.dedupe.synth import make_records


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, LinkResult]:
    records, _ = make_records(400, seed=5)
    keys = records["record_key"].tolist()
    decisions = pd.DataFrame(
        {
            # one decided pair no rule blocks together, one no-match inside a block
            "left_key": [keys[0], keys[10]],
            "right_key": [keys[-1], keys[11]],
            "decision": ["match", "no-match"],
            "decided_at": ["2024-01-01", "2024-01-02"],
        }
    )
    return records, decisions, link_records(records, decisions=decisions)


def _assert_same(sharded: LinkResult, single: LinkResult) -> None:
    pd.testing.assert_frame_equal(sharded.pairs, single.pairs)
    pd.testing.assert_frame_equal(sharded.clusters, single.clusters)
    pd.testing.assert_frame_equal(sharded.review_queue, single.review_queue)
    pd.testing.assert_frame_equal(
        sharded.blocking_stats.reset_index(drop=True),
        single.blocking_stats.reset_index(drop=True),
        check_dtype=False,
    )


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_sharded_equals_single_process(data, shards: int) -> None:
    records, decisions, single = data
    sharded = link_sharded(records, None, decisions, single.params, shards=shards)
    _assert_same(sharded, single)


def test_sharded_in_worker_processes(data) -> None:
    records, decisions, single = data
    with ProcessPoolExecutor(max_workers=2) as pool:
        sharded = link_sharded(records, None, decisions, single.params, shards=2, executor=pool)
    _assert_same(sharded, single)


def test_sharded_estimates_params_once_like_full_run(data) -> None:
    records, decisions, single = data
    sharded = link_sharded(records, None, decisions, None, shards=2)
    assert sharded.params.to_json() == single.params.to_json()
    _assert_same(sharded, single)


def test_each_pair_is_scored_in_exactly_one_shard(data) -> None:
    records, _, single = data
    from dedupe.prepare import prepare_records

    prepared = prepare_records(records)
    settings = MatchSettings()
    parts = [shard_pairs(prepared, settings, single.params, s, 4)[0] for s in range(4)]
    ids = pd.Series([i for p in parts for i in p.ids(len(prepared)).tolist()])
    assert not ids.duplicated().any()
    assert sum(len(p) for p in parts) == (single.pairs["rule"] != "steward").sum()
    assert all(len(p) for p in parts)  # the hash spreads blocks over every shard


def test_windowed_blocks_shard_exactly() -> None:
    # Small cap: many blocks are windowed, so ownership must follow the windowing too.
    records, _ = make_records(250, seed=9)
    settings = MatchSettings(max_block_size=3, block_window=1)
    single = link_records(records, settings)
    _assert_same(link_sharded(records, settings, None, single.params, shards=5), single)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_shard_count_is_refused(data, bad: int) -> None:
    with pytest.raises(ValueError, match="shards"):
        link_sharded(data[0], shards=bad)

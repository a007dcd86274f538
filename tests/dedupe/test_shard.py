"""Sharded linking gives exactly the single-process result (pairs, probabilities, clusters)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dedupe import LinkResult, MatchSettings, link_records, link_sharded
from dedupe.pairset import concat_pairs
from dedupe.review import REVIEW_FIELDS
from dedupe.shard import (
    AT_COLUMN,
    fill_review_fields,
    finish_compact,
    finish_sharded,
    finishing_frame,
    prepare_sharded,
    prepared_rows,
    read_prepared_file,
    read_shard_file,
    score_shard,
    shard_frames,
    shard_pairs,
    sorted_union,
    write_prepared_file,
    write_shard_files,
)
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


def test_each_shard_loads_only_its_own_records(data, tmp_path) -> None:
    records, _, single = data
    from dedupe.prepare import prepare_records

    prepared = prepare_records(records)
    settings = MatchSettings()
    files = write_shard_files(prepared, settings, 4, tmp_path)
    parts, loaded = [], []
    for shard, path in enumerate(files):
        frame = read_shard_file(path)
        loaded.append(len(frame))
        assert 0 < len(frame) < len(prepared)
        assert frame[AT_COLUMN].is_monotonic_increasing
        at = frame[AT_COLUMN].to_numpy()
        assert frame["record_key"].tolist() == prepared["record_key"].iloc[at].tolist()
        # scored from its own file only, the shard gives what it gives from every record
        pairs, stats = score_shard(frame, settings, single.params, shard, 4)
        whole, whole_stats = shard_pairs(prepared, settings, single.params, shard, 4)
        assert pairs.ids(len(prepared)).tolist() == whole.ids(len(prepared)).tolist()
        assert pairs.probability.tolist() == whole.probability.tolist()
        pd.testing.assert_frame_equal(stats, whole_stats)
        parts.append(pairs)
    assert sum(loaded) < 4 * len(prepared)
    ids = np.concatenate([p.ids(len(prepared)) for p in parts])
    assert len(np.unique(ids)) == len(ids) == (single.pairs["rule"] != "steward").sum()


def test_a_key_most_records_share_is_split_over_the_shards() -> None:
    # a small cap windows most blocks; the largest (a record kind) is cut into segments
    records, _ = make_records(400, seed=9)
    settings = MatchSettings(max_block_size=3, block_window=2)
    from dedupe.levels import rules_for
    from dedupe.prepare import prepare_records

    prepared = prepare_records(records, settings)
    rule = max(rules_for(settings), key=lambda r: prepared[r.key].value_counts().max())
    largest = prepared[rule.key].value_counts().index[0]
    members = set(prepared.loc[prepared[rule.key] == largest, "record_key"])
    assert len(members) > len(prepared) // 4
    frames = dict(shard_frames(prepared, settings, 5))
    holding = [s for s, f in frames.items() if members & set(f["record_key"])]
    assert len(holding) > 1
    assert all(not members <= set(f["record_key"]) for f in frames.values())
    single = link_records(records, settings)
    _assert_same(link_sharded(records, settings, None, single.params, shards=5), single)


def test_shards_without_the_whole_frame_equal_single_process(data, tmp_path) -> None:
    # every shard scored in a worker process from its own file: same link as in one process
    records, decisions, single = data
    settings = MatchSettings()
    setup = prepare_sharded(records, settings, decisions, single.params)
    files = write_shard_files(setup.prepared, settings, 3, tmp_path)
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(_score_file, path, settings, setup.params, s, 3)
            for s, path in enumerate(files)
        ]
        results = [f.result() for f in futures]
    _assert_same(finish_sharded(setup, settings, results), single)


def _score_file(path, settings, params, shard: int, shards: int):
    return score_shard(read_shard_file(path), settings, params, shard, shards)


def test_an_empty_shard_scores_no_pairs(tmp_path) -> None:
    records, _ = make_records(6, seed=2)
    settings = MatchSettings()
    single = link_records(records, settings)
    from dedupe.prepare import prepare_records

    prepared = prepare_records(records)
    frames = dict(shard_frames(prepared, settings, 64))
    empty = [s for s, f in frames.items() if len(f) == 0]
    assert empty
    pairs, stats = score_shard(frames[empty[0]], settings, single.params, empty[0], 64)
    assert len(pairs) == 0 and stats["pairs"].sum() == 0
    assert link_sharded(records, settings, None, single.params, shards=64).pairs.equals(
        single.pairs
    )


def test_finishing_from_a_few_columns_and_the_staged_rows_equals_single_process(
    data, tmp_path
) -> None:
    # as `match_finish` runs: assembled from `finishing_frame`, the review queue's fields
    # read back from the staged rows afterwards
    records, decisions, single = data
    assert len(single.review_queue) > 0
    settings = MatchSettings()
    setup = prepare_sharded(records, settings, decisions, single.params)
    results = [shard_pairs(setup.prepared, settings, setup.params, s, 3) for s in range(3)]
    staged = tmp_path / "prepared.arrows"
    table = pa.Table.from_pandas(setup.prepared, preserve_index=False)
    assert write_prepared_file(
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=97)), staged
    ) == len(setup.prepared)
    assert read_prepared_file(staged).read_all().equals(table.combine_chunks())
    full = setup.prepared
    setup.prepared = finishing_frame(full)
    assert len(setup.prepared.columns) < len(full.columns)
    compact = finish_compact(setup, settings, results)
    assert compact.review_queue[f"left_{REVIEW_FIELDS[0]}"].isna().all()  # placeholders
    fill_review_fields(
        compact.review_queue,
        compact.prepared["record_key"],
        lambda at, columns: prepared_rows(staged, at, columns),
    )
    _assert_same(compact.to_result(), single)


def test_staged_rows_are_read_by_position(tmp_path) -> None:
    frame = pd.DataFrame({"a": [f"v{i}" if i % 3 else None for i in range(10)]})
    staged = tmp_path / "rows.arrows"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    write_prepared_file(
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=4)), staged
    )
    got = prepared_rows(staged, np.array([0, 2, 4, 9]), ["a"])["a"]
    assert got.tolist() == [None, "v2", "v4", None]
    with pytest.raises(ValueError, match="no record at 10"):
        prepared_rows(staged, np.array([1, 10]), ["a"])


def test_sorted_union_equals_the_concatenation_in_order(data) -> None:
    records, _, single = data
    settings = MatchSettings()
    setup = prepare_sharded(records, settings, None, single.params)
    n = len(setup.prepared)
    parts = [shard_pairs(setup.prepared, settings, setup.params, s, 4)[0] for s in range(4)]
    expected = concat_pairs(parts)
    expected = expected.take(np.argsort(expected.ids(n), kind="stable"))
    got = sorted_union(parts, n)
    assert all(len(p) == 0 and not p.levels for p in parts)  # the parts were emptied
    for name in ("left", "right", "rule", "score", "probability", "hard"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
        assert getattr(got, name).dtype == getattr(expected, name).dtype
    assert got.levels.keys() == expected.levels.keys()
    for name, codes in expected.levels.items():
        np.testing.assert_array_equal(got.levels[name], codes)
    assert (got.rule_names, got.hard_names) == (expected.rule_names, expected.hard_names)

"""The full match stage's compact link equals `link_records`: pairs, clusters, queue, params."""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import dedupe.blocking as blocking
import dedupe.scoring as scoring
import dedupe.training as training
from dedupe import LinkResult, MatchSettings
from dedupe.blocking import generate_candidate_codes, generate_candidates
from dedupe.comparisons import SIMILARITY_MEMO, Comparison, PairContext
from dedupe.levels import comparisons_for, rules_for
from dedupe.link import link_compact
from dedupe.model import score_pairs, tf_adjustment
from dedupe.prepare import prepare_records
from dedupe.similarity import scoring_workers


def _values(frame: pd.DataFrame, column: str) -> list[object]:
    return [None if v is None or v is pd.NA or v != v else v for v in frame[column].tolist()]


def test_the_compact_link_writes_what_link_records_returns(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], linked: LinkResult
) -> None:
    compact = link_compact(synthetic[0])
    # several batches: the stream is the pairs frame, row for row
    batches = list(compact.pair_batches(rows=700))
    assert len(batches) > 3
    streamed = pa.Table.from_batches(batches, schema=compact.pair_schema())
    assert streamed.equals(pa.Table.from_pandas(linked.pairs, preserve_index=False))
    assert len(compact) == len(linked.pairs)
    assert compact.matched_pairs() == linked.matched_pairs()
    assert compact.cluster_count() == linked.cluster_count()
    pd.testing.assert_frame_equal(compact.clusters, linked.clusters)
    pd.testing.assert_frame_equal(compact.review_queue, linked.review_queue)
    assert compact.params.to_json() == linked.params.to_json()
    # text held as Arrow strings, the same values (None for null where objects hold None)
    assert linked.prepared is not None
    assert list(compact.prepared.columns) == list(linked.prepared.columns)
    arrow = [c for c in compact.prepared if compact.prepared[c].dtype != object]
    assert "customer_name" in arrow
    for column in compact.prepared.columns:
        assert _values(compact.prepared, column) == _values(linked.prepared, column), column


def test_compact_candidates_are_the_candidates(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    settings = MatchSettings()
    prepared = prepare_records(synthetic[0], settings)
    rules = rules_for(settings)
    extra = (np.array([5, 9]), np.array([2, 9]))
    old = generate_candidates(prepared, rules, settings.max_block_size, settings.block_window,
                              extra=extra)  # fmt: skip
    new = generate_candidate_codes(prepared, rules, settings.max_block_size,
                                   settings.block_window, extra=extra)  # fmt: skip
    assert new.left.dtype == np.int32 and new.rule.dtype == np.int16
    assert np.array_equal(new.left, old.left) and np.array_equal(new.right, old.right)
    assert np.array_equal(np.array(new.rule_names, dtype=object)[new.rule], old.rule)
    assert "steward" in new.rule_names
    pd.testing.assert_frame_equal(new.stats, old.stats)


def test_levels_and_hard_rules_do_not_depend_on_the_chunks(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MatchSettings()
    prepared = prepare_records(synthetic[0], settings)
    cand = generate_candidates(prepared, rules_for(settings), settings.max_block_size,
                               settings.block_window)  # fmt: skip
    comparisons = comparisons_for(settings)
    whole, hard = scoring.levels_and_hard(prepared, cand.left, cand.right, comparisons, False)
    assert any(h is not None for h in hard)  # the set has hard-rule conflicts to code
    monkeypatch.setattr(scoring, "CHUNK_PAIRS", 333)
    levels, codes, names = scoring.levels_and_hard_codes(
        prepared, cand.left, cand.right, comparisons, False
    )
    assert codes.dtype == np.int16
    assert np.array_equal(np.array([*names, None], dtype=object)[codes], hard)
    for name, values in whole.items():
        assert np.array_equal(levels[name], values), name


class Leveled(NamedTuple):
    """The synthetic records prepared, blocked and compared with the default settings."""

    settings: MatchSettings
    prepared: pd.DataFrame
    cand: Any
    comparisons: list[Comparison]
    codes: dict[str, tuple[np.ndarray, np.ndarray]]
    levels: Any


def _leveled(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> Leveled:
    settings = MatchSettings()
    prepared = prepare_records(synthetic[0], settings)
    cand = generate_candidate_codes(prepared, rules_for(settings), settings.max_block_size,
                                    settings.block_window)  # fmt: skip
    comparisons = comparisons_for(settings)
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    levels, _, _ = scoring.levels_and_hard_codes(
        prepared, cand.left, cand.right, comparisons, False, codes
    )
    return Leveled(settings, prepared, cand, comparisons, codes, levels)


def _comparisons() -> list[Comparison]:
    return comparisons_for(MatchSettings())


def test_refine_m_does_not_depend_on_the_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    comparisons = _comparisons()
    n = 5_000
    levels = {c.name: rng.integers(0, len(c.labels), n).astype(np.int8) for c in comparisons}
    m = {c.name: training.initial_m(c) for c in comparisons}
    u = {c.name: rng.dirichlet(np.ones(len(c.labels))) for c in comparisons}
    bonus = rng.normal(0, 2, n)
    whole = training.refine_m(levels, comparisons, m, u, 0.3, bonus)
    assert any(not np.array_equal(whole[c.name], m[c.name]) for c in comparisons)
    monkeypatch.setattr(training, "_REFINE_CHUNK", 777)
    chunked = training.refine_m(levels, comparisons, m, u, 0.3, bonus)
    for c in comparisons:  # bit for bit: integer counts, per-pair sums in the same order
        assert np.array_equal(chunked[c.name], whole[c.name]), c.name
    with scoring_workers(2):  # chunks weighed in two threads: the counts add up the same
        threaded = training.refine_m(levels, comparisons, m, u, 0.3, bonus)
    for c in comparisons:
        assert np.array_equal(threaded[c.name], whole[c.name]), c.name


def test_the_posterior_is_its_formula_bit_for_bit() -> None:
    score = np.random.default_rng(5).normal(0, 30, 10_000)
    score[:3] = [np.inf, -np.inf, 0.0]
    for prior in (1e-6, 0.01, 0.3):
        logit = score + np.log2(prior / (1.0 - prior))
        expected = 1.0 / (1.0 + np.exp2(-np.clip(logit, -60, 60)))
        assert np.array_equal(training._posterior(score, prior), expected)


def test_levels_scored_in_threads_equal_one_thread(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MatchSettings()
    prepared = prepare_records(synthetic[0], settings)
    cand = generate_candidate_codes(prepared, rules_for(settings), settings.max_block_size,
                                    settings.block_window)  # fmt: skip
    comparisons = comparisons_for(settings)
    whole, hard, names = scoring.levels_and_hard_codes(
        prepared, cand.left, cand.right, comparisons, False
    )
    # many small chunks, two at a time, sharing one cache of codes and similarities
    monkeypatch.setattr(scoring, "CHUNK_PAIRS", 400)
    monkeypatch.setattr(scoring, "MIN_THREAD_PAIRS", 100)
    seen: set[str] = set()
    evaluate = Comparison.evaluate

    def spy(self: Comparison, ctx: object) -> np.ndarray:
        seen.add(threading.current_thread().name)
        return evaluate(self, ctx)  # type: ignore[arg-type]

    monkeypatch.setattr(Comparison, "evaluate", spy)
    with scoring_workers(2):
        levels, codes, threaded = scoring.levels_and_hard_codes(
            prepared, cand.left, cand.right, comparisons, False, {}
        )
    assert any(name.startswith("levels") for name in seen)  # the pool did the work
    assert threaded == names  # hard-rule names in order of first appearance, as one thread
    assert np.array_equal(codes, hard)
    for name, values in whole.items():
        assert np.array_equal(levels[name], values), name


def test_estimate_reads_term_frequencies_through_the_codes(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, prepared, cand, comparisons, codes, levels = _leveled(synthetic)
    assert "name_key" in codes and "contact_name" in codes
    params, score = scoring._estimate(prepared, cand.left, cand.right, levels, settings, codes)
    # the model's own definition: a Python object per pair, every score summed anew
    bonus = tf_adjustment(prepared, cand.left, levels, comparisons, params, settings.tf_max_bonus)
    assert np.count_nonzero(bonus) > 100
    expected, probability = score_pairs(levels, comparisons, params, bonus)
    assert np.array_equal(score, expected)
    again, again_p = scoring._score(prepared, cand.left, levels, comparisons, params, settings,
                                    codes)  # fmt: skip
    assert np.array_equal(again, expected) and np.array_equal(again_p, probability)
    # the estimate itself: the same parameters when the bonus comes from the objects
    monkeypatch.setattr(
        scoring,
        "_tf_by_codes",
        lambda *a, **k: None,  # every column falls back to objects
    )
    slow, slow_score = scoring._estimate(prepared, cand.left, cand.right, levels, settings, codes)
    assert slow.to_json() == params.to_json()
    assert np.array_equal(slow_score, score)


def test_streamed_pairs_carry_the_steward_decisions(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], linked: LinkResult
) -> None:
    pairs = linked.pairs
    some = pairs.iloc[[0, 5, 9]]
    decisions = pd.DataFrame({
        "left_key": some["left_key"].tolist(), "right_key": some["right_key"].tolist(),
        "decision": ["match", "no-match", "no-match"], "decided_by": "t", "decided_at": None,
    })  # fmt: skip
    compact = link_compact(synthetic[0], decisions=decisions, params=linked.params)
    schema = compact.pair_schema()
    streamed = pa.Table.from_batches(list(compact.pair_batches(rows=500)), schema=schema)
    framed = pa.Table.from_pandas(compact.pairs_frame(), preserve_index=False).cast(schema)
    assert streamed.equals(framed)
    assert streamed.column("steward_decision").null_count == len(streamed) - 3
    assert streamed.column("hard_rule").null_count < len(streamed)


def test_rules_blocked_in_threads_give_the_same_candidates(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MatchSettings()
    prepared = prepare_records(synthetic[0], settings)
    rules = rules_for(settings)
    alone = generate_candidate_codes(prepared, rules, settings.max_block_size,
                                     settings.block_window)  # fmt: skip
    monkeypatch.setattr(blocking, "MIN_THREAD_RECORDS", 10)
    seen: set[str] = set()
    pairs = blocking.block_pairs

    def spy(*args: object, **kwargs: object) -> object:
        seen.add(threading.current_thread().name)
        return pairs(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(blocking, "block_pairs", spy)
    with scoring_workers(2):
        threaded = generate_candidate_codes(prepared, rules, settings.max_block_size,
                                            settings.block_window, codes={})  # fmt: skip
    assert any(name.startswith("blocking") for name in seen)
    assert np.array_equal(threaded.left, alone.left)
    assert np.array_equal(threaded.right, alone.right)
    assert np.array_equal(threaded.rule, alone.rule) and threaded.rule_names == alone.rule_names
    pd.testing.assert_frame_equal(threaded.stats, alone.stats)


def test_em_per_rule_in_threads_estimates_the_same_m(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    settings, prepared, cand, comparisons, codes, levels = _leveled(synthetic)
    u = training.estimate_u(prepared, comparisons, 20_000, 7, codes)
    ctx = PairContext(prepared, cand.left, cand.right, codes)
    args = (ctx, levels, comparisons, rules_for(settings), u, 30, 1e-4, 7)
    m, iterations = training.estimate_m(*args)
    with scoring_workers(2):
        threaded, again = training.estimate_m(*args)
    assert iterations == again and iterations > 10
    for c in comparisons:
        assert np.array_equal(threaded[c.name], m[c.name]), c.name


def test_level_chunks_read_the_memo_blocking_left_and_do_not_grow_it(
    synthetic: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = MatchSettings()
    prepared = prepare_records(synthetic[0], settings)
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cand = generate_candidate_codes(prepared, rules_for(settings), settings.max_block_size,
                                    settings.block_window, codes=codes)  # fmt: skip
    comparisons = comparisons_for(settings)
    memo = {k: (v[0].copy(), v[1].copy()) for k, v in codes.items()
            if k.startswith(SIMILARITY_MEMO)}  # fmt: skip
    assert memo  # the sorted neighbourhoods' name and phone filters scored value pairs
    whole, hard, names = scoring.levels_and_hard_codes(
        prepared, cand.left, cand.right, comparisons, False
    )
    # many chunks sharing the run's cache: they read blocking's scores, add none (a memo of
    # every value pair of a 14 M-pair link was ≈ 0.6 GB, copied on each chunk's insertion)
    monkeypatch.setattr(scoring, "CHUNK_PAIRS", 500)
    with scoring_workers(2):
        levels, chunked, chunked_names = scoring.levels_and_hard_codes(
            prepared, cand.left, cand.right, comparisons, False, codes
        )
    after = {k for k in codes if k.startswith(SIMILARITY_MEMO)}
    assert after == set(memo)
    for key, (ids, scores) in memo.items():
        assert np.array_equal(codes[key][0], ids) and np.array_equal(codes[key][1], scores)
    assert chunked_names == names and np.array_equal(chunked, hard)
    for name, values in whole.items():
        assert np.array_equal(levels[name], values), name


def test_em_random_pairs_read_the_run_cache_and_leave_the_memo_as_it_was(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    leveled = _leveled(synthetic)
    prepared, comparisons, codes = leveled.prepared, leveled.comparisons, leveled.codes
    memo = {k: len(v[0]) for k, v in codes.items() if k.startswith(SIMILARITY_MEMO)}
    u = training.estimate_u(prepared, comparisons, 20_000, 7, codes)
    after = {k: len(v[0]) for k, v in codes.items() if k.startswith(SIMILARITY_MEMO)}
    assert after == memo  # nothing looks a random pair's similarity up again
    fresh = training.estimate_u(prepared, comparisons, 20_000, 7)
    for c in comparisons:
        assert np.array_equal(u[c.name], fresh[c.name]), c.name

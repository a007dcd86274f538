"""EM's per-pair rounds in threads give the floats one thread gives, bit for bit.

`training.posterior_sum` (λ's sums), `scoring._weight_sum` (the weights of every pair) and
`training.scored_u` (u's non-match counts) split their pairs into chunks computed side by side;
each is compared with the former single-threaded code written out here, with chunks small
enough that the work is split.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dedupe import comparisons, scoring, training
from dedupe.comparisons import Comparison, Level, exact
from dedupe.model import ComparisonParams, ModelParams
from dedupe.similarity import scoring_workers
from dedupe.training import _posterior, pairwise_parts, pairwise_sum, posterior_sum


@pytest.mark.parametrize("n", [1, 7, 129, 130, 1000, 4097, 65_537, 1_000_003])
@pytest.mark.parametrize("leaf", [129, 1000, 1 << 16])
def test_pairwise_parts_add_up_to_numpys_sum(n: int, leaf: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0.0, 1.0, n) * 10.0 ** rng.uniform(-6, 6, n)  # magnitudes apart
    parts = pairwise_parts(n, leaf)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(stop - start <= leaf for start, stop in parts)
    assert pairwise_sum([values[a:b].sum() for a, b in parts], n, leaf) == values.sum()


def test_posterior_sum_in_threads_is_the_whole_arrays_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    # posteriors spread over (0, 1), not piled at 0 and 1: the parts' sums are inexact
    # floats, so adding them in another order than NumPy's would change the last bits
    score = np.random.default_rng(3).normal(0.0, 3.0, 300_001)
    monkeypatch.setattr(training, "_PAIRWISE_LEAF", 5_000)
    with scoring_workers(2):
        assert len(pairwise_parts(len(score), training._PAIRWISE_LEAF)) > 2
        for prior in (1e-3, 0.1, 0.3, 0.5):
            assert posterior_sum(score, prior) == float(_posterior(score, prior).sum())
        lam = training.estimate_prior(score, 40_000, None)
    with scoring_workers(1):
        assert training.estimate_prior(score, 40_000, None) == lam


def _comparisons() -> list[Comparison]:
    return [
        Comparison(name, (name,), (Level("exact", exact(name), 0.9),)) for name in ("a", "b", "c")
    ]


def test_weight_sums_in_threads_are_the_former_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    comparisons = _comparisons()
    levels = {c.name: rng.integers(0, 3, 10_001).astype(np.int8) for c in comparisons}
    params = ModelParams(
        prior=0.01,
        comparisons={
            c.name: ComparisonParams(
                list(c.labels), rng.dirichlet([1, 1, 1]).tolist(), rng.dirichlet([1, 1, 1]).tolist()
            )
            for c in comparisons
        },
    )
    former = np.zeros(10_001)
    for c in comparisons:
        former += params.comparisons[c.name].weights()[levels[c.name]]
    monkeypatch.setattr(scoring, "WEIGHT_CHUNK", 999)
    for workers in (1, 2):
        with scoring_workers(workers):
            got = scoring._weight_sum(levels, comparisons, params)
        assert got.tobytes() == former.tobytes()


def test_scored_u_in_threads_is_the_former_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    comparisons = _comparisons()
    n = 50_003
    levels = {c.name: rng.integers(0, 3, n).astype(np.int8) for c in comparisons}
    sample = {c.name: rng.integers(0, 3, 4_000).astype(np.int8) for c in comparisons}
    outside = rng.random(4_000) < 0.9
    score = rng.normal(0.0, 20.0, n)
    separated = rng.random(n) < 0.05
    chunk = 7_000
    monkeypatch.setattr(training, "_REFINE_CHUNK", chunk)
    # the former code: chunks one after another, counts added in chunk order
    counted = {c.name: np.zeros(len(c.labels)) for c in comparisons}
    for start in range(0, n, chunk):
        nonmatch = 1.0 - _posterior(score[start : start + chunk], 1e-3)
        nonmatch[separated[start : start + chunk]] = 0.0
        for c in comparisons:
            counted[c.name] += np.bincount(
                levels[c.name][start : start + chunk], weights=nonmatch, minlength=len(c.labels)
            )
    total = max(2_000 * 1_999 / 2, 1.0)
    former = {}
    for c in comparisons:
        present = sample[c.name] != 0
        n_present = int(present.sum())
        share = np.bincount(sample[c.name][present & outside], minlength=3) / n_present
        u = share + counted[c.name] / (total * n_present / len(sample[c.name]))
        u = np.maximum(u, 0.5 / (total * n_present / len(sample[c.name])))
        u[0] = 0.0
        former[c.name] = u / u.sum()
    for workers in (1, 2):
        with scoring_workers(workers):
            got = training.scored_u(
                sample, outside, levels, score, 1e-3, separated, 2_000, comparisons
            )
        assert all(got[c.name].tobytes() == former[c.name].tobytes() for c in comparisons)


def test_outside_candidates_in_threads_finds_what_a_set_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(2)
    n_records = 300
    left = rng.integers(0, n_records, 20_000)
    right = rng.integers(0, n_records, 20_000)
    sample_left = rng.integers(0, n_records, 5_000)
    sample_right = rng.integers(0, n_records, 5_000)
    candidates = {
        (min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist(), strict=True)
    }
    expected = [
        (min(a, b), max(a, b)) not in candidates
        for a, b in zip(sample_left.tolist(), sample_right.tolist(), strict=True)
    ]
    monkeypatch.setattr(training, "_REFINE_CHUNK", 1_500)
    for workers in (1, 2):
        with scoring_workers(workers):
            got = training.outside_candidates(sample_left, sample_right, left, right, n_records)
        assert got.tolist() == expected


@pytest.mark.parametrize("shared", [True, False], ids=["run-wide codes", "own codes"])
def test_agreeing_pairs_in_chunks_are_the_exact_masks_pairs(shared: bool) -> None:
    import pandas as pd

    from dedupe.comparisons import PairContext

    rng = np.random.default_rng(9)
    values = rng.choice(np.array(["甲", "乙", "丙", None], dtype=object), 500)
    prepared = pd.DataFrame({"key": values})
    left = rng.integers(0, 500, 10_007)
    right = rng.integers(0, 500, 10_007)
    for workers in (1, 2):
        with scoring_workers(workers):
            ctx = PairContext(prepared, left, right, {} if shared else None)
            got = ctx.agreeing("key", chunk=1_000)
        expected = np.nonzero(PairContext(prepared, left, right).exact("key"))[0]
        assert got.dtype == expected.dtype and got.tolist() == expected.tolist()
    few = PairContext(prepared, left[:20], right[:20])  # few records: its own subset's codes
    assert few.agreeing("key", chunk=7).tolist() == np.nonzero(few.exact("key"))[0].tolist()


def test_the_whole_estimate_in_threads_is_the_one_thread_estimate(
    synthetic: tuple[object, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # every threaded round of `_estimate` split into many chunks (weights, λ's sums, u's
    # counts, the sample's candidates, the agreeing pairs, the sample's halves): the same
    # params and scores as one thread
    import pandas as pd

    from dedupe import MatchSettings
    from dedupe.blocking import generate_candidate_codes
    from dedupe.levels import comparisons_for, rules_for
    from dedupe.prepare import prepare_records

    records = synthetic[0]
    assert isinstance(records, pd.DataFrame)
    settings = MatchSettings()
    prepared = prepare_records(records, settings)
    results = []
    for workers in (1, 2):
        codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        cand = generate_candidate_codes(prepared, rules_for(settings), settings.max_block_size,
                                        settings.block_window, codes=codes)  # fmt: skip
        levels, hard, _ = scoring.levels_and_hard_codes(
            prepared, cand.left, cand.right, comparisons_for(settings), False, codes
        )
        monkeypatch.setattr(scoring, "WEIGHT_CHUNK", 97)
        monkeypatch.setattr(training, "_REFINE_CHUNK", 103)
        monkeypatch.setattr(training, "_PAIRWISE_LEAF", 200)
        monkeypatch.setattr(comparisons, "AGREEING_CHUNK", 301)
        with scoring_workers(workers):
            params, score = scoring._estimate(
                prepared, cand.left, cand.right, levels, settings, codes, separated=hard >= 0
            )
        monkeypatch.undo()
        results.append((params.to_json(), score.tobytes()))
    assert len(cand.left) > 10 * 301
    assert results[0] == results[1]

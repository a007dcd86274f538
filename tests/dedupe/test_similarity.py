"""Bulk similarity scorers equal their per-pair definitions (incl. pruning and lazy levels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedupe.comparisons import COMPARISONS, PairContext
from dedupe.prepare import prepare_records
from dedupe.similarity import REFERENCE, score_pairs_of_values
from tests.dedupe.conftest import record

# (scorer, left, right, expected similarity as the per-pair definition gives it)
CASES = [
    ("prefix", "刘", "刘浩然", 1.0),
    ("prefix", "刘浩然", "刘", 1.0),
    ("prefix", "刘", "王浩然", 0.0),
    ("prefix", "abc", "abc", 1.0),
    ("rotation", "liuxinyi", "xinyiliu", 1.0),
    ("rotation", "liux", "xliu", 1.0),
    ("rotation", "abc", "bca", 0.0),  # shorter than 4: never a rotation
    ("rotation", "liuxinyi", "liuxinyu", 0.0),
    ("rotation", "haoliang", "lianghao", 1.0),
    ("contains", "长江街107号", "天津市南开区长江街107号长江商务中心1818室", 1.0),
    ("contains", "长江街107号", "黄河路23号", None),
    ("contains", "长江街", "天津市长江街107号", 0.0),  # shorter than 5 characters
    ("contains", "ABCDEFGHIJK", "xxxxABCDEFGHIJ", None),  # a prefix window, not a substring
    ("contains", "12345", "12345", 1.0),
    ("ratio", "海淀区中关村大街1号", "海淀区中关村大街1号院", None),
    ("jaro_winkler", "华信科技", "华信科枝", None),
    ("jaro_winkler", "Acme Trading", "Acme Tradng", None),
]


@pytest.mark.parametrize(("scorer", "left", "right", "expected"), CASES)
def test_bulk_scorer_equals_definition(
    scorer: str, left: str, right: str, expected: float | None
) -> None:
    reference = float(np.float32(REFERENCE[scorer](left, right)))
    if expected is not None:
        assert reference == pytest.approx(expected)
    assert score_pairs_of_values(scorer, [left], [right])[0] == reference
    # pruning for a threshold never changes which side of it a pair falls on
    for threshold in (0.5, 0.9, 0.95):
        pruned = score_pairs_of_values(scorer, [left], [right], threshold)[0]
        assert (pruned >= threshold) == (reference >= threshold)


def _random_pairs(count: int, seed: int) -> tuple[list[str], list[str]]:
    """Address-like strings: unrelated ones, and substrings of one another with edits."""
    rng = np.random.default_rng(seed)
    alphabet = list("天津市南开区长江街107号商务中心8室路ab")
    left, right = [], []
    for _ in range(count):
        short = "".join(rng.choice(alphabet, rng.integers(0, 25)))
        if rng.random() < 0.5:
            chars = list("".join(rng.choice(alphabet, rng.integers(0, 8))) + short)
            for _ in range(rng.integers(0, 3)):
                if chars:
                    chars[rng.integers(0, len(chars))] = rng.choice(alphabet)
            long = "".join(chars) + "".join(rng.choice(alphabet, rng.integers(0, 8)))
        else:
            long = "".join(rng.choice(alphabet, rng.integers(0, 30)))
        left.append(short)
        right.append(long)
    return left, right


@pytest.mark.parametrize("scorer", sorted(REFERENCE))
def test_bulk_scorer_equals_definition_on_random_strings(scorer: str) -> None:
    left, right = _random_pairs(3000, seed=7)
    reference = np.array(
        [np.float32(REFERENCE[scorer](a, b)) for a, b in zip(left, right, strict=True)],
        dtype=np.float64,
    )
    assert np.array_equal(score_pairs_of_values(scorer, left, right), reference)
    for threshold in (0.7, 0.9, 0.95):
        pruned = score_pairs_of_values(scorer, left, right, threshold)
        assert np.array_equal(pruned >= threshold, reference >= threshold)


def test_lone_surrogates_are_scored_not_dropped() -> None:
    left, right = ["刘\ud800", "abcdef\ud800"], ["刘\ud800浩", "xxabcdef\ud800"]
    assert score_pairs_of_values("prefix", left, right).tolist() == [1.0, 0.0]
    assert score_pairs_of_values("contains", left, right).tolist() == [0.0, 1.0]


def test_unequal_lists_are_an_error() -> None:
    with pytest.raises(ValueError, match="equally long"):
        score_pairs_of_values("ratio", ["a"], [])


def test_levels_in_bulk_equal_levels_pair_by_pair() -> None:
    """Lazy levels over many pairs (only undecided pairs scored) equal one pair at a time."""
    rng = np.random.default_rng(3)
    streets = [
        "长江街107号",
        "天津市南开区长江街107号长江商务中心1818室",
        "黄河路23号",
        "海淀区中关村大街1号",
        "海淀区中关村大街1号院",
        "中关村大街1号",
        None,
    ]
    names = ["华信科技", "华信科枝", "远东物流", "梁浩", "hao liang", "张伟", None]
    rows = [
        record(
            record_key=f"k{i:03d}",
            address=streets[rng.integers(len(streets))],
            name_key=names[rng.integers(len(names))],
        )
        for i in range(60)
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    left, right = np.triu_indices(len(prepared), k=1)
    for name in ("address", "name_key"):
        comp = COMPARISONS[name]
        lazy = comp.evaluate(PairContext(prepared, left, right))
        single = np.empty(len(left), dtype=np.int8)
        for i, (a, b) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
            single[i] = comp.evaluate(PairContext(prepared, np.array([a]), np.array([b])))[0]
        assert np.array_equal(lazy, single), name
        assert len(set(lazy.tolist())) >= 3


@pytest.mark.parametrize("scorer", ["contains", "one_slip"])
def test_scorers_given_lengths_score_as_when_counting_them(scorer: str) -> None:
    """The levels hand `contains` / `one_slip` object arrays and the values' lengths gathered
    from their distinct values: the same scores as lists whose lengths are counted."""
    left, right = _random_pairs(2000, seed=11)
    lengths = (np.array([len(v) for v in left], np.int32), np.array([len(v) for v in right]))
    reference = np.array(
        [np.float32(REFERENCE[scorer](a, b)) for a, b in zip(left, right, strict=True)],
        dtype=np.float64,
    )
    arrays = np.array(left, dtype=object), np.array(right, dtype=object)
    assert np.array_equal(score_pairs_of_values(scorer, *arrays, lengths=lengths), reference)
    if scorer == "contains":
        pruned = score_pairs_of_values(scorer, *arrays, 0.9, lengths=lengths)
        assert np.array_equal(pruned >= 0.9, reference >= 0.9)


def test_indel_distance_comes_back_from_the_ratio_similarity() -> None:
    """`contains` prunes with the Indel distance its address comparison's `ratio` levels
    already scored: recovered from the float32 ratio it is the integer distance itself, and
    `contains` given it (or given it in part, -1 elsewhere) scores as when computing it."""
    from rapidfuzz.distance import Indel

    from dedupe.similarity import indel_from_ratio

    left, right = _random_pairs(3000, seed=5)
    left += ["天津市南开区长江街107号" * 40]  # long values: the float32 ratio still suffices
    right += ["天津市南开区长江街108号" * 39]
    la = np.array([len(v) for v in left], np.int32)
    lb = np.array([len(v) for v in right], np.int32)
    ratio = score_pairs_of_values("ratio", left, right)
    truth = np.array([Indel.distance(a, b) for a, b in zip(left, right, strict=True)])
    assert np.array_equal(indel_from_ratio(ratio, la, lb), truth)
    partial = truth.copy()
    partial[::3] = -1
    plain = score_pairs_of_values("contains", left, right, 0.95)
    for given in (truth, partial):
        got = score_pairs_of_values("contains", left, right, 0.95, lengths=(la, lb), indel=given)
        assert np.array_equal(got, plain)

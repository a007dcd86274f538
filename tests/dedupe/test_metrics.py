"""Metrics on hand-computed examples."""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe import bcubed_scores, blocking_recall, pairwise_scores

TRUTH = pd.DataFrame({"record_key": list("abcde"), "entity_id": [1, 1, 1, 2, 2]})
PRED = pd.DataFrame({"record_key": list("abcde"), "cluster_key": list("aacdd")})


def test_pairwise_hand_computed() -> None:
    # true pairs: ab ac bc de (4); predicted: ab de (2), both correct.
    s = pairwise_scores(PRED, TRUTH)
    assert s.precision == 1.0 and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 / 3)


def test_bcubed_hand_computed() -> None:
    s = bcubed_scores(PRED, TRUTH)
    assert s.precision == 1.0
    # recall per record: a 2/3, b 2/3, c 1/3, d 1, e 1 → 11/15
    assert s.recall == pytest.approx(11 / 15)


def test_blocking_recall_counts_each_true_pair_once() -> None:
    cand = pd.DataFrame({"left_key": ["a", "b", "d", "a"], "right_key": ["b", "a", "e", "d"]})
    assert blocking_recall(cand, TRUTH) == pytest.approx(2 / 4)

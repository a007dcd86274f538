"""Parameter training: u from random pairs, m by EM per blocking rule, λ over all pairs."""

from __future__ import annotations

import numpy as np
import pytest

from dedupe import LinkResult
from dedupe.training import estimate_prior


def test_prior_counts_confident_pairs_over_all_record_pairs() -> None:
    # 100 candidate pairs with overwhelming evidence, 900 with overwhelming counter-evidence
    bits = np.concatenate([np.full(100, 40.0), np.full(900, -40.0)])
    lam = estimate_prior(bits, n_records=1000, fixed=None)
    assert lam == pytest.approx(100 / (1000 * 999 / 2), rel=1e-3)
    assert estimate_prior(bits, 1000, fixed=0.001) == 0.001


@pytest.mark.parametrize(
    ("comparison", "agree", "disagree"),
    [
        ("name_key", "exact", "else"),
        ("phone", "exact", "else"),
        ("email", "exact", "else"),
        ("contact_name", "exact", "else"),
        ("place", "city_district", "else"),
    ],
)
def test_trained_weights_point_the_right_way(
    linked: LinkResult, comparison: str, agree: str, disagree: str
) -> None:
    params = linked.params.comparisons[comparison]
    weights = dict(zip(params.labels, params.weights(), strict=True))
    assert weights[agree] > 2.0, weights
    assert weights[disagree] < 0.0, weights


def test_prior_is_the_chance_two_random_records_match(linked: LinkResult) -> None:
    n = len(linked.clusters)
    sizes = linked.clusters.groupby("cluster_key").size().to_numpy()
    linked_pairs = float((sizes * (sizes - 1) / 2).sum())
    # within a factor of two of the share of record pairs the run itself linked
    assert 0.5 < linked.params.prior / (linked_pairs / (n * (n - 1) / 2)) < 2.0

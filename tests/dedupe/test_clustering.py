"""Clustering resists chaining and honours cannot-link constraints."""

from __future__ import annotations

import numpy as np

from dedupe.clustering import cluster_pairs


def _run(edges, n, cannot=(), must=()):
    left = np.array([a for a, _, _ in edges])
    right = np.array([b for _, b, _ in edges])
    prob = np.array([p for _, _, p in edges])
    cannot_mask = np.array([(a, b) in cannot for a, b, _ in edges], dtype=bool)
    must_mask = np.array([(a, b) in must for a, b, _ in edges], dtype=bool)
    return cluster_pairs(n, left, right, prob, must_mask, cannot_mask, 0.95, 0.5)


def test_weak_link_between_two_strong_clusters_keeps_them_apart() -> None:
    strong = [
        (0, 1, 0.999),
        (0, 2, 0.999),
        (1, 2, 0.999),
        (3, 4, 0.999),
        (3, 5, 0.999),
        (4, 5, 0.999),
    ]
    labels, refused = _run([*strong, (2, 3, 0.96)], 6)
    assert labels.tolist() == [0, 0, 0, 3, 3, 3]
    assert refused.tolist() == [False] * 6 + [True]


def test_well_supported_clusters_join() -> None:
    edges = [(0, 1, 0.999), (2, 3, 0.999), (0, 2, 0.97), (1, 3, 0.97), (0, 3, 0.96)]
    labels, refused = _run(edges, 4)
    assert labels.tolist() == [0, 0, 0, 0]
    assert not refused.any()


def test_cannot_link_blocks_transitive_merge() -> None:
    edges = [(0, 1, 0.99), (1, 2, 0.98), (0, 2, 0.99)]
    labels, _ = _run(edges, 3, cannot={(0, 2)})
    assert labels[0] != labels[2]
    assert labels[1] == labels[0]  # the strongest edge wins first


def test_steward_match_joins_clusters_without_support() -> None:
    edges = [(0, 1, 0.999), (2, 3, 0.999), (1, 2, 0.10)]
    labels, _ = _run(edges, 4, must={(1, 2)})
    assert len(set(labels.tolist())) == 1


def test_result_independent_of_other_components() -> None:
    base = [(0, 1, 0.99), (1, 2, 0.97), (5, 6, 0.99)]
    labels_a, _ = _run(base, 8)
    labels_b, _ = _run([*base, (6, 7, 0.99)], 8)
    assert labels_a[:3].tolist() == labels_b[:3].tolist()


def test_two_valid_credit_codes_never_chain_through_an_uncoded_record() -> None:
    # A (code X) ~ B (no code) ~ C (code Y): A and C were never compared (no candidate pair),
    # so no pairwise hard rule can fire; the cluster-level rule must keep X and Y apart.
    left, right = np.array([0, 1]), np.array([1, 2])
    prob = np.array([0.999, 0.998])
    none = np.zeros(2, dtype=bool)
    codes = np.array([7, -1, 9])
    labels, refused = cluster_pairs(3, left, right, prob, none, none, 0.95, 0.5,
                                    exclusive=(codes,))  # fmt: skip
    assert labels[0] != labels[2]
    assert labels[1] == labels[0]  # the stronger edge wins
    assert refused.tolist() == [False, True]
    # without the attribute constraint the chain would merge all three
    merged, _ = cluster_pairs(3, left, right, prob, none, none, 0.95, 0.5)
    assert len(set(merged.tolist())) == 1


def test_same_code_and_unknown_codes_still_merge() -> None:
    left, right = np.array([0, 1, 0]), np.array([1, 2, 2])
    prob = np.array([0.999, 0.998, 0.97])
    none = np.zeros(3, dtype=bool)
    labels, _ = cluster_pairs(3, left, right, prob, none, none, 0.95, 0.5,
                              exclusive=(np.array([4, -1, 4]),))  # fmt: skip
    assert len(set(labels.tolist())) == 1

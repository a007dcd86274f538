"""Clustering that resists chaining: constrained union-find per connected component."""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def cluster_pairs(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    must_link: np.ndarray,
    cannot_link: np.ndarray,
    match_threshold: float,
    min_cross_support: float,
    previous: np.ndarray | None = None,
    touched: np.ndarray | None = None,
    exclusive: tuple[np.ndarray, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster records from scored pairs.

    Edges with probability ≥ `match_threshold` (and steward `match` edges) are processed in
    descending order by a union-find that refuses a union joining a cannot-link pair, and refuses
    to join two multi-record clusters unless enough strong cross edges support it. The result
    for a record depends only on its connected component of strong edges, so re-clustering the
    touched components gives the same answer as a full rebuild.

    Args:
        n: number of records (positions 0..n-1).
        left, right: pair positions.
        probability: posterior match probability per pair.
        must_link: steward `match` pairs (always joined unless cannot-linked).
        cannot_link: pairs that may never share a cluster.
        match_threshold: strong-edge threshold.
        min_cross_support: share of cross pairs that must be strong edges.
        previous: cluster label per record from an earlier run over the same pairs, valid for
            every record not `touched` (incremental runs); None = cluster everything.
        touched: records whose strong-edge component may differ from the earlier run; only
            components holding one are re-clustered, the others keep `previous`.
        exclusive: per-record integer codes of attributes a cluster may hold at most one value
            of (-1 = unknown, compatible with anything): e.g. valid credit codes. This is the
            cluster-level form of the hard rules: A(code X) ~ B(no code) ~ C(code Y) never
            chains X and Y together, even though A and C were never compared.

    Returns:
        (labels, refused): the smallest member position of each record's cluster, and a
        boolean per pair for strong edges the clustering refused.
    """
    active = ((probability >= match_threshold) & ~cannot_link) | (must_link & ~cannot_link)
    al, ar = left[active], right[active]
    graph = coo_matrix((np.ones(len(al), dtype=np.int8), (al, ar)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp, minlength=comp.max() + 1 if n else 0)
    edges = np.bincount(comp[al], minlength=len(sizes))
    in_comp_cannot = cannot_link & (comp[left] == comp[right])
    has_cannot = np.bincount(comp[left[in_comp_cannot]], minlength=len(sizes)) > 0
    for codes in exclusive:  # a component holding two values of an exclusive attribute
        known = codes >= 0
        if known.any():
            lo = np.full(len(sizes), np.iinfo(np.int64).max, dtype=np.int64)
            hi = np.full(len(sizes), -1, dtype=np.int64)
            np.minimum.at(lo, comp[known], codes[known])
            np.maximum.at(hi, comp[known], codes[known])
            has_cannot |= (hi >= 0) & (lo != hi)
    clique = (edges == sizes * (sizes - 1) // 2) & ~has_cannot
    # Cluster label = smallest position in the component for cliques.
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    labels = first[comp]
    refused = np.zeros(len(left), dtype=bool)
    hard = ~clique[comp[al]] if len(al) else np.zeros(0, dtype=bool)
    if hard.any() and previous is not None and touched is not None:
        redo = np.bincount(comp[touched], minlength=len(sizes)) > 0
        keep = ~redo[comp] & ~clique[comp]
        labels[keep] = previous[keep]
        kept_edges = np.nonzero(active)[0][hard & ~redo[comp[al]]]
        refused[kept_edges] = labels[left[kept_edges]] != labels[right[kept_edges]]
        hard &= redo[comp[al]]
    if hard.any():
        idx = np.nonzero(active)[0][hard]
        _union_find(
            labels,
            left,
            right,
            probability,
            must_link,
            cannot_link,
            idx,
            in_comp_cannot & ~clique[comp[left]],
            min_cross_support,
            refused,
            exclusive,
        )
    return labels, refused & active


def _union_find(
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    must_link: np.ndarray,
    cannot_link_mask: np.ndarray,
    edge_idx: np.ndarray,
    cannot_idx_mask: np.ndarray,
    min_cross_support: float,
    refused: np.ndarray,
    exclusive: tuple[np.ndarray, ...] = (),
) -> None:
    """Constrained union-find over the edges of non-trivial components (updates labels).

    The per-edge loop is Python (each union depends on the ones before it); everything it
    reads is converted to Python ints once, not indexed out of numpy arrays edge by edge.
    """
    nodes = np.unique(np.concatenate([left[edge_idx], right[edge_idx]])).tolist()
    parent = dict(zip(nodes, nodes, strict=True))
    # per cluster root: the one known value of each exclusive attribute (-1 = none yet)
    if exclusive:
        known = np.stack([c[nodes] for c in exclusive], axis=1).astype(np.int64).tolist()
    else:
        known = [[] for _ in nodes]
    values: dict[int, list[int]] = dict(zip(nodes, known, strict=True))
    members = {v: {v} for v in nodes}
    adjacency: dict[int, set[int]] = {v: set() for v in nodes}
    edge_left, edge_right = left[edge_idx].tolist(), right[edge_idx].tolist()
    for a, b in zip(edge_left, edge_right, strict=True):
        adjacency[a].add(b)
        adjacency[b].add(a)
    forbidden: dict[int, set[int]] = {v: set() for v in nodes}
    for a, b in zip(left[cannot_idx_mask].tolist(), right[cannot_idx_mask].tolist(), strict=True):
        if a in forbidden and b in forbidden:
            forbidden[a].add(b)
            forbidden[b].add(a)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order = np.lexsort(
        (right[edge_idx], left[edge_idx], -probability[edge_idx], ~must_link[edge_idx])
    )
    ordered = edge_idx[order]
    for k, a, b, must in zip(ordered.tolist(), left[ordered].tolist(), right[ordered].tolist(),
                             must_link[ordered].tolist(), strict=True):  # fmt: skip
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        if len(members[ra]) < len(members[rb]) or (
            len(members[ra]) == len(members[rb]) and ra > rb
        ):
            ra, rb = rb, ra
        big, small = members[ra], members[rb]
        if forbidden[ra] & small or any(
            x >= 0 and y >= 0 and x != y for x, y in zip(values[ra], values[rb], strict=True)
        ):
            refused[k] = True
            continue
        if len(small) >= 2 and not must:
            strong = sum(len(adjacency[x] & big) for x in small)
            needed = max(2, math.ceil(min_cross_support * len(small)))
            if strong < needed and strong < min_cross_support * len(big) * len(small):
                refused[k] = True
                continue
        parent[rb] = ra
        values[ra] = [x if x >= 0 else y for x, y in zip(values[ra], values[rb], strict=True)]
        big |= small
        forbidden[ra] |= forbidden[rb]
        del members[rb]
    for group in members.values():
        labels[np.fromiter(group, dtype=np.int64, count=len(group))] = min(group)

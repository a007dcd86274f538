"""Blocking: pairs per rule, caps on hot keys, focus (incremental) equals full."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedupe.blocking import (
    BLOCKING_RULES,
    _first_rule_union,
    block_pairs,
    generate_candidates,
)
from dedupe.metrics import blocking_recall
from dedupe.prepare import prepare_records
from tests.dedupe.conftest import record


def test_all_pairs_in_small_blocks() -> None:
    codes = np.array([0, 0, 0, 1, 1, -1, 2])
    left, right, oversize = block_pairs(codes, np.arange(7), max_block_size=5, window=2)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
        (1, 2),
        (3, 4),
    ]
    assert oversize == 0


def test_hot_key_is_windowed_not_exploded() -> None:
    n = 1000  # one switchboard phone shared by 1,000 records
    codes = np.zeros(n, dtype=np.int64)
    left, right, oversize = block_pairs(codes, np.arange(n), max_block_size=50, window=3)
    assert oversize == 1
    assert len(left) == 3 * n - 6  # each record meets its 3 neighbours, not n*(n-1)/2 pairs
    assert np.all(right - left <= 3)


def test_focus_gives_the_full_pairs_touching_focus() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(-1, 30, 400)
    rank = rng.permutation(400)
    focus = np.zeros(400, dtype=bool)
    focus[rng.choice(400, 20, replace=False)] = True
    fl, fr, _ = block_pairs(codes, rank, 12, 3)
    keep = focus[fl] | focus[fr]
    il, ir, _ = block_pairs(codes, rank, 12, 3, focus=focus)
    assert set(zip(fl[keep].tolist(), fr[keep].tolist(), strict=True)) == set(
        zip(il.tolist(), ir.tolist(), strict=True)
    )


def test_candidates_union_rules_and_report_stats() -> None:
    rows = [
        record(record_key="a", phone="+8613900000001", email="x@a.cn"),
        record(record_key="b", phone="+8613900000001", email="x@a.cn"),
        record(
            record_key="c",
            phone="+8613900000002",
            email=None,
            name_key="远东物流",
            contact_name=None,
        ),
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    rules = [BLOCKING_RULES["phone"], BLOCKING_RULES["email"], BLOCKING_RULES["name_key"]]
    cand = generate_candidates(prepared, rules, 50, 3)
    assert list(zip(cand.left, cand.right, strict=True)) == [(0, 1)]
    assert cand.rule.tolist() == ["phone"]
    stats = cand.stats.set_index("rule")
    assert stats.loc["email", "pairs"] == 1 and stats.loc["email", "new_pairs"] == 0


def test_blocking_recall_on_synthetic(linked, synthetic) -> None:
    assert blocking_recall(linked.pairs, synthetic[1]) >= 0.95


def _union_rule_by_rule(parts: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The reference: union the rules' pair ids one rule at a time (first rule wins)."""
    seen = np.empty(0, np.int64)
    ids, rules, pairs, new = [], [], [], []
    for r, part in enumerate(parts):
        distinct = np.unique(part)
        fresh = np.setdiff1d(distinct, seen, assume_unique=True)
        seen = np.union1d(seen, fresh)
        ids.append(fresh)
        rules.append(np.full(len(fresh), r))
        pairs.append(len(distinct))
        new.append(len(fresh))
    all_ids, all_rules = np.concatenate(ids), np.concatenate(rules)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], all_rules[order], np.array(pairs), np.array(new)


@pytest.mark.parametrize(
    "parts",
    [
        [np.array([5, 3, 5, 9]), np.array([3, 4]), np.array([], dtype=np.int64), np.array([9, 1])],
        [np.array([], dtype=np.int64)],
        [np.array([7]), np.array([7]), np.array([7])],
        [np.random.default_rng(s).integers(0, 500, 400) for s in range(8)],
    ],
)
def test_one_sort_union_equals_rule_by_rule_union(parts: list[np.ndarray]) -> None:
    got = _first_rule_union([p.astype(np.int64) for p in parts])
    for have, want in zip(got, _union_rule_by_rule(parts), strict=True):
        assert np.array_equal(have, want)


def test_union_refuses_ids_that_would_overflow() -> None:
    with pytest.raises(ValueError, match="int64"):
        _first_rule_union([np.array([1 << 61]), np.array([1])])

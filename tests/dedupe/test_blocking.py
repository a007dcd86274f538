"""Blocking: pairs per rule, caps on hot keys, focus (incremental) equals full."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.blocking import BLOCKING_RULES, block_pairs, generate_candidates
from dedupe.metrics import blocking_recall
from dedupe.prepare import prepare_records
from tests.dedupe.conftest import record


def test_all_pairs_in_small_blocks() -> None:
    codes = np.array([0, 0, 0, 1, 1, -1, 2])
    left, right, oversize = block_pairs(codes, np.arange(7), max_block_size=5, window=2)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [
        (0, 1), (0, 2), (1, 2), (3, 4)
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
        record(record_key="c", phone="+8613900000002", email=None, name_key="远东物流",
               contact_name=None),
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

"""Stable customer IDs: kept across runs, merges/splits recorded, resolvable."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from dedupe import CustomerIdError, assign_customer_ids, link_records, resolve_customer_id
from tests.dedupe.synth import make_records


def _clusters(groups: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(r, min(members)) for members in groups.values() for r in members]
    return pd.DataFrame(rows, columns=["record_key", "cluster_key"])


def test_first_run_numbers_clusters_in_order() -> None:
    result = assign_customer_ids(_clusters({"x": ["b", "c"], "y": ["a"]}), None, date(2024, 3, 15))
    ids = result.assignments.set_index("record_key")["customer_id"]
    assert ids["a"] == "C20240315001" and ids["b"] == ids["c"] == "C20240315002"
    assert set(result.events["event"]) == {"created"}


def test_merge_split_grow_and_retire_are_recorded() -> None:
    prev = pd.DataFrame(
        {
            "record_key": ["a", "b", "c", "d", "e", "f", "g"],
            "customer_id": ["C20240101001"] * 2 + ["C20240101002"] + ["C20240101003"] * 3
            + ["C20240101004"],
        }
    )
    # a,b,c merge (001 keeps: larger overlap); d,e stay, f splits off; g gone; h new joins d,e.
    clusters = _clusters({"1": ["a", "b", "c"], "2": ["d", "e", "h"], "3": ["f"]})
    out = assign_customer_ids(clusters, prev, date(2024, 3, 15), existing_ids=["C20240315007"])
    ids = out.assignments.set_index("record_key")["customer_id"]
    assert ids["a"] == ids["c"] == "C20240101001"
    assert ids["d"] == ids["h"] == "C20240101003"
    assert ids["f"] == "C20240315008"  # continues after the highest id issued that day
    ev = set(map(tuple, out.events[["customer_id", "event", "other_customer_id"]]
                 .fillna("").to_numpy().tolist()))
    assert ("C20240101002", "merged_into", "C20240101001") in ev
    assert ("C20240315008", "split_from", "C20240101003") in ev
    assert ("C20240101003", "grown", "") in ev
    assert ("C20240101004", "retired", "") in ev
    assert resolve_customer_id("C20240101002", out.events) == "C20240101001"


def test_resolve_detects_loops() -> None:
    history = pd.DataFrame({"customer_id": ["A", "B"], "event": ["merged_into"] * 2,
                            "other_customer_id": ["B", "A"]})
    with pytest.raises(CustomerIdError):
        resolve_customer_id("A", history)


def test_ids_stable_after_one_percent_new_and_changed() -> None:
    records, _ = make_records(1000, seed=5)
    first = link_records(records)
    ids1 = assign_customer_ids(first.clusters, None, date(2024, 3, 15)).assignments
    extra, _ = make_records(10, seed=99)
    extra["record_key"] = "new:" + extra["record_key"]
    changed = records.sample(frac=0.01, random_state=1).copy()
    changed["address"] = changed["address"].fillna("") + "附近"
    second_records = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed, extra],
        ignore_index=True,
    )
    second = link_records(second_records, params=first.params)
    out = assign_customer_ids(second.clusters, ids1, date(2024, 3, 16))
    before = first.clusters.merge(ids1, on="record_key")
    after = second.clusters.merge(out.assignments, on="record_key")
    # Clusters untouched by the change keep their id, 100 %.
    same = before.groupby("cluster_key")["record_key"].apply(frozenset)
    now = after.groupby("cluster_key")["record_key"].apply(frozenset)
    unchanged = set(same) & set(now)
    old_id = before.set_index("record_key")["customer_id"]
    new_id = after.set_index("record_key")["customer_id"]
    keys = [k for members in unchanged for k in members]
    assert len(unchanged) >= 0.95 * len(same)
    assert (old_id[keys] == new_id[keys]).all()
    assert set(out.events["event"]) <= {"created", "merged_into", "split_from", "grown", "retired"}
    assert (out.events["event"] == "created").sum() >= 1

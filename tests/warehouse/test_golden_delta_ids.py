"""Unchanged clusters keep their ids in SQL: same ids and events as assigning every cluster."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from dedupe import assign_customer_ids
from warehouse import read_table
from warehouse.golden_delta import (
    ASSIGNMENTS,
    ClusterInvariantError,
    id_assignment_inputs,
    store_assignments,
)

RUN = date(2026, 11, 24)
# the published crosswalk: record → customer
PUBLISHED = {
    "a1": "C20261123001", "a2": "C20261123001",  # stays as it is
    "b1": "C20261123002", "b2": "C20261123002",  # gains a new record b3
    "c1": "C20261123003", "d1": "C20261123004",  # c and d merge
    "e1": "C20261123005", "e2": "C20261123005", "e3": "C20261123005",  # e splits
    "f1": "C20261123006",  # f's only record is gone: retired
    "g1": "C20261124001",  # an id already issued today (a re-run of the day)
}  # fmt: skip
CASES = {
    "unchanged": {"A": ["a1", "a2"], "B": ["b1", "b2"], "C": ["c1"], "D": ["d1"], "E": ["e1", "e2", "e3"], "F": ["f1"], "G": ["g1"]},  # noqa: E501
    "grow_merge_split_retire_new": {"A": ["a1", "a2"], "B": ["b1", "b2", "b3"], "C": ["c1", "d1"], "E1": ["e1", "e2"], "E2": ["e3"], "G": ["g1"], "N": ["n1"]},  # noqa: E501
    "nothing_published_matches": {"X": ["x1"], "Y": ["y1", "y2"]},
}  # fmt: skip


def _frames(clusters: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [(key, cluster) for cluster, keys in clusters.items() for key in keys]
    clustered = pd.DataFrame(rows, columns=["record_key", "cluster_key"])
    crosswalk = pd.DataFrame(list(PUBLISHED.items()), columns=["record_key", "customer_id"])
    return clustered, crosswalk


@pytest.mark.parametrize("case", list(CASES))
def test_stable_clusters_keep_ids_and_the_rest_equals_a_full_assignment(case: str) -> None:
    clusters, crosswalk = _frames(CASES[case])
    issued = sorted(set(crosswalk["customer_id"]))
    full = assign_customer_ids(clusters, crosswalk, RUN, existing_ids=issued)
    with duckdb.connect() as con:
        for schema in ("match", "golden", "staging"):
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute("CREATE TABLE match.clusters AS SELECT * FROM clusters")
        con.execute("CREATE TABLE golden.crosswalk AS SELECT * FROM crosswalk")
        con.execute("CREATE TABLE golden.customer_ids AS SELECT customer_id FROM crosswalk")
        con.execute("CREATE SCHEMA clean")
        con.execute("CREATE TABLE clean.records AS SELECT record_key FROM clusters")
        inputs = id_assignment_inputs(con, RUN)
        assert inputs is not None
        rest, previous, today = inputs
        assert today == ["C20261124001"]
        part = assign_customer_ids(rest, previous, RUN, existing_ids=today)
        assert store_assignments(con, part.assignments)  # cluster-exact
        got = read_table(con, ASSIGNMENTS)
    assert got is not None

    def by_key(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype(str).sort_values("record_key", ignore_index=True)

    pd.testing.assert_frame_equal(by_key(got), by_key(full.assignments))
    pd.testing.assert_frame_equal(
        part.events.astype(str).reset_index(drop=True),
        full.events.astype(str).reset_index(drop=True),
    )
    if case == "unchanged":
        assert rest.empty and previous.empty and part.events.empty
    if case == "grow_merge_split_retire_new":
        assert set(rest["cluster_key"]) == {"B", "C", "E1", "E2", "N"}
        assert {"grown", "merged_into", "split_from", "retired", "created"} <= set(
            full.events["event"]
        )


def _rows(clusters: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(key, cluster) for cluster, keys in clusters.items() for key in keys}


def _warehouse(
    con: duckdb.DuckDBPyConnection, clusters: pd.DataFrame, crosswalk: pd.DataFrame
) -> None:
    for schema in ("match", "golden", "staging", "clean"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.register("clusters_frame", clusters)
    con.register("crosswalk_frame", crosswalk)
    con.execute("CREATE TABLE match.clusters AS SELECT * FROM clusters_frame")
    con.execute("CREATE TABLE golden.crosswalk AS SELECT * FROM crosswalk_frame")
    con.execute("CREATE TABLE golden.customer_ids AS SELECT customer_id FROM crosswalk_frame")
    con.execute("CREATE TABLE clean.records AS SELECT record_key FROM clusters_frame")


@pytest.mark.parametrize("case", list(CASES))
def test_reading_only_the_logged_clusters_gives_the_same_ids_and_events(case: str) -> None:
    """The published crosswalk is cluster-exact for the "unchanged" clusters (one customer
    per cluster): a night that reads only the clusters holding a record the change logs
    list (a changed cluster row) or a record of their published customers assigns the same
    ids and events as one that reads every cluster."""
    clusters, crosswalk = _frames(CASES[case])
    logged = sorted({key for key, _ in _rows(CASES["unchanged"]) ^ _rows(CASES[case])})
    issued = sorted(set(crosswalk["customer_id"]))
    full = assign_customer_ids(clusters, crosswalk, RUN, existing_ids=issued)
    with duckdb.connect() as con:
        _warehouse(con, clusters, crosswalk)
        con.execute(
            "CREATE TEMP TABLE logged AS SELECT unnest(?::VARCHAR[]) AS record_key", [logged]
        )
        inputs = id_assignment_inputs(con, RUN, "logged")
        assert inputs is not None
        rest, previous, today = inputs
        part = assign_customer_ids(rest, previous, RUN, existing_ids=today)
        assert store_assignments(con, part.assignments)
        got = read_table(con, ASSIGNMENTS)
    assert got is not None
    pd.testing.assert_frame_equal(
        got.astype(str).sort_values("record_key", ignore_index=True),
        full.assignments.astype(str).sort_values("record_key", ignore_index=True),
    )
    pd.testing.assert_frame_equal(
        part.events.astype(str).reset_index(drop=True),
        full.events.astype(str).reset_index(drop=True),
    )
    if case == "unchanged":  # nothing logged: no cluster read
        assert rest.empty and previous.empty


def test_a_cluster_row_changed_outside_the_logs_reads_every_cluster(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cluster row deleted without a log entry: the clusters not read no longer hold their
    customers' records, so reading only the logged ones would assign other ids. The run reads
    every cluster instead (with a warning) and fails on nothing: no later night is stuck."""
    clusters, crosswalk = _frames(CASES["unchanged"])
    with duckdb.connect() as con:
        _warehouse(con, clusters, crosswalk)
        con.execute("DELETE FROM match.clusters WHERE record_key = 'a2'")
        con.execute("CREATE TEMP TABLE logged (record_key VARCHAR)")
        with caplog.at_level("WARNING", logger="customer_archive"):
            got = id_assignment_inputs(con, RUN, "logged")
        everything = id_assignment_inputs(con, RUN, None)
    assert "changed outside a logged run" in caplog.text
    assert got is not None and everything is not None
    for mine, full in zip(got[:2], everything[:2], strict=True):
        pd.testing.assert_frame_equal(
            mine.astype(str).sort_values("record_key", ignore_index=True),
            full.astype(str).sort_values("record_key", ignore_index=True),
        )
    assert sorted(got[2]) == sorted(everything[2])
    assert not got[0].empty  # the cluster that lost a record is read, not kept stable


def test_assignments_breaking_one_cluster_one_customer_are_refused() -> None:
    clusters, crosswalk = _frames(CASES["grow_merge_split_retire_new"])
    with duckdb.connect() as con:
        _warehouse(con, clusters, crosswalk)
        bad = pd.DataFrame({
            "record_key": ["a1", "a2", "b1"],
            "customer_id": ["C20261124001", "C20261124002", "C20261124001"],
        })  # fmt: skip
        with pytest.raises(ClusterInvariantError, match="got two ids"):
            store_assignments(con, bad, stable=False)


def test_a_clustered_record_missing_from_clean_makes_the_state_not_exact() -> None:
    clusters, crosswalk = _frames(CASES["unchanged"])
    with duckdb.connect() as con:
        _warehouse(con, clusters, crosswalk)
        con.execute("DELETE FROM clean.records WHERE record_key = 'c1'")
        ids = assign_customer_ids(clusters, crosswalk, RUN, existing_ids=[])
        assert not store_assignments(con, ids.assignments, stable=False)

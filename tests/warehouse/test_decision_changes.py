"""Steward decisions changed since the last link: which records a nightly relinks for them."""

from __future__ import annotations

import pandas as pd

from warehouse import connect, ensure_schemas, read_table, replace_tables
from warehouse.decision_changes import (
    LINKED_DECISIONS,
    decided_records,
    keep_linked_decisions,
    with_decided_rows,
)
from warehouse.signatures import frame_hash


def _decisions(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["left_key", "right_key", "decision", "decided_at"])


def _linked_under(con, decisions: pd.DataFrame | None) -> str:
    """Keep `decisions` as a link's, return the decisions hash that link recorded."""
    if decisions is not None:
        replace_tables(con, {"match.decisions": decisions})
    keep_linked_decisions(con)
    return frame_hash(read_table(con, "match.decisions"))


def test_added_changed_and_withdrawn_decisions_name_their_records() -> None:
    con = connect(":memory:")
    ensure_schemas(con)
    linked = _linked_under(
        con,
        _decisions(("a", "b", "match", "1"), ("c", "d", "no-match", "1"), ("e", "f", "match", "1")),
    )
    assert set(decided_records(con, linked)) == set()  # nothing changed
    replace_tables(
        con,
        {
            "match.decisions": _decisions(
                ("a", "b", "match", "1"),  # unchanged
                ("c", "d", "match", "2"),  # changed
                ("g", "h", "no-match", "2"),  # added; (e, f) withdrawn
            )
        },
    )
    assert set(decided_records(con, linked)) == {"c", "d", "e", "f", "g", "h"}
    replace_tables(con, {"match.decisions": _decisions()})
    assert set(decided_records(con, linked)) == {"a", "b", "c", "d", "e", "f"}


def test_first_decisions_after_a_link_without_any() -> None:
    con = connect(":memory:")
    ensure_schemas(con)
    linked = _linked_under(con, None)  # no match.decisions at all
    assert linked == "empty"
    replace_tables(con, {"match.decisions": _decisions(("a", "b", "no-match", "1"))})
    assert set(decided_records(con, linked)) == {"a", "b"}


def test_no_copy_or_another_links_copy_means_a_full_link() -> None:
    con = connect(":memory:")
    ensure_schemas(con)
    assert decided_records(con, "empty") is None  # an older warehouse: no copy kept
    linked = _linked_under(con, _decisions(("a", "b", "match", "1")))
    # a copy kept after another link than the last one (its decisions hash differs)
    assert decided_records(con, "0-1") is None
    con.execute(f"DELETE FROM {LINKED_DECISIONS}")
    assert decided_records(con, linked) is None


def test_decided_rows_join_the_changed_rows_once() -> None:
    con = connect(":memory:")
    ensure_schemas(con)
    con.execute(
        "CREATE TABLE clean.records AS SELECT * FROM (VALUES ('a', 'x'), ('b', 'y'), ('c', 'z'))"
        " AS t(record_key, name)"
    )
    con.execute("CREATE TEMP TABLE _changed AS SELECT * FROM clean.records WHERE record_key = 'a'")
    rows = with_decided_rows(con, "_changed", pd.Series(["a", "c", "gone"]))
    assert sorted(rows["record_key"]) == ["a", "c"]
    assert rows.set_index("record_key").loc["c", "name"] == "z"


def test_a_plan_after_changed_decisions_relinks_their_records_as_a_full_link_would() -> None:
    """`rematch_plan` after decisions only: no full rebuild; the decided records relinked from
    the stored link give a full link's pairs, clusters and review queue (same params)."""
    from dedupe import StoredLink, link_records, link_stored, stored_pair_set
    from tests.dedupe.synth import make_records
    from warehouse.match_state import match_state, rematch_plan, write_match_tables

    records, _ = make_records(400, seed=43)
    base = link_records(records)
    con = connect(":memory:")
    ensure_schemas(con)
    replace_tables(con, {"clean.records": records})
    write_match_tables(
        con,
        {"match.pairs": base.pairs, "match.clusters": base.clusters},
        {"run_id": "r1", "created_at": pd.Timestamp.now(), "params": base.params.to_json(),
         **match_state("{}", None)},
        base.prepared, "v1", "all",
    )  # fmt: skip
    keep_linked_decisions(con)
    merged = base.pairs[base.pairs["decision"] == "match"].iloc[0]
    apart = base.pairs[base.pairs["decision"] != "match"].iloc[0]
    decisions = _decisions(
        (merged["left_key"], merged["right_key"], "no-match", "1"),
        (apart["left_key"], apart["right_key"], "match", "1"),
    )
    replace_tables(con, {"match.decisions": decisions})
    state = match_state("{}", read_table(con, "match.decisions"))
    assert rematch_plan(con, {**state, "settings": "other"}, "v1") is None  # settings: full
    plan = rematch_plan(con, state, "v1")
    assert plan is not None and plan.stored is not None
    decided = {merged["left_key"], merged["right_key"], apart["left_key"], apart["right_key"]}
    assert set(plan.changed["record_key"]) == decided  # no clean change: the decided only
    stored = plan.stored
    inc = link_stored(
        plan.changed,
        StoredLink(stored.prepared, stored_pair_set(stored.pairs, stored.rule_names,
                                                    stored.hard_names),
                   stored.labels, stored.steward_pairs),
        None, decisions, base.params,
    )  # fmt: skip
    full = link_records(records, decisions=decisions, params=base.params)
    pd.testing.assert_frame_equal(inc.pairs, full.pairs)
    pd.testing.assert_frame_equal(inc.clusters, full.clusters)
    pd.testing.assert_frame_equal(inc.review_queue, full.review_queue)

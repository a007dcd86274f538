"""A nightly link from only the reached part of the stored link equals a full rebuild."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from dedupe import MatchSettings, ModelParams, link_records
from dedupe.incremental import link_subset_delta
from tests.dedupe.synth import make_records
from tests.warehouse.test_match_state import STATE, VERSION, write_full_link
from warehouse import replace_tables
from warehouse.match_state import (
    DELTA_TABLES,
    PREPARED_TABLE,
    rematch_plan,
    write_match_delta,
)
from warehouse.match_subset import StoredSubset


def _write_all(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None = None,
) -> ModelParams:
    base = link_records(records, settings, decisions=decisions)
    write_full_link(con, records, base)
    return base.params


def _night(
    con: duckdb.DuckDBPyConnection,
    current: pd.DataFrame,
    settings: MatchSettings | None,
    night: int,
    params: ModelParams,
    decisions: pd.DataFrame | None = None,
) -> int:
    """Link `current` (already in clean.records) from the reached subset; check equality."""
    threshold = (settings or MatchSettings()).match_threshold
    plan = rematch_plan(con, STATE, VERSION, threshold)
    assert plan is not None and plan.stored is not None and plan.delta
    source = StoredSubset(con, threshold)
    delta = link_subset_delta(plan.changed, source, settings, decisions, params)
    assert set(plan.changed["record_key"]) <= set(delta.records)
    write_match_delta(
        con, delta.records,
        {"match.pairs": delta.pairs, "match.clusters": delta.clusters,
         "match.review_queue": delta.review_queue},
        {"run_id": f"night{night}", "created_at": pd.Timestamp.now(),
         "params": delta.params.to_json(), **STATE},
        delta.prepared[delta.refreshed], VERSION, plan.changed["record_key"], delta.dropped,
        delta.prepared["record_key"],
    )  # fmt: skip
    assert delta.partial
    full = link_records(current, settings, decisions=decisions, params=params)
    for name, frame, keys in (
        ("match.pairs", full.pairs, ["left_key", "right_key"]),
        ("match.clusters", full.clusters, ["record_key"]),
        ("match.review_queue", full.review_queue, ["left_key", "right_key"]),
    ):
        assert name in DELTA_TABLES
        stored = duckdb.connect()
        replace_tables(stored, {"t.frame": frame})
        pd.testing.assert_frame_equal(
            con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(keys)}").df(),
            stored.sql(f"SELECT * FROM t.frame ORDER BY {', '.join(keys)}").df(),
        )
    # match.prepared holds what preparing every current record gives
    prepared = con.sql(
        f"SELECT * EXCLUDE (prepared_version) FROM {PREPARED_TABLE} ORDER BY record_key"
    ).df()
    assert full.prepared is not None
    for column in ("email_shared", "name_in_places", "name_one_holder"):
        assert (prepared[column].to_numpy() == full.prepared[column].to_numpy()).all(), column
    return len(delta.prepared)


def _decisions(records: pd.DataFrame) -> pd.DataFrame:
    """A steward 'match' across two customers and a 'no-match' inside one."""
    keys = records["record_key"].tolist()
    return pd.DataFrame(
        {
            "left_key": [keys[3], keys[10]],
            "right_key": [keys[200], keys[11]],
            "decision": ["match", "no-match"],
            "decided_by": ["steward", "steward"],
            "decided_at": [pd.Timestamp("2026-11-01")] * 2,
        }
    )


@pytest.mark.parametrize(
    ("settings", "steward"),
    [
        (None, False),
        (MatchSettings(max_block_size=3, block_window=1), False),
        (MatchSettings(max_block_size=2, block_window=2), True),
    ],
)
def test_nights_linked_from_the_reached_subset_equal_full_rebuilds(
    settings: MatchSettings | None, steward: bool
) -> None:
    records, _ = make_records(400, seed=43)
    decisions = _decisions(records) if steward else None
    con = duckdb.connect()
    params = _write_all(con, records, settings, decisions)
    current = records
    for night in (1, 2, 3):
        dupes = current.sample(4, random_state=night).assign(
            record_key=lambda f, n=night: f"n{n}:" + f["record_key"]
        )
        changed = current.sample(4, random_state=20 + night).assign(email=None, phone=None)
        renamed = current.sample(2, random_state=40 + night)
        renamed = renamed.assign(name_key=renamed["name_key"].str[::-1])
        gone = pd.concat([changed, renamed])["record_key"]
        current = pd.concat(
            [current[~current["record_key"].isin(gone)], dupes, changed, renamed],
            ignore_index=True,
        )
        replace_tables(con, {"clean.records": current})
        read = _night(con, current, settings, night, params, decisions)
        # only part of the warehouse was read
        assert read < len(current)


def test_a_flag_flip_from_the_subset_relinks_the_unchanged_records() -> None:
    records, _ = make_records(200, seed=5)
    mailbox = "caiwu@daizhang.cn"
    firms = records.index[[0, 100]]
    records.loc[firms, "email"] = mailbox
    records.loc[firms, "customer_name"] = ["青松建材有限公司", "白云物流有限公司"]
    records.loc[firms, "name_key"] = ["青松建材", "白云物流"]
    con = duckdb.connect()
    params = _write_all(con, records, None)
    third = records.iloc[[50]].assign(
        record_key="new:third", customer_name="远山贸易有限公司", name_key="远山贸易", email=mailbox
    )
    current = pd.concat([records, third], ignore_index=True)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    shared = con.sql(
        f"SELECT bool_and(email_shared) FROM {PREPARED_TABLE} WHERE email = '{mailbox}'"
    ).fetchall()
    assert shared == [(True,)]


def test_a_night_without_changes_reads_no_stored_record() -> None:
    records, _ = make_records(150, seed=3)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    assert _night(con, records, None, 1, params) == 0

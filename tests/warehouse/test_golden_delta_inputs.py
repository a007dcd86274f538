"""Publishing the golden input hashes: a nightly's delta replaces rows, a full build copies."""

from __future__ import annotations

import duckdb
import pytest

from warehouse.archive.tables import swap_tables
from warehouse.golden_delta import INPUTS_TABLE, STATE_TABLE, state_swap

_ROWS = "SELECT rowid AS r, record_key, customer_id, input_hash FROM {} ORDER BY record_key"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """Published inputs of 6 records, and a nightly staged as a delta view over them: r2
    changed, r4 gone, r7 new (the tables ``stage_input_state`` writes after ``plan_golden``)."""
    con = duckdb.connect()
    for schema in ("match", "staging"):
        con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        f"CREATE TABLE {INPUTS_TABLE} AS SELECT 'r' || i AS record_key,"
        " 'C' || (i // 2) AS customer_id, hash(i)::UBIGINT AS input_hash FROM range(6) AS t(i)"
    )
    con.execute(f"CREATE TABLE {STATE_TABLE} AS SELECT 'old' AS fingerprint")
    con.execute("CREATE TABLE staging.golden_state AS SELECT 'new' AS fingerprint")
    con.execute(
        "CREATE TABLE staging._golden_inputs_replaced AS"
        " SELECT * FROM (VALUES ('r2'), ('r4'), ('r7')) AS t(record_key)"
    )
    con.execute(
        "CREATE TABLE staging.delta_golden_inputs AS SELECT record_key, customer_id,"
        " input_hash::UBIGINT AS input_hash FROM (VALUES ('r2', 'C1', 42), ('r7', 'C9', 7))"
        " AS t(record_key, customer_id, input_hash)"
    )
    con.execute(
        f"CREATE VIEW staging.golden_inputs AS SELECT * FROM {INPUTS_TABLE}"
        " WHERE record_key NOT IN (SELECT record_key FROM staging._golden_inputs_replaced)"
        " UNION ALL SELECT * FROM staging.delta_golden_inputs"
    )
    return con


def _content(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute(
        f"SELECT record_key, customer_id, input_hash FROM {table} ORDER BY record_key"
    ).fetchall()


def _publish(con: duckdb.DuckDBPyConnection) -> None:
    copies, updates = state_swap(con)
    swap_tables(con, copies, row_updates=updates)


def test_a_delta_view_is_published_as_delete_and_insert(con: duckdb.DuckDBPyConnection) -> None:
    staged = _content(con, "staging.golden_inputs")
    before = {r[1]: r[0] for r in con.execute(_ROWS.format(INPUTS_TABLE)).fetchall()}
    copies, updates = state_swap(con)
    assert copies == {STATE_TABLE: "staging.golden_state"}
    assert set(updates) == {INPUTS_TABLE}
    swap_tables(con, copies, row_updates=updates)
    # the published inputs are what the staged view held (as a whole copy would write them)
    assert _content(con, INPUTS_TABLE) == staged
    assert con.execute(f"SELECT fingerprint FROM {STATE_TABLE}").fetchall() == [("new",)]
    # the untouched records' rows were left where they were (a copy renumbers them from 0)
    after = {r[1]: r[0] for r in con.execute(_ROWS.format(INPUTS_TABLE)).fetchall()}
    kept = ("r0", "r1", "r3", "r5")
    assert [after[k] for k in kept] == [before[k] for k in kept] == [0, 1, 3, 5]
    assert after["r2"] >= 6 and after["r7"] >= 6
    # publishing again (a rerun after a crash past the commit) changes nothing
    _publish(con)
    assert _content(con, INPUTS_TABLE) == staged


def test_a_full_build_is_copied_whole(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP VIEW staging.golden_inputs")
    con.execute("DROP TABLE staging._golden_inputs_replaced")
    con.execute("DROP TABLE staging.delta_golden_inputs")
    con.execute("CREATE TABLE staging.golden_inputs AS SELECT * FROM match.golden_inputs LIMIT 2")
    copies, updates = state_swap(con)
    assert updates == {}
    assert copies == {INPUTS_TABLE: "staging.golden_inputs", STATE_TABLE: "staging.golden_state"}
    staged = _content(con, "staging.golden_inputs")
    swap_tables(con, copies, row_updates=updates)
    assert _content(con, INPUTS_TABLE) == staged


def test_published_inputs_of_another_shape_are_replaced_whole(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """A published table whose columns are not the delta's (an older version): copy the view."""
    con.execute(f"ALTER TABLE {INPUTS_TABLE} ALTER input_hash TYPE HUGEINT")
    copies, updates = state_swap(con)
    assert updates == {} and copies[INPUTS_TABLE] == "staging.golden_inputs"


def test_a_failed_swap_leaves_the_published_inputs(con: duckdb.DuckDBPyConnection) -> None:
    before = con.execute(_ROWS.format(INPUTS_TABLE)).fetchall()
    copies, updates = state_swap(con)
    with pytest.raises(duckdb.Error):
        # the inputs' DELETE + INSERT ran, then a later statement of the swap fails
        swap_tables(con, copies, row_updates={**updates, "match.gone": ("true", "staging.gone")})
    assert con.execute(_ROWS.format(INPUTS_TABLE)).fetchall() == before
    assert con.execute(f"SELECT fingerprint FROM {STATE_TABLE}").fetchall() == [("old",)]


def test_nothing_staged_publishes_nothing(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE staging.golden_state")
    assert state_swap(con) == ({}, {})

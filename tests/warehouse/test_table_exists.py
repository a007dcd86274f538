"""``table_exists``: asked of the binder, never stale, the catalog read only for a miss."""

from __future__ import annotations

import duckdb
import pytest

import warehouse.db as db
from warehouse.db import table_exists


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA golden")
        yield con


def test_answers_follow_creates_and_drops(con: duckdb.DuckDBPyConnection) -> None:
    assert not table_exists(con, "golden.customers")
    con.execute("CREATE TABLE golden.customers (customer_id VARCHAR)")
    assert table_exists(con, "golden.customers")
    con.execute("CREATE VIEW golden.current AS SELECT * FROM golden.customers")
    assert table_exists(con, "golden.current")
    con.execute("CREATE TEMP TABLE _scratch AS SELECT 1 AS x")
    assert table_exists(con, "_scratch")
    con.execute("DROP TABLE _scratch")
    assert not table_exists(con, "_scratch")
    con.execute("DROP VIEW golden.current")
    assert not table_exists(con, "golden.current")
    con.execute("DROP TABLE golden.customers")
    assert not table_exists(con, "golden.customers")
    assert not table_exists(con, "nowhere.customers")  # no such schema


def test_answers_follow_the_transaction(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute("CREATE TABLE golden.crosswalk (record_key VARCHAR)")
    assert table_exists(con, "golden.crosswalk")
    con.execute("ROLLBACK")
    assert not table_exists(con, "golden.crosswalk")


def test_a_view_whose_table_is_gone_still_exists(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE golden.base (x INTEGER)")
    con.execute("CREATE VIEW golden.over AS SELECT * FROM golden.base")
    con.execute("DROP TABLE golden.base")
    assert table_exists(con, "golden.over")  # it does not bind, the catalog lists it


def test_an_existing_table_is_answered_without_reading_the_catalog(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog functions cost ≈ 1.3 ms a call and a run asks ≈ 250 times, nearly all for
    tables that exist: those are answered by the binder alone."""
    reads: list[str] = []
    real = db.catalog_has

    def counted(c: duckdb.DuckDBPyConnection, name: str) -> bool:
        reads.append(name)
        return real(c, name)

    monkeypatch.setattr(db, "catalog_has", counted)
    con.execute("CREATE TABLE golden.customers (customer_id VARCHAR)")
    assert all(table_exists(con, "golden.customers") for _ in range(20))
    assert reads == []
    assert not table_exists(con, "golden.missing")
    assert reads == ["golden.missing"]


def test_a_miss_inside_a_transaction_leaves_it_usable(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute("CREATE TABLE golden.kept (x INTEGER)")
    assert not table_exists(con, "golden.missing")
    con.execute("INSERT INTO golden.kept VALUES (1)")  # not aborted by the miss
    con.execute("COMMIT")
    assert con.execute("SELECT count(*) FROM golden.kept").fetchall() == [(1,)]


def test_a_bad_name_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError):
        table_exists(con, "golden.x; DROP TABLE y")


def test_a_result_left_unfinished_is_completed_as_before(con: duckdb.DuckDBPyConnection) -> None:
    """Callers read a relation right after an ``execute`` they did not fetch, with a
    ``table_exists`` in between (``read_table``): the check completes that result, as the
    catalog query did, so the relation's work is not refused."""
    con.execute("CREATE TABLE golden.customers (customer_id VARCHAR)")
    con.execute("INSERT INTO golden.customers VALUES ('C1'), ('C2')")
    con.execute("SELECT * FROM golden.customers")  # result not fetched
    assert table_exists(con, "golden.customers")
    assert con.sql("SELECT count(*) FROM golden.customers").fetchall() == [(2,)]

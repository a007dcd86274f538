"""Parquet exports as a full export plus nightly change files read back as the current tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from warehouse.export_changes import (
    CHANGES_DIR,
    current_export_sql,
    publish_exports,
    read_manifest,
)

CHANGED = "customer_id IN (SELECT customer_id FROM changed)"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    con.execute(
        "CREATE TABLE golden.customers AS SELECT * FROM (VALUES"
        " ('C1', 'Alpha', 'A'), ('C2', 'Beta', 'B'), ('C3', 'Gamma', 'C'))"
        " t(customer_id, name, tier)"
    )
    con.execute(
        "CREATE TABLE golden.crosswalk AS SELECT * FROM (VALUES"
        " ('r1', 'C1'), ('r2', 'C2'), ('r3', 'C3'), ('r4', 'C3')) t(record_key, customer_id)"
    )
    con.execute(
        "CREATE TABLE golden.transactions AS SELECT * FROM (VALUES"
        " ('C1', DATE '2025-03-01', 10.0, 2025), ('C3', DATE '2026-01-02', 5.0, 2026))"
        " t(customer_id, txn_date, txn_amount, txn_year)"
    )
    con.execute("CREATE TABLE changed (customer_id VARCHAR)")
    return con


def _current(out: Path, table: str) -> list[tuple]:
    with duckdb.connect() as reader:
        sql = current_export_sql(out, table)
        return sorted(reader.execute(f"SELECT * FROM ({sql})").fetchall())


def _published(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM golden.{table}").fetchall())


def _night(con: duckdb.DuckDBPyConnection) -> None:
    """A night: C2 renamed and moved to tier A, C3 removed with its records, C4 new."""
    con.execute("INSERT INTO changed VALUES ('C2'), ('C3'), ('C4')")
    con.execute("DELETE FROM golden.customers WHERE customer_id IN ('C2', 'C3')")
    con.execute("DELETE FROM golden.crosswalk WHERE customer_id = 'C3'")
    con.execute("DELETE FROM golden.transactions WHERE customer_id = 'C3'")
    con.execute("INSERT INTO golden.customers VALUES ('C2', 'Beta Ltd', 'A'), ('C4', 'Delta', 'C')")
    con.execute("INSERT INTO golden.crosswalk VALUES ('r5', 'C4'), ('r3', 'C4')")
    con.execute("INSERT INTO golden.transactions VALUES ('C4', DATE '2026-11-20', 7.5, 2026)")


def test_a_night_writes_change_files_that_read_back_as_the_current_tables(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    out = tmp_path / "golden"
    publish_exports(con, out, "run1", date(2026, 11, 23), None, 7, states=(None, "s1"))
    assert (out / "customers.parquet").exists() and not (out / CHANGES_DIR).exists()
    _night(con)
    changed = {f"golden.{t}": CHANGED for t in ("customers", "crosswalk", "transactions")}
    written = publish_exports(con, out, "run2", date(2026, 11, 24), changed, 7, states=("s1", "s2"))
    assert all(p.parent.name == "seq=000001" for p in written)
    assert (out / "customers.parquet").exists()  # the full export is not rewritten
    for table in ("customers", "crosswalk", "transactions"):
        assert _current(out, table) == _published(con, table), table
    assert read_manifest(out) is not None and read_manifest(out)["state"] == "s2"  # type: ignore[index]


def test_exports_of_another_state_or_an_old_full_export_are_replaced_by_a_full_export(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    out = tmp_path / "golden"
    publish_exports(con, out, "run1", date(2026, 11, 23), None, 7, states=(None, "s1"))
    _night(con)
    changed = {"golden.customers": CHANGED}
    # a run that swapped in state s2 crashed before exporting: this run starts from s2
    publish_exports(con, out, "run3", date(2026, 11, 24), changed, 7, states=("s2", "s3"))
    assert not (out / CHANGES_DIR).exists()
    assert read_manifest(out)["full_run_id"] == "run3"  # type: ignore[index]
    assert _current(out, "customers") == _published(con, "customers")
    # a week after the full export, the next night writes a full export again
    publish_exports(con, out, "run4", date(2026, 12, 1), changed, 7, states=("s3", "s4"))
    assert read_manifest(out)["full_run_id"] == "run4"  # type: ignore[index]
    assert not (out / CHANGES_DIR).exists()


def test_change_files_read_from_the_swapped_in_delta_equal_a_scan_of_the_table(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    out, scanned = tmp_path / "golden", tmp_path / "scanned"
    for folder in (out, scanned):
        publish_exports(con, folder, "run1", date(2026, 11, 23), None, 7, states=(None, "s1"))
    # the staged delta as a swap inserts it: other column order, narrower types, a column
    # missing (NULL in the golden table), one row of a customer the condition does not name
    # (not in any change file, as a scan of the table leaves it out too)
    con.execute(
        "CREATE TABLE delta_tx AS SELECT * FROM (VALUES (7, 2026, 'C4'), (1, 2026, 'C9'))"
        " t(txn_amount, txn_year, customer_id)"
    )
    con.execute(
        "CREATE TABLE delta_cw AS SELECT * FROM (VALUES ('C4', 'r5'), ('C4', 'r3'))"
        " t(customer_id, record_key)"
    )
    con.execute("INSERT INTO changed VALUES ('C3'), ('C4')")
    for table, source in (("transactions", "delta_tx"), ("crosswalk", "delta_cw")):
        con.execute(f"DELETE FROM golden.{table} WHERE {CHANGED}")
        con.execute(f"INSERT INTO golden.{table} BY NAME SELECT * FROM {source}")
    changed = {f"golden.{t}": CHANGED for t in ("transactions", "crosswalk")}
    sources = {"golden.transactions": "delta_tx", "golden.crosswalk": "delta_cw"}
    publish_exports(con, out, "run2", date(2026, 11, 24), changed, 7, ("s1", "s2"), sources=sources)
    publish_exports(con, scanned, "run2", date(2026, 11, 24), changed, 7, states=("s1", "s2"))
    for table in ("transactions", "crosswalk"):
        assert _current(out, table) == _current(scanned, table), table
        files = [
            f"{folder}/{CHANGES_DIR}/{name}/seq=000001/run2.parquet"
            for folder in (out, scanned)
            for name in (table, "_replaced")
        ]
        with duckdb.connect() as reader:
            rows = []
            for file in files:
                result = reader.execute(f"SELECT * FROM '{file}' ORDER BY ALL")
                rows.append((result.description, result.fetchall()))
        assert rows[0][1] and rows[0] == rows[2] and rows[1] == rows[3]  # same columns, types, rows

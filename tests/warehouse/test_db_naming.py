"""DuckDB access (all-or-nothing writes), Parquet export and the seed's attachment names."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from warehouse import (
    append_table,
    attachment_name,
    connect,
    export_parquet,
    read_table,
    replace_tables,
    run_sql,
    table_exists,
)


@pytest.fixture
def con():
    with connect(":memory:") as c:
        yield c


def test_replace_tables_is_all_or_nothing(con):
    replace_tables(con, {"golden.a": pd.DataFrame({"x": [1, 2]})})
    table_b_cannot_be_written = pd.DataFrame({"y": [object()]})
    with pytest.raises(Exception):  # noqa: B017 - any write error must roll back
        replace_tables(
            con, {"golden.a": pd.DataFrame({"x": [9]}), "golden.b": table_b_cannot_be_written}
        )
    assert read_table(con, "golden.a")["x"].tolist() == [1, 2]
    assert not table_exists(con, "golden.b")


def test_replace_tables_copies_inside_duckdb_in_the_same_transaction(con):
    con.execute("CREATE SCHEMA clean")
    con.execute("CREATE TABLE clean.records AS SELECT 1 AS k, DATE '2026-01-02' AS d")
    replace_tables(con, {"match.pairs": pd.DataFrame({"p": [1]})},
                   copies={"match.linked_records": "clean.records"})  # fmt: skip
    assert con.execute("SELECT k, d FROM match.linked_records").fetchall() == [
        (1, date(2026, 1, 2))
    ]
    con.execute("INSERT INTO clean.records VALUES (2, NULL)")
    with pytest.raises(duckdb.Error):  # the copy's source is missing: the frame is rolled back
        replace_tables(con, {"match.pairs": pd.DataFrame({"p": [9]})},
                       copies={"match.linked_records": "clean.nothing"})  # fmt: skip
    assert read_table(con, "match.pairs")["p"].tolist() == [1]
    assert con.execute("SELECT count(*) FROM match.linked_records").fetchall() == [(1,)]


def test_replace_append_and_read(con):
    assert read_table(con, "golden.missing") is None
    replace_tables(con, {"ops.t": pd.DataFrame({"a": ["x"], "b": [None]})})
    append_table(con, "ops.t", pd.DataFrame({"b": ["late"], "a": ["y"]}))  # by column name
    append_table(con, "ops.new", pd.DataFrame({"a": [1]}))
    table = read_table(con, "ops.t")
    assert table["a"].tolist() == ["x", "y"]
    assert table["b"].isna().tolist() == [True, False]
    assert table["b"].iloc[1] == "late"
    assert table_exists(con, "ops.new")


@pytest.mark.parametrize("name", ["golden.a; DROP TABLE x", "a.b.c", "", "1abc"])
def test_bad_table_names_are_refused(con, name):
    with pytest.raises(ValueError, match="invalid table name"):
        replace_tables(con, {name: pd.DataFrame({"a": [1]})})


def test_run_sql(con):
    assert run_sql(con, "SELECT ? AS v;", [3])["v"].tolist() == [3]
    with pytest.raises(ValueError, match="empty"):
        run_sql(con, " ; ")
    with pytest.raises(duckdb.Error):
        run_sql(con, "SELECT * FROM nowhere")


def test_read_only_connection_cannot_write(tmp_path):
    path = tmp_path / "wh.duckdb"
    with connect(path) as c:
        replace_tables(c, {"golden.a": pd.DataFrame({"x": [1]})})
    with connect(path, read_only=True) as c, pytest.raises(duckdb.Error):
        c.execute("DROP TABLE golden.a")


def test_a_transaction_rolls_back_and_raises_the_error_that_stopped_it():
    from warehouse.db import transaction

    with connect(":memory:") as c:
        c.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(ValueError, match="bad chunk"), transaction(c):
            c.execute("INSERT INTO t VALUES (1)")
            raise ValueError("bad chunk")
        assert c.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
        # no transaction left to roll back (as after a failed COMMIT): the block's error is
        # still the one raised, the ROLLBACK's own failure added to it as a note
        with pytest.raises(ValueError, match="after commit") as raised, transaction(c):
            c.execute("INSERT INTO t VALUES (2)")
            c.execute("COMMIT")
            raise ValueError("after commit")
        assert any("ROLLBACK" in note for note in raised.value.__notes__)


def test_a_database_cursor_works_on_the_same_warehouse(tmp_path):
    from warehouse.db import database_cursor

    with connect(tmp_path / "wh.duckdb") as c:
        c.execute("ATTACH ':memory:' AS other")
        c.execute("CREATE TABLE t (x INTEGER)")  # in the warehouse, the database selected
        cursor = database_cursor(c)
        cursor.execute("INSERT INTO t VALUES (7)")  # unqualified: the same database
        assert c.execute("SELECT x FROM t").fetchall() == [(7,)]
        cursor.close()


def test_warehouse_connections_print_no_progress_bar(tmp_path):
    """A run's long queries would print DuckDB's progress bar into Dagster's compute logs."""
    for target, read_only in ((tmp_path / "wh.duckdb", False), (tmp_path / "wh.duckdb", True)):
        with connect(target, read_only=read_only) as c:
            setting = c.execute("SELECT current_setting('enable_progress_bar')").fetchall()
            assert setting == [(False,)]


def test_export_parquet_partitions_facts_by_year(warehouse_two_runs, tmp_path):
    written = export_parquet(warehouse_two_runs, tmp_path / "out")
    names = {p.name for p in written}
    assert {"customers.parquet", "transactions", "interactions", "customers_history.parquet"} <= (
        names
    )
    years = sorted(p.name for p in (tmp_path / "out" / "transactions").iterdir())
    assert years == ["txn_year=2021", "txn_year=2025"]
    txns = pq.read_table(tmp_path / "out" / "transactions").to_pandas()
    assert len(txns) == 3
    customers = pd.read_parquet(tmp_path / "out" / "customers.parquet")
    assert len(customers) == 3
    again = export_parquet(warehouse_two_runs, tmp_path / "out")  # overwrites cleanly
    assert {p.name for p in again} == names
    assert not list((tmp_path / "out").glob(".*.tmp"))


@pytest.mark.parametrize(
    ("customer_id", "doc_type", "on", "ext", "expected"),
    [
        ("C20240315001", "合同", date(2024, 3, 15), "pdf", "C20240315001_合同_20240315.pdf"),
        ("C20240315001", "资质证明", date(2024, 3, 16), ".PDF",
         "C20240315001_资质证明_20240316.pdf"),
        ("C20240315001", "拜访/纪要", date(2024, 3, 10), "docx",
         "C20240315001_拜访纪要_20240310.docx"),
        ("C202403150012", "地址变更确认单", date(2024, 3, 12), "pdf",
         "C202403150012_地址变更确认单_20240312.pdf"),
    ],
)  # fmt: skip
def test_attachment_name(customer_id, doc_type, on, ext, expected):
    assert attachment_name(customer_id, doc_type, on, ext) == expected


@pytest.mark.parametrize(
    ("customer_id", "doc_type", "ext", "message"),
    [
        ("X1", "合同", "pdf", "customer ID"),
        ("C2024031500", "合同", "pdf", "customer ID"),
        ("C20240315001", " / ", "pdf", "document type"),
        ("C20240315001", "合同", ".", "extension"),
    ],
)
def test_attachment_name_refuses_bad_parts(customer_id, doc_type, ext, message):
    with pytest.raises(ValueError, match=message):
        attachment_name(customer_id, doc_type, date(2024, 1, 1), ext)


def test_dates_survive_a_read_write_round_trip(warehouse_two_runs, tmp_path):
    customers = read_table(warehouse_two_runs, "golden.customers")
    with connect(tmp_path / "copy.duckdb") as other:
        replace_tables(other, {"staging.customers": customers})
        again = read_table(other, "staging.customers")
        types = dict(
            other.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'customers'"
            ).fetchall()
        )
    assert types["registered_date"] == "DATE"
    assert types["is_returning"] == "BOOLEAN"
    assert again["registered_date"].astype("string").tolist() == (
        customers["registered_date"].astype("string").tolist()
    )

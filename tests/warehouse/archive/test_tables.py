"""Reading golden tables as Arrow equals the pandas route; swapping tables is all-or-nothing."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from warehouse import read_table
from warehouse.archive import (
    content_hash,
    read_tables_arrow,
    swap_tables,
    table_schema,
)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden; CREATE SCHEMA staging")
    con.execute(
        """
        CREATE TABLE golden.customers AS SELECT * FROM (VALUES
          ('C20240315001', '北京星辰科技有限公司', DATE '2024-03-15', 2::BIGINT, 3::INTEGER,
           1.5::DOUBLE, true, TIMESTAMP '2024-03-15 08:30:00', NULL::VARCHAR, ''),
          ('C20240315002', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'x')
        ) v(customer_id, customer_name, registered_date, source_count, small, revenue_12m,
            is_returning, updated_at, closed_reason, note)
        """
    )
    con.execute("CREATE TABLE golden.empty AS SELECT * FROM golden.customers LIMIT 0")
    return con


def test_arrow_read_equals_the_pandas_route(con: duckdb.DuckDBPyConnection) -> None:
    names = ["golden.customers", "golden.empty", "golden.missing"]
    tables = read_tables_arrow(con, names)
    assert list(tables) == ["golden.customers", "golden.empty"]  # missing tables left out
    for name, table in tables.items():
        frame = read_table(con, name)
        assert frame is not None
        expected = pa.Table.from_pandas(frame, preserve_index=False)
        assert table.schema.remove_metadata() == expected.schema.remove_metadata(), name
        assert table.to_pylist() == expected.to_pylist(), name
    # the archive's content hash is therefore unchanged by the faster read
    old = {n: read_table(con, n) for n in tables}
    assert content_hash(tables) == content_hash(old)  # type: ignore[arg-type]
    assert tables["golden.customers"].schema.field("closed_reason").type == pa.null()


def test_read_table_columns_equals_a_slice_of_read_table(con: duckdb.DuckDBPyConnection) -> None:
    wanted = ["registered_date", "customer_id", "source_count"]
    got = read_table(con, "golden.customers", wanted)
    full = read_table(con, "golden.customers")
    assert got is not None and full is not None
    pd.testing.assert_frame_equal(got, full[wanted])
    assert read_table(con, "golden.missing", wanted) is None


def test_swap_copies_appends_and_writes_frames_in_one_go(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE staging.customers AS SELECT * FROM golden.customers LIMIT 1")
    con.execute("CREATE TABLE golden.ids AS SELECT 'C1' AS customer_id, 'created' AS event")
    con.execute("CREATE TABLE staging.ids AS SELECT 'C2' AS customer_id, 'merged' AS event")
    frame = pd.DataFrame({"customer_id": ["C1"], "note": [None]})
    swap_tables(
        con,
        {"golden.customers": "staging.customers"},
        {"golden.history": frame},
        {"golden.ids": "staging.ids"},
    )
    assert con.execute("SELECT count(*) FROM golden.customers").fetchall() == [(1,)]
    assert con.execute("SELECT * FROM golden.ids ORDER BY 1").fetchall() == [
        ("C1", "created"),
        ("C2", "merged"),
    ]
    assert table_schema(con, "golden.history") == [("customer_id", "VARCHAR"), ("note", "VARCHAR")]


def test_a_failed_swap_changes_nothing(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE staging.customers AS SELECT * FROM golden.customers LIMIT 1")
    with pytest.raises(duckdb.CatalogException):
        swap_tables(
            con,
            {"golden.customers": "staging.customers", "golden.other": "staging.not_there"},
        )
    assert con.execute("SELECT count(*) FROM golden.customers").fetchall() == [(2,)]
    with pytest.raises(ValueError, match="invalid table name"):
        swap_tables(con, {"golden.customers; DROP TABLE x": "staging.customers"})


def test_a_table_both_replaced_and_appended_to_is_refused(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Replacing a table by a CTAS and inserting into it in one transaction risks DuckDB 2.0.0's
    empty-CTAS row loss (docs/warehouse.md): refused before anything changes."""
    con.execute("CREATE TABLE staging.customers AS SELECT * FROM golden.customers LIMIT 0")
    with pytest.raises(ValueError, match="both replaced and appended"):
        swap_tables(
            con,
            {"golden.customers": "staging.customers"},
            appends={"golden.customers": "staging.customers"},
        )
    assert con.execute("SELECT count(*) FROM golden.customers").fetchall() == [(2,)]


def test_a_rename_replaces_a_table_by_the_same_table_and_a_failed_one_changes_nothing(
    tmp_path,
) -> None:
    """A renamed source becomes the target (the same table: no row written again) after every
    other write of the transaction; a failure after a rename restores both names; the renamed
    table is what the file holds when reopened."""
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA golden; CREATE SCHEMA staging")
    con.execute("CREATE TABLE golden.customers AS SELECT 'old' AS v FROM range(2)")
    con.execute("CREATE TABLE golden._staged_customers AS SELECT 'new' AS v FROM range(3)")
    con.execute("CREATE VIEW staging.customers AS SELECT * FROM golden._staged_customers")
    oid = "SELECT table_oid FROM duckdb_tables() WHERE schema_name = 'golden' AND table_name = ?"
    staged = con.execute(oid, ["_staged_customers"]).fetchall()
    with pytest.raises(duckdb.CatalogException):
        swap_tables(
            con,
            {},
            renames={
                "golden.customers": "golden._staged_customers",
                "golden.other": "golden._staged_not_there",
            },
            drop_views=["staging.customers"],
        )
    assert con.execute("SELECT v, count(*) FROM golden.customers GROUP BY v").fetchall() == [
        ("old", 2)
    ]
    assert con.execute("SELECT count(*) FROM staging.customers").fetchall() == [(3,)]
    # the history copy reads the staged rows (through the view) before the rename
    swap_tables(
        con,
        {"golden.history": "staging.customers"},
        renames={"golden.customers": "golden._staged_customers"},
        drop_views=["staging.customers"],
    )
    assert con.execute(oid, ["customers"]).fetchall() == staged  # renamed, not copied
    con.close()
    con = duckdb.connect(str(path))  # catalog oids are per process: names and rows from here
    assert con.execute("SELECT v, count(*) FROM golden.customers GROUP BY v").fetchall() == [
        ("new", 3)
    ]
    assert con.execute(oid, ["_staged_customers"]).fetchall() == []
    assert con.execute("SELECT count(*) FROM golden.history").fetchall() == [(3,)]
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall() == [
        (0,)
    ]
    with pytest.raises(ValueError, match="renamed from another schema"):
        swap_tables(con, {}, renames={"golden.x": "staging.x"})
    con.close()


def test_batches_type_a_text_column_by_whether_any_row_holds_a_value() -> None:
    """A text column empty in every row reads as ``null`` in every batch; one value, even in
    the last row of the last row group, makes it text in every batch (the probe that stops at
    a column's first value decides as a count of its values did)."""
    from warehouse.archive.tables import read_table_batches

    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    con.execute(
        "CREATE TABLE golden.t AS SELECT i, NULL::VARCHAR AS empty,"
        " CASE WHEN i = 299999 THEN 'last' END AS late, 'x' || i AS full FROM range(300000) r(i)"
    )
    parts = read_table_batches(con, "golden.t", 100_000)
    types = {f.name: f.type for f in parts.schema}
    assert types == {"i": pa.int64(), "empty": pa.null(), "late": pa.large_string(),
                     "full": pa.large_string()}  # fmt: skip
    batches = list(parts)
    assert [b.num_rows for b in batches] == [100_000] * 3
    assert all(b.schema == parts.schema for b in batches)
    assert pa.concat_tables(batches).equals(read_tables_arrow(con, ["golden.t"])["golden.t"])
    assert batches[-1].column("late")[-1].as_py() == "last"

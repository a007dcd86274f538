"""read_table's Arrow route gives the same frames (values and dtypes) as DuckDB's ``.df()``."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from warehouse.db import read_table

# one column per case: (SQL type, values as SQL literals) — with and without nulls
CASES = [
    ("VARCHAR", ["'张伟'", "'acme'", "''"]),
    ("VARCHAR", ["'北京市'", "NULL", "'x'"]),
    ("VARCHAR", ["NULL", "NULL", "NULL"]),  # all null: object, as .df() gives
    ("INTEGER", ["1", "2", "3"]),
    ("INTEGER", ["1", "NULL", "3"]),  # nullable Int32
    ("BIGINT", ["-5", "NULL", "9007199254740993"]),
    ("SMALLINT", ["1", "2", "NULL"]),
    ("UTINYINT", ["1", "2", "3"]),
    ("DOUBLE", ["1.5", "NULL", "'NaN'"]),
    ("FLOAT", ["1.5", "2", "3"]),
    ("BOOLEAN", ["true", "false", "true"]),
    ("BOOLEAN", ["true", "NULL", "false"]),  # nullable boolean
    ("DATE", ["DATE '2024-03-15'", "NULL", "DATE '1999-12-31'"]),
    ("TIMESTAMP", ["TIMESTAMP '2024-01-02 03:04:05.123456'", "NULL", "TIMESTAMP '2000-01-01'"]),
    ("TIMESTAMPTZ", ["TIMESTAMPTZ '2024-01-02 03:04:05+08'", "NULL", "NULL"]),
    ("DECIMAL(10,2)", ["1.25", "NULL", "3"]),  # not on the Arrow route: .df() decides
    ("VARCHAR[]", ["['a']", "NULL", "[]"]),
]


def _reference(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    """read_table as it was before the Arrow route (the slow reference)."""
    frame = con.execute(f"SELECT * FROM {name}").df()
    dates = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall() if r[1] == "DATE"]
    for col in dates:
        frame[col] = frame[col].astype("datetime64[s]").astype(pd.ArrowDtype(pa.date32()))
    return frame


def _table(con: duckdb.DuckDBPyConnection, kind: str, values: list[str], rows: int) -> str:
    con.execute("CREATE OR REPLACE TABLE t (k INTEGER, v " + kind + ")")
    if rows:
        literals = ", ".join(f"({i}, {v})" for i, v in enumerate(values))
        con.execute(f"INSERT INTO t VALUES {literals}")
    return "t"


@pytest.mark.parametrize(
    ("kind", "values"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)]
)
@pytest.mark.parametrize("rows", [3, 0])
def test_read_table_matches_duckdb_df(kind: str, values: list[str], rows: int) -> None:
    con = duckdb.connect()
    name = _table(con, kind, values, rows)
    fast = read_table(con, name)
    slow = _reference(con, name)
    assert fast is not None
    assert list(fast.dtypes.astype(str)) == list(slow.dtypes.astype(str))
    pd.testing.assert_frame_equal(fast, slow)


def test_read_table_types_callers_rely_on() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE g AS SELECT 'C20240315001' AS customer_id, NULL::VARCHAR AS phone_maybe, "
        "'13' AS phone, DATE '2024-03-15' AS first_seen, 2::BIGINT AS record_count, "
        "0.9::DOUBLE AS match_score UNION ALL SELECT 'C20240315002', NULL, NULL, NULL, 1, NULL"
    )
    frame = read_table(con, "g")
    assert frame is not None
    assert frame["customer_id"].dtype == pd.StringDtype("pyarrow", na_value=float("nan"))
    assert frame["phone"].isna().tolist() == [False, True]
    assert frame["first_seen"].dtype == pd.ArrowDtype(pa.date32())
    assert frame["record_count"].dtype == "int64"
    assert frame["match_score"].dtype == "float64"


def test_read_table_some_columns_in_order() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA clean")
    con.execute("CREATE TABLE clean.records AS SELECT 'a' AS record_key, 'sales' AS source, 1 AS n")
    frame = read_table(con, "clean.records", columns=["n", "record_key"])
    assert frame is not None
    assert list(frame.columns) == ["n", "record_key"]
    assert frame.iloc[0].tolist() == [1, "a"]


def test_read_table_missing_table_and_column() -> None:
    con = duckdb.connect()
    assert read_table(con, "clean.nothing") is None
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    with pytest.raises(duckdb.BinderException, match="nope"):
        read_table(con, "t", columns=["nope"])


def test_where_reads_only_the_matching_rows() -> None:
    """Dtypes follow the rows read, as for any read (``n`` has no null among them: int32)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES"
        " ('a', 1, DATE '2024-01-01', NULL::VARCHAR), ('b', NULL, NULL, 'x'),"
        " ('c', 3, DATE '2024-03-01', NULL)) AS v(k, n, d, s)"
    )
    whole = read_table(con, "t")
    part = read_table(con, "t", where="k IN ('a', 'c')")
    assert whole is not None and part is not None
    assert part["k"].tolist() == ["a", "c"]
    assert part["n"].dtype == "int32" and str(whole["n"].dtype) == "Int32"
    pd.testing.assert_frame_equal(
        part.astype("string"), whole.iloc[[0, 2]].reset_index(drop=True).astype("string")
    )
    assert read_table(con, "t", ["k"], where="false") is not None

"""The analyst SQL model: ``analytics.*`` views, point-in-time macros and dictionary COMMENTs."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from warehouse.db import ensure_schemas, table_exists, transaction
from warehouse.dictionary import DATA_DICTIONARY
from warehouse.views_sql import AS_OF_ALL_MACRO_SQL, AS_OF_MACRO_SQL, AS_OF_SQL, VIEW_SQL


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comment(con: duckdb.DuckDBPyConnection, name: str) -> None:
    doc = DATA_DICTIONARY.get(name)
    if doc is None:
        return
    kind = "VIEW" if doc.kind == "view" else "TABLE"
    con.execute(f"COMMENT ON {kind} {name} IS {_quote(doc.description)}")
    present = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
            name.split(".", 1),
        ).fetchall()
    }
    for col in doc.columns:
        if col.name in present:
            text = f"{col.meaning} [lineage: {col.lineage}]" if col.lineage else col.meaning
            con.execute(f'COMMENT ON COLUMN {name}."{col.name}" IS {_quote(text)}')


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``analytics.*`` views and macros and set the data dictionary as COMMENTs.

    Run after the golden tables are (re)written: ``CREATE OR REPLACE TABLE`` drops a table's
    comments. Views over tables that do not exist yet are skipped.

    Args:
        con: a read-write connection.
    """
    ensure_schemas(con)
    with transaction(con):
        for name, doc in DATA_DICTIONARY.items():
            if doc.kind == "table" and table_exists(con, name):
                _comment(con, name)
        for name, sql in VIEW_SQL.items():
            try:
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
            except duckdb.CatalogException as exc:
                if "does not exist" not in str(exc):
                    raise
                continue  # a golden table this view reads is not built yet
            _comment(con, name)
        if table_exists(con, "golden.customers_history"):
            con.execute(AS_OF_MACRO_SQL)
            con.execute(AS_OF_ALL_MACRO_SQL)


def customer_as_of(con: duckdb.DuckDBPyConnection, customer_id: str, as_of: date) -> pd.DataFrame:
    """What the archive knew about a customer on a date (the documented point-in-time query).

    Equivalent SQL: ``SELECT * FROM analytics.customer_as_of('C20240315001', DATE
    '2025-06-30')``.

    Args:
        con: a connection.
        customer_id: 客户编号, e.g. ``C20240315001``.
        as_of: the date asked about.

    Returns:
        The history row valid on ``as_of`` (empty when the customer was not known then).

    Raises:
        LookupError: the warehouse has no ``golden.customers_history`` yet.
    """
    if not table_exists(con, "golden.customers_history"):
        raise LookupError("golden.customers_history does not exist: publish a run first")
    return con.execute(AS_OF_SQL, [customer_id, as_of, as_of]).df()

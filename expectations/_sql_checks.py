"""Whole-table checks as DuckDB SQL, shared by the clean and golden suites.

Each returns ``(success, observed)`` with the figures a GX result would carry
(``expectation``, ``column``, ``element_count``, ``unexpected_count``, examples as
``unexpected_keys``), so the report and the Dagster checks read them as they read GX ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from expectations._gx_runner import MAX_EXAMPLES

__all__ = ["columns_result", "null_result", "quote", "table_columns", "unique_result"]

Result = tuple[bool, dict[str, Any]]


def quote(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The column names of ``table`` (a table, a view or a registered frame)."""
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def columns_result(columns: Sequence[str], required: Sequence[str]) -> Result:
    """Every column of ``required`` is present in ``columns``."""
    required = list(dict.fromkeys(required))
    missing = [c for c in required if c not in columns]
    return not missing, {"required_columns": required, "missing_columns": missing}


def null_result(
    con: duckdb.DuckDBPyConnection,
    table: str,
    column: str,
    total: int,
    key: str | None,
    mostly: float | None = None,
) -> Result:
    """No null in ``column`` (or at least the share ``mostly`` filled, as GX's ``mostly``).

    Args:
        con: the connection holding ``table``.
        table: the table (or view) to check.
        column: the column that must be filled.
        total: the rows of ``table``.
        key: the column whose values name the offending rows (None: no examples).
        mostly: the least share of filled rows that passes; None = every row.
    """
    examples = f"list({quote(key)} ORDER BY {quote(key)})[1:{MAX_EXAMPLES}]" if key else "[]"
    nulls, keys = con.execute(
        f"SELECT count(*), {examples} FROM {table} WHERE {quote(column)} IS NULL"
    ).fetchall()[0]
    success = nulls == 0 if mostly is None else total == 0 or (total - nulls) / total >= mostly
    observed: dict[str, Any] = {
        "expectation": "expect_column_values_to_not_be_null",
        "column": column,
        "element_count": int(total),
        "unexpected_count": int(nulls),
    }
    if nulls:
        observed["unexpected_keys"] = [k for k in keys if k is not None]
    if mostly is not None:
        observed["thresholds"] = {"mostly": mostly}
    return success, observed


def unique_result(con: duckdb.DuckDBPyConnection, table: str, column: str, total: int) -> Result:
    """No two rows share a non-null ``column`` value (GX counts every row of a repeated value)."""
    col = quote(column)
    dupes, keys = con.execute(
        f"SELECT coalesce(sum(n), 0), list(v ORDER BY v)[1:{MAX_EXAMPLES}]"
        f" FROM (SELECT {col} AS v, count(*) AS n FROM {table} WHERE {col} IS NOT NULL"
        f" GROUP BY {col} HAVING count(*) > 1)"
    ).fetchall()[0]
    observed: dict[str, Any] = {
        "expectation": "expect_column_values_to_be_unique",
        "column": column,
        "element_count": int(total),
        "unexpected_count": int(dupes),
    }
    if dupes:
        observed.update({"unexpected_examples": keys, "unexpected_keys": keys})
    return dupes == 0, observed

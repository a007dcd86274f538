"""Whole-table checks as DuckDB SQL, shared by the clean and golden suites.

Each returns ``(success, observed)`` with the figures a GX result would carry
(``expectation``, ``column``, ``element_count``, ``unexpected_count``, examples as
``unexpected_keys``), so the report and the Dagster checks read them as they read GX ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from expectations._gx_runner import (
    MAX_EXAMPLES,
    PARTIAL_EXAMPLES,
    CheckPart,
    ExpectationPart,
    GxCheck,
    _jsonable,
    finish,
)

__all__ = [
    "ISO_DATE",
    "JSON_TEXT",
    "Result",
    "RowFormat",
    "columns_result",
    "format_part",
    "format_result",
    "is_text",
    "null_result",
    "quote",
    "table_columns",
    "unique_result",
]

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


def _strptime_iso(value: str) -> bool:
    """Python's verdict on one value, as GX's ``expect_column_values_to_match_strftime_format``."""
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _json_loads(value: str) -> bool:
    """Python's verdict on one value, as GX's ``expect_column_values_to_be_json_parseable``."""
    try:
        json.loads(value)
    except Exception:  # GX catches everything (RecursionError of a deep nesting included)
        return False
    return True


@dataclass(frozen=True)
class RowFormat:
    """A per-value format rule: a DuckDB condition that certainly passes, Python's for the rest.

    Attributes:
        expectation: the GX expectation whose verdicts it gives.
        surely_valid: SQL over ``v`` (a non-null text value), true only where ``valid`` is
            true; values it leaves out are decided by ``valid`` (few: the invalid ones and
            rare forms such as ``2026-1-5``).
        valid: the exact verdict GX computes per value.
    """

    expectation: str
    surely_valid: str
    valid: Callable[[str], bool]


ISO_DATE = RowFormat(
    "expect_column_values_to_match_strftime_format",
    # zero-padded Y-M-D that DuckDB reads as a date (a real day); year 0 is no Python date
    "regexp_full_match(v, '[0-9]{4}-[0-9]{2}-[0-9]{2}') AND TRY_CAST(v AS DATE) IS NOT NULL"
    " AND NOT starts_with(v, '0000')",
    _strptime_iso,
)
"""``%Y-%m-%d`` as ``datetime.strptime`` reads it (``ISO_DATE_FORMAT``)."""

JSON_TEXT = RowFormat(
    "expect_column_values_to_be_json_parseable",
    # DuckDB (yyjson) also takes trailing commas and bare nan/inf in any case, Python does
    # not; Python stops at ~1000 levels of nesting. A bare literal follows the start, ``[``,
    # ``,``, ``:``, a sign or a comment's ``/`` (whitespace between): a nan/inf after any other
    # character (``"customer_type_inferred"``) is inside a string and leaves the verdict alone
    "json_valid(v) AND NOT regexp_matches(v,"
    " ',\\s*[\\]}]|(^|[\\[,:+/-])\\s*([nN][aA][nN]|[iI][nN][fF])')"
    " AND length(v) - length(translate(v, '[{', '')) < 500",
    _json_loads,
)
"""Text ``json.loads`` parses."""


def is_text(values: pd.Series) -> bool:
    """``values`` hold only text and nulls (what the SQL row formats read like GX does)."""
    if isinstance(values.dtype, pd.StringDtype):
        return True
    if values.dtype != object:
        return False
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def format_result(
    frame: pd.DataFrame,
    columns: Sequence[str],
    rule: RowFormat,
    key: str | None,
    all_failing: bool = False,
) -> Result:
    """Every non-null value of ``columns`` (text, see ``is_text``) follows ``rule``.

    The same figures as GX's map expectations summarised by ``_gx_runner.run_checks``:
    per column ``element_count``, ``unexpected_count``, ``missing_count`` (flat when one
    column, under ``expectations`` plus their total when several); the first distinct
    unexpected values and their ``key`` values (from the first 20 per column, in row
    order); with ``all_failing`` every failing key, sorted, under ``failing_keys``.

    Args:
        frame: the records (any index; row order is the order of the examples).
        columns: the text columns to check.
        rule: the format.
        key: the column naming offending rows (None or absent: no keys).
        all_failing: list every failing key.
    """
    return finish(format_part("format", frame, columns, rule, key, all_failing))


def format_part(
    name: str,
    frame: pd.DataFrame,
    columns: Sequence[str],
    rule: RowFormat,
    key: str | None,
    all_failing: bool = False,
) -> CheckPart:
    """``format_result`` of check ``name`` as a part (to ``finish`` or merge over chunks)."""
    key = key if key is not None and key in frame.columns else None
    con = duckdb.connect()
    parts: list[ExpectationPart] = []
    failing: set[Any] = set()
    try:
        for column in columns:
            values = frame[column]
            text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("str")
            data = {"_row": np.arange(len(frame)), "v": text.reset_index(drop=True)}
            con.register("_values", pd.DataFrame(data, copy=False))
            verdicts: dict[str, bool] = {}  # Python's verdict once per distinct value
            bad_rows = []
            for row, value in con.execute(
                "SELECT _row, v FROM _values WHERE v IS NOT NULL"
                f" AND NOT ({rule.surely_valid}) ORDER BY _row"
            ).fetchall():
                ok = verdicts.get(value)
                if ok is None:
                    ok = verdicts[value] = rule.valid(value)
                if not ok:
                    bad_rows.append(row)
            con.unregister("_values")
            detail = {
                "expectation": rule.expectation,
                "column": column,
                "success": not bad_rows,
                "element_count": len(frame),
                "unexpected_count": len(bad_rows),
                "missing_count": int(values.isna().sum()),
            }
            first = bad_rows[:PARTIAL_EXAMPLES]
            examples = [_jsonable(v) for v in values.iloc[first].tolist()]
            keys: list[Any] = []
            if key is not None:
                keys = [_jsonable(v) for v in frame[key].iloc[first].tolist()]
                if all_failing:
                    found = frame[key].iloc[bad_rows].tolist()
                    # as _gx_runner._failing_keys: None/NA left out, a NaN key kept (as None)
                    failing.update(_jsonable(v) for v in found if v is not None and v is not pd.NA)
            parts.append(ExpectationPart(detail, examples, keys))
    finally:
        con.close()
    return CheckPart(GxCheck(name, [], key_column=key), parts, failing if all_failing else None)

"""Query results as text: an aligned table (NULL shown as NULL, CJK by display width), CSV, JSON."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pandas as pd

__all__ = ["NULL", "render_csv", "render_json", "render_table"]

NULL = "NULL"


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):  # arrays and other containers are values, not NULL
        return False


def _cell(value: Any) -> str:
    """One value as the table shows it (NULL for every kind of missing value)."""
    if _is_null(value):
        return NULL
    if hasattr(value, "tolist") and not isinstance(value, pd.Timestamp):
        value = value.tolist()  # NumPy scalars and arrays → Python values
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if not value.is_integer() or abs(value) >= 1e16 else f"{value:.1f}"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, str):
        return value.replace("\r\n", "↵").replace("\n", "↵").replace("\t", " ")
    return str(value)


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def render_table(frame: pd.DataFrame, max_rows: int = 50) -> str:
    """An aligned text table of the first ``max_rows`` rows, then a row count line.

    Columns are aligned by display width (a Chinese character takes two cells), numbers to
    the right, NULL shown as ``NULL``; an empty result says ``(0 rows)``.

    Args:
        frame: the query result.
        max_rows: rows shown; the rest are counted.

    Returns:
        The table and a last line ``(N rows)`` or ``… K more rows (N in all)``.

    Examples:
        >>> print(render_table(pd.DataFrame({"名称": ["张三", None], "n": [1, 22]})))
        名称      n
        ------  ---
        张三      1
        NULL     22
        (2 rows)
    """
    from tabulate import tabulate  # wide characters measured with wcwidth when installed

    shown = frame.head(max_rows)
    rows = [[_cell(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    align = ["right" if _numeric(frame[c]) else "left" for c in frame.columns]
    headers = [str(c) for c in frame.columns]
    table = tabulate(
        rows,
        headers=headers,
        tablefmt="simple",
        disable_numparse=True,
        colalign=align if headers else None,
    )
    total = len(frame)
    if total > max_rows:
        footer = f"… {total - max_rows} more rows ({total} in all; --max-rows N shows more)"
    else:
        footer = f"({total} row{'' if total == 1 else 's'})"
    return f"{table}\n{footer}" if table else footer


def render_csv(frame: pd.DataFrame) -> str:
    """CSV for a spreadsheet: formula payloads neutralized (E.164 phones kept), NULL empty."""
    from warehouse.security.excel import neutralize_formulas

    return neutralize_formulas(frame).to_csv(index=False)


def _json_value(value: Any) -> Any:
    if _is_null(value):
        return None
    if isinstance(value, pd.Timestamp | datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        return value.hex()
    return value


def render_json(frame: pd.DataFrame) -> str:
    """A JSON array of objects, one a row; NULL as ``null``, dates ISO, Chinese unescaped."""
    records = [
        {str(k): _json_value(v) for k, v in zip(frame.columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]
    return json.dumps(records, ensure_ascii=False, default=str)

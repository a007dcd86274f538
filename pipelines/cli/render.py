"""Query results (Arrow tables) as text: an aligned table (NULL as NULL, CJK by width), CSV, JSON.

Arrow keeps SQL types (an INTEGER column with NULLs stays integer, NULL stays None) and needs
no pandas, so `customer-archive sql` starts fast; only the CSV writer loads pandas.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa

__all__ = ["NULL", "render_csv", "render_frame", "render_json", "render_table"]

NULL = "NULL"


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> str:
    """One value as the table shows it (NULL for every kind of missing value)."""
    if _is_null(value):
        return NULL
    if isinstance(value, datetime):
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


def _numeric(data_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def render_table(
    table: pa.Table, max_rows: int = 50, more_hint: str = "--max-rows N shows more"
) -> str:
    """An aligned text table of the first ``max_rows`` rows, then a row count line.

    Columns are aligned by display width (a Chinese character takes two cells), numbers to
    the right, NULL shown as ``NULL``; an empty result says ``(0 rows)``.

    Args:
        table: the query result.
        max_rows: rows shown; the rest are counted.
        more_hint: how the reader asks for more rows (the command's option).

    Returns:
        The table and a last line ``(N rows)`` or ``… K more rows (N in all)``.

    Examples:
        >>> print(render_table(pa.table({"名称": ["张三", None], "n": [1, 22]})))
        名称      n
        ------  ---
        张三      1
        NULL     22
        (2 rows)
    """
    from tabulate import tabulate  # wide characters measured with wcwidth when installed

    rows = [[_cell(v) for v in row] for row in _rows(table.slice(0, max_rows))]
    align = ["right" if _numeric(field.type) else "left" for field in table.schema]
    headers = [str(name) for name in table.column_names]
    text = tabulate(
        rows,
        headers=headers,
        tablefmt="simple",
        disable_numparse=True,
        colalign=align if headers else None,
    )
    total = table.num_rows
    if total > max_rows:
        footer = f"… {total - max_rows} more rows ({total} in all; {more_hint})"
    else:
        footer = f"({total} row{'' if total == 1 else 's'})"
    return f"{text}\n{footer}" if text else footer


def render_frame(frame: Any, max_rows: int = 50, more_hint: str = "--limit N shows more") -> str:
    """A pandas listing (review queue, deliveries) as `render_table` shows query results.

    Missing values of every kind (None, NaN, NaT) show as NULL, not as pandas' ``NaN`` /
    ``None`` / ``NaT``, and Chinese text is aligned by its display width.
    """
    return render_table(pa.Table.from_pandas(frame, preserve_index=False), max_rows, more_hint)


def render_csv(table: pa.Table) -> str:
    """CSV for a spreadsheet: formula payloads neutralized (E.164 phones kept), NULL empty."""
    import pandas as pd

    from warehouse.security.excel import neutralize_formulas

    frame = table.to_pandas(types_mapper=pd.ArrowDtype)  # integers with NULLs stay integers
    return neutralize_formulas(frame).to_csv(index=False)


def _json_value(value: Any) -> Any:
    if _is_null(value):
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def render_json(table: pa.Table) -> str:
    """A JSON array of objects, one a row; NULL as ``null``, dates ISO, Chinese unescaped."""
    names = [str(name) for name in table.column_names]
    records = [{k: _json_value(v) for k, v in zip(names, row, strict=True)} for row in _rows(table)]
    return json.dumps(records, ensure_ascii=False, default=str)

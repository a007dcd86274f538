"""Neutralize spreadsheet formula injection in CSV/XLSX exports (formula payloads, not phones)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cell a spreadsheet would evaluate: it starts with = @ TAB CR, or with + - followed by
# anything but a plain number or phone number (digits, spaces, dashes, dots, parentheses):
# ``+8613912345678``, ``-2.5``, ``+86 139-1234-5678`` and a lone ``-`` are data;
# ``+1+cmd|'/C calc'!A0``, ``-HYPERLINK(…)`` and ``=1+1`` are formulas.
_PATTERN = r"^(?:[=@\t\r]|[+\-](?=[\s\S]*[^\d ().\-]))"


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy whose text cells that a spreadsheet would run as a formula start with ``'``.

    Only text columns are touched (numbers stay numbers), and only real formula payloads: a
    cell starting with ``=``, ``@``, TAB or CR, or with ``+``/``-`` followed by something that
    is not a plain number or phone number. E.164 phones (``+8613912345678``) and negative
    numbers stay as they are. Apply it to every frame written to a file meant for a
    spreadsheet (CSV, XLSX: ``sql --format csv``, audit worksheets); JSON, Parquet and DuckDB
    outputs keep the original values.

    Args:
        frame: the table to export.

    Returns:
        A new frame; ``=1+1`` becomes ``'=1+1``, ``+8613912345678`` stays as it is.

    Examples:
        >>> neutralize_formulas(pd.DataFrame({"a": ["=HYPERLINK(1)", "ok"]}))["a"].tolist()
        ["'=HYPERLINK(1)", 'ok']
    """
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if not (pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)):
            continue
        text = series.astype("string")
        risky = text.str.contains(_PATTERN, regex=True, na=False)
        if pd.api.types.is_object_dtype(series):
            risky &= series.map(lambda v: isinstance(v, str)).astype(bool)
        if risky.any():
            out[column] = series.astype("object").where(~risky, "'" + text[risky].astype(str))
            if pd.api.types.is_string_dtype(series) and not pd.api.types.is_object_dtype(series):
                out[column] = out[column].astype(series.dtype)
    return out


def write_audit_worksheet(worksheet: pd.DataFrame, strata: pd.DataFrame, path: Path) -> None:
    """Write an audit worksheet (formulas neutralized) as CSV, or XLSX with a strata sheet."""
    sheet = neutralize_formulas(worksheet)
    if path.suffix.lower() == ".csv":
        sheet.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        with pd.ExcelWriter(path, engine="xlsxwriter") as xl:
            sheet.to_excel(xl, sheet_name="audit", index=False)
            strata.to_excel(xl, sheet_name="strata", index=False)

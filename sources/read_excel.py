"""XLSX/XLS reader (python-calamine): sheet choice, header-row detection, lossless cell text."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from python_calamine import CalamineWorkbook

from sources.headers import HEADER_SCAN_ROWS, detect_header_row, normalize_header, unique_headers
from sources.raw_table import ROW_NUMBER, BadRow, FileRejected, RawTable, finish_table

_EXACT_DIGITS = 15
"""Excel keeps 15 significant digits; a longer number typed into a cell lost the rest."""


def cell_text(value: Any) -> str | None:
    """Render one calamine cell as the text a user sees, never as a float artefact.

    Integral numbers lose the ``.0`` (13912345678.0 → ``13912345678``) and long ones are
    written out in full digits instead of exponent form; dates become ISO
    (``2024-03-15`` or ``2024-03-15 10:30:00``); booleans ``TRUE``/``FALSE``; strings
    (including formula-like text such as ``=HYPERLINK(…)``) are kept as they are.

    Args:
        value: A cell value from calamine (str, float, int, bool, date, datetime, time,
            timedelta or None).

    Returns:
        The text, or None for an empty cell.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return format(Decimal(repr(value)).to_integral_value(), "f")
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _convert_column(values: Sequence[Any]) -> tuple[Any, int]:
    """Convert a column's cells (cached per distinct typed value); count over-long numbers.

    A column of text cells only (the usual case) becomes an Arrow string array at once:
    ``cell_text`` would return each text as it is ("" stays "", read as empty by
    ``finish_table`` like the None ``cell_text`` gives it).
    """
    try:
        return pd.arrays.ArrowStringArray(pa.array(values, pa.string())), 0
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # numbers, dates, booleans: rendered one distinct value at a time
    # text cells as they are ("" read as empty), the others rendered below
    out: list[str | None] = [v if v.__class__ is str and v else None for v in values]
    cache: dict[tuple[type, Any], str | None] = {}
    long_numbers = 0
    for i in [i for i, v in enumerate(values) if v.__class__ is not str]:
        value = values[i]
        key = (value.__class__, value)
        text = cache.get(key, "\x00")
        if text == "\x00":
            text = cell_text(value)
            cache[key] = text
        if isinstance(value, float) and abs(value) >= 10**_EXACT_DIGITS:
            long_numbers += 1
        out[i] = text
    return out, long_numbers


AUTO_SHEET = "auto"
"""``sheet: auto``: read the sheet whose header matches the mapping best."""


def _header_score(sheet: Any, keys: set[str]) -> int:
    """How many known headers the best of a sheet's first rows holds."""
    best = 0
    for number, row in enumerate(sheet.iter_rows()):
        if number >= HEADER_SCAN_ROWS:
            break
        cells = {normalize_header(cell_text(c) or "") for c in row}
        best = max(best, len(cells & keys))
    return best


def _matching_sheet(
    workbook: CalamineWorkbook, aliases: dict[str, list[str]], why: str
) -> tuple[Any, str]:
    """The sheet whose header matches the mapping best (first on ties), and a note saying so."""
    names = list(workbook.sheet_names)
    keys = {normalize_header(n) for found in aliases.values() for n in found} - {""}
    threshold = max(1, min(2, len(keys)))
    best_name, best_score = None, 0
    for name in names:
        score = _header_score(workbook.get_sheet_by_name(name), keys)
        if score > best_score:
            best_name, best_score = name, score
    if best_name is None or best_score < threshold:
        raise FileRejected(f"{why}; no sheet has a header matching the mapping (sheets: {names})")
    return workbook.get_sheet_by_name(
        best_name
    ), f"{why}; read sheet {best_name!r}, whose header matches the mapping"


def _pick_sheet(
    workbook: CalamineWorkbook, sheet: str | int, aliases: dict[str, list[str]]
) -> tuple[Any, str | None]:
    names = list(workbook.sheet_names)
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise FileRejected(f"sheet index {sheet} out of range (sheets: {names})")
        return workbook.get_sheet_by_index(sheet), None
    if sheet in names:
        return workbook.get_sheet_by_name(sheet), None
    wanted = normalize_header(sheet)
    for name in names:
        if normalize_header(name) == wanted:
            return workbook.get_sheet_by_name(name), None
    if sheet == AUTO_SHEET:
        return _matching_sheet(workbook, aliases, "sheet: auto")
    return _matching_sheet(workbook, aliases, f"sheet {sheet!r} not found")


@dataclass
class _Sheet:
    """An opened sheet: its rows after the header, header texts and where the data starts."""

    rows: Iterator[list[Any]]
    headers: list[str]
    header_number: int
    data_rows: int
    """Rows below the header (calamine's range height; an upper bound on records)."""
    note: str | None


def _open_sheet(
    path: Path, aliases: dict[str, list[str]], sheet: str | int, header_row: int | str
) -> _Sheet:
    if path.stat().st_size == 0:
        raise FileRejected("empty file")
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        picked, sheet_note = _pick_sheet(workbook, sheet, aliases)
        rows_iter = iter(picked.iter_rows())
        head: list[list[Any]] = []
        for row in rows_iter:
            head.append(row)
            if len(head) >= HEADER_SCAN_ROWS:
                break
        height = int(picked.height)
    except FileRejected:
        raise
    except Exception as exc:  # calamine raises several error types for damaged workbooks
        raise FileRejected(f"unreadable workbook: {type(exc).__name__}: {exc}") from exc
    head_text = [[cell_text(c) or "" for c in row] for row in head]
    if not any(any(c.strip() for c in row) for row in head_text):
        raise FileRejected("empty sheet")
    index = detect_header_row(head_text, aliases) if header_row == "auto" else int(header_row) - 1
    if index >= len(head_text):
        raise FileRejected(f"header_row {header_row} is beyond the sheet's {len(head)} rows")
    return _Sheet(
        rows=itertools.chain(head[index + 1 :], rows_iter),
        headers=unique_headers(head_text[index]),
        header_number=index + 1,
        data_rows=max(height - index - 1, 0),
        note=f"{path.name}: {sheet_note}" if sheet_note else None,
    )


def _sheet_table(
    path: Path,
    sheet: _Sheet,
    number: int,
    limit: int | None,
    warnings: list[str],
    long_numbers: dict[str, int],
    drop_unnamed: list[str] | None = None,
) -> tuple[RawTable, int]:
    """The next ``limit`` rows of a sheet (None: all) as a table, and the last row's number.

    Over-long numbers are counted per header into ``long_numbers`` (summed over the batches
    of one file, warned about once by ``_long_number_warnings``).
    """
    headers = sheet.headers
    width = len(headers)
    bad: list[BadRow] = []
    rows: list[list[Any]] = []
    try:
        rows.extend(itertools.islice(sheet.rows, limit))  # keeps the rows read before an error
    except Exception as exc:
        raise FileRejected(f"unreadable workbook at row {number + len(rows)}: {exc}") from exc
    if all(size == width for size in map(len, rows)):  # calamine's ranges are rectangular
        kept, numbers = rows, list(range(number + 1, number + 1 + len(rows)))
        number += len(rows)
    else:
        kept, numbers = [], []
        for row in rows:
            number += 1
            size = len(row)
            if size > width and any(c not in ("", None) for c in row[width:]):
                raw = "\t".join(cell_text(c) or "" for c in row)
                bad.append(BadRow(number, raw, f"cells beyond the {width} header columns"))
                continue
            numbers.append(number)
            if size != width:  # short rows padded with empty cells, empty extra cells dropped
                row = row[:width] if size > width else [*row, *([None] * (width - size))]
            kept.append(row)
    del rows
    # rows to columns in one transpose
    cells: list[Any] = list(zip(*kept, strict=True)) if kept else [() for _ in headers]
    del kept
    columns: dict[str, Any] = {}
    for header, values in zip(headers, cells, strict=True):
        columns[header], count = _convert_column(values)
        if count:
            long_numbers[header] = long_numbers.get(header, 0) + count
    frame = pd.DataFrame(columns, dtype="string")
    frame[ROW_NUMBER] = pd.array(numbers, dtype="int64")
    return finish_table(headers, frame, bad, warnings, drop_unnamed), number


def _long_number_warnings(path: Path, long_numbers: dict[str, int]) -> list[str]:
    """One warning per column with over-long numbers, counted over the whole sheet."""
    return [
        f"{path.name}: column {header!r}: {count} numeric cell(s) with more than "
        f"{_EXACT_DIGITS} digits; Excel kept only {_EXACT_DIGITS} significant digits"
        for header, count in long_numbers.items()
    ]


def read_excel(
    path: Path,
    aliases: dict[str, list[str]],
    sheet: str | int = 0,
    header_row: int | str = "auto",
) -> RawTable:
    """Read one sheet of an XLSX/XLS export as text.

    ``source_row`` is the sheet row number the user sees in Excel (header on row 3 →
    first data row is 4). Title rows, blank rows and merged title cells above the header
    are skipped by header-row detection unless ``header_row`` (1-based) is given.

    Args:
        path: The delivered workbook.
        aliases: Canonical field → header aliases (used to find the header row).
        sheet: Sheet name (matched tolerantly), 0-based index, or ``auto`` (the sheet whose
            header matches the mapping). A named sheet that is missing falls back to the
            matching sheet with a warning; the file is rejected when no sheet matches.
        header_row: ``auto`` or the 1-based sheet row of the header.

    Returns:
        The sheet as a ``RawTable``.

    Raises:
        FileRejected: when the workbook is corrupt, the sheet is missing or it is empty.
    """
    opened = _open_sheet(path, aliases, sheet, header_row)
    warnings = [opened.note] if opened.note else []
    long_numbers: dict[str, int] = {}
    table, _ = _sheet_table(path, opened, opened.header_number, None, warnings, long_numbers)
    table.warnings.extend(_long_number_warnings(path, long_numbers))
    return table


def read_excel_batches(
    path: Path,
    aliases: dict[str, list[str]],
    sheet: str | int = 0,
    header_row: int | str = "auto",
    batch_rows: int | None = None,
) -> Iterator[RawTable]:
    """``read_excel`` as batches of at most ``batch_rows`` sheet rows (None: one batch).

    python-calamine loads the sheet's cells whole (it has no lazy row reader); what is
    bounded by the batch is everything made of them: the Python cell values, the text
    columns and the records built from a batch. A sheet that fits in one batch is read
    exactly as ``read_excel`` does.
    """
    opened = _open_sheet(path, aliases, sheet, header_row)
    warnings = [opened.note] if opened.note else []
    long_numbers: dict[str, int] = {}
    if batch_rows is None or opened.data_rows <= batch_rows:
        table = _sheet_table(path, opened, opened.header_number, None, warnings, long_numbers)[0]
        table.warnings.extend(_long_number_warnings(path, long_numbers))
        yield table
        return
    number = opened.header_number
    dropped: list[str] | None = None
    previous: RawTable | None = None  # held back: the last batch carries the sheet's warnings
    while True:
        table, last = _sheet_table(
            path, opened, number, batch_rows, warnings, long_numbers, dropped
        )
        if last == number and number > opened.header_number:
            break
        if dropped is None:
            dropped = [h for h in opened.headers if h not in table.headers]
        number = last
        if previous is not None:
            yield previous
        previous = table
        warnings = []
    if previous is not None:
        previous.warnings.extend(_long_number_warnings(path, long_numbers))
        yield previous

"""CSV/TSV reader: encoding detection, header-row detection, Arrow fast path, careful fallback."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from sources.encoding import SAMPLE_BYTES, detect_encoding
from sources.headers import (
    HEADER_SCAN_ROWS,
    detect_header_row,
    normalize_header,
    unique_headers,
)
from sources.raw_table import ROW_NUMBER, BadRow, FileRejected, RawTable, finish_table

_HEAD_CHARS = 256 * 1024
_DELIMITERS = (",", "\t", ";", "|")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_EXCEL_SCIENTIFIC = re.compile(r"[+-]?\d(?:\.\d+)?E\+\d{1,2}")


def _lines(text: str) -> Iterator[str]:
    """Split on \\r\\n, \\n or \\r only (never on U+2028 etc. inside values), keeping endings."""
    for match in _LINE.finditer(text):
        yield match.group(0)


def _show_bytes(text: str) -> str:
    """Render undecodable bytes (surrogate-escaped) as \\xNN so the raw content stays readable."""
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group(0)) - 0xDC00:02x}", text)


def _decode(data: bytes, encoding: str) -> tuple[str, bool]:
    try:
        text = data.decode(encoding)
        clean = True
    except UnicodeDecodeError:
        text = data.decode(encoding, errors="surrogateescape")
        clean = False
    return text.removeprefix("\ufeff"), clean


def _head_rows(head: str, delimiter: str) -> tuple[list[list[str]], list[int]]:
    """Parse leading records; also return how many characters each record ends at."""
    rows: list[list[str]] = []
    ends: list[int] = []
    consumed = 0
    pending: list[str] = []

    def feed() -> Iterator[str]:
        for line in _lines(head):
            pending.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=delimiter)
    try:
        for row in reader:
            consumed += sum(len(p) for p in pending)
            pending.clear()
            if row:
                rows.append(row)
                ends.append(consumed)
            if len(rows) >= HEADER_SCAN_ROWS:
                break
    except csv.Error:
        pass  # a broken record in the head: the header search uses the rows before it
    return rows, ends


def _sniff_delimiter(head: str, aliases: dict[str, list[str]]) -> str:
    keys = {normalize_header(n) for names in aliases.values() for n in names}
    best, best_score = ",", (-1, -1)
    for delimiter in _DELIMITERS:
        rows, _ = _head_rows(head, delimiter)
        matched = max((len({normalize_header(c) for c in row} & keys) for row in rows), default=0)
        widest = max((len(row) for row in rows), default=0)
        score = (matched, widest)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _fast_read(body: str, headers: list[str], delimiter: str) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(body.encode("utf-8")),
        read_options=pacsv.ReadOptions(column_names=headers, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(headers, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _careful_read(
    body: str, headers: list[str], delimiter: str, first_row: int
) -> tuple[dict[str, list[str | None]], list[int], list[BadRow]]:
    """Record-by-record read that rejects wrong-width, undecodable and unparsable records."""
    width = len(headers)
    columns: dict[str, list[str | None]] = {h: [] for h in headers}
    numbers: list[int] = []
    bad: list[BadRow] = []
    pending: list[str] = []

    def feed() -> Iterator[str]:
        for line in _lines(body):
            pending.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    number = first_row - 1
    while True:
        try:
            row = next(reader)
            error = None
        except StopIteration:
            break
        except csv.Error as exc:
            row, error = None, f"unparsable CSV record: {exc}"
        raw = "".join(pending)
        pending.clear()
        if row == []:
            continue
        number += 1
        raw_text = _show_bytes(raw.rstrip("\r\n"))
        if error is None and row is not None and any(_SURROGATE.search(c) for c in row):
            error = "undecodable bytes"
        if error is None and row is not None and len(row) != width:
            error = f"wrong column count: expected {width}, got {len(row)}"
        if error is not None or row is None:
            bad.append(BadRow(number, raw_text, error or "unparsable CSV record"))
            continue
        for header, value in zip(headers, row, strict=True):
            columns[header].append(value)
        numbers.append(number)
    return columns, numbers, bad


def _scientific_warnings(table: RawTable, path: Path) -> list[str]:
    warnings = []
    for header in table.headers:
        column = table.data[header]
        candidates = column.loc[column.str.contains("E+", regex=False).fillna(False)]
        hits = candidates.loc[candidates.str.fullmatch(_EXCEL_SCIENTIFIC.pattern).fillna(False)]
        if len(hits):
            warnings.append(
                f"{path.name}: column {header!r}: {len(hits)} value(s) in Excel scientific "
                f"notation (e.g. {hits.iloc[0]}); the digits were lost before delivery"
            )
    return warnings


def read_delimited(
    path: Path,
    aliases: dict[str, list[str]],
    encoding: str = "auto",
    delimiter: str | None = None,
    header_row: int | str = "auto",
) -> RawTable:
    """Read a CSV/TSV export as text, keeping every value and rejecting only bad records.

    The encoding is detected on a sample (see ``detect_encoding``) unless given; the
    header row is the first of the leading rows that matches the mapped headers (title
    rows above it skipped) unless ``header_row`` (1-based) is given. Files decode and
    parse through Arrow in one pass; a file with bad records (wrong column count,
    undecodable bytes, broken quoting) is re-read record by record and only those records
    are rejected. ``source_row`` is the record number as a spreadsheet shows the file:
    the header row and any title rows count, empty lines do not.

    Args:
        path: The delivered file.
        aliases: Canonical field → header aliases (used to find the header row).
        encoding: ``auto`` or a codec name.
        delimiter: One character, or None to sniff among , TAB ; |.
        header_row: ``auto`` or the 1-based record number of the header.

    Returns:
        The file as a ``RawTable``.

    Raises:
        FileRejected: when the file is empty or has no header.
    """
    data = path.read_bytes()
    if encoding == "auto":
        encoding = detect_encoding(data[:SAMPLE_BYTES])
    text, clean = _decode(data, encoding)
    del data
    if not text.strip():
        raise FileRejected("empty file")
    head = text[:_HEAD_CHARS]
    if delimiter is None:
        delimiter = _sniff_delimiter(head, aliases)
    rows, ends = _head_rows(head, delimiter)
    if not rows:
        raise FileRejected("no header row found")
    if header_row == "auto":
        index = detect_header_row(rows, aliases)
    else:
        index = int(header_row) - 1
        if index >= len(rows):
            raise FileRejected(f"header_row {header_row} is beyond the first {len(rows)} rows")
    headers = unique_headers(rows[index])
    body = text[ends[index] :]
    del text
    first_row = index + 2
    bad: list[BadRow] = []
    frame: pd.DataFrame | None = None
    if clean:
        try:
            table = _fast_read(body, headers, delimiter)
            frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
            frame[ROW_NUMBER] = pd.RangeIndex(first_row, first_row + len(frame))
        except pa.ArrowInvalid:
            frame = None
    if frame is None:
        columns, numbers, bad = _careful_read(body, headers, delimiter, first_row)
        frame = pd.DataFrame(columns, dtype="string")
        frame[ROW_NUMBER] = pd.array(numbers, dtype="int64")
    result = finish_table(headers, frame, bad)
    result.warnings.extend(_scientific_warnings(result, path))
    return result

"""CSV/TSV reader: encoding detection, header-row detection, Arrow fast path, careful fallback."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    return next(_careful_batches(_lines(body), headers, delimiter, first_row, None))


def _careful_batches(
    lines: Iterator[str],
    headers: list[str],
    delimiter: str,
    first_row: int,
    batch_rows: int | None,
    skip_before: int = 0,
) -> Iterator[tuple[dict[str, list[str | None]], list[int], list[BadRow]]]:
    """``_careful_read`` over lines, in batches of ``batch_rows`` records (None: one batch).

    Records numbered below ``skip_before`` are parsed (to number the rest) but not returned.
    """
    width = len(headers)
    columns: dict[str, list[str | None]] = {h: [] for h in headers}
    numbers: list[int] = []
    bad: list[BadRow] = []
    pending: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
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
        if number < skip_before:
            continue
        if batch_rows is not None and len(numbers) + len(bad) >= batch_rows:
            yield columns, numbers, bad
            columns, numbers, bad = {h: [] for h in headers}, [], []
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
    yield columns, numbers, bad


def _scientific_warnings(table: RawTable, path: Path) -> list[str]:
    return [
        f"{path.name}: column {header!r}: {count} value(s) in Excel scientific "
        f"notation (e.g. {example}); the digits were lost before delivery"
        for header, (count, example) in _scientific_hits(table).items()
    ]


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
    layout = _layout(text[:_HEAD_CHARS], aliases, delimiter, header_row)
    headers, delimiter, first_row = layout.headers, layout.delimiter, layout.first_row
    body = text[layout.body_start :]
    del text
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


_COUNT_CHUNK = 1 << 24
_TEXT_CHUNK = 1 << 20
_BLOCK_BYTES = 1 << 24
"""Bytes of CSV Arrow parses at a time when a file streams (a batch is one or more blocks)."""


def record_bound(path: Path) -> int:
    """More records than the file can hold: its line endings (\\n, \\r\\n, lone \\r) plus one.

    Read in chunks of 16 MB, never whole; a \\r\\n split between two chunks counts twice (a
    bound only needs to be high).
    """
    lines = 1
    with path.open("rb") as stream:
        while chunk := stream.read(_COUNT_CHUNK):
            lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
    return lines


def _text_stream(path: Path, encoding: str) -> io.TextIOWrapper:
    """The file as text, undecodable bytes surrogate-escaped, line endings untouched."""
    return io.TextIOWrapper(
        path.open("rb"), encoding=encoding, errors="surrogateescape", newline=""
    )


def _read_head(stream: io.TextIOWrapper) -> str:
    head = stream.read(_HEAD_CHARS)
    if head.startswith("\ufeff"):
        head = head[1:] + stream.read(1)
    return head


@dataclass(frozen=True)
class _Layout:
    """Where a delimited file's records start and how they are split."""

    headers: list[str]
    delimiter: str
    first_row: int
    body_start: int
    """Characters of the (BOM-less) head before the first data record."""


def _layout(
    head: str,
    aliases: dict[str, list[str]],
    delimiter: str | None,
    header_row: int | str,
) -> _Layout:
    """Delimiter, header row and headers from a file's first characters (as ``read_delimited``)."""
    if not head.strip():
        raise FileRejected("empty file")
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
    return _Layout(unique_headers(rows[index]), delimiter, index + 2, ends[index])


class _Utf8Body(io.RawIOBase):
    """The records of a text stream as UTF-8 bytes (escaped undecodable bytes come back as
    they were, so Arrow's UTF-8 check rejects them), read chunk by chunk."""

    def __init__(self, first: str, rest: io.TextIOWrapper) -> None:
        super().__init__()
        self._rest = rest
        self._pending = memoryview(first.encode("utf-8", "surrogateescape"))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._pending):
            text = self._rest.read(_TEXT_CHUNK)
            if not text:
                return 0
            self._pending = memoryview(text.encode("utf-8", "surrogateescape"))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _stream_lines(first: str, rest: io.TextIOWrapper) -> Iterator[str]:
    """The lines of ``first`` followed by the stream (a line cut between the two rejoined)."""
    lines = list(_lines(first))
    carry = lines.pop() if lines and not lines[-1].endswith("\n") else ""
    yield from lines
    for line in rest:
        if carry:
            yield from _lines(carry + line)
            carry = ""
        else:
            yield line
    if carry:
        yield carry


def _arrow_frames(body: io.RawIOBase, layout: _Layout, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Arrow's streaming CSV reader over the records, regrouped into ``batch_rows`` rows."""
    reader = pacsv.open_csv(
        io.BufferedReader(body, buffer_size=_TEXT_CHUNK),
        read_options=pacsv.ReadOptions(column_names=layout.headers, block_size=_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(layout.headers, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    pending: list[pa.RecordBatch] = []
    held = 0
    number = layout.first_row
    as_text = {pa.string(): pd.StringDtype()}.get

    def frame_of(table: pa.Table) -> pd.DataFrame:
        frame = table.to_pandas(types_mapper=as_text)
        frame[ROW_NUMBER] = pd.RangeIndex(number, number + len(frame))
        return frame

    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while held >= batch_rows:
            table = pa.Table.from_batches(pending)
            yield frame_of(table.slice(0, batch_rows))
            number += batch_rows
            rest = table.slice(batch_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held or number == layout.first_row:
        yield frame_of(pa.Table.from_batches(pending, schema=reader.schema))


def _scientific_hits(table: RawTable) -> dict[str, tuple[int, str]]:
    """Per column: how many values are in Excel scientific notation, and the first one."""
    hits_by_column: dict[str, tuple[int, str]] = {}
    for header in table.headers:
        column = table.data[header]
        candidates = column.loc[column.str.contains("E+", regex=False).fillna(False)]
        hits = candidates.loc[candidates.str.fullmatch(_EXCEL_SCIENTIFIC.pattern).fillna(False)]
        if len(hits):
            hits_by_column[header] = (len(hits), str(hits.iloc[0]))
    return hits_by_column


def _stream_delimited(
    path: Path,
    aliases: dict[str, list[str]],
    encoding: str,
    delimiter: str | None,
    header_row: int | str,
    batch_rows: int,
) -> Iterator[RawTable]:
    """``read_delimited`` in batches of ``batch_rows`` records, never holding the whole file.

    Arrow's streaming reader parses the records; at the first block it cannot take (a bad
    record, undecodable bytes) the file is read again record by record from the start, and
    the records the Arrow batches already gave are skipped (parsed only to be numbered).
    The scientific-notation warnings come with the last batch, counted over the file.
    """
    if encoding == "auto":
        with path.open("rb") as raw:
            encoding = detect_encoding(raw.read(SAMPLE_BYTES))
    codecs.lookup(encoding)
    with _text_stream(path, encoding) as stream:
        head = _read_head(stream)
        layout = _layout(head, aliases, delimiter, header_row)
    hits: dict[str, tuple[int, str]] = {}
    dropped: list[str] | None = None
    previous: RawTable | None = None

    def finish(frame: pd.DataFrame, bad: list[BadRow]) -> RawTable:
        nonlocal dropped
        table = finish_table(layout.headers, frame, bad, drop_unnamed=dropped)
        if dropped is None:
            dropped = [h for h in layout.headers if h not in table.headers]
        for header, (count, example) in _scientific_hits(table).items():
            before = hits.get(header, (0, example))
            hits[header] = (before[0] + count, before[1])
        return table

    emitted = 0
    with _text_stream(path, encoding) as stream:
        body = _Utf8Body(_read_head(stream)[layout.body_start :], stream)
        try:
            for frame in _arrow_frames(body, layout, batch_rows):
                if previous is not None:
                    yield previous
                previous = finish(frame, [])
                emitted += len(frame)
        except pa.ArrowInvalid:
            careful = True
        else:
            careful = False
    if careful:
        with _text_stream(path, encoding) as stream:
            lines = _stream_lines(_read_head(stream)[layout.body_start :], stream)
            for columns, numbers, bad in _careful_batches(
                lines,
                layout.headers,
                layout.delimiter,
                layout.first_row,
                batch_rows,
                skip_before=layout.first_row + emitted,
            ):
                frame = pd.DataFrame(columns, dtype="string")
                frame[ROW_NUMBER] = pd.array(numbers, dtype="int64")
                if previous is not None:
                    yield previous
                previous = finish(frame, bad)
    if previous is not None:
        previous.warnings.extend(
            f"{path.name}: column {header!r}: {count} value(s) in Excel scientific "
            f"notation (e.g. {example}); the digits were lost before delivery"
            for header, (count, example) in hits.items()
        )
        yield previous


def read_delimited_batches(
    path: Path,
    aliases: dict[str, list[str]],
    encoding: str = "auto",
    delimiter: str | None = None,
    header_row: int | str = "auto",
    batch_rows: int | None = None,
) -> Iterator[RawTable]:
    """``read_delimited`` as batches of at most ``batch_rows`` records (None: one batch).

    A file whose line count shows it fits in one batch is read in one pass, exactly as
    ``read_delimited`` does (same CPU); a longer one streams (``_stream_delimited``). Row
    numbers, rejected records and values are the same either way.

    Raises:
        FileRejected: when the file is empty or has no header (before any batch).
    """
    if batch_rows is None or record_bound(path) - 1 <= batch_rows:
        yield read_delimited(path, aliases, encoding, delimiter, header_row)
        return
    yield from _stream_delimited(path, aliases, encoding, delimiter, header_row, batch_rows)

"""Dispatch a delivered file to the reader for its format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sources.config import SourceConfig
from sources.raw_table import FileRejected, RawTable
from sources.read_delimited import read_delimited, read_delimited_batches
from sources.read_excel import read_excel, read_excel_batches
from sources.read_structured import read_json, read_jsonl, read_parquet, read_parquet_batches


def read_delivery(path: Path, source: SourceConfig) -> RawTable:
    """Read one delivered file of ``source`` as text cells.

    Args:
        path: The file.
        source: Its source mapping (format, encoding, delimiter, sheet, header row).

    Returns:
        The file as a ``RawTable``.

    Raises:
        FileRejected: when the whole file cannot be used (unknown format, empty, corrupt).
    """
    try:
        file_format = source.file_format(path)
    except ValueError as exc:
        raise FileRejected(str(exc)) from exc
    aliases = source.header_aliases()
    try:
        if file_format in ("csv", "tsv"):
            delimiter = source.delimiter or ("\t" if file_format == "tsv" else None)
            return read_delimited(path, aliases, source.encoding, delimiter, source.header_row)
        if file_format in ("xlsx", "xls"):
            return read_excel(path, aliases, source.sheet, source.header_row)
        if file_format == "jsonl":
            return read_jsonl(path, source.encoding)
        if file_format == "json":
            return read_json(path, source.encoding)
        return read_parquet(path)
    except OSError as exc:
        raise FileRejected(f"unreadable file: {exc}") from exc
    except (LookupError, UnicodeError) as exc:
        raise FileRejected(f"cannot decode file: {exc}") from exc


def read_delivery_batches(
    path: Path, source: SourceConfig, batch_rows: int | None
) -> Iterator[RawTable]:
    """``read_delivery`` in batches of at most ``batch_rows`` rows (None: the whole file).

    A file that fits in one batch is read in one pass by the same reader as
    ``read_delivery``; a longer CSV/TSV, XLSX/XLS or Parquet file comes in batches with the
    file's row numbers. JSON and JSON Lines are always read whole: their columns are the
    union of the keys of every record, known only at the end of the file.

    Raises:
        FileRejected: when the whole file cannot be used; from the first batch on, or
            later when the file breaks after some batches (the caller discards those).
    """
    try:
        file_format = source.file_format(path)
    except ValueError as exc:
        raise FileRejected(str(exc)) from exc
    if file_format not in ("csv", "tsv", "xlsx", "xls", "parquet") or batch_rows is None:
        yield read_delivery(path, source)
        return
    aliases = source.header_aliases()
    try:
        if file_format in ("csv", "tsv"):
            delimiter = source.delimiter or ("\t" if file_format == "tsv" else None)
            yield from read_delimited_batches(
                path, aliases, source.encoding, delimiter, source.header_row, batch_rows
            )
        elif file_format in ("xlsx", "xls"):
            yield from read_excel_batches(
                path, aliases, source.sheet, source.header_row, batch_rows
            )
        else:
            yield from read_parquet_batches(path, batch_rows)
    except OSError as exc:
        raise FileRejected(f"unreadable file: {exc}") from exc
    except (LookupError, UnicodeError) as exc:
        raise FileRejected(f"cannot decode file: {exc}") from exc

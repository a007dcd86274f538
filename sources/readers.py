"""Dispatch a delivered file to the reader for its format."""

from __future__ import annotations

from pathlib import Path

from sources.config import SourceConfig
from sources.raw_table import FileRejected, RawTable
from sources.read_delimited import read_delimited
from sources.read_excel import read_excel
from sources.read_structured import read_json, read_jsonl, read_parquet


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

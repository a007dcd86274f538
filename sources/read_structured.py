"""JSON, JSON Lines and Parquet readers: every value rendered as text, nothing inferred."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sources.encoding import SAMPLE_BYTES, detect_encoding
from sources.headers import unique_headers
from sources.raw_table import ROW_NUMBER, BadRow, FileRejected, RawTable, finish_table


def json_text(value: Any) -> str | None:
    """Render a parsed JSON value as text (objects/arrays as compact JSON, null as None).

    Args:
        value: A value from ``json.loads``.

    Returns:
        The text, or None for JSON null.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _records_table(records: list[tuple[int, dict[str, Any]]], bad: list[BadRow]) -> RawTable:
    keys: dict[str, None] = {}
    for _, record in records:
        keys.update(dict.fromkeys(record))
    names = list(keys)
    headers = unique_headers(names)
    columns: dict[str, list[str | None]] = {
        header: [json_text(record.get(name)) for _, record in records]
        for name, header in zip(names, headers, strict=True)
    }
    frame = pd.DataFrame(columns, dtype="string", index=pd.RangeIndex(len(records)))
    frame[ROW_NUMBER] = pd.array([number for number, _ in records], dtype="int64")
    return finish_table(headers, frame, bad)


def _decode_json_file(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise FileRejected("empty file")
    if encoding == "auto":
        encoding = detect_encoding(data[:SAMPLE_BYTES])
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        if path.suffix.lower() == ".json":
            raise FileRejected(f"undecodable bytes as {encoding}: {exc}") from exc
        return data.decode(encoding, errors="replace").removeprefix("\ufeff")


def read_jsonl(path: Path, encoding: str = "auto") -> RawTable:
    """Read JSON Lines: one object per line; ``source_row`` is the line number.

    Lines that are not valid JSON objects (or hold undecodable bytes) are rejected with
    their raw text; blank lines are skipped.

    Args:
        path: The delivered file.
        encoding: ``auto`` or a codec name.

    Returns:
        The file as a ``RawTable``.

    Raises:
        FileRejected: when the file is empty.
    """
    text = _decode_json_file(path, encoding)
    records: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadRow] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "\ufffd" in line:
            bad.append(BadRow(number, line, "undecodable bytes"))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(BadRow(number, line, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(value, dict):
            bad.append(BadRow(number, line, f"not a JSON object but {type(value).__name__}"))
            continue
        records.append((number, value))
    return _records_table(records, bad)


def read_json(path: Path, encoding: str = "auto") -> RawTable:
    """Read a JSON array of objects (or an object whose first list value holds them).

    ``source_row`` is the 1-based position in the array; non-object elements are rejected.

    Args:
        path: The delivered file.
        encoding: ``auto`` or a codec name.

    Returns:
        The file as a ``RawTable``.

    Raises:
        FileRejected: when the file is empty, not valid JSON or holds no list of records.
    """
    text = _decode_json_file(path, encoding)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileRejected(f"invalid JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(document, dict):
        lists = [v for v in document.values() if isinstance(v, list)]
        if not lists:
            raise FileRejected("JSON object without a list of records")
        document = lists[0]
    if not isinstance(document, list):
        raise FileRejected(f"JSON top level is {type(document).__name__}, not a list of records")
    records: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadRow] = []
    for number, value in enumerate(document, start=1):
        if isinstance(value, dict):
            records.append((number, value))
        else:
            raw = json.dumps(value, ensure_ascii=False)
            bad.append(BadRow(number, raw, f"not a JSON object but {type(value).__name__}"))
    return _records_table(records, bad)


def _arrow_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_dictionary(kind):
        return _arrow_text(column.cast(kind.value_type))
    if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        values = [json_text(v) if not isinstance(v, bytes) else v.hex() for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, type=pa.string())])
    if pa.types.is_floating(kind):
        exact = pc.less(pc.abs(column), 2.0**53)
        integral = pc.and_(pc.equal(pc.floor(column), column), exact)
        as_int = pc.cast(pc.if_else(integral, column, None), pa.int64(), safe=False)
        return pc.if_else(integral, pc.cast(as_int, pa.string()), pc.cast(column, pa.string()))
    return pc.cast(column, pa.string())


def read_parquet(path: Path) -> RawTable:
    """Read a Parquet file with every column cast to text; ``source_row`` is the row position.

    Args:
        path: The delivered file.

    Returns:
        The file as a ``RawTable``.

    Raises:
        FileRejected: when the file is empty or not readable Parquet.
    """
    if path.stat().st_size == 0:
        raise FileRejected("empty file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileRejected(f"unreadable Parquet: {exc}") from exc
    headers = unique_headers(table.column_names)
    text = pa.table([_arrow_text(c) for c in table.columns], names=headers)
    frame = text.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    frame[ROW_NUMBER] = pd.RangeIndex(1, len(frame) + 1)
    return finish_table(headers, frame)


def read_parquet_batches(path: Path, batch_rows: int | None = None) -> Iterator[RawTable]:
    """``read_parquet`` as batches of at most ``batch_rows`` rows (None: one batch).

    A file of at most ``batch_rows`` rows (its footer says) is read whole as ``read_parquet``
    does; a longer one through ``ParquetFile.iter_batches``.

    Raises:
        FileRejected: when the file is empty or not readable Parquet.
    """
    if path.stat().st_size == 0:
        raise FileRejected("empty file")
    try:
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise FileRejected(f"unreadable Parquet: {exc}") from exc
    if batch_rows is None or rows <= batch_rows:
        yield read_parquet(path)
        return
    headers = unique_headers(parquet.schema_arrow.names)
    number = 1
    dropped: list[str] | None = None
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows):
            text = pa.table(
                [_arrow_text(pa.chunked_array([c], type=c.type)) for c in batch.columns],
                names=headers,
            )
            frame = text.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
            frame[ROW_NUMBER] = pd.RangeIndex(number, number + len(frame))
            number += len(frame)
            table = finish_table(headers, frame, drop_unnamed=dropped)
            if dropped is None:
                dropped = [h for h in headers if h not in table.headers]
            yield table
    except (pa.ArrowException, OSError) as exc:
        raise FileRejected(f"unreadable Parquet: {exc}") from exc

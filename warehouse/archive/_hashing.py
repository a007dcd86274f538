"""Content hashing of tables (order-independent) and file checksums."""

from __future__ import annotations

import binascii
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

_CHUNK = 1 << 20
_HEX = 64  # characters of a sha256 hex digest
_SORT_BATCH = 1 << 16  # sorted digests joined and hashed this many at a time
_BASE: dict[int, duckdb.DuckDBPyConnection] = {}
_ABANDONED: list[duckdb.DuckDBPyConnection] = []
_BASE_LOCK = threading.Lock()


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A fresh cursor on this process's in-memory DuckDB (a new connection costs ~50 ms).

    The base connection is kept per process id so a forked child never reuses its parent's.
    """
    pid = os.getpid()
    with _BASE_LOCK:
        base = _BASE.get(pid)
        if base is None:
            # a forked child must not close (join the threads of) its parent's database: keep it
            _ABANDONED.extend(_BASE.values())
            _BASE.clear()
            base = _BASE[pid] = duckdb.connect()
    return base.cursor()


def to_arrow(table: pd.DataFrame | pa.Table) -> pa.Table:
    """Return ``table`` as an Arrow table (a DataFrame's index is dropped).

    Args:
        table: a pandas DataFrame or an Arrow table.

    Returns:
        The Arrow table.
    """
    if isinstance(table, pa.Table):
        return table
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        return pa.Table.from_pandas(table, preserve_index=False)
    raise TypeError(f"expected a pandas DataFrame or a pyarrow Table, got {type(table).__name__}")


def logical_type(data_type: pa.DataType) -> str:
    """Name an Arrow type by its logical meaning (string == large_string, dictionary == values).

    Args:
        data_type: the Arrow type.

    Returns:
        A stable type name used in content hashes.
    """
    if pa.types.is_dictionary(data_type):
        return logical_type(data_type.value_type)
    if pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type):
        return "string"
    if pa.types.is_large_binary(data_type) or pa.types.is_binary_view(data_type):
        return "binary"
    if pa.types.is_large_list(data_type) or pa.types.is_list_view(data_type):
        return f"list<{logical_type(data_type.value_type)}>"
    if pa.types.is_list(data_type):
        return f"list<{logical_type(data_type.value_type)}>"
    return str(data_type)


def schema_record(schema: pa.Schema) -> list[dict[str, Any]]:
    """Describe a schema as JSON-ready ``[{name, type, nullable}]`` (the manifest's form).

    Args:
        schema: the Arrow schema.

    Returns:
        One dict per field, in column order.
    """
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _row_digests_sql(columns: list[str]) -> str:
    """SQL giving each row's sha256 over its length-prefixed values (NULL distinct from '').

    One ``concat`` per row (not a chain of ``||``) builds ``V<len>:<value>`` or ``N`` per column.
    """
    parts = []
    for column in columns:
        value = f"CAST({_quoted(column)} AS VARCHAR)"
        parts.append(
            f"CASE WHEN {_quoted(column)} IS NULL THEN 'N' "
            f"ELSE concat('V', strlen({value}), ':', {value}) END"
        )
    return f"SELECT sha256(concat({', '.join(parts)})) AS d FROM t"


def _fixed_width(digests: pa.ChunkedArray) -> np.ndarray:
    """The row digests as one numpy ``S64`` array (a view of each Arrow chunk, then joined)."""
    parts = []
    for chunk in digests.chunks:
        if not len(chunk):
            continue
        if pa.types.is_string_view(chunk.type):
            chunk = chunk.cast(pa.large_string())
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset :]
        start, end = int(offsets[0]), int(offsets[len(chunk)])
        if chunk.null_count or end - start != _HEX * len(chunk):
            raise ValueError("row digests must be 64 hex characters each")
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[start:end]
        parts.append(data.view(f"S{_HEX}"))
    return np.concatenate(parts) if parts else np.empty(0, dtype=f"S{_HEX}")


def _sorted_digests_hash(digests: pa.ChunkedArray) -> str:
    """sha256 of the sorted row digests joined with ``,`` (``string_agg(d, ',' ORDER BY d)``)."""
    return _rows_hash(_fixed_width(digests))


def row_digests(table: pa.Table) -> np.ndarray:
    """Each row's sha256 digest (64 hex characters, ``S64``), in the table's row order.

    The digests :func:`table_content_hash` sorts and hashes; with them kept, a table that
    differs by a few rows is hashed again from the changed rows alone
    (:func:`hash_from_digests`).

    Args:
        table: the table (at least one column).

    Returns:
        An ``S64`` numpy array, one digest per row.
    """
    columns = sorted(table.column_names)
    if not columns:
        raise ValueError("a table without columns has no row digests")
    con = duckdb_cursor()
    try:
        con.register("t", table)
        return _fixed_width(con.sql(_row_digests_sql(columns)).to_arrow_table()["d"])
    finally:
        con.close()


def hash_from_digests(schema: pa.Schema, digests: np.ndarray) -> str:
    """:func:`table_content_hash` of a table with this schema and these row digests (any order).

    Args:
        schema: the table's schema.
        digests: ``S64`` row digests (:func:`row_digests`), one per row.

    Returns:
        The sha256 hex digest :func:`table_content_hash` gives for the table.
    """
    columns = sorted(schema.names)
    header = ";".join(f"{c}:{logical_type(schema.field(c).type)}" for c in columns)
    digest = hashlib.sha256()
    digest.update(header.encode("utf-8"))
    digest.update(f"|rows={len(digests)}|".encode())
    digest.update(_rows_hash(digests).encode("ascii"))
    return digest.hexdigest()


KEY_COLUMN = "customer_id"
"""The column a golden table's rows belong to (their customer): nightly deltas read by it."""


def guard_sql(columns: list[str]) -> str:
    """SQL of a row's 64-bit DuckDB hash over its values (columns in name order).

    Cheap (no sha256, no text): summed over the rows a nightly delta does not read, it checks
    that they are the base's rows. An Arrow table registered in DuckDB and the warehouse table
    it was read from give the same hashes (a NULL hashes alike whatever its type, so a text
    column read as Arrow ``null`` does too); a type that did not would only make the delta
    read that table whole.
    """
    return "hash(" + ", ".join(_quoted(c) for c in sorted(columns)) + ")"


def key_sql(column: str = KEY_COLUMN) -> str:
    """SQL of a row's 32-bit customer key (``hash(customer_id)`` folded; collisions are harmless:
    they only widen the set of rows a delta compares)."""
    return f"(hash(CAST({_quoted(column)} AS VARCHAR)) % 4294967296)::UINTEGER"


_STATE_COLUMNS = ("__row_digest", "__row_guard", "__row_key")


def row_state_select(columns: list[str]) -> str:
    """SQL select items of a row's digest, guard hash and (with ``customer_id``) customer key.

    Named ``__row_digest``, ``__row_guard``, ``__row_key``; :func:`split_row_state` takes them
    off a result. Evaluated over the warehouse table itself, they equal :func:`row_state` of
    the table read as Arrow (the same casts of the same DuckDB values), so a whole table is
    read and hashed in one scan.
    """
    columns = sorted(columns)
    if not columns:
        raise ValueError("a table without columns has no row digests")
    digest = _row_digests_sql(columns).removeprefix("SELECT ").removesuffix(" AS d FROM t")
    select = f"{digest} AS {_STATE_COLUMNS[0]}, {guard_sql(columns)} AS {_STATE_COLUMNS[1]}"
    if KEY_COLUMN in columns:
        select += f", {key_sql()} AS {_STATE_COLUMNS[2]}"
    return select


def split_row_state(
    result: pa.Table,
) -> tuple[pa.Table, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """A result with :func:`row_state_select`'s columns → the table and its :func:`row_state`."""
    names = [n for n in _STATE_COLUMNS if n in result.column_names]
    state = _state_arrays(result, *names)
    return result.drop_columns(names), state


def _state_arrays(
    result: pa.Table, digest: str, guard: str, key: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    digests = np.frombuffer(binascii.unhexlify(_fixed_width(result[digest]).tobytes()), "S32")
    guards = result[guard].to_numpy().astype(np.uint64, copy=False)
    keys = result[key].to_numpy().astype(np.uint32, copy=False) if key else None
    return digests, guards, keys


def row_state(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each row's sha256 digest (32 bytes, ``S32``), guard hash and customer key, in row order.

    Args:
        table: the table (at least one column).

    Returns:
        ``(digests, guards, keys)``; ``keys`` is None when the table has no ``customer_id``.
    """
    columns = sorted(table.column_names)
    if not columns:
        raise ValueError("a table without columns has no row digests")
    keyed = KEY_COLUMN in columns
    select = _row_digests_sql(columns).removesuffix(" FROM t")
    select += f", {guard_sql(columns)} AS g"
    if keyed:
        select += f", {key_sql()} AS k"
    con = duckdb_cursor()
    try:
        con.register("t", table)
        result = con.sql(select + " FROM t").to_arrow_table()
    finally:
        con.close()
    return _state_arrays(result, "d", "g", "k" if keyed else None)


def hash_from_sorted(schema: pa.Schema, digests: np.ndarray) -> str:
    """:func:`table_content_hash` of a table with this schema and these sorted ``S32`` digests.

    The digests must be sorted (bytewise, which is the order of their hex form): nothing is
    sorted here, so a cache kept sorted gives the hash in one pass.
    """
    columns = sorted(schema.names)
    header = ";".join(f"{c}:{logical_type(schema.field(c).type)}" for c in columns)
    rows = hashlib.sha256()
    comma = np.frombuffer(b",", dtype=np.uint8)[0]
    for first in range(0, len(digests), _SORT_BATCH):
        batch = np.ascontiguousarray(digests[first : first + _SORT_BATCH])
        hexed = np.frombuffer(binascii.hexlify(batch.tobytes()), dtype=np.uint8)
        joined = np.empty((len(batch), _HEX + 1), dtype=np.uint8)
        joined[:, :_HEX] = hexed.reshape(len(batch), _HEX)
        joined[:, _HEX] = comma
        flat = joined.reshape(-1)
        rows.update(flat[:-1] if first + _SORT_BATCH >= len(digests) else flat)
    digest = hashlib.sha256()
    digest.update(header.encode("utf-8"))
    digest.update(f"|rows={len(digests)}|".encode())
    digest.update(rows.hexdigest().encode("ascii"))
    return digest.hexdigest()


def _rows_hash(digests: np.ndarray) -> str:
    rows = np.sort(digests)
    digest = hashlib.sha256()
    for first in range(0, len(rows), _SORT_BATCH):
        batch = rows[first : first + _SORT_BATCH]
        joined = np.empty((len(batch), _HEX + 1), dtype=np.uint8)
        joined[:, :_HEX] = batch.view(np.uint8).reshape(len(batch), _HEX)
        joined[:, _HEX] = ord(",")
        flat = joined.reshape(-1)
        digest.update(flat[:-1] if first + _SORT_BATCH >= len(rows) else flat)
    return digest.hexdigest()


def table_content_hash(table: pd.DataFrame | pa.Table) -> str:
    """Hash a table's contents, independent of row order, column order and file encoding.

    Each row is hashed over its columns taken in name order (values cast to text, length-prefixed,
    NULL distinct from the empty string); the row digests are sorted (duplicates kept) and hashed
    together with the column names and logical types. DuckDB hashes the rows; numpy sorts the
    fixed-width digests.

    Args:
        table: the table.

    Returns:
        A sha256 hex digest.
    """
    arrow = to_arrow(table)
    names = arrow.column_names
    if len(set(names)) != len(names):
        raise ValueError(f"table has duplicate column names: {names}")
    columns = sorted(names)
    if columns:
        con = duckdb_cursor()
        try:
            con.register("t", arrow)
            rows = _sorted_digests_hash(con.sql(_row_digests_sql(columns)).to_arrow_table()["d"])
        finally:
            con.close()
    else:  # no columns: the row count alone (DuckDB cannot register a column-less table)
        rows = hashlib.sha256(str(arrow.num_rows).encode("ascii")).hexdigest()
    header = ";".join(f"{c}:{logical_type(arrow.schema.field(c).type)}" for c in columns)
    digest = hashlib.sha256()
    digest.update(header.encode("utf-8"))
    digest.update(f"|rows={arrow.num_rows}|".encode())
    digest.update(rows.encode("ascii"))
    return digest.hexdigest()


def combine_table_hashes(table_hashes: Mapping[str, str]) -> str:
    """Combine per-table content hashes into one snapshot content hash (by table name).

    Args:
        table_hashes: table name → :func:`table_content_hash`.

    Returns:
        A sha256 hex digest.
    """
    digest = hashlib.sha256()
    for name in sorted(table_hashes):
        digest.update(f"{name}={table_hashes[name]}\n".encode())
    return digest.hexdigest()


def content_hash(tables: Mapping[str, pd.DataFrame | pa.Table]) -> str:
    """Hash the contents of a set of named tables (same contents ⇒ same hash).

    Args:
        tables: table name (``"golden.customers"``) → DataFrame or Arrow table.

    Returns:
        A sha256 hex digest independent of row order, column order and Parquet bytes.
    """
    return combine_table_hashes({name: table_content_hash(t) for name, t in tables.items()})


def file_sha256(path: Path) -> tuple[str, int]:
    """Stream a file's sha256 and size.

    Args:
        path: the file.

    Returns:
        ``(hex digest, bytes)``.
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def hash_from_sorted_batches(schema: pa.Schema, batches: Iterable[np.ndarray]) -> str:
    """:func:`hash_from_sorted` of the concatenation of ``batches`` (``S32`` digests, sorted
    across batches), without holding them together: a nightly delta merges its base's cached
    digests with its added rows' a chunk at a time (``warehouse.archive._nightly``)."""
    columns = sorted(schema.names)
    header = ";".join(f"{c}:{logical_type(schema.field(c).type)}" for c in columns)
    rows = hashlib.sha256()
    count = 0
    for digests in batches:
        for first in range(0, len(digests), _SORT_BATCH):
            batch = np.ascontiguousarray(digests[first : first + _SORT_BATCH])
            hexed = np.frombuffer(binascii.hexlify(batch.tobytes()), dtype=np.uint8)
            # a comma before every digest but the first: the digests joined by commas
            joined = np.empty((len(batch), _HEX + 1), dtype=np.uint8)
            joined[:, 0] = ord(",")
            joined[:, 1:] = hexed.reshape(len(batch), _HEX)
            flat = joined.reshape(-1)
            rows.update(flat if count else flat[1:])
            count += len(batch)
    digest = hashlib.sha256()
    digest.update(header.encode("utf-8"))
    digest.update(f"|rows={count}|".encode())
    digest.update(rows.hexdigest().encode("ascii"))
    return digest.hexdigest()

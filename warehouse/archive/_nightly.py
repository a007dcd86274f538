"""A delta's rows and content hashes from the base's cached rows (``_digest_cache``).

Per table: the compared base rows (the changed customers', or all) are matched with the
current rows of the same customers by sha256 row digest (as multisets); unmatched base rows are
dropped, unmatched current rows added. The table's content hash is the sorted-digest hash of
the cached digests minus the dropped plus the added ones, merged into the sorted cache (no
sort of the whole table). See :mod:`warehouse.archive._digest_cache` for what is cached and
:mod:`warehouse.archive._scoped` for what is read.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from warehouse.archive._digest_cache import TableRows, guard_total, table_rows
from warehouse.archive._hashing import (
    hash_from_sorted,
    hash_from_sorted_batches,
    row_state,
    schema_record,
)
from warehouse.archive.delta import TableDelta, multiset_changes, widens

if TYPE_CHECKING:
    from warehouse.archive._scoped import ChangedState

RowState = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
"""A table's row digests (``S32``), guard hashes and customer keys (or None), in row order."""

LOG = logging.getLogger(__name__)
_MASK64 = (1 << 64) - 1
_CHUNK_ROWS = 1 << 18
"""Cached rows a nightly delta reads at a time (12 MiB): its passes over a base table's rows
hold one chunk, not the table (a 1 M-record warehouse's lineage is ≈ 4.5 M rows, 215 MB)."""


@dataclass(frozen=True)
class TableShape:
    """What a manifest records of a table it did not read whole: rows and schema."""

    num_rows: int
    schema: pa.Schema


@dataclass
class NightlyDelta:
    """Every table's delta, content hash and shape; keys of customers that differ from base."""

    deltas: dict[str, TableDelta]
    hashes: dict[str, str]
    shapes: dict[str, TableShape]
    added_hashes: dict[str, str]
    changed_keys: np.ndarray
    tables_read_whole: list[str]


def cache_rows(table: pa.Table) -> TableRows:
    """A table's cache record (digests, guards, keys), from the table itself."""
    digests, guards, keys = row_state(table)
    return table_rows(schema_record(table.schema), digests, guards, keys)


def _fingerprints(digests: np.ndarray) -> np.ndarray:
    """The first 128 bits of ``S32`` digests as ``(n, 2)`` uint64 (what rows are matched by)."""
    raw = np.frombuffer(np.ascontiguousarray(digests, dtype="S32").tobytes(), dtype="<u8")
    return raw.reshape(-1, 4)[:, :2]


def row_chunks(rows: np.ndarray, size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows[start:start + size])`` over cached rows, each chunk an array of its own.

    A memory-mapped cache (``read_cache``) is read from its file a chunk at a time: the pages
    read never stay mapped into this process, so a pass over a table holds one chunk (a pass
    over the mapping would leave every page of the table resident until the map is closed).
    ``size``: rows per chunk (default ``_CHUNK_ROWS``).
    """
    size = size or _CHUNK_ROWS
    if isinstance(rows, np.memmap) and isinstance(rows.base, mmap.mmap) and rows.filename:
        with open(rows.filename, "rb") as handle:
            for start in range(0, len(rows), size):
                count = min(size, len(rows) - start)
                handle.seek(rows.offset + start * rows.itemsize)
                chunk = np.fromfile(handle, dtype=rows.dtype, count=count)
                if len(chunk) != count:
                    raise ValueError(f"{rows.filename}: {len(chunk)} of {count} rows read")
                yield start, chunk
        return
    for start in range(0, len(rows), size):
        yield start, rows[start : start + size]


def _scope_rows(rows: np.ndarray, scope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (sorted) and records of the cached rows whose key is in the sorted ``scope``,
    in one chunked pass (``row_chunks``)."""
    positions, records = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=rows.dtype)]
    for start, chunk in row_chunks(rows):
        found = np.flatnonzero(_in_keys(np.ascontiguousarray(chunk["k"]), scope))
        positions.append(found + start)
        records.append(chunk[found])
    return np.concatenate(positions), np.concatenate(records)


def _merged_digests(
    rows: np.ndarray, dropped: np.ndarray, added: np.ndarray
) -> Iterator[np.ndarray]:
    """The cached rows' digests less those at the sorted positions ``dropped``, merged with the
    sorted ``added`` digests: sorted batches whose concatenation equals one sorted array of
    them (equal digests are the same bytes, so the order among them does not matter)."""
    emitted = 0
    for start, chunk in row_chunks(rows):
        digests = chunk["d"]
        low, high = np.searchsorted(dropped, [start, start + len(chunk)])
        if high > low:
            digests = np.delete(digests, dropped[low:high] - start)
        if not len(digests):
            continue
        upto = int(np.searchsorted(added, digests[-1], side="right"))
        take = added[emitted:upto]
        emitted = max(emitted, upto)
        yield np.insert(digests, np.searchsorted(digests, take), take) if len(take) else digests
    if emitted < len(added):
        yield added[emitted:]


def _compare(
    cached: TableRows,
    compared: np.ndarray,
    current: pa.Table,
    current_state: RowState | None = None,
    base: np.ndarray | None = None,
) -> tuple[TableDelta, str, str, np.ndarray]:
    """Match the cached rows at sorted indices ``compared`` with ``current`` (their now).

    ``current_state`` is ``row_state(current)`` and ``base`` the cached records at
    ``compared`` when the caller has them already. The table's content hash is taken over
    the cached digests less the dropped plus the added ones a chunk at a time
    (``_merged_digests``): memory holds the compared rows and one chunk of the cache.

    Returns:
        The table's delta, its content hash, the content hash of its added rows and the keys
        of the customers whose rows differ.
    """
    if base is None:
        base = cached.rows[compared]
    if current_state is not None:
        digests, _guards, keys = current_state
    elif current.num_rows:
        digests, _guards, keys = row_state(current)
    else:
        digests, keys = np.empty(0, dtype="S32"), None
    drop_i, add_i = multiset_changes(_fingerprints(base["d"]), _fingerprints(digests))
    added = np.sort(digests[add_i])
    dropped = np.sort(np.asarray(compared[drop_i], dtype=np.int64))
    changed = [np.empty(0, dtype=np.uint32)]
    if cached.keyed and keys is not None:  # unkeyed tables: the keys mean nothing
        changed += [np.asarray(base["k"][drop_i], dtype=np.uint32), keys[add_i]]
    drop = np.sort(np.asarray(base["p"][drop_i], dtype=np.int64))
    delta = TableDelta(drop=drop, add=current.take(pa.array(add_i, type=pa.int64())))
    return (
        delta,
        hash_from_sorted_batches(current.schema, _merged_digests(cached.rows, dropped, added)),
        hash_from_sorted(current.schema, added),
        np.concatenate(changed),
    )


def _in_keys(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Mask of ``keys`` found in the sorted ``wanted`` keys.

    A bitmap over the keys' low 24 bits finds the candidates in one pass (no search per row);
    only those are looked up exactly.
    """
    found = np.zeros(len(keys), dtype=bool)
    if not len(wanted) or not len(keys):
        return found
    bitmap = np.zeros(1 << 24, dtype=bool)
    bitmap[wanted & 0xFFFFFF] = True
    candidates = np.flatnonzero(bitmap[keys & 0xFFFFFF])
    at = np.searchsorted(wanted, keys[candidates])
    found[candidates] = wanted[np.minimum(at, len(wanted) - 1)] == keys[candidates]
    return found


def nightly_delta(
    cached: Mapping[str, TableRows],
    names: list[str],
    whole: Callable[[str], pa.Table],
    state: ChangedState | None = None,
    changed_before: np.ndarray | None = None,
    row_states: Mapping[str, RowState] | None = None,
) -> NightlyDelta:
    """Every table's delta against the cached base rows.

    Args:
        cached: the base's cached rows per table.
        names: the tables of the new snapshot.
        whole: reads one current table whole.
        state: the customers this run changed; with it, a keyed table reads only their rows
            (and the customers ``changed_before`` the last delta) and checks the others by an
            aggregate; without it, every table is read whole.
        changed_before: keys of the customers whose rows differed from base at the last delta.
        row_states: ``row_state`` of tables ``whole`` read with it (looked up after the call).

    Returns:
        A :class:`NightlyDelta`.
    """
    out = NightlyDelta({}, {}, {}, {}, np.empty(0, dtype=np.uint32), [])
    changed: list[np.ndarray] = []
    scope = None
    if state is not None:
        before = changed_before if changed_before is not None else np.empty(0, np.uint32)
        scope = np.union1d(state.touched, before).astype(np.uint32)
    for name in names:
        rows = cached.get(name)
        scoped = None
        if rows is not None and rows.keyed and state is not None and scope is not None:
            scoped = state.read(name, scope)
        if scoped is not None and rows is not None:
            inside, inside_rows = _scope_rows(rows.rows, scope)
            others_sum = (rows.guard_sum - guard_total(inside_rows["g"])) & _MASK64
            same_others = (
                scoped.other_rows == len(rows.rows) - len(inside)
                and scoped.other_guard_sum == others_sum
            )
            if same_others and scoped.rows.column_names and widens(rows.schema, scoped.rows.schema):
                delta, out.hashes[name], out.added_hashes[name], keys = _compare(
                    rows, inside, scoped.rows, scoped.state, inside_rows
                )
                out.deltas[name] = delta
                out.shapes[name] = TableShape(
                    scoped.other_rows + scoped.rows.num_rows, scoped.rows.schema
                )
                changed.append(keys)
                continue
            if not same_others:
                LOG.info(
                    "snapshot delta: %s differs from the base outside the run's customers;"
                    " reading it whole",
                    name,
                )
        table = whole(name)
        out.tables_read_whole.append(name)
        out.shapes[name] = TableShape(table.num_rows, table.schema)
        if rows is None or not table.column_names or not widens(rows.schema, table.schema):
            from warehouse.archive._hashing import table_content_hash

            out.deltas[name] = TableDelta(full=table)
            out.hashes[name] = table_content_hash(table)
            continue
        every = np.arange(len(rows.rows), dtype=np.int64)
        known = (row_states or {}).get(name)
        delta, out.hashes[name], out.added_hashes[name], keys = _compare(rows, every, table, known)
        out.deltas[name] = delta
        changed.append(keys)
    out.changed_keys = np.unique(np.concatenate(changed)) if changed else out.changed_keys
    LOG.info(
        "snapshot delta: %s; %d of %d tables read whole",
        f"rows of {len(scope)} changed customers read" if scope is not None else "no scope",
        len(out.tables_read_whole),
        len(names),
    )
    return out

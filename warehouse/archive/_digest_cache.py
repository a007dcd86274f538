"""Row digests of the last full snapshot, kept so a nightly delta reads only what changed.

When a full snapshot is published, each table's rows are kept in ``<archive>/.delta-cache/``
as one record a row (48 bytes): the row's sha256 digest (what the content hash is made of,
32 bytes), its customer key (4), a 64-bit guard hash of its values (8) and its position in the
snapshot's file (4), **sorted by digest**. A nightly delta then

* finds the base rows of the customers that changed by their key, and compares them with
  those customers' current rows by digest (nothing else is read from the warehouse);
* checks that every other row is still the base's: the count and the sum of the guard hashes
  of the rows it did not read (one DuckDB aggregate) must equal the cached ones;
* gets every table's content hash from the sorted digests minus the dropped plus the added
  ones (a merge, no sort).

The cache belongs to one base (its id and content hash are recorded); when it is missing,
stale, of an older format or unreadable, the delta reads its base instead and writes the cache
for it (same result, slower). ``changed.npy`` keeps the keys of the customers whose rows differ
from the base as of the last delta, so the next delta compares them too. It is derived data,
not part of any snapshot: erasure deletes it (:func:`drop_cache`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOG = logging.getLogger(__name__)

CACHE_DIR = ".delta-cache"
FORMAT = 2
_INDEX = ".index.json"
_CHANGED = ".changed.npy"
ROW = np.dtype([("d", "S32"), ("k", "<u4"), ("g", "<u8"), ("p", "<u4")])
"""One cached row: digest, customer key, guard hash, position in the base file."""
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class TableRows:
    """One table's base rows as the cache keeps them (``ROW`` records sorted by digest).

    Attributes:
        schema: the base table's schema record.
        rows: ``ROW`` records, sorted by digest.
        keyed: whether the table has a ``customer_id`` (the keys mean something).
        guard_sum: sum of the guard hashes mod 2**64.
    """

    schema: list[dict[str, Any]]
    rows: np.ndarray
    keyed: bool
    guard_sum: int


def table_rows(
    schema: list[dict[str, Any]],
    digests: np.ndarray,
    guards: np.ndarray,
    keys: np.ndarray | None,
) -> TableRows:
    """The cache record of a table from its rows' digests, guards and keys (row order)."""
    if len(digests) >= 1 << 32:
        raise ValueError("a cached table holds fewer than 2**32 rows")
    order = digest_order(digests)
    rows = np.empty(len(digests), dtype=ROW)  # filled in digest order (no gather of records)
    rows["d"], rows["g"] = digests[order], guards[order]
    rows["k"] = 0 if keys is None else keys[order]
    rows["p"] = order
    return TableRows(schema, rows, keys is not None, guard_total(guards))


def digest_order(digests: np.ndarray) -> np.ndarray:
    """The stable sort order of ``S32`` digests (``np.argsort(digests, kind="stable")``).

    Sorted by their first 8 bytes as a big-endian integer (a sort of integers, not of 32-byte
    strings); equal first bytes keep their row order, which is the digests' own order when the
    digests are equal too (the same row twice). Should two different digests share their first
    8 bytes, the digests are sorted whole instead.
    """
    flat = np.ascontiguousarray(digests, dtype="S32")
    head = flat.view(">u8")[::4].astype("<u8")
    order = np.argsort(head, kind="stable")
    ordered = head[order]
    tied = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(tied):
        whole = flat[order]
        if not np.array_equal(whole[tied], whole[tied + 1]):
            return np.argsort(flat, kind="stable")
    return order


def guard_total(guards: np.ndarray) -> int:
    """Sum of guard hashes mod 2**64 (DuckDB's ``hash`` is a UBIGINT)."""
    return int(np.sum(guards, dtype=np.uint64)) & _MASK64 if len(guards) else 0


def write_cache(
    archive_dir: Path, snapshot_id: str, content_hash: str, tables: Mapping[str, TableRows]
) -> None:
    """Replace the cache with the rows of the full snapshot ``snapshot_id``.

    A failure is logged, never raised: the next delta reads its base instead.
    """
    archive_dir = Path(archive_dir)
    final = archive_dir / CACHE_DIR
    temp = archive_dir / f"{CACHE_DIR}.tmp-{uuid.uuid4().hex[:8]}"
    old = archive_dir / f"{CACHE_DIR}.old-{uuid.uuid4().hex[:8]}"
    try:
        temp.mkdir()
        index: dict[str, Any] = {
            "format": FORMAT,
            "snapshot_id": snapshot_id,
            "content_hash": content_hash,
            "tables": {},
        }
        for number, (name, rows) in enumerate(sorted(tables.items())):
            file = f".t{number}.npy"
            np.save(temp / file, rows.rows, allow_pickle=False)
            index["tables"][name] = {
                "file": file,
                "rows": len(rows.rows),
                "schema": rows.schema,
                "keyed": rows.keyed,
                "guard_sum": str(rows.guard_sum),
            }
        (temp / _INDEX).write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")
        if final.exists():
            os.rename(final, old)
        os.rename(temp, final)
    except OSError as exc:
        LOG.warning("delta cache not written (%s); the next delta reads its base", exc)
    finally:
        for leftover in (temp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def read_cache(archive_dir: Path, snapshot_id: str, content_hash: str) -> dict[str, TableRows]:
    """The cached rows of the full snapshot ``snapshot_id``; empty when there are none for it.

    The arrays are memory-mapped: a delta touches the pages it needs.
    """
    folder = Path(archive_dir) / CACHE_DIR
    try:
        index = json.loads((folder / _INDEX).read_text(encoding="utf-8"))
        if (
            index.get("format") != FORMAT
            or index.get("snapshot_id") != snapshot_id
            or index.get("content_hash") != content_hash
        ):
            return {}
        out: dict[str, TableRows] = {}
        for name, entry in index["tables"].items():
            rows = np.load(folder / entry["file"], mmap_mode="r", allow_pickle=False)
            if rows.dtype != ROW or len(rows) != entry["rows"]:
                return {}
            out[name] = TableRows(
                entry["schema"], rows, bool(entry["keyed"]), int(entry["guard_sum"])
            )
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        LOG.info("no usable delta cache for %s (%s): reading the base", snapshot_id, exc)
        return {}


def read_changed(archive_dir: Path, snapshot_id: str) -> np.ndarray:
    """Keys of the customers whose rows differed from base ``snapshot_id`` at the last delta."""
    folder = Path(archive_dir) / CACHE_DIR
    try:
        index = json.loads((folder / _INDEX).read_text(encoding="utf-8"))
        if index.get("snapshot_id") != snapshot_id:
            return np.empty(0, dtype=np.uint32)
        keys = np.load(folder / _CHANGED, allow_pickle=False)
        return np.asarray(keys, dtype=np.uint32)
    except (OSError, ValueError, TypeError) as exc:
        LOG.debug("no changed-customer keys kept (%s)", exc)
        return np.empty(0, dtype=np.uint32)


def write_changed(archive_dir: Path, keys: np.ndarray) -> None:
    """Keep the keys of the customers whose rows differ from the base (after a delta)."""
    folder = Path(archive_dir) / CACHE_DIR
    temp = folder / f"{_CHANGED}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with temp.open("wb") as handle:
            np.save(handle, np.unique(np.asarray(keys, dtype=np.uint32)), allow_pickle=False)
        os.replace(temp, folder / _CHANGED)
    except OSError as exc:
        LOG.warning("changed-customer keys not kept (%s); the next delta compares more", exc)
        temp.unlink(missing_ok=True)


def drop_cache(archive_dir: Path) -> None:
    """Delete the cache (after anything changed published snapshots, e.g. an erasure)."""
    folder = Path(archive_dir) / CACHE_DIR
    if folder.exists():
        shutil.rmtree(folder)

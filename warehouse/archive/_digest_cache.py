"""Row fingerprints and digests of the last full snapshot, kept so a delta need not re-read it.

When a full snapshot is published, its tables' row fingerprints (which rows are equal) and row
digests (what its content hash is made of) are kept in ``<archive>/.delta-cache/``, in the
order of the rows in the snapshot's files. A nightly delta then matches the current rows
against the fingerprints, hashes only the rows it adds, and gets every table's content hash
from the kept digests of the rows it keeps: neither the base nor the unchanged rows are read
or hashed again. The cache belongs to one base (its id and content hash are recorded); when it
is missing, stale or unreadable the delta reads its base instead (same result, slower). It is
derived data, not part of any snapshot: erasure deletes it (:func:`drop_cache`).
"""

from __future__ import annotations

import binascii
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
_INDEX = ".index.json"
_ROW = np.dtype([("a", "<u8"), ("b", "<u8"), ("d", "S32")])


@dataclass(frozen=True)
class TableRows:
    """One table's rows as the cache keeps them: fingerprints ``(n, 2)`` and ``S64`` digests."""

    schema: list[dict[str, Any]]
    fingerprints: np.ndarray
    digests: np.ndarray


def _file_name(table: str) -> str:
    return f".{table}.npy"


def write_cache(
    archive_dir: Path, snapshot_id: str, content_hash: str, tables: Mapping[str, TableRows]
) -> None:
    """Replace the cache with the rows of the full snapshot just published.

    A failure is logged, never raised: the next delta reads its base instead.
    """
    archive_dir = Path(archive_dir)
    final = archive_dir / CACHE_DIR
    temp = archive_dir / f"{CACHE_DIR}.tmp-{uuid.uuid4().hex[:8]}"
    old = archive_dir / f"{CACHE_DIR}.old-{uuid.uuid4().hex[:8]}"
    try:
        temp.mkdir()
        index: dict[str, Any] = {"snapshot_id": snapshot_id, "content_hash": content_hash}
        index["tables"] = {}
        for name, rows in tables.items():
            packed = np.empty(len(rows.digests), dtype=_ROW)
            packed["a"], packed["b"] = rows.fingerprints[:, 0], rows.fingerprints[:, 1]
            raw = binascii.unhexlify(np.ascontiguousarray(rows.digests).tobytes())
            packed["d"] = np.frombuffer(raw, dtype="S32")
            np.save(temp / _file_name(name), packed, allow_pickle=False)
            index["tables"][name] = {"rows": len(packed), "schema": rows.schema}
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
    """The cached rows of the full snapshot ``snapshot_id``; empty when there are none for it."""
    folder = Path(archive_dir) / CACHE_DIR
    try:
        index = json.loads((folder / _INDEX).read_text(encoding="utf-8"))
        if index.get("snapshot_id") != snapshot_id or index.get("content_hash") != content_hash:
            return {}
        out: dict[str, TableRows] = {}
        for name, entry in index["tables"].items():
            packed = np.load(folder / _file_name(name), allow_pickle=False)
            if packed.dtype != _ROW or len(packed) != entry["rows"]:
                return {}
            fingerprints = np.empty((len(packed), 2), dtype=np.uint64)
            fingerprints[:, 0], fingerprints[:, 1] = packed["a"], packed["b"]
            hexed = binascii.hexlify(np.ascontiguousarray(packed["d"]).tobytes())
            out[name] = TableRows(entry["schema"], fingerprints, np.frombuffer(hexed, "S64"))
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        LOG.info("no usable delta cache for %s (%s): reading the base", snapshot_id, exc)
        return {}


def drop_cache(archive_dir: Path) -> None:
    """Delete the cache (after anything changed published snapshots, e.g. an erasure)."""
    folder = Path(archive_dir) / CACHE_DIR
    if folder.exists():
        shutil.rmtree(folder)

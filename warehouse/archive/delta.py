"""Delta snapshots: a nightly snapshot stored as row changes against the last full snapshot.

A delta snapshot holds, per table, the positions of the base table's rows that are gone
(``drop``: row numbers in the base file's order) and the rows that are new (``add``); changed
rows are a drop plus an add. Reconstruction is ``base.filter(not dropped) ++ add``, in Arrow,
so the table's types are exactly the ones a full snapshot would have written (a column empty,
typed Arrow ``null``, on the base night is cast to its later type; any other change of a
table's columns stores that table whole). A nightly
run's delta is computed from the base's cached row digests and the changed customers' rows
(``_nightly``, ``_digest_cache``, ``_scoped``); :func:`table_delta` (used when erasure re-encodes
a delta) matches rows as multisets by a 128-bit row fingerprint (two DuckDB row hashes over the
columns in name order, in two directions). The manifest keeps the sha256 content hash of every
represented table, which ``verify_snapshot`` recomputes on the reconstruction.

Deltas are taken against the last full snapshot (a star, not a chain: every delta needs only
its base, so losing one delta never breaks another); a full snapshot is written on the first
run, at month end and year end, for pre-restore backups, once ``max_deltas`` deltas share a
base, when the changes exceed ``max_delta_share`` of the rows, and when a run asks for one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from warehouse.archive._hashing import duckdb_cursor, schema_record

if TYPE_CHECKING:
    from warehouse.archive.snapshots import SnapshotInfo

ADD = "add"
DROP = "drop"
FULL = "full"
PARTS = (ADD, DROP, FULL)
_POSITION = "base_row"


class SnapshotPolicy(BaseModel):
    """When a nightly snapshot is a delta and when it is a full one (``snapshots:`` in the config).

    Attributes:
        delta: write nightly (``daily``) snapshots as deltas on the last full snapshot.
        max_deltas: deltas that may share one base; the next snapshot is full.
        max_delta_share: a delta whose changed rows (dropped + added) exceed this share of the
            represented rows is written as a full snapshot instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    delta: bool = True
    max_deltas: int = Field(default=31, ge=1, le=366)
    max_delta_share: float = Field(default=0.5, gt=0, le=1)


@dataclass(frozen=True)
class TableDelta:
    """One table's change against its base: base rows to drop, rows to add, or the whole table."""

    drop: np.ndarray | None = None
    add: pa.Table | None = None
    full: pa.Table | None = None

    @property
    def changed_rows(self) -> int:
        """Rows this delta stores (dropped positions + added rows, or the whole table)."""
        if self.full is not None:
            return self.full.num_rows
        return len(self.drop if self.drop is not None else ()) + (
            self.add.num_rows if self.add is not None else 0
        )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_fingerprints(table: pa.Table) -> np.ndarray:
    """A 128-bit fingerprint per row (two uint64 columns), in the table's row order.

    Args:
        table: the table (at least one column).

    Returns:
        An ``(n, 2)`` uint64 array.
    """
    columns = sorted(table.column_names)
    if not columns:
        raise ValueError("a table without columns has no row fingerprints")
    forward = ", ".join(_quoted(c) for c in columns)
    backward = ", ".join(_quoted(c) for c in reversed(columns))
    con = duckdb_cursor()
    try:
        con.register("t", table)
        out = con.sql(f"SELECT hash({forward}) AS a, hash({backward}, 1) AS b FROM t")
        result = out.to_arrow_table()
    finally:
        con.close()
    pairs = np.empty((table.num_rows, 2), dtype=np.uint64)
    pairs[:, 0] = result["a"].to_numpy()
    pairs[:, 1] = result["b"].to_numpy()
    return pairs


def multiset_changes(base: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``base`` not in ``current`` and rows of ``current`` not in ``base`` (multisets).

    Args:
        base: the base table's row fingerprints (``row_fingerprints``).
        current: the current table's row fingerprints.

    Returns:
        ``(base positions to drop, current positions to add)``, each sorted.
    """
    n = len(base)
    both = np.concatenate([base, current]).astype(np.uint64, copy=False)
    if not len(both):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    # two stable sorts = order by (first, second fingerprint), base rows before current ones
    order = np.argsort(both[:, 1], kind="stable")
    order = order[np.argsort(both[order, 0], kind="stable")]
    keys = both[order]
    side = (order >= n).astype(np.int8)
    position = np.where(side == 1, order - n, order)
    new_group = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    in_base = np.bincount(group, weights=side == 0, minlength=len(starts)).astype(np.int64)
    in_current = np.bincount(group, weights=side == 1, minlength=len(starts)).astype(np.int64)
    # rank within (group, side): base entries come first in each group, then current ones
    rank = np.arange(len(keys)) - starts[group] - np.where(side == 1, in_base[group], 0)
    drop = (side == 0) & (rank >= in_current[group])
    add = (side == 1) & (rank >= in_base[group])
    return np.sort(position[drop]).astype(np.int64), np.sort(position[add]).astype(np.int64)


def widens(base: list[dict], schema: pa.Schema) -> bool:
    """Whether a base table of schema ``base`` (schema record) reads as ``schema`` by a cast.

    True when the columns are the same and the only type changes are from Arrow ``null`` (a
    column empty on the base night, typed once it holds values).
    """
    now = schema_record(schema)
    return len(base) == len(now) and all(
        b["name"] == c["name"]
        and b["nullable"] == c["nullable"]
        and b["type"] in (c["type"], "null")
        for b, c in zip(base, now, strict=True)
    )


def table_delta(base: pa.Table | None, current: pa.Table) -> TableDelta:
    """The change from ``base`` to ``current``; the whole table when the schemas differ.

    Args:
        base: the table in the base snapshot (None when the base lacks it).
        current: the table now.

    Returns:
        A :class:`TableDelta`.
    """
    if (
        base is None
        or not current.column_names
        or not widens(schema_record(base.schema), current.schema)
    ):
        return TableDelta(full=current)
    drop, add = multiset_changes(row_fingerprints(base), row_fingerprints(current))
    return TableDelta(drop=drop, add=current.take(pa.array(add, type=pa.int64())))


def drop_table(positions: np.ndarray) -> pa.Table:
    """The ``drop`` part as a table (one ``base_row`` column)."""
    return pa.table({_POSITION: pa.array(np.asarray(positions, dtype=np.int64), type=pa.int64())})


def drop_positions(table: pa.Table) -> np.ndarray:
    """Positions from a ``drop`` part table."""
    if table.column_names != [_POSITION]:
        raise ValueError(f"a drop part has one column {_POSITION!r}, got {table.column_names}")
    return table.column(0).to_numpy(zero_copy_only=False).astype(np.int64)


def apply_delta(
    base: pa.Table | None,
    drop: np.ndarray | None,
    add: pa.Table | None,
    full: pa.Table | None = None,
) -> pa.Table:
    """Rebuild a table from its base and its delta parts.

    Args:
        base: the base table (row order as stored).
        drop: base positions to leave out.
        add: rows to append.
        full: the whole table (then the others are ignored).

    Returns:
        The represented table, typed like the base.

    Raises:
        ValueError: positions out of range or repeated, or ``add`` typed unlike the base.
    """
    if full is not None:
        return full
    if base is None:
        raise ValueError("a delta table part needs its base table")
    keep = np.ones(base.num_rows, dtype=bool)
    if drop is not None and len(drop):
        if drop.min() < 0 or drop.max() >= base.num_rows or len(np.unique(drop)) != len(drop):
            raise ValueError(
                f"drop positions must be distinct rows of the base ({base.num_rows} rows)"
            )
        keep[drop] = False
    kept = base.filter(pa.array(keep))
    if add is None:
        return kept
    if add.schema != kept.schema:  # a column empty (null-typed) on the base night
        if not widens(schema_record(kept.schema), add.schema):
            raise ValueError("the added rows' columns differ from the base table's")
        kept = kept.cast(add.schema)
    return pa.concat_tables([kept, add]) if add.num_rows else kept


def delta_for(
    base_tables: Mapping[str, pa.Table], tables: Mapping[str, pa.Table]
) -> dict[str, TableDelta]:
    """Every table's delta against the base snapshot's tables."""
    return {name: table_delta(base_tables.get(name), table) for name, table in tables.items()}


def delta_share(deltas: Mapping[str, TableDelta], tables: Mapping[str, pa.Table]) -> float:
    """Stored rows of the delta as a share of the represented rows."""
    total = sum(t.num_rows for t in tables.values())
    changed = sum(d.changed_rows for d in deltas.values())
    return changed / total if total else 0.0


def delta_base(
    existing: Sequence[SnapshotInfo], kind: str, policy: SnapshotPolicy, full: bool = False
) -> SnapshotInfo | None:
    """The full snapshot a new snapshot should be a delta on, or None for a full snapshot.

    Full: when deltas are off or ``full`` is asked for, for every kind but ``daily``
    (month end, year end, pre-restore backup), when there is no full snapshot yet, and when
    ``policy.max_deltas`` deltas already share the last full one.

    Args:
        existing: published snapshots, oldest first.
        kind: the new snapshot's kind.
        policy: the snapshot policy.
        full: a full snapshot was asked for (on demand).

    Returns:
        The base, or None.
    """
    if full or not policy.delta or kind != "daily":
        return None
    fulls = [s for s in existing if s.storage == "full"]
    if not fulls:
        return None
    base = fulls[-1]
    if sum(1 for s in existing if s.base_id == base.snapshot_id) >= policy.max_deltas:
        return None
    return base

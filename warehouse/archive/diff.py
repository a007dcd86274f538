"""Compare two snapshots: customers added, removed, merged, and attribute changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from warehouse.archive._errors import ArchiveError
from warehouse.archive._hashing import duckdb_cursor
from warehouse.archive._layout import read_manifest
from warehouse.archive.verify import TableReader, read_parquet

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

CUSTOMERS = "golden.customers"
ID_EVENTS = "golden.customer_ids"
CROSSWALK = "golden.crosswalk"


@dataclass(frozen=True)
class SnapshotDiff:
    """What changed from snapshot ``a`` to snapshot ``b`` in one keyed table.

    ``removed`` excludes customers that were merged into another one (those are in ``merged``
    with ``customer_id``, ``merged_into`` and ``evidence`` = ``event`` or ``crosswalk``).
    ``changes`` has one row per changed attribute: ``customer_id, column, old, new`` (as text).
    """

    a_id: str
    b_id: str
    table: str
    key: str
    added: pd.DataFrame
    removed: pd.DataFrame
    merged: pd.DataFrame
    changes: pd.DataFrame
    columns_added: list[str]
    columns_removed: list[str]
    table_row_counts: dict[str, tuple[int | None, int | None]]

    def summary(self) -> dict[str, int]:
        """Counts: added, removed, merged, changed customers and changed attributes."""
        changed = int(self.changes[self.key].nunique()) if len(self.changes) else 0
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "merged": len(self.merged),
            "changed_customers": changed,
            "attribute_changes": len(self.changes),
        }


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read(snapshot: Path, manifest: dict, table: str, reader: TableReader) -> pa.Table | None:
    from warehouse.archive.snapshots import read_snapshot_table

    if table not in manifest.get("tables", manifest["files"]):
        return None
    return read_snapshot_table(snapshot, table, reader=reader)  # a delta is rebuilt on its base


def _check_key(table: pa.Table, key: str, label: str, con: duckdb.DuckDBPyConnection) -> None:
    if key not in table.column_names:
        raise ArchiveError(f"{label} has no key column {key!r}")
    con.register("_chk", table)
    nulls, dupes = con.execute(
        f"SELECT count(*) FILTER (WHERE {_q(key)} IS NULL), count({_q(key)}) - "
        f"count(DISTINCT {_q(key)}) FROM _chk"
    ).fetchall()[0]
    con.unregister("_chk")
    if nulls or dupes:
        raise ArchiveError(f"{label}: key {key!r} has {nulls} null and {dupes} duplicate values")


def _changes_sql(key: str, columns: Sequence[str], same_type: dict[str, bool]) -> str:
    parts = []
    for column in columns:
        old, new = f"a.{_q(column)}", f"b.{_q(column)}"
        test = f"{old} IS DISTINCT FROM {new}"
        if not same_type[column]:
            test = f"CAST({old} AS VARCHAR) IS DISTINCT FROM CAST({new} AS VARCHAR)"
        parts.append(
            f"SELECT a.{_q(key)} AS {_q(key)}, '{column.replace(chr(39), chr(39) * 2)}' AS "
            f'"column", CAST({old} AS VARCHAR) AS old, CAST({new} AS VARCHAR) AS new '
            f"FROM ta a JOIN tb b USING ({_q(key)}) WHERE {test}"
        )
    return " UNION ALL ".join(parts) + f' ORDER BY {_q(key)}, "column"'


def _merges_from_events(con: duckdb.DuckDBPyConnection, key: str) -> pd.DataFrame:
    """Merge events of ``b`` that retire a removed customer into one still present."""
    return con.execute(
        f"""
        WITH m AS (SELECT CAST(customer_id AS VARCHAR) AS x, CAST(other_customer_id AS VARCHAR) AS y
                   FROM ev WHERE lower(CAST(event AS VARCHAR)) LIKE '%merge%')
        SELECT DISTINCT ON (r.k) r.k AS {_q(key)}, coalesce(m1.y, m2.x) AS merged_into,
               'event' AS evidence
        FROM (SELECT CAST({_q(key)} AS VARCHAR) AS k FROM removed_all) r
        LEFT JOIN m m1 ON m1.x = r.k AND m1.y IN (SELECT CAST({_q(key)} AS VARCHAR) FROM tb)
        LEFT JOIN m m2 ON m2.y = r.k AND m2.x IN (SELECT CAST({_q(key)} AS VARCHAR) FROM tb)
        WHERE coalesce(m1.y, m2.x) IS NOT NULL
        ORDER BY r.k, merged_into
        """
    ).df()


def _merges_from_crosswalk(con: duckdb.DuckDBPyConnection, key: str, link: str) -> pd.DataFrame:
    """Removed customers whose source records now belong to a surviving customer."""
    return con.execute(
        f"""
        WITH moved AS (
            SELECT CAST(xa.customer_id AS VARCHAR) AS k, CAST(xb.customer_id AS VARCHAR) AS target,
                   count(*) AS n
            FROM xa JOIN xb USING ({link})
            WHERE CAST(xa.customer_id AS VARCHAR) IN (SELECT CAST({_q(key)} AS VARCHAR)
                                                      FROM removed_all)
              AND CAST(xb.customer_id AS VARCHAR) IN (SELECT CAST({_q(key)} AS VARCHAR) FROM tb)
            GROUP BY ALL)
        SELECT DISTINCT ON (k) k AS {_q(key)}, target AS merged_into, 'crosswalk' AS evidence
        FROM moved ORDER BY k, n DESC, target
        """
    ).df()


def _link_columns(a: pa.Table, b: pa.Table) -> str | None:
    for candidate in (["record_key"], ["source_system", "source_record_id"]):
        needed = [*candidate, "customer_id"]
        if all(c in a.column_names and c in b.column_names for c in needed):
            return ", ".join(_q(c) for c in candidate)
    return None


def diff_snapshots(
    a: Path,
    b: Path,
    key: str = "customer_id",
    *,
    table: str = CUSTOMERS,
    ignore_columns: Sequence[str] = ("updated_run_id",),
    reader: TableReader | None = None,
) -> SnapshotDiff:
    """Diff two snapshots' customer tables (customers added, removed, merged; attribute changes).

    Merges come from ``golden.customer_ids`` merge events in ``b`` when present, else (and for
    removals the events do not explain) from ``golden.crosswalk``: a removed customer whose
    source records now belong to a surviving customer was merged into it.

    Args:
        a: the older snapshot folder.
        b: the newer snapshot folder.
        key: the key column (客户编号).
        table: the keyed table to compare.
        ignore_columns: bookkeeping columns whose changes are not attribute changes.
        reader: reads one table file (default plain Parquet; a decrypting one for encrypted
            snapshots).

    Returns:
        A :class:`SnapshotDiff` with a summary and frames.
    """
    import pandas as pd

    ma, mb = read_manifest(Path(a)), read_manifest(Path(b))
    read = reader or read_parquet
    ta, tb = _read(Path(a), ma, table, read), _read(Path(b), mb, table, read)
    if ta is None or tb is None:
        raise ArchiveError(f"both snapshots need table {table!r} to diff")
    con = duckdb_cursor()
    try:
        _check_key(ta, key, f"{ma['snapshot_id']} {table}", con)
        _check_key(tb, key, f"{mb['snapshot_id']} {table}", con)
        con.register("ta", ta)
        con.register("tb", tb)
        anti = "SELECT * FROM {0} WHERE {1} NOT IN (SELECT {1} FROM {2}) ORDER BY {1}"
        added = con.execute(anti.format("tb", _q(key), "ta")).df()
        removed_all = con.sql(anti.format("ta", _q(key), "tb")).to_arrow_table()
        con.register("removed_all", removed_all)
        merged = _find_merges(con, key, (Path(a), ma), (Path(b), mb), read)
        removed = removed_all.to_pandas()
        removed = removed[~removed[key].astype("string").isin(merged[key].astype("string"))]
        common = [c for c in ta.column_names if c in tb.column_names and c != key]
        compared = [c for c in common if c not in set(ignore_columns)]
        same_type = {c: ta.schema.field(c).type == tb.schema.field(c).type for c in compared}
        changes = (
            con.execute(_changes_sql(key, compared, same_type)).df()
            if compared
            else pd.DataFrame({key: [], "column": [], "old": [], "new": []}, dtype="string")
        )
    finally:
        con.close()
    counts = {
        name: (ma["row_counts"].get(name), mb["row_counts"].get(name))
        for name in sorted(set(ma["row_counts"]) | set(mb["row_counts"]))
    }
    return SnapshotDiff(
        a_id=str(ma["snapshot_id"]),
        b_id=str(mb["snapshot_id"]),
        table=table,
        key=key,
        added=added.reset_index(drop=True),
        removed=removed.reset_index(drop=True),
        merged=merged.reset_index(drop=True),
        changes=changes.reset_index(drop=True),
        columns_added=[c for c in tb.column_names if c not in ta.column_names],
        columns_removed=[c for c in ta.column_names if c not in tb.column_names],
        table_row_counts=counts,
    )


def _find_merges(
    con: duckdb.DuckDBPyConnection,
    key: str,
    a: tuple[Path, dict],
    b: tuple[Path, dict],
    read: TableReader,
) -> pd.DataFrame:
    import pandas as pd

    frames = []
    events = _read(*b, ID_EVENTS, read)
    if events is not None and {"customer_id", "event", "other_customer_id"} <= set(
        events.column_names
    ):
        con.register("ev", events)
        frames.append(_merges_from_events(con, key))
    xa, xb = _read(*a, CROSSWALK, read), _read(*b, CROSSWALK, read)
    link = _link_columns(xa, xb) if xa is not None and xb is not None else None
    if link is not None:
        con.register("xa", xa)
        con.register("xb", xb)
        frames.append(_merges_from_crosswalk(con, key, link))
    if not frames:
        return pd.DataFrame({key: [], "merged_into": [], "evidence": []}, dtype="string")
    merged = pd.concat(frames, ignore_index=True)
    return merged.drop_duplicates(subset=[key], keep="first").sort_values(key)

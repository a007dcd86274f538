"""The full clean in chunks: the SQL around cleaning the current records a slice at a time.

A full clean holding every current record in pandas at once peaked at ≈ 6 GB at 1 M records
(BENCHMARKS.md, issue #22). The stage (``pipelines/stages/clean.py``) instead reads the current
versions staged in ``warehouse.clean_delta.CURRENT`` a slice of rows at a time (in their
order), cleans each slice with the whole set's inputs and appends it to a table under a
building name, ``clean._building_<name>`` (``building``; ``warehouse.db.ChunkedTables``),
each chunk committed on its own. The two whole-set inputs come from SQL: each source's
day/month order from the distinct date texts before the first chunk
(``clean_delta.distinct_date_values``), the switchboard phones from the written building
records after the last one (records whose flag was guessed wrong are cleaned again and updated
in place, so the table keeps its row order). Then ONE short transaction drops the old
``clean.*`` tables and renames the built ones (``swap_in``).

Why not one transaction around every chunk: DuckDB keeps a transaction's appended rows in
memory until COMMIT, so the whole clean layer sat in memory (a 10 M rehearsal stopped in the
clean stage at 11.7 GB). Committed chunk by chunk, memory holds about one chunk. The old
layer stays untouched until the swap: a failed clean drops its building tables
(``drop_building``), and one killed mid-way leaves them for the next clean stage to drop; no
reader ever sees a partial or mixed ``clean.*`` under the published names.

Only SQL and frames here: the cleaning itself is ``cleaning``.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.clean_delta import CURRENT
from warehouse.db import to_duckdb_arrow
from warehouse.versions import TEXT_TYPES

__all__ = [
    "BUILDING",
    "building",
    "current_slice",
    "drop_building",
    "drop_slices",
    "flag_mismatches",
    "phone_name_keys",
    "slice_bounds",
    "sort_table",
    "stage_slices",
    "swap_in",
    "unmapped_inputs",
    "update_records",
]


_SLICED = "_clean_full_current"
SCHEMA = "clean"
BUILDING = "_building_"  # the prefix of the tables a full clean builds before the swap


def building(name: str) -> str:
    """The building name of the clean table ``name``: ``records`` → ``clean._building_records``."""
    return f"{SCHEMA}.{BUILDING}{name}"


def drop_building(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop every ``clean._building_*`` table (those of a failed or killed full clean).

    Call it outside a transaction. Returns the names dropped.
    """
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables()"
        " WHERE schema_name = ? AND starts_with(table_name, ?)",
        [SCHEMA, BUILDING],
    ).fetchall()
    names = sorted(r[0] for r in rows)
    for table in names:
        con.execute(f'DROP TABLE IF EXISTS {SCHEMA}."{table}"')
    return names


def swap_in(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """Replace each ``clean.<name>`` by its building table; inside the caller's transaction.

    Drops the old table (if any) and renames the built one (DuckDB renames in a transaction, and
    ROLLBACK restores both), so the swap commits or rolls back with the caller's other writes.
    """
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
        con.execute(f"ALTER TABLE {building(name)} RENAME TO {name}")


def stage_slices(con: duckdb.DuckDBPyConnection) -> None:
    """Copy ``CURRENT`` (a view over the stored versions) into a temp table to slice by rowid.

    A view has no ``rowid``; the temporary table keeps the view's row order and lives in
    DuckDB's memory (spilled under ``memory_limit``), not in pandas. Call it outside a
    transaction: a table created inside one numbers its rows from a large offset.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_SLICED} AS SELECT * FROM {CURRENT}")


def drop_slices(con: duckdb.DuckDBPyConnection) -> None:
    """Free the temp table of ``stage_slices`` once every slice is cleaned."""
    con.execute(f"DROP TABLE IF EXISTS {_SLICED}")


def slice_bounds(current: int, size: int, processes: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` row bounds of the slices a full clean reads, in order.

    At most ``size`` records a slice. With several processes cleaning side by side, the
    records are split evenly into a multiple of ``processes`` slices (at least one each), so
    no process waits on a short last slice. No record: one empty slice (the tables, empty).
    """
    if current <= 0:
        return [(0, size)]
    if processes <= 1:
        return [(start, start + size) for start in range(0, current, size)]
    count = -(-max(-(-current // size), processes) // processes) * processes
    step = -(-current // count)
    return [(start, min(start + step, current)) for start in range(0, current, step)]


def current_slice(con: duckdb.DuckDBPyConnection, start: int, stop: int) -> pd.DataFrame:
    """Rows ``start`` ≤ row < ``stop`` of ``CURRENT`` in its order, as one all-text frame.

    ``stage_slices`` must have run first.
    """
    table = con.sql(
        f"SELECT * FROM {_SLICED} WHERE rowid >= $start AND rowid < $stop ORDER BY rowid",
        params={"start": start, "stop": stop},
    ).to_arrow_table()
    return table.to_pandas(types_mapper=TEXT_TYPES.get)


def phone_name_keys(
    con: duckdb.DuckDBPyConnection, min_names: int, table: str = "clean.records"
) -> pd.DataFrame:
    """``phone, name_key`` of the clean records whose phone is on ≥ ``min_names`` records.

    Only those phones can be switchboards (``cleaning.phone.flag_shared_phones``), so the
    switchboards of these rows are those of every clean record. ``table``: the records read.
    """
    return (
        con.sql(
            f"SELECT phone, name_key FROM {table} WHERE phone IN"
            f" (SELECT phone FROM {table} WHERE phone IS NOT NULL"
            "  GROUP BY phone HAVING count(*) >= $n)",
            params={"n": int(min_names)},
        )
        .to_arrow_table()
        .to_pandas(types_mapper=TEXT_TYPES.get)
    )


def flag_mismatches(
    con: duckdb.DuckDBPyConnection, shared: frozenset[str], table: str = "clean.records"
) -> list[str]:
    """``record_key`` in ``table`` whose ``phone_shared`` disagrees with ``shared``."""
    con.register("_clean_full_shared", pa.table({"phone": pa.array(sorted(shared), pa.string())}))
    try:
        rows = con.execute(
            f"SELECT record_key FROM {table} WHERE coalesce(phone_shared, false)"
            " <> coalesce(phone IN (SELECT phone FROM _clean_full_shared), false)"
        ).fetchall()
    finally:
        con.unregister("_clean_full_shared")
    return [r[0] for r in rows]


def update_records(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, table: str = "clean.records"
) -> None:
    """Overwrite the rows of ``records``' keys in ``table`` in place (every column)."""
    if records.empty:
        return
    columns = [c for c in records.columns if c != "record_key"]
    sets = ", ".join(f'"{c}" = n."{c}"' for c in columns)
    con.register("_clean_full_redo", to_duckdb_arrow(records))
    try:
        con.execute(
            f"UPDATE {table} AS r SET {sets} FROM _clean_full_redo AS n"
            " WHERE n.record_key = r.record_key"
        )
    finally:
        con.unregister("_clean_full_redo")


def unmapped_inputs(con: duckdb.DuckDBPyConnection, table: str = "clean.records") -> pd.DataFrame:
    """``industry_raw, industry_code`` of the records of ``table`` no industry section matched."""
    return (
        con.sql(
            f"SELECT industry_raw, industry_code FROM {table}"
            " WHERE industry_code IS NULL AND industry_raw IS NOT NULL"
        )
        .to_arrow_table()
        .to_pandas(types_mapper=TEXT_TYPES.get)
    )


def sort_table(con: duckdb.DuckDBPyConnection, name: str, keys: list[str]) -> None:
    """Rewrite ``name`` sorted by ``keys`` (a table written in chunks, each one sorted)."""
    order = ", ".join(f'"{k}"' for k in keys)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name} ORDER BY {order}")

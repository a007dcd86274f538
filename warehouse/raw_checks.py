"""Which earlier runs' raw rows the per-row raw checks must see again (``ops.raw_check_pending``).

The raw suite checks its per-row properties on the rows a run delivered; a run whose rows
failed one of them stays pending, so every later run checks its live rows again until they
pass (the delivery was withdrawn or corrected). One row per ``(source_system, run_id)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

from warehouse.db import table_exists, transaction

__all__ = ["PENDING_TABLE", "pending_raw_runs", "store_pending_raw_runs"]

PENDING_TABLE = "ops.raw_check_pending"


def pending_raw_runs(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """The earlier runs of ``source`` whose rows failed a per-row raw check (oldest first)."""
    if not table_exists(con, PENDING_TABLE):
        return []
    rows = con.execute(
        f"SELECT run_id FROM {PENDING_TABLE} WHERE source_system = ? ORDER BY run_id", [source]
    ).fetchall()
    return [str(r[0]) for r in rows]


def store_pending_raw_runs(
    con: duckdb.DuckDBPyConnection, source: str, runs: Iterable[str]
) -> None:
    """Replace the pending runs of ``source`` (one transaction)."""
    frame = pa.table({"run_id": pa.array(sorted(set(runs)), pa.string())})
    con.register("_raw_pending", frame)
    try:
        with transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS ops")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE}"
                " (source_system VARCHAR, run_id VARCHAR)"
            )
            con.execute(f"DELETE FROM {PENDING_TABLE} WHERE source_system = ?", [source])
            con.execute(f"INSERT INTO {PENDING_TABLE} SELECT ?, run_id FROM _raw_pending", [source])
    finally:
        con.unregister("_raw_pending")

"""When a run's checkpoints compact the warehouse (DuckDB's checkpoint vacuum); the record of it.

A DuckDB checkpoint does two things: it writes what the transactions since the last one
changed, and it *vacuums*: row groups that lost rows to deletes, or that are only partly filled
(a night's appends land in a new, small row group), are merged with their neighbours and
rewritten whole. On a nightly run the second part is most of the checkpoints' cost and it grows
with the tables, not with the night: at 200 k records the re-delivered sales export's new row
group is merged with the one before (every column of ≈ 110 k rows rewritten), and the golden
tables' deletes of the touched customers have half of ``golden.attribute_lineage`` rewritten
(BENCHMARKS.md, issue #15, branch ``nrest2``). Vacuuming changes where rows are stored, never
which rows a table holds or their order.

So, with ``duckdb.compact_every_days`` set above its default 0, an in-process run that holds
the warehouse open (``pipelines.access.run_warehouse``: a nightly) defers the vacuum
(``max_vacuum_tasks = 0`` on that database) unless a compaction is *due*: none recorded in
``ops.compactions`` within ``duckdb.compact_every_days`` days before the run date. A run that
compacts leaves DuckDB's default (every checkpoint vacuums) and records its run date when it
ends without an error; a first run (it writes every table new, so compact) records its date
too. Between compactions deleted rows keep their space and each night's small row groups stay
apart; the next compaction merges them all at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb

from warehouse.db import table_exists

__all__ = [
    "COMPACTIONS",
    "compaction_due",
    "defer_vacuum",
    "last_compaction",
    "record_compaction",
    "vacuum_deferred",
]

COMPACTIONS = "ops.compactions"
"""One row per run whose checkpoints compacted the warehouse: its run date and when it ended."""


def last_compaction(con: duckdb.DuckDBPyConnection) -> date | None:
    """The latest run date recorded in ``ops.compactions`` (None: none recorded)."""
    if not table_exists(con, COMPACTIONS):
        return None
    (latest,) = con.execute(f"SELECT max(run_date) FROM {COMPACTIONS}").fetchall()[0]
    return latest


def compaction_due(con: duckdb.DuckDBPyConnection, run_date: date, every_days: int) -> bool:
    """Whether a run on `run_date` compacts: always with `every_days` 0, else when no compaction
    is recorded in the `every_days` days before `run_date` (none at all, or the latest one
    `every_days` or more days earlier).

    A replayed date before the latest compaction is not due: the warehouse was compacted since.
    """
    if every_days <= 0:
        return True
    latest = last_compaction(con)
    return latest is None or run_date - latest >= timedelta(days=every_days)


def defer_vacuum(con: duckdb.DuckDBPyConnection) -> None:
    """The checkpoints of this connection's database write what changed and vacuum nothing.

    ``max_vacuum_tasks`` is a setting of the database instance (every connection to it, the
    checkpoint on close included); a connection opened again starts with DuckDB's default.
    """
    con.execute("SET max_vacuum_tasks = 0")


def vacuum_deferred(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this connection's database checkpoints without vacuuming (`defer_vacuum`)."""
    ((tasks,),) = con.execute("SELECT current_setting('max_vacuum_tasks')").fetchall()
    return int(tasks) == 0


def record_compaction(con: duckdb.DuckDBPyConnection, run_date: date) -> None:
    """Record that the run of `run_date` compacted the warehouse (its checkpoints vacuumed)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {COMPACTIONS} (run_date DATE, recorded_at VARCHAR)")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    con.execute(f"INSERT INTO {COMPACTIONS} VALUES (?, ?)", [run_date, now])

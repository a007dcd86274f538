"""Run bookkeeping tables: ``ops.stage_stats`` (stage figures) and ``ops.check_results``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.db import read_table, replace_tables, table_columns, table_exists

__all__ = [
    "append_audit_record",
    "concat_frames",
    "latest_recorded_run",
    "read_check_results",
    "read_required",
    "read_stage_stats",
    "replace_check_failures",
    "require_tables",
    "run_deliveries",
    "write_check_results",
    "write_stage_stats",
]


def concat_frames(old: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame:
    """``old`` then ``new`` (either may be None or empty) as one frame."""
    parts = [f for f in (old, new) if f is not None and len(f)]
    if not parts:
        return new if new is not None else pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def require_tables(con: duckdb.DuckDBPyConnection, names: Sequence[str], hint: str) -> None:
    """Fail with a clear error naming the tables a stage needs that do not exist."""
    missing = [n for n in names if not table_exists(con, n)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: {hint} first")


def read_required(
    con: duckdb.DuckDBPyConnection,
    names: Sequence[str],
    hint: str,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> list[pd.DataFrame]:
    """Read tables a stage cannot run without; a clear error names the missing ones.

    ``columns`` limits a table to the listed columns it has (the others are never read).
    """
    require_tables(con, names, hint)
    frames = []
    for name in names:
        wanted = (columns or {}).get(name)
        if wanted is not None:
            have = set(table_columns(con, name))
            wanted = tuple(c for c in wanted if c in have)
        frames.append(read_table(con, name, columns=wanted))
    return frames  # type: ignore[return-value]


def write_stage_stats(
    con: duckdb.DuckDBPyConnection, run_id: str, stage: str, stats: Mapping[str, Any]
) -> None:
    """Store one stage's figures in ``ops.stage_stats`` (replacing the run's earlier row)."""
    row = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "stage": stage,
                "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "stats": json.dumps(dict(stats), ensure_ascii=False, default=str),
            }
        ]
    )
    old = read_table(con, "ops.stage_stats")
    if old is not None:
        old = old[~((old["run_id"] == run_id) & (old["stage"] == stage))]
    replace_tables(con, {"ops.stage_stats": concat_frames(old, row)})


def read_stage_stats(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict]:
    """Every stage's figures recorded for a run, keyed by stage name."""
    table = read_table(con, "ops.stage_stats")
    if table is None:
        return {}
    rows = table[table["run_id"] == run_id]
    return {r.stage: json.loads(r.stats) for r in rows.itertuples()}


def write_check_results(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    results: Sequence[Mapping[str, Any]],
    scope: str | None = None,
) -> None:
    """Store expectation outcomes in ``ops.check_results``.

    Each result has ``name, layer, critical, success, observed (dict), description``. With a
    ``scope`` (``raw.<source>``, ``clean.records``, ``golden``) only the run's earlier rows of
    that scope are replaced, so the layers of one run are stored side by side; without one,
    all of the run's rows are.
    """
    frame = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "scope": scope,
                "name": r["name"],
                "layer": r["layer"],
                "critical": r["critical"],
                "success": r["success"],
                "observed": json.dumps(r["observed"], ensure_ascii=False, default=str),
                "description": r["description"],
            }
            for r in results
        ],
        columns=[
            "run_id", "scope", "name", "layer", "critical", "success", "observed", "description"
        ],
    )  # fmt: skip
    frame["scope"] = frame["scope"].astype("string")
    previous = read_table(con, "ops.check_results")
    if previous is not None:
        stale = previous["run_id"] == run_id
        if scope is not None and "scope" in previous.columns:
            stale &= previous["scope"] == scope
        elif scope is not None:
            stale &= False
        previous = previous[~stale.fillna(False).astype(bool)]
    replace_tables(con, {"ops.check_results": concat_frames(previous, frame)})


def read_check_results(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The expectation outcomes stored for a run, as plain records (``observed`` parsed)."""
    table = read_table(con, "ops.check_results")
    if table is None:
        return []
    rows = table[table["run_id"] == run_id]
    return [
        {
            "name": r.name,
            "layer": r.layer,
            "critical": bool(r.critical),
            "success": bool(r.success),
            "observed": json.loads(r.observed),
            "description": r.description,
        }
        for r in rows.itertuples()
    ]


def run_deliveries(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The ``ops.deliveries`` rows a run ingested (the snapshot's source manifest)."""
    deliveries = read_table(con, "ops.deliveries")
    if deliveries is None:
        return []
    return deliveries[deliveries["run_id"] == run_id].to_dict("records")


def append_audit_record(con: duckdb.DuckDBPyConnection, record: Mapping[str, Any]) -> None:
    """Append one drawn audit sample to ``ops.audits``."""
    row = pd.DataFrame([dict(record)])
    old = read_table(con, "ops.audits")
    replace_tables(con, {"ops.audits": row if old is None else pd.concat([old, row])})


def latest_recorded_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The id of the most recent run with figures in ``ops.stage_stats``, or None."""
    table = read_table(con, "ops.stage_stats")
    if table is None or table.empty:
        return None
    return str(table.sort_values("recorded_at")["run_id"].iloc[-1])


def replace_check_failures(
    con: duckdb.DuckDBPyConnection,
    tables: tuple[str, str],
    key_column: str,
    run_id: str,
    failing: Mapping[str, Sequence[Any]],
    state: Mapping[str, str | None],
) -> None:
    """Replace a suite's stored per-row failures and the state they hold under (one transaction).

    Args:
        con: the warehouse.
        tables: ``(failures table, state table)``, e.g. ``ops.golden_check_failures`` and
            ``ops.golden_check_state``.
        key_column: the column naming a failing row (``record_key``, ``customer_id``).
        run_id: the run that validated.
        failing: check name → every failing key.
        state: the state table's one row (text columns; ``run_id`` is added).
    """
    failures, state_table = tables
    pairs = [(check, str(key)) for check, keys in failing.items() for key in keys]
    frame = pa.table(
        {
            "run_id": pa.array([run_id] * len(pairs), pa.string()),
            "check_name": pa.array([p[0] for p in pairs], pa.string()),
            key_column: pa.array([p[1] for p in pairs], pa.string()),
        }
    )
    row = {**state, "run_id": run_id}
    columns = ", ".join(f'"{c}" VARCHAR' for c in row)
    con.register("_check_failing", frame)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS ops")
        con.execute(f"CREATE OR REPLACE TABLE {failures} AS SELECT * FROM _check_failing")
        con.execute(f"CREATE OR REPLACE TABLE {state_table} ({columns})")
        marks = ", ".join("?" for _ in row)
        con.execute(f"INSERT INTO {state_table} VALUES ({marks})", list(row.values()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_check_failing")

"""Run bookkeeping tables: ``ops.stage_stats`` (stage figures), ``ops.check_results``, the
clean layer's change log (``ops.clean_runs``, ``ops.clean_changes``) and the match layer's
(``ops.match_runs``, ``ops.match_changes``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.db import (
    append_table,
    read_table,
    replace_tables,
    table_columns,
    table_exists,
    transaction,
)

__all__ = [
    "CLEAN_CHANGES",
    "CLEAN_LOG_RUNS",
    "CLEAN_RUNS",
    "MATCH_CHANGES",
    "MATCH_LOG_RUNS",
    "MATCH_RUNS",
    "append_audit_record",
    "clean_changes_since",
    "concat_frames",
    "latest_recorded_run",
    "linked_run",
    "match_changes_since",
    "read_check_results",
    "read_required",
    "read_stage_stats",
    "record_clean_run",
    "record_match_run",
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
    if table_exists(con, "ops.check_results") and "scope" in table_columns(
        con, "ops.check_results"
    ):
        # the run's rows of this scope replaced, every earlier run's left where they are: the
        # write follows the night, not the number of runs stored
        where, params = ("run_id = ?", [run_id]) if scope is None else (
            "run_id = ? AND scope = ?", [run_id, scope])  # fmt: skip
        with transaction(con):
            con.execute(f"DELETE FROM ops.check_results WHERE {where}", params)
            append_table(con, "ops.check_results", frame)
        return
    previous = read_table(con, "ops.check_results")  # none yet, or one stored before `scope`
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
    try:
        with transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS ops")
            con.execute(f"CREATE OR REPLACE TABLE {failures} AS SELECT * FROM _check_failing")
            con.execute(f"CREATE OR REPLACE TABLE {state_table} ({columns})")
            marks = ", ".join("?" for _ in row)
            con.execute(f"INSERT INTO {state_table} VALUES ({marks})", list(row.values()))
    finally:
        con.unregister("_check_failing")


CLEAN_RUNS = "ops.clean_runs"
"""One row per clean that committed: ``seq`` (1, 2, … in commit order), ``run_id``, ``mode``
(``full`` or ``incremental``), ``changed`` (records it logged), ``recorded_at``."""
CLEAN_CHANGES = "ops.clean_changes"
"""One row per record an incremental clean changed in ``clean.records``: ``seq``, ``run_id``,
``record_key``, ``change`` (``inserted``, ``updated`` — cleaned again or updated in place,
e.g. ``deleted_at_source`` —, ``removed``). A full clean logs no keys (every row changed)."""
CLEAN_LOG_RUNS = 32
"""At most this many cleans are kept in the log (and none older than the one the last link
read): a link more than this many cleans behind compares the whole tables instead."""


CLEANER = "ops.cleaner"
"""One row: ``cleaner_version`` (`cleaning.cleaner_version`) of the code that made the whole
clean layer, written with each clean in its transaction."""


def stored_cleaner_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The cleaner version the clean layer was made by; None when not recorded (a warehouse
    from before versions were stored: its cleaner is unknown)."""
    if not table_exists(con, CLEANER):
        return None
    rows = con.execute(f"SELECT cleaner_version FROM {CLEANER}").fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


def cleaner_version_sql(version: str) -> list[str]:
    """Statements that record `version` as the clean layer's (run in the clean's transaction)."""
    if not version.isalnum():
        raise ValueError(f"not a cleaner version: {version!r}")
    return [
        "CREATE SCHEMA IF NOT EXISTS ops",
        f"CREATE TABLE IF NOT EXISTS {CLEANER} (cleaner_version VARCHAR)",
        f"DELETE FROM {CLEANER}",
        f"INSERT INTO {CLEANER} VALUES ('{version}')",
    ]


def linked_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run of the last link (the newest ``match.params`` row), or None.

    That link left ``match.linked_records`` holding the fingerprint of every ``clean.records``
    row as the same run's clean had written it (a full link hashes every record, a nightly one
    every changed record, in the transaction that appends the params row).
    """
    if not table_exists(con, "match.params"):
        return None
    row = con.execute("SELECT arg_max(run_id, created_at) FROM match.params").fetchall()
    return None if not row or row[0][0] is None else str(row[0][0])


def _log_run(
    con: duckdb.DuckDBPyConnection,
    tables: tuple[str, str],
    run_id: str,
    mode: str,
    changes: str | None,
    extra: tuple[str, str] | None,
) -> int:
    """Append one run to a change log (``tables``: its runs and its changes table, created
    when missing) and return the run's ``seq``.

    ``changes`` (None: nothing logged per record) is a table with ``record_key``; ``extra``
    names one more column kept per record (its name in the log, its name in ``changes``),
    else the distinct keys are logged.
    """
    runs, changed_table = tables
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {runs} (seq BIGINT, run_id VARCHAR, mode VARCHAR,"
        " changed BIGINT, recorded_at VARCHAR)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {changed_table} (seq BIGINT, run_id VARCHAR,"
        " record_key VARCHAR" + (f", {extra[0]} VARCHAR)" if extra else ")")
    )
    row = con.execute(f"SELECT coalesce(max(seq), 0) + 1 FROM {runs}").fetchall()[0]
    seq = int(row[0])
    changed = 0
    if changes is not None:
        select = f"?, ?, record_key, {extra[1]}" if extra else "DISTINCT ?, ?, record_key"
        (changed,) = con.execute(
            f"INSERT INTO {changed_table} SELECT {select} FROM {changes}", [seq, run_id]
        ).fetchall()[0]
    con.execute(
        f"INSERT INTO {runs} VALUES (?, ?, ?, ?, ?)",
        [seq, run_id, mode, int(changed), datetime.now(UTC).isoformat(timespec="seconds")],
    )
    return seq


def record_clean_run(
    con: duckdb.DuckDBPyConnection, run_id: str, mode: str, changes: str | None = None
) -> None:
    """Log a clean in ``CLEAN_RUNS`` / ``CLEAN_CHANGES``; run inside the clean's transaction.

    Args:
        con: The warehouse, in the transaction that writes ``clean.*``.
        run_id: The run.
        mode: ``full`` or ``incremental``.
        changes: A table of ``record_key, change`` (every record the clean inserted, updated
            or removed in ``clean.records``); None for a full clean.

    Cleans older than the last link's (``linked_run``), and beyond ``CLEAN_LOG_RUNS``, are
    pruned: nothing reads them.
    """
    seq = _log_run(con, (CLEAN_RUNS, CLEAN_CHANGES), run_id, mode, changes, ("change", "change"))
    linked = linked_run(con)
    found = con.execute(f"SELECT max(seq) FROM {CLEAN_RUNS} WHERE run_id = ?", [linked]).fetchall()[
        0
    ][0]
    keep = max(seq - CLEAN_LOG_RUNS + 1, int(found) if found is not None else 0)
    for table in (CLEAN_CHANGES, CLEAN_RUNS):
        con.execute(f"DELETE FROM {table} WHERE seq < ?", [keep])


def clean_changes_since(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str | None:
    """A temporary table of the records the cleans after ``run_id``'s changed, or None.

    The log is complete when ``run_id``'s clean is logged (once) and every clean after it was
    incremental: then ``clean.records`` differs from what it was after that clean in these
    records' rows only (a failed run in between committed no clean, so logged nothing and
    changed nothing). None when it cannot tell: nothing logged (first run, a warehouse from
    before the log), ``run_id``'s clean not in the log (pruned, or it ran elsewhere), more
    than one clean in that run, or a full clean since.

    Args:
        con: The warehouse.
        run_id: The run whose clean the caller's state was taken from (``linked_run``).

    Returns:
        The name of a temporary table of distinct ``record_key`` (maybe empty), or None.
    """
    return _changes_since(con, (CLEAN_RUNS, CLEAN_CHANGES), run_id, "_clean_changed_since")


def _changes_since(
    con: duckdb.DuckDBPyConnection, log: tuple[str, str], run_id: str | None, name: str
) -> str | None:
    """``clean_changes_since`` / ``match_changes_since`` over ``log`` (runs, changes tables):
    the records logged after ``run_id``'s entry, as the temporary table ``name``, or None when
    the log cannot tell (see those)."""
    runs, changes = log
    if run_id is None or not (table_exists(con, runs) and table_exists(con, changes)):
        return None
    at = con.execute(
        f"SELECT count(*), max(seq) FROM {runs} WHERE run_id = ?", [run_id]
    ).fetchall()[0]
    if at[0] != 1:
        return None
    (full,) = con.execute(
        f"SELECT count(*) FROM {runs} WHERE seq > ? AND mode <> 'incremental'", [at[1]]
    ).fetchall()[0]
    if full:
        return None
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT DISTINCT record_key"
        f" FROM {changes} WHERE seq > ?",
        [at[1]],
    )
    return name


MATCH_RUNS = "ops.match_runs"
"""One row per link written to ``match.*``: ``seq`` (1, 2, … in write order), ``run_id``,
``mode`` (``full`` or ``incremental``), ``changed`` (records it logged), ``recorded_at``."""
MATCH_CHANGES = "ops.match_changes"
"""One row per record a nightly link changed a ``match.pairs`` or ``match.clusters`` row of
(an endpoint of a pair row deleted or inserted, or the record of a cluster row deleted or
inserted): ``seq``, ``run_id``, ``record_key``. A full link logs no keys (every row changed)."""
MATCH_LOG_RUNS = 32
"""At most this many links are kept in the match log: a golden build more than this many
links behind hashes every record's inputs instead."""


def record_match_run(
    con: duckdb.DuckDBPyConnection, run_id: str, mode: str, changes: str | None = None
) -> None:
    """Log a link in ``MATCH_RUNS`` / ``MATCH_CHANGES``.

    A nightly link (``mode`` ``incremental``, ``changes`` a table of ``record_key``, repeats
    allowed) logs inside the transaction of its delta, so the log and ``match.*`` change
    together. A full link (``changes`` None) is logged before its write, in a transaction of
    its own: a write that then fails leaves a ``full`` entry behind, which only makes the next
    golden build hash every record (never a log that misses a change).

    Args:
        con: The warehouse.
        run_id: The run.
        mode: ``full`` or ``incremental``.
        changes: A table of the records whose ``match.*`` rows the link changed; None for a
            full link.
    """
    if (mode == "incremental") != (changes is not None):
        raise ValueError("an incremental link logs its changed records, a full link none")
    seq = _log_run(con, (MATCH_RUNS, MATCH_CHANGES), run_id, mode, changes, None)
    for table in (MATCH_CHANGES, MATCH_RUNS):
        con.execute(f"DELETE FROM {table} WHERE seq < ?", [seq - MATCH_LOG_RUNS + 1])


def match_changes_since(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str | None:
    """A temporary table of the records the links after ``run_id``'s changed, or None.

    Complete (as ``clean_changes_since``) when ``run_id``'s link is logged once and every link
    after it was a logged nightly delta: then ``match.pairs`` and ``match.clusters`` differ
    from what that link left only in rows of these records. None when it cannot tell (no
    log, ``run_id``'s link not logged or pruned, a full link since).
    """
    return _changes_since(con, (MATCH_RUNS, MATCH_CHANGES), run_id, "_match_changed_since")

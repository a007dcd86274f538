"""Nightly Parquet change files beside the full golden export: the rows of changed customers.

A nightly (incremental) run changes the rows of a few customers. Instead of writing every
golden table again, it writes, per exported table, the new rows of the customers it changed
(``changes/<table>/seq=<n>/<run_id>.parquet``) and the list of those customers
(``changes/_replaced/seq=<n>/<run_id>.parquet``: ``table_name, customer_id``); ``n`` counts
the runs since the last full export. A full export (every table, ``export_parquet``) is written
on a full golden build, when none exists, and once ``every_days`` days have passed since the
last one; it removes the change files it folds in. ``_export.json`` records the full export's
run and the last sequence number. The current state of a table is the full export without the
replaced customers plus each replaced customer's rows from its newest change
(``current_export_sql``, docs/warehouse.md#parquet-exports).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import duckdb

from warehouse.db import table_exists
from warehouse.naming import EXPORTED, PARTITIONS, export_parquet

__all__ = [
    "CHANGES_DIR",
    "MANIFEST",
    "REPLACED",
    "changed_rows_sql",
    "condition_customers_sql",
    "current_export_sql",
    "full_export_due",
    "publish_exports",
    "read_manifest",
]

CHANGES_DIR = "changes"
REPLACED = "_replaced"
MANIFEST = "_export.json"


def read_manifest(out_dir: Path) -> dict[str, object] | None:
    """The export folder's ``_export.json`` (None when absent or unreadable)."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def full_export_due(
    out_dir: Path, run_date: date, every_days: int, previous_state: str | None
) -> bool:
    """Whether this run must write the full export rather than change files.

    Due when there is no full export, ``every_days`` have passed since it, or the exports do
    not describe the golden state this run started from (``previous_state``: a run that
    crashed between its swap and its export, a restore, an erasure).
    """
    manifest = read_manifest(out_dir)
    if manifest is None or not all((out_dir / _target(t)).exists() for t in EXPORTED[:2]):
        return True
    if previous_state is None or manifest.get("state") != previous_state:
        return True
    try:
        full_date = date.fromisoformat(str(manifest["full_run_date"]))
    except (KeyError, ValueError):
        return True
    return (run_date - full_date).days >= every_days or run_date < full_date


def publish_exports(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    run_id: str,
    run_date: date,
    changed: Mapping[str, str] | None,
    every_days: int,
    states: tuple[str | None, str | None] = (None, None),
    sources: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write this run's exports: the full export, or the change files of ``changed``.

    Args:
        con: the warehouse, after the swap.
        out_dir: the golden export folder.
        run_id: this run.
        run_date: this run's date.
        changed: ``golden.<table>`` → SQL condition selecting the customers whose rows this
            run replaced (``swap_in_golden``); None when whole tables were replaced.
        every_days: write a full export when this many days passed since the last one.
        states: the fingerprints (``match.golden_state``) of the golden state before and
            after this run's swap; change files only extend exports of the state before.
        sources: ``golden.<table>`` → the table whose rows the swap inserted after deleting
            the rows ``changed`` names (the staged delta): its change file is read from there
            (the same rows, typed as the golden table) instead of scanning the whole table.

    Returns:
        The files (and partition folders) written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    previous, new = states
    if changed is None or full_export_due(out_dir, run_date, every_days, previous):
        (out_dir / MANIFEST).unlink(missing_ok=True)  # a crash below leaves no valid manifest
        written = export_parquet(con, out_dir)
        shutil.rmtree(out_dir / CHANGES_DIR, ignore_errors=True)
        _write_manifest(
            out_dir,
            {"full_run_id": run_id, "full_run_date": str(run_date), "seq": 0, "state": new},
        )
        return written
    manifest = read_manifest(out_dir) or {}
    seq = int(str(manifest.get("seq", 0))) + 1
    part = f"seq={seq:06d}"
    for leftover in (out_dir / CHANGES_DIR).glob(f"*/{part}"):
        shutil.rmtree(leftover)  # an earlier attempt at this sequence number that crashed
    written = []
    replaced = []
    for table in EXPORTED:
        where = changed.get(f"golden.{table}")
        if where is None or not table_exists(con, f"golden.{table}"):
            continue
        target = out_dir / CHANGES_DIR / table / part / f"{run_id}.parquet"
        _copy(
            con,
            changed_rows_sql(con, f"golden.{table}", where, (sources or {}).get(f"golden.{table}")),
            target,
        )
        written.append(target)
        # the customers the condition names (a golden row it selects is one of theirs)
        replaced.append(
            f"SELECT '{table}' AS table_name, customer_id FROM"
            f" (SELECT DISTINCT customer_id FROM ({condition_customers_sql(where)}))"
        )
    target = out_dir / CHANGES_DIR / REPLACED / part / f"{run_id}.parquet"
    _copy(con, " UNION ALL ".join(replaced) or "SELECT NULL AS table_name LIMIT 0", target)
    written.append(target)
    _write_manifest(out_dir, {**manifest, "seq": seq, "last_run_id": run_id, "state": new})
    return written


def changed_rows_sql(
    con: duckdb.DuckDBPyConnection, table: str, where: str, source: str | None = None
) -> str:
    """A SELECT of ``table``'s rows that ``where`` selects, read from ``source`` when given.

    ``source`` holds the rows the swap inserted into ``table`` after deleting every row
    ``where`` selects (``swap_in_golden``'s staged delta), so ``table``'s rows selected by
    ``where`` are exactly ``source``'s rows selected by it, cast to ``table``'s column types
    as the INSERT cast them. Reading them there costs the size of the change, not a scan of
    every column of the table. Without ``source`` (or when a column type cannot be cast to),
    the table itself is read.
    """
    plain = f"SELECT * FROM {table} WHERE {where}"
    if source is None:
        return plain
    described = _columns(con, (table, source))
    target, given = described.get(table, []), {c for c, _t in described.get(source, [])}
    if not target or "customer_id" not in given or not given <= {c for c, _t in target}:
        return plain
    select = []
    for column, kind in target:
        if kind.strip('"').upper() == "NULL":
            return plain
        quoted = '"' + column.replace('"', '""') + '"'
        value = f"s.{quoted}" if column in given else "NULL"
        select.append(f"CAST({value} AS {kind}) AS {quoted}")
    return f"SELECT {', '.join(select)} FROM {source} AS s WHERE {where}"


def _columns(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]
) -> dict[str, list[tuple[str, str]]]:
    """``(column, type)`` of each of ``tables`` that exists, in column order (one query)."""
    rows = con.execute(
        "SELECT schema_name || '.' || table_name, column_name, data_type FROM duckdb_columns()"
        " WHERE NOT internal AND schema_name || '.' || table_name IN (SELECT unnest(?))"
        " ORDER BY schema_name, table_name, column_index",
        [list(tables)],
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for name, column, kind in rows:
        out.setdefault(str(name), []).append((str(column), str(kind)))
    return out


def condition_customers_sql(where: str) -> str:
    """The customers a ``customer_id IN (SELECT customer_id FROM …)`` condition names (a SELECT).

    Also the customers no longer in the table the condition is applied to (deleted ones).

    Raises:
        ValueError: ``where`` is not of that form.
    """
    prefix = "customer_id IN ("
    if not (where.startswith(prefix) and where.endswith(")")):
        raise ValueError(f"not a customer set condition: {where}")
    return where[len(prefix) : -1]


def current_export_sql(out_dir: Path, table: str) -> str:
    """SQL reading a table's current state from the full export and the change files.

    Args:
        out_dir: the golden export folder.
        table: an exported table (``customers``, ``transactions``, …).

    Returns:
        One SELECT (DuckDB) over the Parquet files.
    """
    root = str(out_dir).replace("'", "''")
    full = (
        f"read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true)"
        if (out_dir / table).is_dir()
        else f"read_parquet('{root}/{table}.parquet')"
    )
    changes = out_dir / CHANGES_DIR / table
    if not changes.is_dir() or not any(changes.rglob("*.parquet")):
        return f"SELECT * FROM {full}"
    return (
        "WITH replaced AS (SELECT customer_id, max(seq) AS seq FROM read_parquet("
        f"'{root}/{CHANGES_DIR}/{REPLACED}/*/*.parquet', hive_partitioning = true)"
        f" WHERE table_name = '{table}' GROUP BY customer_id)"
        f" SELECT * FROM {full} ANTI JOIN replaced USING (customer_id)"
        f" UNION ALL BY NAME SELECT c.* EXCLUDE (seq) FROM read_parquet("
        f"'{root}/{CHANGES_DIR}/{table}/*/*.parquet', hive_partitioning = true) AS c"
        " SEMI JOIN replaced USING (customer_id, seq)"
    )


def _target(table: str) -> str:
    return table if table in PARTITIONS else f"{table}.parquet"


def _copy(con: duckdb.DuckDBPyConnection, sql: str, target: Path) -> None:
    """COPY a query to ``target`` through a temporary file renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    path_sql = str(temp).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{path_sql}' (FORMAT parquet)")
    os.replace(temp, target)


def _write_manifest(out_dir: Path, data: Mapping[str, object]) -> None:
    temp = out_dir / f".{MANIFEST}.tmp"
    temp.write_text(json.dumps(dict(data), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temp, out_dir / MANIFEST)

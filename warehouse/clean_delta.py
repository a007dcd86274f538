"""The nightly clean in DuckDB: which records changed since the last clean, and the write-back.

The clean layer is a function of the current version of every record (``warehouse.versions``).
A nightly run brings the stored current versions up to date by key (``warehouse.version_state``:
only the sightings new since the last run are read), finds in SQL the record keys whose
current version differs from what ``clean.records`` holds (new record, new version,
an older version current again after a withdrawal, a record gone), reads only those raw rows
into pandas, and writes the cleaned rows back by key (DELETE + INSERT in one transaction).
Records whose only change is ``deleted_at_source`` are updated in place, never re-cleaned.

Only SQL and frames here: the cleaning itself is ``cleaning`` (wired in
``pipelines/stages/clean.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from sources.config import SourceConfig
from warehouse.db import table_columns, table_exists, to_duckdb_arrow, transaction
from warehouse.ops import record_clean_run, replace_check_failures
from warehouse.version_state import (
    CURRENT_TABLE,
    VersionStats,
    current_state_sql,
    update_version_state,
)
from warehouse.versions import TEXT_TYPES

__all__ = [
    "CHANGED",
    "CURRENT",
    "GONE",
    "SCOPE_TABLE",
    "ChangeCounts",
    "CleanDelta",
    "add_changed",
    "apply_clean_delta",
    "clean_scope",
    "clean_tables_present",
    "current_rows",
    "distinct_date_values",
    "find_changes",
    "flag_mismatches",
    "scope_sql",
    "shared_phone_candidates",
    "shared_phones_now",
    "stage_current_versions",
    "store_clean_failures",
    "touched_phones",
    "unmapped_candidates",
]

CURRENT = "_clean_current"
"""Temporary view: the current version of every record (one row a ``record_key``)."""
CHANGED = "_clean_changed"
"""Temporary table: ``record_key`` of every record to clean again this run."""
GONE = "_clean_gone"
"""Temporary table: ``record_key`` of clean records that have no current version any more."""
DELETION_CHANGED = "_clean_deletion_changed"
"""Temporary table: ``record_key`` of records not in ``CHANGED`` whose ``deleted_at_source``
differs from the clean record's (``find_changes``): updated in place by ``apply_clean_delta``."""
COMPARED = ("source_file", "source_sha256", "source_row", "ingested_at")
"""Lineage of the sighting behind a clean record: equal lineage = same raw values."""
SCOPE_TABLE = "ops.clean_scope"
"""What the last clean did: one row ``(run_id, mode, NULL)``, plus ``(run_id, mode,
record_key)`` for every record an incremental clean cleaned (the clean suite validates those)."""
FAILURES_TABLE = "ops.clean_check_failures"
"""Records failing a per-record clean check: ``check, record_key`` (+ ``run_id``), and in
``ops.clean_check_state`` the quality settings they were validated under."""
STATE_TABLE = "ops.clean_check_state"
KEYED_TABLES = ("records", "transactions", "interactions", "follow_up")
"""``clean.<name>`` tables with rows per ``record_key`` (replaced by key)."""


@dataclass(frozen=True)
class ChangeCounts:
    """What changed since the last clean (record counts)."""

    current: int
    changed: int
    gone: int
    deletion_changed: int


@dataclass(frozen=True)
class CleanDelta:
    """The rows an incremental clean writes back.

    Attributes:
        frames: new rows of ``clean.records``/``transactions``/``interactions``/``follow_up``
            (keyed by ``KEYED_TABLES`` name) for the keys in ``replaced``.
        replaced: ``record_key`` of every record whose rows are replaced (cleaned again, or
            gone: those have no new rows).
        small: whole-set tables rewritten whole (``clean.unmapped_industries``,
            ``clean.date_orders``), computed by the caller.
    """

    frames: Mapping[str, pd.DataFrame]
    replaced: Sequence[str]
    small: Mapping[str, pd.DataFrame]


def stage_current_versions(
    con: duckdb.DuckDBPyConnection, sources: Sequence[SourceConfig], force_full: bool = False
) -> tuple[int, VersionStats]:
    """Bring the stored current versions up to date and expose them as the view ``CURRENT``.

    The version state (``warehouse.version_state``) is updated by key from the sightings new
    since the last run (a whole resolution on the first run, after a withdrawal, a changed
    setting, or when ``force_full``); ``CURRENT`` is a temporary view over it.

    Returns:
        The number of current records, and what the version step read.
    """
    stats = update_version_state(con, sources, force_full=force_full)
    if table_exists(con, CURRENT_TABLE):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {CURRENT} AS {current_state_sql(sources)}")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {CURRENT} (record_key VARCHAR,"
                  " source_system VARCHAR, deleted_at_source DATE)")  # fmt: skip
    row = con.execute(f"SELECT count(*) FROM {CURRENT}").fetchall()[0]
    return (int(row[0]) if row else 0), stats


def find_changes(con: duckdb.DuckDBPyConnection, clean: str = "clean.records") -> ChangeCounts:
    """Compare ``CURRENT`` with ``clean``: fill ``CHANGED`` and ``GONE``; count the changes.

    A record is changed when it is new or the lineage of its current version (file, sha256,
    row, ingest time) differs from the clean record's; gone when the clean record has no
    current version (its only delivery was withdrawn). A record whose lineage is equal but
    whose ``deleted_at_source`` differs is counted in ``deletion_changed`` (updated in place
    by ``apply_clean_delta``).
    """
    differs = " OR ".join(f"c.{col}::VARCHAR IS DISTINCT FROM r.{col}::VARCHAR" for col in COMPARED)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CHANGED} AS SELECT c.record_key FROM {CURRENT} AS c"
        f" LEFT JOIN {clean} AS r ON r.record_key = c.record_key"
        f" WHERE r.record_key IS NULL OR {differs}",
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {GONE} AS SELECT r.record_key FROM {clean} AS r"
        f" ANTI JOIN {CURRENT} AS c ON c.record_key = r.record_key",
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {DELETION_CHANGED} AS SELECT c.record_key"
        f" FROM {CURRENT} AS c JOIN {clean} AS r USING (record_key)"
        f" WHERE c.deleted_at_source IS DISTINCT FROM r.deleted_at_source"
        f" AND c.record_key NOT IN (SELECT record_key FROM {CHANGED})"
    )
    row = con.execute(
        f"SELECT (SELECT count(*) FROM {CURRENT}), (SELECT count(*) FROM {CHANGED}),"
        f" (SELECT count(*) FROM {GONE}), (SELECT count(*) FROM {DELETION_CHANGED})"
    ).fetchall()[0]
    assert row is not None
    return ChangeCounts(*(int(v) for v in row))


def add_changed(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> int:
    """Add ``keys`` (records to clean again, e.g. a switchboard flag flipped) to ``CHANGED``."""
    frame = pa.table({"record_key": pa.array(sorted(set(keys)), pa.string())})
    if not len(frame):
        return 0
    con.register("_clean_more", frame)
    try:
        con.execute(
            f"INSERT INTO {CHANGED} SELECT record_key FROM _clean_more"
            f" WHERE record_key NOT IN (SELECT record_key FROM {CHANGED})",
        )
    finally:
        con.unregister("_clean_more")
    return len(frame)


def current_rows(
    con: duckdb.DuckDBPyConnection, keys: Iterable[str] | None = None, every: bool = False
) -> pd.DataFrame:
    """Raw rows of current versions as one all-text frame (as ``current_raw_rows`` gives).

    Args:
        con: The warehouse (``CURRENT`` staged).
        keys: Only these records; None = the records in ``CHANGED``.
        every: Every current record (a full clean).
    """
    if every:
        return _text_frame(con.sql(f"SELECT * FROM {CURRENT}").to_arrow_table())
    if keys is None:  # a semi join, not IN (subquery): DuckDB then skips most of the table
        return _text_frame(
            con.sql(
                f"SELECT c.* FROM {CURRENT} AS c SEMI JOIN {CHANGED} AS k USING (record_key)"
            ).to_arrow_table()
        )
    frame = pa.table({"record_key": pa.array(sorted(set(keys)), pa.string())})
    con.register("_clean_keys", frame)
    try:
        table = con.sql(
            f"SELECT c.* FROM {CURRENT} AS c SEMI JOIN _clean_keys AS k USING (record_key)"
        ).to_arrow_table()
    finally:
        con.unregister("_clean_keys")
    return _text_frame(table)


def _text_frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=TEXT_TYPES.get)


# SQL: a text that may be ``a/b/yyyy`` once normalized: not printable ASCII (NFKC may turn it
# into one), or printable ASCII starting with ``a-b-`` / ``a/b/`` / ``a.b.`` (spaces allowed)
_MAY_DECIDE_ORDER = (
    "(NOT regexp_full_match({v}, '[ -~]*')"
    " OR regexp_matches({v}, '^ *[0-9]{{1,2}} *[-/.] *[0-9]{{1,2}} *[-/.]'))"
)


def distinct_date_values(con: duckdb.DuckDBPyConnection, fields: Sequence[str]) -> pd.DataFrame:
    """Every distinct (source, date text) over the current versions' ``fields`` that can
    decide a day/month order, and every source.

    What ``cleaning.date_orders`` infers each source's day/month order from, without reading
    the rows (absent columns are skipped). Only an ``a/b/yyyy`` text is evidence
    (``cleaning.dates.infer_date_order``); a printable-ASCII text (``normalize_text`` only
    trims and collapses its spaces) that does not start as one (ISO dates, the bulk) is left
    out in SQL, so the orders are those of every text and Python sees a few, not every date
    of the warehouse, each night.

    Returns:
        ``source_system`` and one column per field (one value filled a row, the rest null).
    """
    present = {r[0] for r in con.execute(f"DESCRIBE {CURRENT}").fetchall()}
    parts = [f"SELECT DISTINCT source_system, NULL AS value, NULL AS field FROM {CURRENT}"] + [
        f"SELECT DISTINCT source_system, {f} AS value, '{f}' AS field FROM {CURRENT}"
        f" WHERE {f} IS NOT NULL AND {_MAY_DECIDE_ORDER.format(v=f)}"
        for f in fields
        if f in present
    ]
    long = (
        con.sql(" UNION ALL ".join(parts)).to_arrow_table().to_pandas(types_mapper=TEXT_TYPES.get)
    )
    out = pd.DataFrame({"source_system": long["source_system"].astype("string")})
    for f in fields:
        out[f] = long["value"].where(long["field"] == f).astype("string")
    return out


def touched_phones(con: duckdb.DuckDBPyConnection, new_phones: Iterable[str]) -> frozenset[str]:
    """The phones whose switchboard flag this run's change can move.

    ``new_phones`` (on the records cleaned this run) and the phones the clean records in
    ``CHANGED`` or ``GONE`` held until now (their rows leave the union). Any other phone is on
    exactly the kept records it was on at the last clean, so its flag stays what
    ``clean.records`` holds (a function of the records on the phone,
    ``cleaning.phone.flag_shared_phones``).
    """
    rows = con.execute(
        f"SELECT DISTINCT phone FROM clean.records WHERE phone IS NOT NULL"
        f" AND (record_key IN (SELECT record_key FROM {CHANGED})"
        f"  OR record_key IN (SELECT record_key FROM {GONE}))"
    ).fetchall()
    return frozenset(new_phones) | frozenset(r[0] for r in rows)


def shared_phone_candidates(con: duckdb.DuckDBPyConnection, phones: Iterable[str]) -> pd.DataFrame:
    """``record_key, phone, name_key`` of kept clean records on one of ``phones``.

    Kept = not changed, not gone. With ``touched_phones`` as ``phones``: with the records
    cleaned this run, every record that decides the flag of a phone that can move (the others
    keep theirs), not every record of a phone on ``min_names`` records or more.
    """
    table = pa.table({"phone": pa.array(sorted(set(phones)), pa.string())})
    con.register("_clean_touched_phones", table)
    try:
        return (
            con.sql(
                f"""
            SELECT record_key, phone, name_key FROM clean.records
            WHERE phone IN (SELECT phone FROM _clean_touched_phones)
              AND record_key NOT IN (SELECT record_key FROM {CHANGED})
              AND record_key NOT IN (SELECT record_key FROM {GONE})
            """
            )
            .to_arrow_table()
            .to_pandas(types_mapper=TEXT_TYPES.get)
        )
    finally:
        con.unregister("_clean_touched_phones")


def flag_mismatches(
    con: duckdb.DuckDBPyConnection, shared: Iterable[str], phones: Iterable[str] | None = None
) -> list[str]:
    """Kept clean records whose ``phone_shared`` flag disagrees with the switchboards now.

    ``phones``: only records on these phones (``touched_phones``: no other flag can move);
    None = every kept record.
    """
    table = pa.table({"phone": pa.array(sorted(set(shared)), pa.string())})
    con.register("_clean_shared", table)
    registered = ["_clean_shared"]
    only = ""
    if phones is not None:
        con.register("_clean_flag_phones", pa.table(
            {"phone": pa.array(sorted(set(phones)), pa.string())}))  # fmt: skip
        registered.append("_clean_flag_phones")
        only = "AND phone IN (SELECT phone FROM _clean_flag_phones)"
    try:
        rows = con.execute(
            f"""
            SELECT record_key FROM clean.records
            WHERE record_key NOT IN (SELECT record_key FROM {CHANGED})
              AND record_key NOT IN (SELECT record_key FROM {GONE}) {only}
              AND coalesce(phone_shared, false)
                  <> coalesce(phone IN (SELECT phone FROM _clean_shared), false)
            """
        ).fetchall()
    finally:
        for name in registered:
            con.unregister(name)
    return [r[0] for r in rows]


def unmapped_candidates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``industry_raw, industry_code`` of kept clean records no industry section matched.

    Kept = not in ``CHANGED`` or ``GONE``; with the rows cleaned this run, every record a
    count of unmapped industry texts can include.
    """
    return (
        con.sql(
            "SELECT industry_raw, industry_code FROM clean.records"
            " WHERE industry_code IS NULL AND industry_raw IS NOT NULL"
            f" AND record_key NOT IN (SELECT record_key FROM {CHANGED})"
            f" AND record_key NOT IN (SELECT record_key FROM {GONE})"
        )
        .to_arrow_table()
        .to_pandas(types_mapper=TEXT_TYPES.get)
    )


def shared_phones_now(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The phones flagged as switchboards in ``clean.records`` (a first guess for tonight)."""
    rows = con.execute(
        "SELECT DISTINCT phone FROM clean.records WHERE phone_shared AND phone IS NOT NULL"
    ).fetchall()
    return frozenset(r[0] for r in rows)


def scope_sql(run_id: str, mode: str, incremental: bool) -> list[str]:
    """Statements replacing ``SCOPE_TABLE`` with this run's clean (keys from ``CHANGED``)."""
    run, kind = "'" + run_id.replace("'", "''") + "'", "'" + mode.replace("'", "''") + "'"
    out = [
        "CREATE SCHEMA IF NOT EXISTS ops",
        f"CREATE TABLE IF NOT EXISTS {SCOPE_TABLE}"
        " (run_id VARCHAR, mode VARCHAR, record_key VARCHAR)",
        f"DELETE FROM {SCOPE_TABLE}",
        f"INSERT INTO {SCOPE_TABLE} VALUES ({run}, {kind}, NULL)",
    ]
    if incremental:
        out.append(f"INSERT INTO {SCOPE_TABLE} SELECT {run}, {kind}, record_key FROM {CHANGED}")
    return out


def apply_clean_delta(
    con: duckdb.DuckDBPyConnection,
    delta: CleanDelta,
    after: Sequence[str] = (),
    run_id: str | None = None,
) -> None:
    """Write an incremental clean back, in ONE transaction (all or nothing).

    Per keyed table: DELETE the rows of ``delta.replaced`` and of ``GONE``, INSERT the new rows
    (by column name); ``clean.records.deleted_at_source`` follows ``CURRENT`` for every record
    (after ``find_changes``, an ``UPDATE`` of only the records it found differing — none, no
    statement — and, unless the new rows carry ``CURRENT``'s value, those written again; not a
    join of every record);
    the small whole-set tables are replaced. With ``run_id`` every record whose
    ``clean.records`` row this changes is logged (``warehouse.ops.record_clean_run``):
    inserted, updated (cleaned again, or ``deleted_at_source`` updated in place) or removed.

    Args:
        con: The warehouse (``CURRENT``, ``GONE`` staged).
        delta: The new rows and the keys they replace.
        after: SQL statements run inside the transaction after the writes (``scope_sql``).
        run_id: The run to log the changes under (None: not logged).
    """
    replaced = sorted(set(delta.replaced))
    keys = pa.table({"record_key": pa.array(replaced, pa.string())})
    con.register("_clean_replaced", keys)
    registered = ["_clean_replaced"]
    try:
        with transaction(con):
            existed: set[str] = set()
            for name in KEYED_TABLES:
                table = f"clean.{name}"
                frame = delta.frames.get(name)
                where = (
                    "record_key IN (SELECT record_key FROM _clean_replaced)"
                    f" OR record_key IN (SELECT record_key FROM {GONE})"
                )
                if name == "records":  # not DELETE … RETURNING: that reads every column it deletes
                    found = con.execute(f"SELECT record_key FROM {table} WHERE {where}").fetchall()
                    existed = {r[0] for r in found}
                con.execute(f"DELETE FROM {table} WHERE {where}")
                if frame is not None and len(frame):
                    view = f"_clean_new_{name}"
                    con.register(view, to_duckdb_arrow(frame))
                    registered.append(view)
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")
            records = delta.frames.get("records")
            carried = records is not None and "deleted_at_source" in records.columns
            in_place = (
                []
                if carried and _nothing_deletion_changed(con)
                else con.execute(
                    f"UPDATE clean.records AS r SET deleted_at_source = c.deleted_at_source"
                    f" FROM (SELECT record_key, deleted_at_source FROM {CURRENT}"
                    f"  WHERE {_maybe_deletion_changed('record_key', con, carried)}) AS c"
                    f" WHERE c.record_key = r.record_key"
                    f" AND {_maybe_deletion_changed('r.record_key', con, carried)}"
                    " AND c.deleted_at_source IS DISTINCT FROM r.deleted_at_source"
                    " RETURNING r.record_key"
                ).fetchall()
            )
            if run_id is not None:
                gone = [r[0] for r in con.execute(f"SELECT record_key FROM {GONE}").fetchall()]
                log = [(k, "updated" if k in existed else "inserted") for k in replaced]
                log += [(k, "removed") for k in gone] + [(r[0], "updated") for r in in_place]
                con.register(
                    "_clean_log",
                    pa.table(
                        {
                            "record_key": pa.array([k for k, _ in log], pa.string()),
                            "change": pa.array([c for _, c in log], pa.string()),
                        }
                    ),
                )
                registered.append("_clean_log")
                record_clean_run(con, run_id, "incremental", "_clean_log")
            for name, frame in delta.small.items():
                view = f"_clean_small_{name.replace('.', '_')}"
                con.register(view, to_duckdb_arrow(frame))
                registered.append(view)
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {view}")
            for sql in after:
                con.execute(sql)
    finally:
        for view in registered:
            con.unregister(view)


def _maybe_deletion_changed(
    column: str, con: duckdb.DuckDBPyConnection, carried: bool = False
) -> str:
    """SQL condition: ``column`` names a record whose ``deleted_at_source`` may differ now.

    After ``find_changes``: the records it found (``DELETION_CHANGED``) and, unless their new
    rows carry ``CURRENT``'s ``deleted_at_source`` already (``carried``: the clean stage's
    rows do, ``mark_deleted_at_source`` of the current rows), those written again this run
    (``_clean_replaced``); any other clean record was compared there and has not changed
    since. Without ``find_changes``' table: every record (``true``).
    """
    if not table_exists(con, DELETION_CHANGED):
        return "true"
    if carried:
        return f"{column} IN (SELECT record_key FROM {DELETION_CHANGED})"
    return (
        f"({column} IN (SELECT record_key FROM {DELETION_CHANGED})"
        f" OR {column} IN (SELECT record_key FROM _clean_replaced))"
    )


def _nothing_deletion_changed(con: duckdb.DuckDBPyConnection) -> bool:
    """``find_changes`` ran and found no kept record whose ``deleted_at_source`` moved."""
    if not table_exists(con, DELETION_CHANGED):
        return False
    row = con.execute(f"SELECT count(*) FROM {DELETION_CHANGED}").fetchall()[0]
    return row is not None and int(row[0]) == 0


def clean_tables_present(con: duckdb.DuckDBPyConnection, record_columns: Sequence[str]) -> bool:
    """Whether every table an incremental clean starts from exists, ``clean.records`` with
    exactly ``record_columns`` (a clean layer written by another version is cleaned again)."""
    return all(
        table_exists(con, f"clean.{name}") for name in (*KEYED_TABLES, "date_orders")
    ) and set(table_columns(con, "clean.records")) == set(record_columns)


def clean_scope(con: duckdb.DuckDBPyConnection, run_id: str, settings: str) -> str | None:
    """A temporary table of the records the clean suite must validate this run; None = all.

    All after a full clean, a clean of another run, or a change of the quality settings
    (``settings``, their JSON); else the records this run's incremental clean cleaned plus the
    records that failed a per-record check at the last validation.
    """
    if not (table_exists(con, SCOPE_TABLE) and table_exists(con, STATE_TABLE)):
        return None
    modes = con.execute(
        f"SELECT mode FROM {SCOPE_TABLE} WHERE run_id = ? AND record_key IS NULL", [run_id]
    ).fetchall()
    stored = con.execute(f"SELECT settings FROM {STATE_TABLE}").fetchall()
    if modes != [("incremental",)] or stored != [(settings,)]:
        return None
    name = "_clean_check_scope"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS"
        f" SELECT record_key FROM {SCOPE_TABLE} WHERE run_id = ? AND record_key IS NOT NULL"
        f" UNION SELECT record_key FROM {FAILURES_TABLE}",
        [run_id],
    )
    return name


def store_clean_failures(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    settings: str,
    failing: Mapping[str, Sequence[str]],
) -> None:
    """Replace the failing records of the per-record clean checks (one transaction).

    ``failing`` holds every failing record of each check over the whole table (what
    ``clean_scope`` validated covers every earlier failure), keyed by check name.
    """
    replace_check_failures(
        con, (FAILURES_TABLE, STATE_TABLE), "record_key", run_id, failing, {"settings": settings}
    )

"""The stored current version of every record, updated by key from the new sightings only.

Which version of a record is current is a function of all its live sightings
(``sources.versions``). Resolving it over every raw row each night grows with every full
re-export (30 nights of a 300 k-row full source = 9 M sightings), so the result is kept:

* ``history.current_versions``: ``current_records_sql``'s row per record (``version_source`` =
  the configured source);
* ``history.version_tails``: each record's newest sighting (``TAIL_COLUMNS``), what the next
  sightings are folded onto;
* ``history.version_files``: the live delivered files the state covers (file, sha256, ingest
  date, rows), and ``history.version_state`` the settings it was computed under.

A run compares the live files of each source (from the raw layer's per-file index
``ops.raw_files``, kept by the ingest: a few rows per delivery, never a scan of the raw rows)
with the stored ones. New files only: their rows
are folded onto the tails of their records (``fold_sql``); records whose new sightings sort
before their tail (a late delivery) or whose earlier gaps move (a late ``full`` delivery date)
are resolved again over all their sightings; records missing from a new ``full`` delivery get
their ``deleted_at_source`` from their tail and the source's dates. A file gone (withdrawn,
superseded at the same path, rows erased), changed source settings, an erasure, a DuckDB or
state-format change, or no state yet: the source is resolved whole again. Either way the state
equals ``current_records_sql`` over all live rows (tested over replays).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from sources.config import SourceConfig
from sources.versions import (
    arrival_order_sql,
    current_from_numbered_sql,
    delivery_date_sql,
    fold_sql,
    later_sql,
    new_sightings_sql,
    numbered_sightings_sql,
    version_tails_sql,
)
from warehouse.db import table_exists, transaction
from warehouse.raw import RAW_FILES_TABLE, reindex_raw_files

__all__ = [
    "CURRENT_TABLE",
    "FILES_TABLE",
    "STATE_TABLE",
    "TAILS_TABLE",
    "VersionStats",
    "current_state_sql",
    "update_version_state",
]

CURRENT_TABLE = "history.current_versions"
TAILS_TABLE = "history.version_tails"
FILES_TABLE = "history.version_files"
STATE_TABLE = "history.version_state"
STATE_FORMAT = 3
"""Bump when the stored state's meaning changes (forces a whole resolution). 2: the current
version's lineage is its first sighting to arrive, not its first by delivery date. 3: the live
files come from the per-file index ``ops.raw_files`` (rebuilt from raw on the first run)."""
_WITHDRAWN = "ops.withdrawn_deliveries"
_TOMBSTONES = "security.tombstones"
_HELPERS = "version_source, run_id, delivery_date, version_no, last_delivery_date"
_SIGHTING_KEY = "record_key, source_file, source_sha256, source_row, ingested_at"
"""Columns naming one sighting of ``new_sightings_sql`` (one raw row of a live file)."""
_FOLD_COLUMNS = (
    f"{_SIGHTING_KEY}, delivery_date, updated_ts, is_deletion, content_hash, next_source_date"
)
"""What ``fold_sql`` and the tails read of a new sighting: not its raw values (a full
re-export's rows are mostly unchanged; only the versions that begin tonight need them)."""
_TAIL_SELECT = (
    "record_key, content_hash AS t_hash, is_deletion AS t_deletion, delivery_date AS t_date,"
    " updated_ts AS t_updated, ingested_at AS t_ingested, source_file AS t_file,"
    " source_row AS t_row, version_no AS t_version"
)


@dataclass
class VersionStats:
    """What the version step read and resolved this run.

    Attributes:
        sightings_read: raw sightings resolved (new ones folded + all of recomputed records).
        keys_folded: records whose new sightings were folded onto their tail.
        keys_recomputed: records resolved again over all their sightings.
        full_sources: ``source: reason`` of each source resolved whole.
        cpu_seconds: process CPU seconds of the step.
    """

    sightings_read: int = 0
    keys_folded: int = 0
    keys_recomputed: int = 0
    full_sources: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def mode(self) -> str:
        """``full`` when a source was resolved whole, else ``incremental``."""
        return "full" if self.full_sources else "incremental"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0]
    return int(row[0]) if row else 0


def current_state_sql(sources: Sequence[SourceConfig]) -> str:
    """SQL of the stored current versions of these sources (``current_versions_sql``'s rows)."""
    names = ", ".join(_lit(s.name) for s in sources) or "NULL"
    return f"SELECT * EXCLUDE ({_HELPERS}) FROM {CURRENT_TABLE} WHERE version_source IN ({names})"


def _settings(con: duckdb.DuckDBPyConnection, source: SourceConfig, raw: str) -> str:
    columns = [r[0] for r in con.execute(f"DESCRIBE {raw}").fetchall()]
    erased = table_exists(con, _TOMBSTONES)
    tombstones = _count(con, f"SELECT 1 FROM {_TOMBSTONES}") if erased else 0
    flag = source.deleted_flag
    return json.dumps(
        {
            "format": STATE_FORMAT,
            "duckdb": duckdb.__version__,
            "delivery": source.delivery,
            "deleted_flag": None if flag is None else [list(flag.headers), list(flag.values)],
            "columns": columns,
            "tombstones": tombstones,
        },
        sort_keys=True,
    )


def _ensure_tables(con: duckdb.DuckDBPyConnection, raw: str) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS history")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {TAILS_TABLE} (version_source VARCHAR, record_key VARCHAR,"
        " t_hash UBIGINT, t_deletion BOOLEAN, t_date DATE, t_updated TIMESTAMP,"
        " t_ingested VARCHAR, t_file VARCHAR, t_row BIGINT, t_version BIGINT)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {FILES_TABLE} (version_source VARCHAR, source_file VARCHAR,"
        " source_sha256 VARCHAR, ingest_day VARCHAR, d DATE, n BIGINT)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (version_source VARCHAR, settings VARCHAR)"
    )
    # the current rows: the raw columns (all text, source_row) plus the resolution's columns
    raw_columns = con.execute(f"DESCRIBE {raw}").fetchall()
    if not table_exists(con, CURRENT_TABLE):
        con.execute(
            f"CREATE TABLE {CURRENT_TABLE} (version_source VARCHAR, delivery_date DATE,"
            " version_no BIGINT, last_delivery_date DATE, deleted_at_source DATE)"
        )
    have = {r[0] for r in con.execute(f"DESCRIBE {CURRENT_TABLE}").fetchall()}
    for name, kind, *_ in raw_columns:
        if name != "active" and name not in have:
            quoted = '"' + name.replace('"', '""') + '"'
            con.execute(f"ALTER TABLE {CURRENT_TABLE} ADD COLUMN {quoted} {kind}")


def _stage_live_files(con: duckdb.DuckDBPyConnection, source: str, withdrawn: str | None) -> None:
    """``_v_live``: the live files of the source (file, sha256, ingest day, date, rows).

    Read from the raw layer's per-file index (``ops.raw_files``, kept by the ingest), so the
    cost is per delivered file, not per raw row: a ``full`` source re-exported whole every
    night adds one index row per night, not a whole source of rows to group.
    """
    anti = (
        f" ANTI JOIN {withdrawn} AS w ON w.path = f.source_file AND w.sha256 = f.source_sha256"
        " AND w.source_system = f.source_system"
        if withdrawn
        else ""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _v_live AS
        SELECT f.source_file, f.source_sha256, f.ingest_day,
               {delivery_date_sql("f.source_file", "f.ingest_day")} AS d, sum(f.n) AS n
        FROM (SELECT source_system, source_file, source_sha256, ingest_day, sum(n) AS n
              FROM {RAW_FILES_TABLE} WHERE source = {_lit(source)} AND n > 0
              GROUP BY ALL) AS f{anti}
        GROUP BY ALL"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_dates AS SELECT d, lead(d) OVER (ORDER BY d) AS next_d"
        " FROM (SELECT DISTINCT d FROM _v_live WHERE d IS NOT NULL)"
    )


def _replace_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    keys: str,
    current_sql: str | None,
    tails_sql: str | None,
) -> None:
    """Replace the state rows of the records in ``keys`` (a table of ``record_key``): the
    current rows when ``current_sql`` is given (its rows, maybe none), the tails always."""
    src = _lit(name)
    for table in ((CURRENT_TABLE,) if current_sql is not None else ()) + (TAILS_TABLE,):
        con.execute(
            f"DELETE FROM {table} WHERE version_source = {src}"
            f" AND record_key IN (SELECT record_key FROM {keys})"
        )
    if current_sql:
        con.execute(
            f"INSERT INTO {CURRENT_TABLE} BY NAME SELECT {src} AS version_source, *"
            f" FROM ({current_sql})"
        )
    if tails_sql:
        con.execute(
            f"INSERT INTO {TAILS_TABLE} BY NAME SELECT {src} AS version_source, *"
            f" FROM ({tails_sql})"
        )


def _resolve(
    con: duckdb.DuckDBPyConnection,
    source: SourceConfig,
    raw: str,
    withdrawn: str | None,
    keys: str | None,
) -> int:
    """Resolve the records in ``keys`` (None: every record) over all their live sightings."""
    where = f"r.record_key IN (SELECT record_key FROM {keys})" if keys else ""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_numbered AS "
        + numbered_sightings_sql(raw, source, withdrawn, where, "_v_dates")
    )
    read = _count(con, "SELECT 1 FROM _v_numbered")
    if keys is None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _v_keys AS SELECT DISTINCT record_key FROM"
            f" (SELECT record_key FROM {CURRENT_TABLE} WHERE version_source = {_lit(source.name)}"
            f" UNION ALL SELECT record_key FROM {TAILS_TABLE}"
            f" WHERE version_source = {_lit(source.name)})"
        )
        keys = "_v_keys"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_all_keys AS SELECT record_key FROM "
        f"{keys} UNION SELECT DISTINCT record_key FROM _v_numbered"
    )
    _replace_rows(
        con,
        source.name,
        "_v_all_keys",
        current_from_numbered_sql("_v_numbered"),
        version_tails_sql("_v_numbered"),
    )
    con.execute("DROP TABLE IF EXISTS _v_numbered")
    return read


def _late_date_keys(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, raw: str, tails: str
) -> None:
    """``_v_late``: records whose earlier gaps move because a ``full`` date arrived late.

    A new delivery date ``d`` changes the next date of the date ``p`` before it: a record seen
    on ``p`` and again after ``d`` may gain a gap (a deletion and a restore) in its history.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _v_late (record_key VARCHAR)")
    if source.delivery != "full":
        return
    prev = con.execute(
        "SELECT DISTINCT p.d FROM (SELECT d, lag(d) OVER (ORDER BY d) AS p FROM _v_dates) AS x"
        " JOIN _v_dates AS p ON p.d = x.p"
        " WHERE x.d NOT IN (SELECT d FROM _v_old_dates)"
    ).fetchall()
    for (day,) in prev:
        newest = con.execute(f"SELECT max(t_date) FROM {tails}").fetchall()[0]
        if not newest or newest[0] is None or newest[0] <= day:
            continue  # no record was seen after that date: nothing in between can move
        con.execute(
            f"""INSERT INTO _v_late
            SELECT DISTINCT r.record_key FROM {raw} AS r
            SEMI JOIN (SELECT source_file, source_sha256 FROM _v_live WHERE d = ?) AS f
              ON f.source_file = r.source_file AND f.source_sha256 = r.source_sha256
            SEMI JOIN (SELECT record_key FROM {tails} WHERE t_date > ?) AS t
              ON t.record_key = r.record_key
            WHERE r.active""",
            [day, day],
        )


def _fold_new(
    con: duckdb.DuckDBPyConnection, source: SourceConfig, raw: str, withdrawn: str | None
) -> tuple[int, int, int]:
    """Fold the new files' sightings; resolve late ones again. Returns (read, folded, redone)."""
    src = _lit(source.name)
    tails = f"(SELECT * FROM {TAILS_TABLE} WHERE version_source = {src})"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_added AS SELECT DISTINCT source_file, source_sha256"
        f" FROM (SELECT source_file, source_sha256 FROM _v_live EXCEPT"
        f" SELECT source_file, source_sha256 FROM {FILES_TABLE} WHERE version_source = {src})"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_new AS "
        + new_sightings_sql(raw, source, "_v_added", "_v_dates")
    )
    read = _count(con, "SELECT 1 FROM _v_new")
    _late_date_keys(con, source, raw, tails)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _v_redo AS
        SELECT DISTINCT n.record_key FROM _v_new AS n JOIN {tails} AS t USING (record_key)
        WHERE NOT {later_sql("n", "t")}
        UNION SELECT record_key FROM _v_late"""
    )
    redone = _count(con, "SELECT 1 FROM _v_redo")
    if redone:
        read += _resolve(con, source, raw, withdrawn, "_v_redo")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_folded AS "
        + fold_sql(
            f"(SELECT {_FOLD_COLUMNS} FROM _v_new ANTI JOIN _v_redo USING (record_key))",
            tails,
            "_v_dates",
            source,
        )
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v_fold_keys AS SELECT DISTINCT record_key FROM _v_folded"
    )
    folded = _count(con, "SELECT 1 FROM _v_fold_keys")
    if folded:
        raw_columns = [r[0] for r in con.execute(f"DESCRIBE {raw}").fetchall() if r[0] != "active"]
        cols = ", ".join('n."' + c.replace('"', '""') + '"' for c in raw_columns)
        # the version each record's current values belong to, when it began tonight: its
        # lineage is the first of tonight's sightings of it to arrive (all of them are new);
        # its raw values come from _v_new (the fold carried only _FOLD_COLUMNS)
        introduced = f"""
            WITH valued AS (
                SELECT record_key, max(version_no) AS v FROM _v_folded
                WHERE NOT is_deletion GROUP BY record_key
            ),
            picked AS (
                SELECT f.{_SIGHTING_KEY.replace(", ", ", f.")}, f.delivery_date, f.version_no
                FROM _v_folded AS f JOIN valued AS v
                  ON v.record_key = f.record_key AND v.v = f.version_no
                WHERE NOT f.is_deletion AND f.version_no > coalesce(f.t_version, 0)
                QUALIFY row_number() OVER (PARTITION BY f.record_key
                                           ORDER BY {arrival_order_sql("f")}) = 1
            )
            SELECT {cols}, p.delivery_date, p.version_no,
                   NULL::DATE AS last_delivery_date, NULL::DATE AS deleted_at_source
            FROM picked AS p JOIN _v_new AS n USING ({_SIGHTING_KEY})"""
        con.execute("CREATE OR REPLACE TEMP TABLE _v_introduced AS " + introduced)
        con.execute(
            f"DELETE FROM {CURRENT_TABLE} WHERE version_source = {src}"
            " AND record_key IN (SELECT record_key FROM _v_introduced)"
        )
        con.execute(
            f"INSERT INTO {CURRENT_TABLE} BY NAME SELECT {src} AS version_source, *"
            " FROM _v_introduced"
        )
        _replace_rows(
            con,
            source.name,
            "_v_fold_keys",
            None,
            f"SELECT {_TAIL_SELECT} FROM _v_folded WHERE seq = sightings",
        )
        con.execute("DROP TABLE IF EXISTS _v_introduced")
    con.execute("DROP TABLE IF EXISTS _v_folded")
    con.execute("DROP TABLE IF EXISTS _v_new")
    return read, folded, redone


def _refresh_deletions(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> None:
    """``deleted_at_source`` and ``last_delivery_date`` from the tails, where they can move.

    They depend on a record's newest sighting and the source's next delivery date only:
    refreshed for the records folded tonight and the records whose newest date got a new
    next date (missing from a new ``full`` delivery = deleted at source as of its date).
    """
    src = _lit(source.name)
    gap = "d.next_d" if source.delivery == "full" else "NULL::DATE"
    con.execute(
        f"""UPDATE {CURRENT_TABLE} AS c
        SET last_delivery_date = u.t_date, deleted_at_source = u.deleted
        FROM (SELECT t.record_key, t.t_date,
                     CASE WHEN t.t_deletion THEN t.t_date ELSE {gap} END AS deleted
              FROM {TAILS_TABLE} AS t LEFT JOIN _v_dates AS d ON d.d = t.t_date
              WHERE t.version_source = {src}
                AND (t.record_key IN (SELECT record_key FROM _v_fold_keys)
                     OR t.t_date IN (SELECT d FROM _v_moved))) AS u
        WHERE c.version_source = {src} AND c.record_key = u.record_key
          AND (c.last_delivery_date IS DISTINCT FROM u.t_date
               OR c.deleted_at_source IS DISTINCT FROM u.deleted)"""
    )


def update_version_state(
    con: duckdb.DuckDBPyConnection, sources: Sequence[SourceConfig], force_full: bool = False
) -> VersionStats:
    """Bring the stored current versions up to the live raw rows (one transaction).

    Args:
        con: The warehouse.
        sources: Source mappings (sources without a raw table yet are skipped).
        force_full: Resolve every source whole (what the state is tested against).

    Returns:
        What was read and resolved.
    """
    started = time.process_time()
    stats = VersionStats()
    withdrawn = _WITHDRAWN if table_exists(con, _WITHDRAWN) else None
    try:
        with transaction(con):
            for source in sources:
                raw = f"raw.{source.name}"
                if not table_exists(con, raw):
                    continue
                _ensure_tables(con, raw)
                src = _lit(source.name)
                settings = _settings(con, source, raw)
                stored = con.execute(
                    f"SELECT settings FROM {STATE_TABLE} WHERE version_source = {src}"
                ).fetchall()
                reason = (
                    "forced" if force_full
                    else "no stored state" if not stored
                    else "settings changed" if stored != [(settings,)]
                    else "no raw file index" if not table_exists(con, RAW_FILES_TABLE)
                    else None
                )  # fmt: skip
                if reason is not None:
                    # resolved whole: the index is rebuilt from raw (this reads every raw row, as
                    # the resolution does; an erasure, which deletes raw rows, changes the settings)
                    reindex_raw_files(con, source.name)
                _stage_live_files(con, source.name, withdrawn)
                gone = _count(
                    con,
                    "SELECT source_file, source_sha256, ingest_day, n FROM"
                    f" {FILES_TABLE} WHERE version_source = {src}"
                    " EXCEPT SELECT source_file, source_sha256, ingest_day, n FROM _v_live",
                )
                if reason is None and gone:
                    reason = f"{gone} file(s) withdrawn, superseded or erased"
                    reindex_raw_files(con, source.name)  # resolved whole anyway: index checked too
                    _stage_live_files(con, source.name, withdrawn)
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE _v_old_dates AS SELECT DISTINCT d FROM"
                    f" {FILES_TABLE} WHERE version_source = {src} AND d IS NOT NULL"
                )
                if reason is not None:
                    stats.full_sources.append(f"{source.name}: {reason}")
                    stats.sightings_read += _resolve(con, source, raw, withdrawn, None)
                    stats.keys_recomputed += _count(
                        con, f"SELECT 1 FROM {TAILS_TABLE} WHERE version_source = {src}"
                    )
                else:
                    read, folded, redone = _fold_new(con, source, raw, withdrawn)
                    stats.sightings_read += read
                    stats.keys_folded += folded
                    stats.keys_recomputed += redone
                    # dates whose next delivery date moved (a new full delivery, a late one)
                    con.execute(
                        "CREATE OR REPLACE TEMP TABLE _v_moved AS SELECT n.d FROM _v_dates AS n"
                        " LEFT JOIN (SELECT d, lead(d) OVER (ORDER BY d) AS next_d"
                        "            FROM _v_old_dates) AS o USING (d)"
                        " WHERE o.next_d IS DISTINCT FROM n.next_d"
                    )
                    _refresh_deletions(con, source)
                con.execute(f"DELETE FROM {FILES_TABLE} WHERE version_source = {src}")
                con.execute(
                    f"INSERT INTO {FILES_TABLE} SELECT {src}, source_file, source_sha256,"
                    " ingest_day, d, n FROM _v_live"
                )
                con.execute(f"DELETE FROM {STATE_TABLE} WHERE version_source = {src}")
                con.execute(f"INSERT INTO {STATE_TABLE} VALUES ({src}, ?)", [settings])
    finally:
        for name in ("_v_live", "_v_dates", "_v_old_dates", "_v_added", "_v_late", "_v_redo",
                     "_v_fold_keys", "_v_moved", "_v_keys", "_v_all_keys"):  # fmt: skip
            con.execute(f"DROP TABLE IF EXISTS {name}")
    stats.cpu_seconds = round(time.process_time() - started, 3)
    return stats

"""Record versions in the warehouse: current raw records, version history, withdrawn deliveries.

Executes the SQL that ``sources.versions`` builds over ``raw.<source>``: the current version of
every record (what cleaning reads), ``history.record_versions`` (every version with its date
and delivery), and the delivery log (``ops.deliveries`` with ``ops.withdrawn_deliveries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pyarrow as pa

from sources.config import SourceConfig
from sources.model import CANONICAL_FIELDS, READ_STATUSES
from sources.versions import (
    WITHDRAWN_COLUMNS,
    current_records_sql,
    delivery_date_sql,
    record_versions_sql,
)
from warehouse.db import table_exists

__all__ = [
    "WITHDRAWN_TABLE",
    "DeliveryNotFound",
    "create_version_views",
    "current_raw_rows",
    "current_versions_sql",
    "delivery_reasons",
    "ensure_withdrawn_table",
    "list_deliveries",
    "mark_deleted_at_source",
    "withdraw_deliveries",
]

WITHDRAWN_TABLE = "ops.withdrawn_deliveries"
VERSIONS_VIEW = "history.record_versions"
RAW_LINEAGE = (
    "record_key",
    "source_system",
    "source_file",
    "source_row",
    "source_sha256",
    "ingested_at",
    "extra",
)
TEXT_TYPES = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}
"""Arrow → pandas types of the all-text raw frames (``to_pandas(types_mapper=TEXT_TYPES.get)``)."""
_VERSION_HELPERS = "run_id, delivery_date, version_no, last_delivery_date"


class DeliveryNotFound(LookupError):
    """No ingested delivery matches what the user named."""


def _raw_table(source: str) -> str:
    return f"raw.{source}"


def ensure_withdrawn_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``ops.withdrawn_deliveries`` when absent (one row per withdrawn file)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    columns = ", ".join(
        f"{c} TIMESTAMP" if c == "withdrawn_at" else f"{c} VARCHAR" for c in WITHDRAWN_COLUMNS
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {WITHDRAWN_TABLE} ({columns})")


def _withdrawn(con: duckdb.DuckDBPyConnection) -> str | None:
    return WITHDRAWN_TABLE if table_exists(con, WITHDRAWN_TABLE) else None


def current_raw_rows(
    con: duckdb.DuckDBPyConnection, sources: Sequence[SourceConfig]
) -> pd.DataFrame:
    """The current version of every record of the given sources, as one all-text frame.

    One row per ``record_key`` (never a repeat, whatever was delivered twice), with the raw
    columns of the delivery that introduced the current values, plus ``deleted_at_source``
    (Arrow ``date32``, null while the record is live at its source).

    Args:
        con: The warehouse.
        sources: Source mappings (their ``delivery`` kind and ``deleted_flag`` matter).

    Returns:
        Canonical fields, raw lineage columns and ``deleted_at_source``.
    """
    frames = []
    withdrawn = _withdrawn(con)
    for source in sources:
        if not table_exists(con, _raw_table(source.name)):
            continue
        sql = current_records_sql(_raw_table(source.name), source, withdrawn)
        table = con.sql(f"SELECT * EXCLUDE ({_VERSION_HELPERS}) FROM ({sql})").to_arrow_table()
        frames.append(table.to_pandas(types_mapper=TEXT_TYPES.get))
    if not frames:
        empty = pd.DataFrame(
            {c: pd.Series(dtype="string") for c in [*CANONICAL_FIELDS, *RAW_LINEAGE]}
        )
        empty["deleted_at_source"] = pd.Series(dtype=pd.ArrowDtype(pa.date32()))
        return empty
    return pd.concat(frames, ignore_index=True)


def current_versions_sql(
    con: duckdb.DuckDBPyConnection, sources: Sequence[SourceConfig]
) -> str | None:
    """One ``SELECT`` of the current version of every record of every source (in DuckDB).

    The rows and columns of ``current_raw_rows`` (sources' columns united by name), for
    callers that keep the work in DuckDB (the nightly clean selects the changed records from
    it). None when no source has a raw table yet.
    """
    withdrawn = _withdrawn(con)
    parts = [
        f"(SELECT * EXCLUDE ({_VERSION_HELPERS}) FROM"
        f" ({current_records_sql(_raw_table(s.name), s, withdrawn)}))"
        for s in sources
        if table_exists(con, _raw_table(s.name))
    ]
    return " UNION ALL BY NAME ".join(parts) if parts else None


def create_version_views(
    con: duckdb.DuckDBPyConnection, sources: Sequence[SourceConfig]
) -> list[str]:
    """(Re)create ``history.record_versions``: every version of every record, with reason.

    Args:
        con: The warehouse.
        sources: Source mappings; sources without a raw table yet are left out.

    Returns:
        The names of the sources the view covers.
    """
    withdrawn = _withdrawn(con)
    parts, covered = [], []
    for source in sources:
        if table_exists(con, _raw_table(source.name)):
            parts.append(f"({record_versions_sql(_raw_table(source.name), source, withdrawn)})")
            covered.append(source.name)
    con.execute("CREATE SCHEMA IF NOT EXISTS history")
    if parts:
        con.execute(
            f"CREATE OR REPLACE VIEW {VERSIONS_VIEW} AS " + " UNION ALL BY NAME ".join(parts)
        )
    return covered


def mark_deleted_at_source(records: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Carry ``deleted_at_source`` of each record's current raw version onto clean records.

    Args:
        records: Clean records (``record_key``; an older ``deleted_at_source`` is replaced).
        raw: ``current_raw_rows`` (``record_key``, ``deleted_at_source``).

    Returns:
        The records with ``deleted_at_source`` (Arrow ``date32``, null while live at source).
    """
    deleted = pd.Series(
        raw["deleted_at_source"].to_numpy(), index=raw["record_key"].astype(str).to_numpy()
    )
    out = records.drop(columns=["deleted_at_source"], errors="ignore")
    values = deleted.reindex(out["record_key"].astype(str).to_numpy()).to_numpy()
    out["deleted_at_source"] = pd.Series(values, index=out.index).astype(pd.ArrowDtype(pa.date32()))
    return out


def list_deliveries(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every delivered file the manifest knows, newest date first, with its withdrawal.

    A file seen again unchanged by later runs is listed once (its ``new``/``changed`` row);
    re-sends skipped as ``duplicate`` are listed with that status.

    Returns:
        ``source_system, delivery_date, path, status, rows_read, run_id, sha256, withdrawn_at,
        withdrawn_reason`` (one row per manifest row; empty when nothing was delivered yet).
    """
    if not table_exists(con, "ops.deliveries"):
        return pd.DataFrame(
            columns=["source_system", "delivery_date", "path", "status", "rows_read", "run_id"]
        )
    join = ""
    extra = "NULL::TIMESTAMP AS withdrawn_at, NULL AS withdrawn_reason"
    if _withdrawn(con):
        join = (
            f" LEFT JOIN {WITHDRAWN_TABLE} AS w ON w.source_system = d.source_system"
            " AND w.path = d.path AND w.sha256 = d.sha256"
        )
        extra = "w.withdrawn_at, w.reason AS withdrawn_reason"
    date = delivery_date_sql("d.path", "NULL")
    return con.sql(
        f"SELECT d.source_system, {date} AS delivery_date, d.path, d.status, d.rows_read,"
        f" d.run_id, d.sha256, {extra}"
        f" FROM ops.deliveries AS d{join}"
        " WHERE d.status <> 'unchanged'"
        " ORDER BY delivery_date DESC NULLS LAST, d.source_system, d.path, d.run_id"
    ).df()


def withdraw_deliveries(
    con: duckdb.DuckDBPyConnection,
    target: str,
    reason: str,
    withdrawn_by: str = "cli",
    source: str | None = None,
) -> pd.DataFrame:
    """Withdraw the ingested file(s) a path names: their rows stop counting from the next run.

    ``target`` is a landing-relative file path (``sales/2026-11-24/crm_customers.csv``) or a
    folder (``sales/2026-11-24``: every file ingested under it). Rows stay in ``raw.*`` (the
    audit trail), but the version resolution leaves them out, so the versions before them are
    current again. Withdrawing twice is a no-op.

    Args:
        con: The warehouse.
        target: File or folder, relative to the landing folder.
        reason: Why (required, recorded).
        withdrawn_by: Who or what withdrew it.
        source: Only this source's files.

    Returns:
        The rows added to ``ops.withdrawn_deliveries``.

    Raises:
        DeliveryNotFound: when no ingested delivery matches.
        ValueError: when ``reason`` is empty.
    """
    if not reason.strip():
        raise ValueError("a withdrawal needs a reason")
    if not table_exists(con, "ops.deliveries"):
        raise DeliveryNotFound("nothing has been delivered yet")
    ensure_withdrawn_table(con)
    path = target.strip().replace("\\", "/").rstrip("/")
    found = con.execute(
        "SELECT DISTINCT d.source_system, d.path, d.sha256 FROM ops.deliveries AS d"
        f" WHERE d.status IN {tuple(READ_STATUSES)}"
        " AND (d.path = ? OR starts_with(d.path, ?))"
        " AND (? IS NULL OR d.source_system = ?)"
        f" AND NOT EXISTS (SELECT 1 FROM {WITHDRAWN_TABLE} AS w WHERE w.source_system ="
        " d.source_system AND w.path = d.path AND w.sha256 = d.sha256)"
        " ORDER BY d.source_system, d.path",
        [path, path + "/", source, source],
    ).df()
    if found.empty:
        known = con.execute(
            "SELECT count(*) FROM ops.deliveries WHERE path = ? OR starts_with(path, ?)",
            [path, path + "/"],
        ).fetchone()
        if known and known[0]:
            return found.assign(withdrawn_at=pd.NaT, reason="", withdrawn_by="")
        raise DeliveryNotFound(f"no ingested delivery at {target!r} (see `deliveries list`)")
    rows = found.assign(
        withdrawn_at=datetime.now(UTC).replace(tzinfo=None),
        reason=reason.strip(),
        withdrawn_by=withdrawn_by,
    )[list(WITHDRAWN_COLUMNS)]
    con.register("_withdrawn", rows)
    try:
        con.execute(f"INSERT INTO {WITHDRAWN_TABLE} BY NAME SELECT * FROM _withdrawn")
    finally:
        con.unregister("_withdrawn")
    return rows


def delivery_reasons(
    con: duckdb.DuckDBPyConnection, crosswalk: str, records: str, where: str | None = None
) -> pd.Series:
    """Per customer, the newest delivery behind its current records (the reason of a change).

    The record whose current version arrived last (or was deleted at source last) names it:
    ``delivery sales/2026-11-24/crm_customers.csv`` or ``deleted at source 2026-11-25 (sales)``.

    Args:
        con: The warehouse.
        crosswalk: Table with ``record_key, customer_id``.
        records: Table with ``record_key, source_system, source_file`` (``deleted_at_source``
            when present).
        where: SQL condition on the crosswalk's rows (e.g. only some customers); all when None.

    Returns:
        Text indexed by ``customer_id`` (customers without a dated delivery are left out).
    """
    if not (table_exists(con, crosswalk) and table_exists(con, records)):
        return pd.Series(dtype="string")
    cols = {r[0] for r in con.execute(f"DESCRIBE {records}").fetchall()}
    if "source_file" not in cols:
        return pd.Series(dtype="string")
    deleted = "r.deleted_at_source" if "deleted_at_source" in cols else "NULL::DATE"
    date = delivery_date_sql("r.source_file", "r.ingested_at")
    frame = con.sql(
        f"""
        WITH dated AS (
            SELECT c.customer_id, r.source_system, r.source_file,
                   {deleted} AS deleted_at, {date} AS delivered_on
            FROM (SELECT * FROM {crosswalk} WHERE {where or "true"}) AS c
            JOIN {records} AS r USING (record_key)
        )
        SELECT customer_id,
               arg_max(CASE WHEN deleted_at IS NOT NULL AND deleted_at >= delivered_on
                            THEN 'deleted at source ' || strftime(deleted_at, '%Y-%m-%d')
                                 || ' (' || source_system || ')'
                            ELSE 'delivery ' || source_file END,
                       (greatest(coalesce(deleted_at, delivered_on), delivered_on),
                        source_file)) AS reason
        FROM dated GROUP BY customer_id
        """
    ).df()
    return pd.Series(frame["reason"].to_numpy(), index=frame["customer_id"].to_numpy())

"""Right to be forgotten (删除权): erase a customer from warehouse, mart, exports, snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.archive import list_snapshots
from warehouse.archive._digest_cache import drop_cache
from warehouse.archive._layout import MANIFEST_NAME, read_manifest
from warehouse.db import create_empty_table, transaction
from warehouse.security._erase_sql import PersonMatch, erase_in_arrow, erase_in_table
from warehouse.security.audit import AuditLog
from warehouse.security.audit_anchor import record_audit_head
from warehouse.security.files import erase_in_file, erase_in_tree, files_holding
from warehouse.security.keys import KeyRing
from warehouse.security.mart import MART_PURPOSE, PSEUDONYM_PURPOSE, open_analyst_mart
from warehouse.security.mart_delta import forget_mart_state
from warehouse.security.masking import pseudonym
from warehouse.security.snapshots import read_snapshot, rewrite_delta, rewrite_snapshot
from warehouse.security.suppression import (
    EMAIL_COLUMNS,
    NAME_COLUMNS,
    PHONE_COLUMNS,
    suppression_entries,
)

TOMBSTONES = "security.tombstones"
SUPPRESSION = "security.suppression"
_EXEMPT_SCHEMAS = frozenset({"security", "audit", "information_schema", "pg_catalog"})


@dataclass(frozen=True)
class ErasureTargets:
    """Where copies of the person's data live besides the warehouse connection.

    ``archive_dirs`` are walked whole: snapshots listed by a manifest are rewritten through
    :func:`rewrite_snapshot` (checksums and content hashes renewed), and every other Parquet
    or JSON file below them (delta snapshots, copies) through :func:`erase_in_file`.
    ``export_dirs`` and ``report_dirs`` are walked whole too (Parquet, CSV, XLSX, HTML,
    JSON/JSONL logs and alerts, text). ``landing_dir`` is only read: the report lists the
    departments' files that still hold the person.
    """

    archive_dir: Path | None = None
    mart_duckdb: Path | None = None
    mart_parquet_dir: Path | None = None
    export_dirs: tuple[Path, ...] = ()
    report_dirs: tuple[Path, ...] = ()
    landing_dir: Path | None = None
    offsite_dirs: tuple[Path, ...] = ()


@dataclass
class ErasureReport:
    """What an erasure removed (counts only: the report holds no personal data)."""

    customer_id: str
    erased_at: str
    reason: str
    mode: str
    warehouse_rows: dict[str, int] = field(default_factory=dict)
    redacted_cells: dict[str, int] = field(default_factory=dict)
    snapshot_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    mart_rows: dict[str, int] = field(default_factory=dict)
    export_files: dict[str, int] = field(default_factory=dict)
    archive_files: dict[str, int] = field(default_factory=dict)
    report_files: dict[str, int] = field(default_factory=dict)
    landing_files: list[str] = field(default_factory=list)
    suppression_entries: int = 0

    def summary(self) -> dict[str, object]:
        """JSON-ready figures for the audit log and the CLI."""
        return {
            "mode": self.mode,
            "warehouse_rows": sum(self.warehouse_rows.values()),
            "redacted_cells": sum(self.redacted_cells.values()),
            "snapshots_rewritten": len(self.snapshot_rows),
            "mart_rows": sum(self.mart_rows.values()),
            "export_files_rewritten": len(self.export_files),
            "archive_files_rewritten": len(self.archive_files),
            "report_files_rewritten": len(self.report_files),
            "landing_files_holding_person": len(self.landing_files),
            "suppression_entries": self.suppression_entries,
        }


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    rows = con.execute(
        "SELECT c.schema_name, c.table_name, c.column_name, c.data_type FROM duckdb_columns() c "
        "JOIN duckdb_tables() t ON t.database_name = c.database_name "
        "AND t.schema_name = c.schema_name AND t.table_name = c.table_name "
        "WHERE c.database_name = current_database() ORDER BY c.column_index"
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for schema, table, column, dtype in rows:
        if schema in _EXEMPT_SCHEMAS:
            continue
        name = f'"{schema}"."{table}"' if schema != "main" else f'"{table}"'
        out.setdefault(name, {})[str(column)] = str(dtype)
    return out


def _collect(con: duckdb.DuckDBPyConnection, customer_id: str) -> tuple[PersonMatch, dict]:
    """The person's link keys and identifying values, from every table that links to them."""
    match = PersonMatch(customer_ids={customer_id})
    tables = _tables(con)
    for name, columns in tables.items():  # record keys via crosswalk-like tables
        if {"customer_id", "record_key"} <= set(columns):
            rows = con.execute(
                f"SELECT DISTINCT CAST(record_key AS VARCHAR) FROM {name} "
                "WHERE CAST(customer_id AS VARCHAR) = ?",
                [customer_id],
            ).fetchall()
            match.record_keys |= {str(r[0]) for r in rows if r[0] is not None}
    values: dict[str, set[str]] = {"names": set(), "phones": set(), "emails": set()}
    wanted = {c: "names" for c in NAME_COLUMNS} | {c: "phones" for c in PHONE_COLUMNS}
    wanted |= {c: "emails" for c in EMAIL_COLUMNS}
    for name, columns in tables.items():
        linked = match.linked_sql(list(columns))
        present = [c for c in columns if c in wanted]
        if linked is None:
            continue
        if {"source_system", "source_record_id"} <= set(columns):
            rows = con.execute(
                f"SELECT DISTINCT CAST(source_system AS VARCHAR), "
                f"CAST(source_record_id AS VARCHAR) FROM {name} WHERE {linked}"
            ).fetchall()
            match.source_ids |= {(str(a), str(b)) for a, b in rows if a and b}
        for column in present:
            rows = con.execute(
                f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {name} WHERE {linked}'
            ).fetchall()
            values[wanted[column]] |= {str(r[0]) for r in rows if r[0]}
    match.phones, match.emails = set(values["phones"]), set(values["emails"])
    return match, values


def _person_names(con: duckdb.DuckDBPyConnection, customer_id: str, names: set[str]) -> set[str]:
    """Names to suppress: drop an enterprise's company name (only people are erased by name)."""
    tables = _tables(con)
    if '"golden"."customers"' in tables and "customer_type" in tables['"golden"."customers"']:
        rows = con.execute(
            "SELECT customer_type, customer_name FROM golden.customers WHERE customer_id = ?",
            [customer_id],
        ).fetchall()
        companies = {str(n) for t, n in rows if t == "enterprise" and n}
        return names - companies
    return names


def _erase_mart(
    targets: ErasureTargets,
    match: PersonMatch,
    key: KeyRing,
    report: ErasureReport,
    allow_unsafe_crypto: bool | None,
) -> None:
    secret = key.derive(PSEUDONYM_PURPOSE)
    pseudo = PersonMatch(
        customer_ids={pseudonym(c, secret) for c in match.customer_ids},
        record_keys={pseudonym(k, secret) for k in match.record_keys},
        phones=match.phones,
        emails=match.emails,
    )
    mart_ring = KeyRing(key.derive(MART_PURPOSE))
    if targets.mart_duckdb is not None and Path(targets.mart_duckdb).exists():
        con = open_analyst_mart(targets.mart_duckdb, mart_ring, False, allow_unsafe_crypto)
        try:
            for name, columns in _tables(con).items():
                deleted, _ = erase_in_table(con, name, columns, pseudo)
                if deleted:
                    report.mart_rows[name] = deleted
            con.execute("CHECKPOINT")
        finally:
            con.close()
    if targets.mart_parquet_dir is not None and Path(targets.mart_parquet_dir).is_dir():
        # the last full write and the nightly change files (changes/…, mart_delta)
        files = sorted(Path(targets.mart_parquet_dir).rglob("*.parquet"))
        for path in files:
            dropped = erase_in_file(path, pseudo, mart_ring)
            if dropped is not None:
                report.mart_rows[str(path)] = dropped


def erase_customer(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    reason: str,
    key: KeyRing,
    targets: ErasureTargets | None = None,
    actor: str = "admin",
    audit: AuditLog | None = None,
    now: datetime | None = None,
    mode: Literal["erase", "anonymize"] = "erase",
    allow_unsafe_crypto: bool | None = None,
) -> ErasureReport:
    """Erase one customer's personal data everywhere it is kept; keep a tombstone and suppress.

    In the warehouse every row tied to the customer (by ``customer_id``, crosswalk record keys,
    ``left_key``/``right_key``, ``source_system``+``source_record_id``) is deleted from every
    schema (raw, clean, match, golden incl. history, staging), rows without link columns
    (quarantine) that mention the person's phone or email are deleted, and the phone/email
    left in any other text cell is replaced by ``[erased]``. The same is applied to the
    analyst mart (by pseudonymized keys), to Parquet/CSV exports and to every snapshot
    (files rewritten, manifest updated with an ``erasures`` entry). A tombstone (id, time,
    reason — no PII) goes to ``security.tombstones`` and hashed identifiers to
    ``security.suppression`` so :func:`is_suppressed` drops re-delivered records.

    ``mode="anonymize"`` (retention) does the same but keeps the ``golden.customers`` row
    with its direct identifiers nulled, so counts by region/industry/tier stay right.

    Args:
        con: a read-write warehouse connection.
        customer_id: the customer (``C20240315001``).
        reason: why (request reference, ``retention``); stored in the tombstone and audit log.
        key: the key ring (snapshots, mart, pseudonyms, suppression secret).
        targets: snapshots, mart and export folders to clean too.
        actor: who asked (audit log).
        audit: the audit log to append to.
        now: the erasure time (default now, UTC).
        mode: ``erase`` or ``anonymize``.
        allow_unsafe_crypto: see ``open_encrypted_warehouse`` (rewriting the mart database).

    Returns:
        The :class:`ErasureReport` (counts only).

    Raises:
        ValueError: the customer is unknown (and not already erased).
    """
    targets = targets or ErasureTargets()
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    report = ErasureReport(customer_id, stamp, reason, mode)
    match, values = _collect(con, customer_id)
    known = bool(match.record_keys) or _count(con, "golden.customers", customer_id) > 0
    if not known and _count(con, TOMBSTONES, customer_id) == 0:
        raise ValueError(f"customer {customer_id} is not in the warehouse; nothing to erase")
    kept = None
    if mode == "anonymize":
        kept = con.execute(
            "SELECT * FROM golden.customers WHERE customer_id = ?", [customer_id]
        ).df()
        for column in ("contact_name", "phone", "email", "address"):
            if column in kept:
                kept[column] = pd.NA
        if "customer_name" in kept and "customer_type" in kept:
            kept.loc[kept["customer_type"] != "enterprise", "customer_name"] = pd.NA
    names = _person_names(con, customer_id, values["names"])
    match.names = {n.strip() for n in names if len(n.strip()) >= 2}
    entries = suppression_entries(
        customer_id,
        match.record_keys,
        names,
        values["phones"],
        values["emails"],
        key.derive("suppression"),
        stamp,
    )
    with transaction(con):
        for name, columns in _tables(con).items():
            deleted, redacted = erase_in_table(con, name, columns, match)
            if deleted:
                report.warehouse_rows[name] = deleted
            if redacted:
                report.redacted_cells[name] = redacted
        if kept is not None and len(kept):
            con.register("_kept", kept)
            con.execute("INSERT INTO golden.customers BY NAME SELECT * FROM _kept")
            con.unregister("_kept")
        tomb = pd.DataFrame(
            [
                {
                    "customer_id": customer_id,
                    "erased_at": stamp,
                    "reason": reason,
                    "mode": mode,
                    "actor": actor,
                }
            ]
        )
        for table, frame in ((TOMBSTONES, tomb), (SUPPRESSION, entries)):
            con.execute("CREATE SCHEMA IF NOT EXISTS security")
            con.register("_rows", frame)
            create_empty_table(con, table, "SELECT * FROM _rows", if_not_exists=True)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
            con.unregister("_rows")
        forget_mart_state(con)  # the next publish rebuilds the mart whole, from what is left
    con.execute("CHECKPOINT")
    report.suppression_entries = len(entries)
    note = {"customer_id": customer_id, "reason": reason, "mode": mode}
    archives = [targets.archive_dir, *targets.offsite_dirs]
    for folder in (Path(a) for a in archives if a is not None and Path(a).is_dir()):
        covered: list[Path] = []
        snapshots = list_snapshots(folder)
        # a delta drops base rows by position: read what each delta represents before its
        # base loses rows, erase it there, and encode it again on the erased base
        deltas = {
            info.snapshot_id: read_snapshot(info.path, key)
            for info in snapshots
            if info.storage != "full"
        }
        for info in snapshots:
            manifest = read_manifest(info.path)
            covered += [info.path / MANIFEST_NAME]
            covered += [info.path / e["file"] for e in manifest["files"].values()]
            if info.snapshot_id in deltas:
                continue
            changed = rewrite_snapshot(
                info.path,
                lambda _n, t: _changed_or_none(t, match),
                key,
                note_key="erasures",
                note=note,
            )
            if changed:
                report.snapshot_rows[info.snapshot_id] = changed
        for info in snapshots:
            if info.snapshot_id not in deltas:
                continue
            erased = {
                name: erase_in_arrow(table, match)[0]
                for name, table in deltas[info.snapshot_id].items()
            }
            removed = rewrite_delta(info.path, erased, key, note_key="erasures", note=note)
            if any(removed.values()) or any(
                erased[n] is not t for n, t in deltas[info.snapshot_id].items()
            ):
                report.snapshot_rows[info.snapshot_id] = removed
        drop_cache(folder)  # row digests of the old content: rebuilt by the next full snapshot
        # every other Parquet/JSON file below the archive (delta snapshots, copies, …)
        report.archive_files.update(erase_in_tree(folder, match, key, skip=covered))
    _erase_mart(targets, match, key, report, allow_unsafe_crypto)
    for folder in targets.export_dirs:
        report.export_files.update(erase_in_tree(Path(folder), match, key))
    for folder in targets.report_dirs:
        report.report_files.update(erase_in_tree(Path(folder), match, key))
    if targets.landing_dir is not None:
        report.landing_files = [str(p) for p in files_holding(Path(targets.landing_dir), match)]
    if audit is not None:
        audit.append(
            actor, mode, "customer", [customer_id], "ok", {"reason": reason, **report.summary()}
        )
        record_audit_head(con, audit.head())
    return report


def _changed_or_none(table: pa.Table, match: PersonMatch) -> pa.Table | None:
    new, deleted, redacted = erase_in_arrow(table, match)
    return new if (deleted or redacted) else None


def _count(con: duckdb.DuckDBPyConnection, table: str, customer_id: str) -> int:
    schema, name = table.split(".")
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?",
        [schema, name],
    ).fetchall()[0][0]
    if not exists:
        return 0
    return int(
        con.execute(
            f"SELECT count(*) FROM {table} WHERE customer_id = ?", [customer_id]
        ).fetchall()[0][0]
    )


def read_suppression(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The suppression table (``security.suppression``), or None before the first erasure."""
    if _count_tables(con, "security", "suppression") == 0:
        return None
    return con.execute(f"SELECT * FROM {SUPPRESSION}").df()


def _count_tables(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> int:
    return int(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )

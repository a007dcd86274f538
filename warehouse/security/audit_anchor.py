"""Anchors of the audit log's head outside the log: the warehouse and every snapshot manifest.

A hash chain alone cannot show that its newest entries were cut off, nor that a forger
rewrote every hash after an edit. Each anchor is a ``(seq, hash)`` the log must still hold:
``security.audit_head`` in the (encrypted) warehouse is moved forward on every audit entry
the CLI and the pipeline write, and each snapshot's ``manifest.json`` keeps the head of the
moment it was published (``audit_head``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse.archive import list_snapshots
from warehouse.archive._layout import MANIFEST_NAME
from warehouse.db import transaction

AUDIT_HEAD = "security.audit_head"
MANIFEST_KEY = "audit_head"


def record_audit_head(con: duckdb.DuckDBPyConnection, head: tuple[int, str]) -> None:
    """Store the log's head in ``security.audit_head`` (one row: seq, hash, recorded_at).

    A head older than the stored one is ignored (the anchor only moves forward).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS security")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {AUDIT_HEAD} "
        "(seq BIGINT, hash VARCHAR, recorded_at TIMESTAMP WITH TIME ZONE)"
    )
    stored = read_audit_head(con)
    if stored is not None and stored[0] > head[0]:
        return
    with transaction(con):
        con.execute(f"DELETE FROM {AUDIT_HEAD}")
        con.execute(
            f"INSERT INTO {AUDIT_HEAD} VALUES (?, ?, ?)",
            [int(head[0]), str(head[1]), datetime.now(UTC)],
        )


def read_audit_head(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """The head anchored in the warehouse, or None before the first anchored entry."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'security' AND table_name = 'audit_head'"
    ).fetchall()[0][0]
    if not exists:
        return None
    row = con.execute(f"SELECT seq, hash FROM {AUDIT_HEAD} ORDER BY seq DESC LIMIT 1").fetchall()
    return (int(row[0][0]), str(row[0][1])) if row else None


def manifest_audit_head(head: tuple[int, str]) -> dict[str, dict[str, object]]:
    """The ``manifest_extra`` entry that anchors ``head`` in a snapshot manifest."""
    return {MANIFEST_KEY: {"seq": int(head[0]), "hash": str(head[1])}}


def snapshot_anchors(archive_dir: Path | None) -> dict[str, tuple[int, str]]:
    """Snapshot id → the audit head its manifest recorded (snapshots without one are left out)."""
    out: dict[str, tuple[int, str]] = {}
    if archive_dir is None or not Path(archive_dir).is_dir():
        return out
    for info in list_snapshots(Path(archive_dir)):
        manifest = json.loads((info.path / MANIFEST_NAME).read_text(encoding="utf-8"))
        head = manifest.get(MANIFEST_KEY)
        if isinstance(head, dict) and int(head.get("seq", 0)) > 0:
            out[info.snapshot_id] = (int(head["seq"]), str(head["hash"]))
    return out

"""Erasure (right to be forgotten) across warehouse, snapshots, analyst mart and exports."""

from __future__ import annotations

import json

from warehouse.security import ErasureTargets, KeyRing, erase_customer

from ..access import actor, keyring, open_warehouse, run_lock
from ..settings import ArchiveConfig


def erase(
    cfg: ArchiveConfig, customer_id: str, reason: str, mode: str = "erase", compact: bool = True
) -> int:
    """Erase (or anonymize) one customer everywhere, leave a tombstone and a suppression entry.

    Runs under the run lock so no pipeline run writes at the same time. The audit log gets the
    erasure with counts only (no personal data). With ``compact`` the warehouse and the mart
    database are then rewritten into fresh files (:func:`compact_after_erasure`).
    """
    from warehouse.security import AuditLog

    ring = keyring(cfg, create=False)
    if ring is None:
        raise SystemExit("erasure needs the master key (snapshots, mart and suppression use it)")
    targets = erasure_targets(cfg)
    audit_path = cfg.resolve(cfg.security.audit_log)
    audit_path.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(cfg):
        with open_warehouse(cfg) as con:
            report = erase_customer(
                con,
                customer_id,
                reason,
                ring,
                targets,
                actor=actor(),
                audit=AuditLog(audit_path),
                mode=mode,  # type: ignore[arg-type]
                allow_unsafe_crypto=cfg.security.allow_unsafe_duckdb_crypto,
            )
        if compact:
            compact_after_erasure(cfg, ring)
    print(json.dumps({"customer_id": customer_id, **report.summary()}, ensure_ascii=False))
    if report.landing_files:
        print(
            f"{len(report.landing_files)} landing file(s) (the departments' originals) still "
            "hold this person; ask the departments to correct them, or let "
            "security.landing_retention_days delete processed files:"
        )
        for path in report.landing_files:
            print(f"  {path}")
    return 0


def compact_after_erasure(cfg: ArchiveConfig, ring: KeyRing) -> None:
    """Rewrite the warehouse and the mart database so no deleted row survives in free blocks.

    DuckDB does not wipe the blocks of deleted rows; copying the live content into a fresh
    file (same key) and renaming it over the old one leaves none behind. Call it under the
    run lock, with no connection open.
    """
    from warehouse.security import analyst_mart_key, compact_database, mart_key_text
    from warehouse.security.encryption import warehouse_key_text

    unsafe = cfg.security.allow_unsafe_duckdb_crypto
    warehouse = cfg.resolve(cfg.warehouse)
    if warehouse.exists():
        text = warehouse_key_text(ring) if cfg.security.encrypt_warehouse else None
        compact_database(warehouse, text, unsafe)
    mart = cfg.resolve(cfg.security.analyst_mart)
    if mart.exists():
        compact_database(mart, mart_key_text(analyst_mart_key(ring)), unsafe)


def erasure_targets(cfg: ArchiveConfig) -> ErasureTargets:
    """Everything the project writes besides the warehouse, for :func:`erase_customer`."""
    from pathlib import Path

    offsite = Path(cfg.offsite) if cfg.offsite and "://" not in cfg.offsite else None
    return ErasureTargets(
        archive_dir=cfg.resolve(cfg.archive_dir),
        mart_duckdb=cfg.resolve(cfg.security.analyst_mart),
        mart_parquet_dir=cfg.resolve(cfg.security.analyst_mart_parquet),
        export_dirs=(cfg.resolve(cfg.exports_dir),),
        report_dirs=(cfg.resolve(cfg.reports_dir),),
        landing_dir=cfg.resolve(cfg.landing_dir),
        offsite_dirs=(cfg.resolve(offsite),) if offsite is not None else (),
    )


def rotate_keys(cfg: ArchiveConfig) -> int:
    """Rotate the master key: warehouse, snapshots and analyst mart re-encrypted under a new key.

    The new ring (new key current, old keys kept as previous for the suppression list and for
    reading anything not yet re-encrypted) is first written to ``<key file>.next`` (0600); the
    key file is replaced only after every re-encryption succeeded, so an interrupted rotation
    leaves both keys on disk and nothing unreadable.
    """
    import os
    import secrets

    from warehouse.publish import golden_snapshot_tables
    from warehouse.security import (
        rotate_snapshot_keys,
        rotate_warehouse_key,
        write_key_file,
    )
    from warehouse.security.keys import KEY_ENV

    from ..access import audit, publish_analyst_mart

    if os.environ.get(KEY_ENV):
        raise SystemExit(
            f"the key comes from ${KEY_ENV}: rotate it in your secret store, then run "
            "`rotate_warehouse_key` / `rotate_snapshot_keys` as docs/security.md describes"
        )
    old = keyring(cfg)
    if old is None:
        raise SystemExit("no key to rotate")
    new = old.rotated(secrets.token_bytes(32))
    key_file = cfg.resolve(cfg.security.key_file)
    pending = key_file.with_name(key_file.name + ".next")
    write_key_file(pending, new)
    wh = cfg.resolve(cfg.warehouse)
    with run_lock(cfg):
        if cfg.security.encrypt_warehouse and wh.exists():
            rotate_warehouse_key(
                wh, old, new, allow_unsafe_crypto=cfg.security.allow_unsafe_duckdb_crypto
            )
        snaps = rotate_snapshot_keys(cfg.resolve(cfg.archive_dir), new)
        os.replace(pending, key_file)
        if wh.exists():
            with open_warehouse(cfg, read_only=True) as con:
                tables = golden_snapshot_tables(con)
            if tables:
                publish_analyst_mart(cfg, tables, new)
    audit(cfg, "key_rotation", str(key_file), details={"new_key_id": new.current_id,
                                                       "snapshots": len(snaps)})  # fmt: skip
    print(f"rotated to key {new.current_id}; {len(snaps)} snapshots re-encrypted")
    return 0


def mart_key(cfg: ArchiveConfig) -> int:
    """Print the analyst mart key (64 hex); it opens the mart only.

    The same text is the mart's DuckDB ``ENCRYPTION_KEY`` (``ATTACH 'analyst_mart.duckdb' AS
    mart (ENCRYPTION_KEY '<key>', READ_ONLY)`` in any DuckDB client) and the value of
    ``$CUSTOMER_ARCHIVE_MART_KEY`` for ``customer-archive sql --role analyst``. The master key
    cannot be derived from it. The hand-out is recorded in the audit log.
    """
    from warehouse.security import analyst_mart_key, mart_key_text

    from ..access import audit

    ring = keyring(cfg)
    if ring is None:
        raise SystemExit("no master key configured")
    audit(cfg, "mart_key_issued", str(cfg.resolve(cfg.security.analyst_mart)))
    print(mart_key_text(analyst_mart_key(ring)))
    return 0


def retention(
    cfg: ArchiveConfig,
    years: int | None,
    apply: bool,
    limit: int | None = None,
    today: str | None = None,
) -> int:
    """Plan (and with ``apply``) anonymize or delete customers dormant for ``years`` years.

    The plan is printed (customer ids and dormant days, no personal data) and, when applied,
    each customer goes through the same erasure path as a PIPL/GDPR request with reason
    ``retention`` (mode ``anonymize`` keeps the golden row for counts, without identifiers).
    """
    from datetime import date

    from warehouse.security.retention import dormant_plan

    from ..access import audit

    period = years or cfg.security.retention_years
    if not period:
        raise SystemExit("no retention period: pass --years or set security.retention_years")
    day = date.fromisoformat(today) if today else date.today()
    with open_warehouse(cfg, read_only=True) as con:
        plan = dormant_plan(con, period, day, cfg.security.retention_action)
    if plan is None:
        raise SystemExit("nothing published yet")
    todo = plan[plan["action"].isin(["anonymize", "delete"])]
    if limit is not None:
        todo = todo.head(limit)
    print(
        f"{len(plan[plan['action'] != 'review'])} customers dormant ≥ {period} years "
        f"({len(plan[plan['action'] == 'review'])} without any date, left for review); "
        f"{'applying to' if apply else 'would apply to'} {len(todo)}"
    )
    print(todo.head(50).to_string(index=False))
    if apply:
        for row in todo.itertuples():
            mode = "anonymize" if row.action == "anonymize" else "erase"
            erase(cfg, str(row.customer_id), "retention", mode, compact=False)
        ring = keyring(cfg)
        if ring is not None and len(todo):
            with run_lock(cfg):
                compact_after_erasure(cfg, ring)
        audit(
            cfg,
            "retention",
            f"dormant ≥ {period} years",
            customers=todo["customer_id"].astype(str).tolist(),
            details={"action": cfg.security.retention_action, "count": len(todo)},
        )
    return 0

"""Erasure (right to be forgotten) across warehouse, snapshots, analyst mart and exports."""

from __future__ import annotations

import json

from warehouse.archive import RunLock
from warehouse.security import ErasureTargets, erase_customer

from .access import actor, keyring, open_warehouse
from .settings import ArchiveConfig


def erase(cfg: ArchiveConfig, customer_id: str, reason: str, mode: str = "erase") -> int:
    """Erase (or anonymize) one customer everywhere, leave a tombstone and a suppression entry.

    Runs under the run lock so no pipeline run writes at the same time. The audit log gets the
    erasure with counts only (no personal data).
    """
    from warehouse.security import AuditLog

    ring = keyring(cfg, create=False)
    if ring is None:
        raise SystemExit("erasure needs the master key (snapshots, mart and suppression use it)")
    targets = ErasureTargets(
        archive_dir=cfg.resolve(cfg.archive_dir),
        mart_duckdb=cfg.resolve(cfg.security.analyst_mart),
        mart_parquet_dir=cfg.resolve(cfg.security.analyst_mart_parquet),
        export_dirs=(cfg.resolve(cfg.exports_dir), cfg.resolve(cfg.reports_dir) / "audits"),
    )
    audit_path = cfg.resolve(cfg.security.audit_log)
    audit_path.parent.mkdir(parents=True, exist_ok=True)
    wh = cfg.resolve(cfg.warehouse)
    with RunLock(wh.with_suffix(".lock")), open_warehouse(cfg) as con:
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
    print(json.dumps({"customer_id": customer_id, **report.summary()}, ensure_ascii=False))
    return 0

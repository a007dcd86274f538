"""Landing retention: delete processed landing files ``security.landing_retention_days`` old."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from sources.deliveries import file_sha256
from sources.versions import delivery_date
from warehouse import read_table
from warehouse.security.retention import expired_landing_files

from .access import audit, open_warehouse
from .settings import ArchiveConfig

log = logging.getLogger("customer_archive")


def apply_landing_retention(cfg: ArchiveConfig, today: date) -> list[Path]:
    """Delete the landing files a run already ingested once they are older than the setting.

    The departments' originals are the last copy of an erased person's data outside the
    archive; with ``security.landing_retention_days: N`` every file recorded in
    ``ops.deliveries`` (same sha256 as on disk) whose delivery date is more than N days
    before ``today`` is deleted, empty folders with it, and the audit log records the count.

    Returns:
        The deleted files (none when the setting is absent).
    """
    days = cfg.security.landing_retention_days
    if not days:
        return []
    landing = cfg.resolve(cfg.landing_dir)
    with open_warehouse(cfg, read_only=True) as con:
        deliveries = read_table(con, "ops.deliveries")
    if deliveries is None or deliveries.empty:
        return []
    processed = {
        str(row.path): (str(row.sha256), delivery_date(str(row.path)))
        for row in deliveries.itertuples()
    }
    expired = expired_landing_files(landing, processed, today, days, file_sha256)
    for path in expired:
        path.unlink()
        parent = path.parent
        while parent != landing and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    if expired:
        log.info(
            "landing retention: %d processed files older than %d days deleted", len(expired), days
        )
        audit(
            cfg, "landing_retention", str(landing), details={"days": days, "deleted": len(expired)}
        )
    return expired

"""Prepare a restore: verify the target snapshot, back up the current golden state, load tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from warehouse.archive._layout import read_manifest
from warehouse.archive.snapshots import (
    SnapshotInfo,
    TableWriter,
    list_snapshots,
    load_snapshot,
    publish_snapshot,
)
from warehouse.archive.verify import TableReader


@dataclass(frozen=True)
class RestorePlan:
    """Tables to write back into the warehouse and the pre-restore backup taken first.

    ``backup`` is the ``restore_backup`` snapshot of the current state, or the already published
    snapshot holding exactly that content (so the state before the restore is always archived).
    """

    source: Path
    snapshot_id: str
    tables: dict[str, pa.Table]
    backup: SnapshotInfo | None


def prepare_restore(
    snapshot: Path,
    archive_dir: Path,
    current_tables: Mapping[str, pd.DataFrame | pa.Table],
    run_id: str,
    created_at: datetime,
    manifest_extra: Mapping[str, Any] | None = None,
    *,
    reader: TableReader | None = None,
    writer: TableWriter | None = None,
) -> RestorePlan:
    """Verify and load a snapshot for restore, after snapshotting the current golden state.

    The caller then swaps ``plan.tables`` into the warehouse in one transaction. Nothing is
    backed up when the target snapshot fails verification (it is refused first).

    Args:
        snapshot: the snapshot folder to restore.
        archive_dir: the archive root (the backup is published there).
        current_tables: the warehouse's current golden tables (empty when there are none).
        run_id: the restore's run id.
        created_at: the restore time.
        manifest_extra: more manifest keys for the backup (e.g. who asked for the restore).
        reader: reads one table file (a decrypting one for encrypted snapshots).
        writer: writes one table file of the backup (an encrypting one, likewise).

    Returns:
        A :class:`RestorePlan`.

    Raises:
        SnapshotVerificationError: the target snapshot fails verification.
    """
    tables = load_snapshot(snapshot, verify=True, reader=reader)
    backup: SnapshotInfo | None = None
    if current_tables:
        extra = {"restore_target": read_manifest(Path(snapshot))["snapshot_id"]}
        extra.update(manifest_extra or {})
        backup = publish_snapshot(
            current_tables,
            archive_dir,
            run_id,
            created_at,
            extra,
            kind="restore_backup",
            writer=writer,
        )
        if backup is None:  # current state unchanged since the latest snapshot: that one is it
            backup = list_snapshots(archive_dir)[-1]
    return RestorePlan(
        Path(snapshot), str(read_manifest(Path(snapshot))["snapshot_id"]), tables, backup
    )

"""Immutable, verifiable, restorable archive snapshots of the golden tables, and the run lock."""

from warehouse.archive._errors import (
    ArchiveError,
    OffsiteCopyError,
    SnapshotVerificationError,
    SnapshotWriteError,
)
from warehouse.archive._layout import clean_leftovers
from warehouse.archive.diff import SnapshotDiff, diff_snapshots
from warehouse.archive.lock import RunLock, RunLockedError
from warehouse.archive.offsite import copy_offsite
from warehouse.archive.restore import RestorePlan, prepare_restore
from warehouse.archive.retention import (
    RetentionPlan,
    RetentionPolicy,
    apply_retention,
    due_kind,
    first_work_week_end,
    is_weekday,
    last_business_day,
    plan_retention,
)
from warehouse.archive.snapshots import (
    SNAPSHOT_KINDS,
    SnapshotInfo,
    TableWriter,
    content_hash,
    latest_snapshot,
    list_snapshots,
    load_snapshot,
    publish_snapshot,
)
from warehouse.archive.tables import read_tables_arrow, swap_tables, table_schema
from warehouse.archive.verify import (
    TableReader,
    VerifyProblem,
    VerifyReport,
    read_parquet,
    verify_snapshot,
)

__all__ = [
    "SNAPSHOT_KINDS",
    "ArchiveError",
    "OffsiteCopyError",
    "RestorePlan",
    "RetentionPlan",
    "RetentionPolicy",
    "RunLock",
    "RunLockedError",
    "SnapshotDiff",
    "SnapshotInfo",
    "SnapshotVerificationError",
    "SnapshotWriteError",
    "TableReader",
    "TableWriter",
    "VerifyProblem",
    "VerifyReport",
    "apply_retention",
    "clean_leftovers",
    "content_hash",
    "copy_offsite",
    "diff_snapshots",
    "due_kind",
    "first_work_week_end",
    "is_weekday",
    "last_business_day",
    "latest_snapshot",
    "list_snapshots",
    "load_snapshot",
    "plan_retention",
    "prepare_restore",
    "publish_snapshot",
    "read_parquet",
    "read_tables_arrow",
    "swap_tables",
    "table_schema",
    "verify_snapshot",
]

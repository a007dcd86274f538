"""Immutable, verifiable, restorable archive snapshots of the golden tables, and the run lock."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it: the module is imported on first
# use (PEP 562), so importing one light submodule (e.g. a settings class) does not load
# pandas, SciPy or DuckDB for the whole package (the CLI must start fast).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "warehouse.archive._errors": (
        "ArchiveError",
        "OffsiteCopyError",
        "SnapshotVerificationError",
        "SnapshotWriteError",
    ),
    "warehouse.archive._layout": ("clean_leftovers",),
    "warehouse.archive._scoped": (
        "ChangedState",
        "WarehouseTables",
        "changed_state",
        "customers_changed",
        "warehouse_tables",
    ),
    "warehouse.archive.delta": (
        "SnapshotPolicy",
        "apply_delta",
        "delta_base",
        "row_fingerprints",
    ),
    "warehouse.archive.diff": ("SnapshotDiff", "diff_snapshots"),
    "warehouse.archive.lock": ("RunLock", "RunLockedError"),
    "warehouse.archive.offsite": ("copy_offsite",),
    "warehouse.archive.restore": ("RestorePlan", "prepare_restore"),
    "warehouse.archive.retention": (
        "RetentionPlan",
        "RetentionPolicy",
        "apply_delta",
        "apply_retention",
        "due_kind",
        "first_work_week_end",
        "is_weekday",
        "last_business_day",
        "plan_retention",
    ),
    "warehouse.archive.snapshots": (
        "SNAPSHOT_KINDS",
        "PreparedFull",
        "SnapshotInfo",
        "TableWriter",
        "content_hash",
        "latest_snapshot",
        "list_snapshots",
        "load_snapshot",
        "prepare_full_snapshot",
        "publish_snapshot",
        "read_snapshot_table",
    ),
    "warehouse.archive.tables": ("read_tables_arrow", "swap_tables", "table_schema"),
    "warehouse.archive.verify": (
        "TableReader",
        "VerifyProblem",
        "VerifyReport",
        "read_parquet",
        "verify_snapshot",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "SNAPSHOT_KINDS",
    "ArchiveError",
    "ChangedState",
    "OffsiteCopyError",
    "PreparedFull",
    "RestorePlan",
    "RetentionPlan",
    "RetentionPolicy",
    "RunLock",
    "RunLockedError",
    "SnapshotDiff",
    "SnapshotInfo",
    "SnapshotPolicy",
    "SnapshotVerificationError",
    "SnapshotWriteError",
    "TableReader",
    "TableWriter",
    "VerifyProblem",
    "VerifyReport",
    "WarehouseTables",
    "apply_delta",
    "apply_retention",
    "changed_state",
    "clean_leftovers",
    "content_hash",
    "copy_offsite",
    "customers_changed",
    "delta_base",
    "diff_snapshots",
    "due_kind",
    "first_work_week_end",
    "is_weekday",
    "last_business_day",
    "latest_snapshot",
    "list_snapshots",
    "load_snapshot",
    "plan_retention",
    "prepare_full_snapshot",
    "prepare_restore",
    "publish_snapshot",
    "read_parquet",
    "read_snapshot_table",
    "read_tables_arrow",
    "row_fingerprints",
    "swap_tables",
    "table_schema",
    "verify_snapshot",
    "warehouse_tables",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))

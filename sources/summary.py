"""Run-summary helpers: per-source reconciliation counts and the landing-folder sensor hooks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

from sources.config import SourcesConfig, find_source_files
from sources.deliveries import plan_deliveries
from sources.model import FileDelivery, IngestResult

SUMMARY_COLUMNS: tuple[str, ...] = (
    "source_system",
    "files_read",
    "files_skipped",
    "files_quarantined",
    "rows_read",
    "rows_kept",
    "rows_quarantined",
    "warnings",
)


def ingest_summary(results: Iterable[IngestResult]) -> pd.DataFrame:
    """Count files and rows per source for the run summary and the quality report.

    Args:
        results: One ``IngestResult`` per source of the run.

    Returns:
        One row per source with ``SUMMARY_COLUMNS``; ``rows_read = rows_kept +
        rows_quarantined`` holds on every row.
    """
    records = []
    for result in results:
        if not result.files:
            continue
        read = [f for f in result.files if f.to_ingest]
        records.append(
            {
                "source_system": result.files[0].source_system,
                "files_read": len(read),
                "files_skipped": len(result.files) - len(read),
                "files_quarantined": len(result.quarantined_files),
                "rows_read": sum(f.rows_read for f in read),
                "rows_kept": len(result.rows),
                "rows_quarantined": len(result.quarantined_rows),
                "warnings": len(result.warnings),
            }
        )
    frame = pd.DataFrame(records, columns=list(SUMMARY_COLUMNS))
    frame["source_system"] = frame["source_system"].astype("string")
    for column in SUMMARY_COLUMNS[1:]:
        frame[column] = frame[column].astype("int64")
    return frame


def landing_fingerprint(config: SourcesConfig) -> str:
    """Cheap fingerprint of every enabled source's files (path, size, mtime), for a sensor cursor.

    It changes whenever a file lands, is replaced or removed, without hashing contents.

    Args:
        config: The sources and their landing folder.

    Returns:
        A hex digest; compare it with the sensor's previous cursor.
    """
    digest = hashlib.sha256()
    for source in config.sources:
        if not source.enabled:
            continue
        for path in find_source_files(source, config.landing_dir):
            stat = path.stat()
            rel = path.relative_to(config.landing_dir).as_posix()
            digest.update(f"{source.name}\0{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def pending_deliveries(config: SourcesConfig, manifest: pd.DataFrame | None) -> list[FileDelivery]:
    """List the new or changed files of all enabled sources (what a sensor should run for).

    Args:
        config: The sources and their landing folder.
        manifest: Earlier runs' delivered-files table, or None.

    Returns:
        Deliveries with status ``new`` or ``changed``; empty when nothing is to ingest.
    """
    pending: list[FileDelivery] = []
    for source in config.sources:
        if source.enabled:
            plans = plan_deliveries(source, config.landing_dir, manifest)
            pending.extend(p for p in plans if p.to_ingest)
    return pending

"""Ingest one source: plan deliveries, read new files, map, reconcile and quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sources.config import SourceConfig
from sources.deliveries import plan_deliveries
from sources.headers import resolve_headers
from sources.model import (
    ATTRIBUTES_COLUMN,
    EXTRA_COLUMN,
    LINEAGE_COLUMNS,
    FileDelivery,
    IngestResult,
    quarantined_files_frame,
    quarantined_rows_frame,
)
from sources.raw_table import FileRejected, RawTable
from sources.readers import read_delivery
from sources.records import FileRecords, build_file_records, covered_fields, row_raw_content
from sources.row_checks import absent_not_drift, quarantine_structural

__all__ = ["ingest_source", "plan_deliveries"]


class _Collector:
    """Accumulates one source's kept rows, quarantined rows/files and warnings."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.frames: list[pd.DataFrame] = []
        self.q_rows: tuple[list[str], list[str], list[int], list[str], list[str]] = (
            [],
            [],
            [],
            [],
            [],
        )
        self.q_files: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
        self.warnings: list[str] = []

    def quarantine_rows(
        self, file: str, rows: list[int], raw: list[str], reasons: list[str]
    ) -> None:
        systems, files, numbers, raws, why = self.q_rows
        systems.extend([self.source.name] * len(rows))
        files.extend([file] * len(rows))
        numbers.extend(rows)
        raws.extend(raw)
        why.extend(reasons)

    def quarantine_file(self, plan: FileDelivery, reason: str) -> None:
        for column, value in zip(
            self.q_files, (self.source.name, plan.path, plan.sha256, reason), strict=True
        ):
            column.append(value)
        plan.note = f"quarantined: {reason}"
        self.warnings.append(f"{self.source.name}: file {plan.path} quarantined: {reason}")


def _empty_rows(source: SourceConfig) -> pd.DataFrame:
    fields = [f for f in source.output_fields() if f != "source_record_id"]
    if source.attribute_names():
        fields.append(ATTRIBUTES_COLUMN)
    columns = [*LINEAGE_COLUMNS, "source_record_id", *fields, EXTRA_COLUMN]
    frame = pd.DataFrame({c: pd.array([], dtype="string") for c in columns})
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame


def _ingest_file(
    plan: FileDelivery, table: RawTable, collector: _Collector, ingested_at: str
) -> None:
    source = collector.source
    bad = table.bad_rows
    collector.quarantine_rows(
        plan.path,
        [b.source_row for b in bad],
        [b.raw_content for b in bad],
        [b.reason for b in bad],
    )
    collector.warnings.extend(f"{source.name}: {w}" for w in table.warnings)
    mapping = resolve_headers(table.headers, source.header_aliases())
    covered = covered_fields(mapping, source)
    absent = [f for f in source.required_fields() if f not in covered]
    missing = absent_not_drift(absent, mapping, source, plan.path)
    if absent and not missing:
        collector.warnings.append(
            f"{source.name}: {plan.path}: no record has key(s) for {', '.join(absent)} "
            "(read as missing values)"
        )
    if missing:
        reason = (
            f"schema drift: required field(s) {', '.join(missing)} not found among headers "
            f"{table.headers}"
        )
        collector.quarantine_file(plan, reason)
        everything = pd.Series(True, index=table.data.index)
        collector.quarantine_rows(
            plan.path,
            table.data["__source_row__"].astype("int64").tolist(),
            row_raw_content(table, everything),
            [f"file quarantined: {reason}"] * len(table.data),
        )
        return
    if mapping.unmapped:
        collector.warnings.append(
            f"{source.name}: {plan.path}: unexpected column(s) {mapping.unmapped} kept in extra"
        )
    if table.rows_read == 0:
        collector.warnings.append(f"{source.name}: {plan.path}: no data rows")
    table = quarantine_structural(table, mapping, source, plan.path, collector.quarantine_rows)
    records: FileRecords = build_file_records(
        table, mapping, source, plan.path, plan.sha256, ingested_at
    )
    collector.quarantine_rows(
        plan.path, records.rejected_rows, records.rejected_raw, records.rejected_reasons
    )
    collector.warnings.extend(f"{source.name}: {w}" for w in records.warnings)
    collector.frames.append(records.rows)


def _note_versions_within_run(rows: pd.DataFrame, collector: _Collector) -> None:
    """Note records that several files of this run carry: each row is one version of it.

    All rows are kept; which one is current is decided by the version order (delivery date,
    ``updated_at``, arrival) in ``sources.versions``, never by dropping rows here.
    """
    repeated = rows.duplicated(subset=["record_key"], keep="first")
    if repeated.any():
        collector.warnings.append(
            f"{collector.source.name}: {int(repeated.sum())} row(s) are further versions of "
            "records another file of this run also delivers (kept; the newest is current)"
        )


NO_DELIVERY = "no file matches"


def no_delivery_warning(source: SourceConfig, landing_dir: Path) -> str:
    """The warning of a source whose glob matches no file (see ``ingest_source``)."""
    return (
        f"{NO_DELIVERY} {source.path!r} under {landing_dir}: nothing delivered, nothing "
        f"changes for {source.name}"
    )


def ingest_source(
    source: SourceConfig,
    landing_dir: Path,
    run_id: str,
    ingested_at: str,
    manifest: pd.DataFrame | None = None,
) -> IngestResult:
    """Ingest the new and changed files of one source, losing nothing.

    Files already delivered (same content under any name) are skipped with a note. Each
    new file is read as text, its headers mapped (aliases, tolerant matching); a file whose
    headers miss a required field is quarantined as a whole (its rows kept in quarantine);
    unreadable files are quarantined; bad rows are quarantined with raw content and
    reason. For every file, ``rows_read = kept + quarantined rows``.

    Args:
        source: The source mapping.
        landing_dir: Folder the source's glob is relative to.
        run_id: This run's id (recorded in manifest notes).
        ingested_at: This run's timestamp, ISO text, stamped on every row.
        manifest: Earlier runs' delivered-files table, or None on a first run.

    Returns:
        The ``IngestResult``; ``files`` lists every matching file with its status,
        ``superseded_files`` the paths whose older version this run replaces.
    """
    collector = _Collector(source)
    plans = plan_deliveries(source, landing_dir, manifest) if source.enabled else []
    if source.enabled and not plans:
        # no delivery for a source: nothing changes for it (its published records stay); said
        # aloud, since a wrong landing_dir or glob looks exactly like this
        collector.warnings.append(no_delivery_warning(source, landing_dir))
    superseded: list[str] = []
    for plan in plans:
        if not plan.to_ingest:
            collector.warnings.append(f"{source.name}: {plan.path}: {plan.note}")
            continue
        try:
            table = read_delivery(landing_dir / plan.path, source)
        except FileRejected as exc:
            collector.quarantine_file(plan, str(exc))
            continue
        plan.rows_read = table.rows_read
        _ingest_file(plan, table, collector, ingested_at)
        if plan.status == "changed":
            superseded.append(plan.path)
    frames = [f for f in collector.frames if not f.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else _empty_rows(source)
    _note_versions_within_run(rows, collector)
    quarantined_rows = quarantined_rows_frame(*collector.q_rows)
    return IngestResult(
        rows=rows,
        quarantined_rows=quarantined_rows,
        quarantined_files=quarantined_files_frame(*collector.q_files),
        files=plans,
        warnings=collector.warnings,
        superseded_files=superseded,
    )

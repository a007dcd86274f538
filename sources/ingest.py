"""Ingest one source: plan deliveries, read new files, map, reconcile and quarantine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from sources.batch_state import SeenKeys, key_hashes
from sources.config import SourceConfig
from sources.deliveries import Rejected, plan_deliveries
from sources.headers import HeaderMapping, resolve_headers
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
from sources.readers import read_delivery_batches
from sources.records import (
    FileRecords,
    FileSeen,
    build_file_records,
    covered_fields,
    repeated_id_warning,
    row_raw_content,
)
from sources.row_checks import absent_not_drift, quarantine_structural

__all__ = ["BatchSink", "ingest_source", "plan_deliveries"]


class BatchSink(Protocol):
    """Where the rows of a file read in batches go, batch by batch (the warehouse's staging).

    ``append`` takes kept rows and quarantined rows in file order (rows of earlier files not
    handed over yet come first); ``discard`` drops what was appended for a file that broke
    after some of its batches (the file is then quarantined as a whole).
    """

    def append(self, rows: pd.DataFrame, quarantined_rows: pd.DataFrame) -> None:
        """Take one batch."""

    def discard(self, source_file: str) -> None:
        """Forget every row appended for ``source_file``."""


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
        self.run_keys: SeenKeys | None = None
        """The record keys of this run's files, once a file is read in batches."""
        self.repeats = 0

    def add_rows(self, rows: pd.DataFrame) -> None:
        """Keep a file's (or a batch's) records; count keys an earlier row of the run had."""
        self.frames.append(rows)
        self._note_keys(rows)

    def _note_keys(self, rows: pd.DataFrame) -> None:
        if self.run_keys is None or rows.empty:
            return
        keys = rows["record_key"]
        hi, lo = key_hashes(keys)
        at = self.run_keys.find(hi, lo)
        again = (at >= 0) | keys.duplicated(keep="first").to_numpy()
        self.repeats += int(again.sum())
        self.run_keys.add(hi[~again], lo[~again], np.zeros(int((~again).sum()), np.int64))

    def track_run_keys(self) -> None:
        """From now on count repeated keys batch by batch (the rows kept so far included)."""
        if self.run_keys is None:
            self.run_keys = SeenKeys()
            for frame in self.frames:
                self._note_keys(frame)

    def hand_over(self, sink: BatchSink) -> None:
        """Give the rows kept and quarantined so far to ``sink`` and forget them."""
        frames = [f for f in self.frames if not f.empty]
        quarantined = quarantined_rows_frame(*self.q_rows)
        if frames or len(quarantined):
            rows = pd.concat(frames, ignore_index=True) if frames else _empty_rows(self.source)
            sink.append(rows, quarantined)
        self.frames = []
        for column in self.q_rows:
            column.clear()

    def forget_file(self, file: str) -> None:
        """Drop what is held of one file's rows (kept and quarantined)."""
        self.frames = [f.loc[f["source_file"] != file] for f in self.frames]
        ours = [i for i, name in enumerate(self.q_rows[1]) if name == file]
        for i in reversed(ours):  # a rare path (a file broken after some batches)
            for column in self.q_rows:
                del column[i]

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


def _map_file(
    plan: FileDelivery, table: RawTable, collector: _Collector
) -> tuple[HeaderMapping, str | None]:
    """Map a file's headers (from its first batch) and say whether it is schema drift."""
    source = collector.source
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
        return mapping, reason
    declared = source.header_aliases()
    not_found = [k for k in declared if k not in mapping.fields and k not in absent]
    if not_found:
        named = ", ".join(f"{k} ({' / '.join(declared[k])})" for k in not_found)
        collector.warnings.append(
            f"{source.name}: {plan.path}: declared column(s) not found, read as missing: "
            f"{named}; the file's headers are {table.headers}"
        )
    if mapping.unmapped:
        collector.warnings.append(
            f"{source.name}: {plan.path}: unexpected column(s) {mapping.unmapped} kept in extra"
        )
    return mapping, None


def _reader_findings(plan: FileDelivery, table: RawTable, collector: _Collector) -> None:
    """Quarantine the rows the reader rejected; keep its warnings."""
    bad = table.bad_rows
    collector.quarantine_rows(
        plan.path,
        [b.source_row for b in bad],
        [b.raw_content for b in bad],
        [b.reason for b in bad],
    )
    collector.warnings.extend(f"{collector.source.name}: {w}" for w in table.warnings)


def _ingest_batch(
    plan: FileDelivery,
    table: RawTable,
    collector: _Collector,
    ingested_at: str,
    mapping: HeaderMapping,
    drift: str | None,
    seen: FileSeen | None,
) -> int:
    """Quarantine and keep the rows of one file or batch; return rows repeating an id."""
    source = collector.source
    if drift is not None:
        everything = pd.Series(True, index=table.data.index)
        collector.quarantine_rows(
            plan.path,
            table.data["__source_row__"].astype("int64").tolist(),
            row_raw_content(table, everything),
            [f"file quarantined: {drift}"] * len(table.data),
        )
        return 0
    table = quarantine_structural(table, mapping, source, plan.path, collector.quarantine_rows)
    records: FileRecords = build_file_records(
        table, mapping, source, plan.path, plan.sha256, ingested_at, seen
    )
    collector.quarantine_rows(
        plan.path, records.rejected_rows, records.rejected_raw, records.rejected_reasons
    )
    collector.warnings.extend(f"{source.name}: {w}" for w in records.warnings)
    collector.add_rows(records.rows)
    return records.repeated


def _ingest_file(
    plan: FileDelivery, table: RawTable, collector: _Collector, ingested_at: str
) -> None:
    """Ingest a file read in one pass."""
    plan.rows_read = table.rows_read
    _reader_findings(plan, table, collector)
    mapping, drift = _map_file(plan, table, collector)
    if drift is None and table.rows_read == 0:
        collector.warnings.append(f"{collector.source.name}: {plan.path}: no data rows")
    _ingest_batch(plan, table, collector, ingested_at, mapping, drift, None)


def _ingest_batches(
    plan: FileDelivery,
    batches: Iterator[RawTable],
    collector: _Collector,
    ingested_at: str,
    sink: BatchSink | None,
    several_files: bool,
) -> None:
    """Ingest a file read in batches, handing each batch to ``sink`` (if any) once done.

    Repeats and ``~n`` suffixes count across the batches (``FileSeen``); record keys that
    another file of the run also has are counted when the run reads ``several_files`` (one
    file's keys are unique: its ids carry ``~n`` suffixes). A file that breaks after some
    batches is quarantined whole and its handed-over rows discarded.
    """
    if several_files:
        collector.track_run_keys()
    if sink is not None:
        collector.hand_over(sink)
    seen = FileSeen()
    rows_read = repeated = 0
    drift: str | None = None
    try:
        for number, table in enumerate(batches):
            _reader_findings(plan, table, collector)
            if number == 0:
                first_headers = table.headers
                mapping, drift = _map_file(plan, table, collector)
            elif table.headers != first_headers:
                # an unnamed column the first batch dropped as empty holds values here: they
                # are kept (in extra) with this batch's own mapping
                mapping = resolve_headers(table.headers, collector.source.header_aliases())
            rows_read += table.rows_read
            repeated += _ingest_batch(plan, table, collector, ingested_at, mapping, drift, seen)
            if sink is not None:
                collector.hand_over(sink)
    except FileRejected as exc:
        collector.forget_file(plan.path)
        if sink is not None:
            sink.discard(plan.path)
        collector.quarantine_file(plan, str(exc))
        return
    plan.rows_read = rows_read
    if repeated:
        collector.warnings.append(
            f"{collector.source.name}: {repeated_id_warning(plan.path, repeated)}"
        )


def _note_versions_within_run(rows: pd.DataFrame, collector: _Collector) -> None:
    """Note records that several files of this run carry: each row is one version of it.

    All rows are kept; which one is current is decided by the version order (delivery date,
    ``updated_at``, arrival) in ``sources.versions``, never by dropping rows here.
    """
    repeated = rows.duplicated(subset=["record_key"], keep="first")
    if repeated.any():
        collector.warnings.append(_versions_warning(collector.source, int(repeated.sum())))


def _versions_warning(source: SourceConfig, repeated: int) -> str:
    return (
        f"{source.name}: {repeated} row(s) are further versions of "
        "records another file of this run also delivers (kept; the newest is current)"
    )


def _chain(first: RawTable, second: RawTable, rest: Iterator[RawTable]) -> Iterator[RawTable]:
    yield first
    yield second
    yield from rest


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
    *,
    batch_rows: int | None = None,
    sink: BatchSink | None = None,
    rejected: Rejected | None = None,
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
        batch_rows: Files of more rows are read in batches of this many (CSV/TSV, XLSX/XLS,
            Parquet; see ``read_delivery_batches``); None reads every file whole. The
            rows are the same either way.
        sink: Takes the rows of files read in batches, batch by batch (and the rows of the
            files before them); None keeps them in the result.
        rejected: Files earlier runs quarantined whole, (path, sha256, run_id): read again
            when the source's mapping changed since (``plan_deliveries``).

    Returns:
        The ``IngestResult``; ``files`` lists every matching file with its status,
        ``superseded_files`` the paths whose older version this run replaces. With a
        ``sink``, its ``rows`` and ``quarantined_rows`` are those not handed to it.
    """
    collector = _Collector(source)
    plans = plan_deliveries(source, landing_dir, manifest, rejected) if source.enabled else []
    if source.enabled and not plans:
        # no delivery for a source: nothing changes for it (its published records stay); said
        # aloud, since a wrong landing_dir or glob looks exactly like this
        collector.warnings.append(no_delivery_warning(source, landing_dir))
    superseded: list[str] = []
    several = sum(plan.to_ingest for plan in plans) > 1
    for plan in plans:
        if not plan.to_ingest:
            collector.warnings.append(f"{source.name}: {plan.path}: {plan.note}")
            continue
        batches = read_delivery_batches(landing_dir / plan.path, source, batch_rows)
        try:
            first = next(batches)
            second = next(batches, None)
        except FileRejected as exc:
            collector.quarantine_file(plan, str(exc))
            continue
        if second is None:
            _ingest_file(plan, first, collector, ingested_at)
        else:
            _ingest_batches(
                plan, _chain(first, second, batches), collector, ingested_at, sink, several
            )
        if plan.status in ("changed", "retried"):
            superseded.append(plan.path)
    frames = [f for f in collector.frames if not f.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else _empty_rows(source)
    if collector.run_keys is None:
        _note_versions_within_run(rows, collector)
    elif collector.repeats:
        collector.warnings.append(_versions_warning(source, collector.repeats))
    quarantined_rows = quarantined_rows_frame(*collector.q_rows)
    return IngestResult(
        rows=rows,
        quarantined_rows=quarantined_rows,
        quarantined_files=quarantined_files_frame(*collector.q_files),
        files=plans,
        warnings=collector.warnings,
        superseded_files=superseded,
    )

"""The ingest stage: new deliveries of one source into ``raw.<source>`` and the quarantine."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import duckdb
import pandas as pd

from sources import CANONICAL_FIELDS, IngestResult, SourceConfig, SourcesConfig, ingest_source
from warehouse import ensure_schemas, read_table
from warehouse.ops import concat_frames
from warehouse.raw import RawStaging, persist_delivery, rejected_files
from warehouse.security import drop_suppressed, read_suppression
from warehouse.security.suppression import scrub_quarantined

from ..access import keyring
from .context import RunContext, StageResult, load_sources

log = logging.getLogger("customer_archive")

__all__ = ["IngestStats", "ingest_stage"]


@dataclass(kw_only=True)
class IngestStats(StageResult):
    """What ingesting one source did."""

    source: str
    files_new: int
    files_skipped: int
    rows_in: int
    rows_ingested: int
    rows_quarantined: int
    files_quarantined: int
    warnings: list[str] = field(default_factory=list)


def _drop_suppressed(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, result: IngestResult
) -> IngestResult:
    """Quarantine (reason ``erased``, no content) re-delivered rows of erased people.

    Rows the reader already quarantined (bad structure, empty key, …) are checked too, and
    lose their ``raw_content`` when they belong to an erased person: nothing of theirs is
    stored, whichever check caught the row first.
    """
    suppression = read_suppression(con)
    if suppression is None or suppression.empty:
        return result
    if result.rows.empty and result.quarantined_rows.empty:
        return result
    ring = keyring(ctx.config)
    if ring is None:
        raise RuntimeError("the suppression list exists but no key is configured to check it")
    secrets = [ring.derive("suppression", kid) for kid in ring.ids()]
    quarantined, scrubbed = scrub_quarantined(result.quarantined_rows, suppression, secrets)
    if scrubbed:
        log.info(
            "ingest     %d quarantined rows of erased customers kept without content", scrubbed
        )
    if result.rows.empty:
        return replace(result, quarantined_rows=quarantined)
    kept, erased = drop_suppressed(result.rows, suppression, secrets)
    if erased.empty:
        return replace(result, quarantined_rows=quarantined)
    log.info("ingest     %d re-delivered rows of erased customers quarantined", len(erased))
    return replace(result, rows=kept, quarantined_rows=concat_frames(quarantined, erased))


@dataclass
class _SuppressedStaging:
    """``RawStaging`` behind the erasure check: each batch is checked before it is staged."""

    con: duckdb.DuckDBPyConnection
    ctx: RunContext
    staging: RawStaging

    def append(self, rows: pd.DataFrame, quarantined_rows: pd.DataFrame) -> None:
        batch = IngestResult(rows, quarantined_rows, quarantined_rows.iloc[:0])
        batch = _drop_suppressed(self.con, self.ctx, batch)
        self.staging.append(batch.rows, batch.quarantined_rows)

    def discard(self, source_file: str) -> None:
        self.staging.discard(source_file)


def ingest_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext, source: str) -> IngestStats:
    """Ingest the new deliveries of one source into ``raw.<source>`` and the quarantine tables.

    A file the reader cannot handle at all is quarantined as a whole by ``ingest_source``; an
    unexpected error is recorded in ``quarantine.files`` with its message and the run goes on.
    """
    ensure_schemas(con)
    sources_cfg = load_sources(ctx.config)
    src = next((s for s in sources_cfg.sources if s.name == source), None)
    if src is None:
        raise KeyError(f"source {source!r} is not declared in {ctx.config.sources_file}")
    staging = RawStaging(ctx.run_id)
    try:
        return _ingest_and_persist(con, ctx, source, src, sources_cfg, staging)
    finally:
        staging.close()


def _ingest_and_persist(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    source: str,
    src: SourceConfig,
    sources_cfg: SourcesConfig,
    staging: RawStaging,
) -> IngestStats:
    manifest = read_table(con, "ops.deliveries")
    result = ingest_source(
        src,
        sources_cfg.landing_dir,
        ctx.run_id,
        ctx.ingested_at,
        manifest=manifest,
        batch_rows=sources_cfg.ingest_batch_rows,
        sink=_SuppressedStaging(con, ctx, staging),
        rejected=rejected_files(con, source),
    )
    result = _drop_suppressed(con, ctx, result)
    persist_delivery(
        con,
        source,
        CANONICAL_FIELDS,
        result.rows,
        result.superseded_files,
        {
            "quarantine.rows": result.quarantined_rows,
            "quarantine.files": result.quarantined_files,
            "ops.deliveries": result.manifest_rows(ctx.run_id),
        },
        ctx.run_id,
        staged=staging,
    )
    fresh = [f for f in result.files if f.to_ingest]
    stats = IngestStats(
        source=source,
        files_new=len(fresh),
        files_skipped=sum(f.status in ("duplicate", "unchanged") for f in result.files),
        rows_in=int(sum((f.rows_read or 0) for f in fresh)),
        rows_ingested=len(result.rows) + staging.rows,
        rows_quarantined=len(result.quarantined_rows) + staging.quarantined,
        files_quarantined=len(result.quarantined_files),
        warnings=list(result.warnings),
    )
    log.info(
        "ingest %-10s files new=%d skipped=%d rows in=%d kept=%d quarantined=%d",
        source,
        stats.files_new,
        stats.files_skipped,
        stats.rows_in,
        stats.rows_ingested,
        stats.rows_quarantined,
    )
    for w in result.warnings:  # the source is named once, not again by the warning's prefix
        log.warning("ingest %s: %s", source, w.removeprefix(f"{source}: "))
    return stats

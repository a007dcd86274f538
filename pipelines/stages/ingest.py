"""The ingest stage: new deliveries of one source into ``raw.<source>`` and the quarantine."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import pyarrow as pa

from sources import CANONICAL_FIELDS, IngestResult, SourceConfig, SourcesConfig, ingest_source
from warehouse import ensure_schemas, read_table
from warehouse.raw import RawStaging, persist_delivery, rejected_files
from warehouse.security import read_suppression
from warehouse.security.keys import KeyMaterialError

from ..access import keyring
from ..ingest_ahead import (
    ReadInputs,
    ReadOutcome,
    screen_suppressed,
    source_manifest,
    step_read_ahead,
)
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


def _secrets(ctx: RunContext) -> tuple[bytes, ...]:
    """The keys the suppression list's hashes were made with (every key of the ring)."""
    ring = keyring(ctx.config)
    if ring is None:
        raise RuntimeError("the suppression list exists but no key is configured to check it")
    return tuple(ring.derive("suppression", kid) for kid in ring.ids())


def _log_screened(scrubbed: int, erased: int) -> None:
    if scrubbed:
        log.info(
            "ingest     %d quarantined rows of erased customers kept without content", scrubbed
        )
    if erased:
        log.info("ingest     %d re-delivered rows of erased customers quarantined", erased)


def _drop_suppressed(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, result: IngestResult
) -> IngestResult:
    """Quarantine (reason ``erased``, no content) re-delivered rows of erased people.

    Rows the reader already quarantined (bad structure, empty key, …) are checked too, and
    lose their ``raw_content`` when they belong to an erased person: nothing of theirs is
    stored, whichever check caught the row first (``pipelines.ingest_ahead.screen_suppressed``).
    """
    suppression = read_suppression(con)
    if suppression is None or suppression.empty:
        return result
    if result.rows.empty and result.quarantined_rows.empty:
        return result
    result, scrubbed, erased = screen_suppressed(result, suppression, _secrets(ctx))
    _log_screened(scrubbed, erased)
    return result


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


def _read_inputs(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    sources_cfg: SourcesConfig,
    manifest: pd.DataFrame,
    names: list[str],
) -> dict[str, ReadInputs] | None:
    """What each named source's read depends on (None: it cannot be read ahead).

    Raises nothing the stage's own read would not: a suppression list without a key leaves
    every source to its stage, which raises then as before.
    """
    suppression = read_suppression(con)
    secrets: tuple[bytes, ...] = ()
    if suppression is not None and not suppression.empty:
        try:
            secrets = _secrets(ctx)
        except (RuntimeError, KeyMaterialError):  # raised by the stage's own read, if at all
            return None
    by_name = {s.name: s for s in sources_cfg.sources}
    return {
        name: ReadInputs(
            source=by_name[name],
            landing_dir=sources_cfg.landing_dir,
            batch_rows=sources_cfg.ingest_batch_rows,
            manifest=source_manifest(manifest, name),
            rejected=frozenset(rejected_files(con, name)),
            suppression=suppression,
            secrets=secrets,
        )
        for name in names
    }


def _read_ahead(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    sources_cfg: SourcesConfig,
    source: str,
    manifest: pd.DataFrame,
) -> ReadOutcome | None:
    """This source as the run's helper read it (`pipelines.ingest_ahead`), or None.

    Only an in-process run with ``scale.workers`` ≥ 2 and ``scale.ingest_read_ahead`` reads
    ahead: under the multiprocess executor each step is its own process, and with one worker
    nothing may run beside the stage.
    """
    scale = ctx.config.scale
    if not scale.ingest_read_ahead or scale.executor != "in_process":
        return None
    if scale.resolved_workers() < 2:
        return None
    order = sorted(s.name for s in sources_cfg.sources if s.enabled)  # the steps' order
    ahead = step_read_ahead(
        ctx.run_id,
        ctx.ingested_at,
        source,
        order,
        lambda: (
            None if source not in order else _read_inputs(con, ctx, sources_cfg, manifest, order)
        ),
    )
    if ahead is None:
        return None
    inputs = _read_inputs(con, ctx, sources_cfg, manifest, [source])
    if inputs is None:
        return None
    outcome = ahead.take(source, inputs[source])
    if outcome is not None:
        _log_screened(outcome.scrubbed, outcome.erased)
        log.info("ingest     %s read ahead (%.1f CPU s in the helper)", source, outcome.cpu_seconds)
    return outcome


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
    manifest = read_table(con, "ops.deliveries")
    ahead = _read_ahead(con, ctx, sources_cfg, source, manifest)
    staging = RawStaging(ctx.run_id) if ahead is None else ahead.staging
    try:
        if ahead is None:
            result = _read(con, ctx, src, sources_cfg, manifest, staging)
            return _persist(con, ctx, source, result, result.rows, staging)
        # the stage's own clock, as its own read would stamp
        staging.ingested_at = ctx.ingested_at
        rows = ahead.rows_stamped(ctx.ingested_at)
        return _persist(con, ctx, source, ahead.result, rows, staging)
    finally:
        staging.close()


def _read(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    src: SourceConfig,
    sources_cfg: SourcesConfig,
    manifest: pd.DataFrame,
    staging: RawStaging,
) -> IngestResult:
    """Read the new deliveries of one source in this process."""
    result = ingest_source(
        src,
        sources_cfg.landing_dir,
        ctx.run_id,
        ctx.ingested_at,
        manifest=manifest,
        batch_rows=sources_cfg.ingest_batch_rows,
        sink=_SuppressedStaging(con, ctx, staging),
        rejected=rejected_files(con, src.name),
    )
    return _drop_suppressed(con, ctx, result)


def _persist(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    source: str,
    result: IngestResult,
    rows: pd.DataFrame | pa.Table,
    staging: RawStaging,
) -> IngestStats:
    """Publish one source's read in one transaction and report its figures (``rows``: the
    kept rows not staged, ``result.rows`` or the helper's)."""
    persist_delivery(
        con,
        source,
        CANONICAL_FIELDS,
        rows,
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
        rows_ingested=len(rows) + staging.rows,
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

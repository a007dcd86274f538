"""Dagster assets: one per stage, each a thin wrapper over `pipelines.stages`."""

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb

from .access import end_stage_cache
from .faults import crash_point
from .jobs import WAREHOUSE_TAGS
from .reporting import run_log, write_run_report
from .resources import ArchiveResource
from .sharding import build_sharded_match_asset, stage_metadata
from .stages import (
    RunContext,
    SnapshotStats,
    StageResult,
    clean_stage,
    golden_stage,
    ingest_stage,
    match_stage,
    record_stage,
    snapshot_stage,
    stage_timing,
    swap_stage,
)

StageFn = Callable[[duckdb.DuckDBPyConnection, RunContext], StageResult]

RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def _run_stage(
    context: dg.AssetExecutionContext,
    archive: ArchiveResource,
    stage: str,
    fn: StageFn,
    cold: bool = False,
) -> StageResult:
    ctx = archive.run_context(context.run.run_id)
    started = time.perf_counter()
    crash_point(f"{stage}:before")
    with (
        run_log(ctx.config, ctx.run_id, stage),
        archive.connection(ctx.config, context.run.tags, cold) as con,
    ):
        stats = fn(con, ctx)
        stats.seconds, stats.peak_rss_mb = stage_timing(started)
        record_stage(con, ctx, stage, stats)
        if getattr(stats, "mode", None) == "full":  # the rest of the run is full-size
            end_stage_cache(ctx.config)
    crash_point(f"{stage}:after")
    return stats


def raw_source_asset(source: str, department: str) -> dg.AssetsDefinition:
    """The raw asset of one declared source (new deliveries only, quarantine beside it)."""
    return _stage_asset(
        ["raw", source], [], "raw",
        f"New deliveries of the {source} source ({department}), read as text with lineage; "
        "bad rows and files to quarantine.*",
        f"ingest:{source}", lambda con, ctx: ingest_stage(con, ctx, source),
        retry_policy=RETRY, kinds={"duckdb"},
    )  # fmt: skip


def build_raw_assets(sources: Sequence[tuple[str, str]]) -> list[dg.AssetsDefinition]:
    """One raw asset per (source name, department)."""
    return [raw_source_asset(name, dept) for name, dept in sources]


def _stage_asset(
    key: list[str],
    deps: Sequence[dg.AssetKey],
    group: str,
    description: str,
    stage: str,
    fn: StageFn,
    cold: bool = False,
    **asset_kwargs,
) -> dg.AssetsDefinition:
    """One pipeline stage as an asset: run ``fn`` under the stage wrapper, report its figures.

    ``cold``: the stage starts with the run's DuckDB buffer pool emptied
    (`pipelines.access.step_warehouse`).
    """

    @dg.asset(
        key=key,
        deps=list(deps),
        group_name=group,
        description=description,
        op_tags=WAREHOUSE_TAGS,
        **asset_kwargs,
    )
    def _stage(context: dg.AssetExecutionContext, archive: ArchiveResource) -> dg.MaterializeResult:
        stats = _run_stage(context, archive, stage, fn, cold)
        return dg.MaterializeResult(metadata=stage_metadata(stats))

    return _stage


def _snapshot_and_report(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> SnapshotStats:
    """Publish the snapshot, then re-render the run's report with the snapshot path in it."""
    stats = snapshot_stage(con, ctx)
    stats.report = str(
        write_run_report(
            con,
            ctx.config,
            ctx.run_id,
            data_docs=False,  # built by the golden checks; linked, not rebuilt
            snapshot_path=stats.snapshot or "unchanged: golden content as before, no new snapshot",
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
    return stats


def build_stage_assets(
    raw_keys: Sequence[dg.AssetKey],
    golden_freshness: dg.FreshnessPolicy | None = None,
    match_shards: int = 1,
) -> list[dg.AssetsDefinition]:
    """The clean → match → staged golden → published golden → snapshot chain.

    Args:
        raw_keys: the raw assets the clean stage reads.
        golden_freshness: freshness policy of ``golden/customers``.
        match_shards: above 1, ``match/clusters`` is the sharded graph (`pipelines.sharding`);
            1 keeps the single-step match stage.
    """
    clean = _stage_asset(
        ["clean", "records"], raw_keys, "clean",
        "Standardized customer records (clean.records) with transactions, interactions and "
        "the follow-up list.",
        "clean", clean_stage, kinds={"duckdb"},
    )  # fmt: skip
    match = (
        build_sharded_match_asset(clean.key)
        if match_shards > 1
        else _stage_asset(
            ["match", "clusters"], [clean.key], "match",
            "Candidate pairs, Fellegi–Sunter scores, clusters and the review queue.",
            # its frames set a nightly's peak, and a warm pool saves it nothing (BENCHMARKS.md,
            # issue #15, `nightfloor2`): it starts with the pool emptied
            "match", match_stage, cold=True, kinds={"duckdb"},
        )
    )  # fmt: skip
    staged = _stage_asset(
        ["staging", "golden"], [match.key], "golden",
        "The new golden state with stable customer IDs, not yet published.",
        "golden", golden_stage, kinds={"duckdb"},
    )  # fmt: skip
    golden = _stage_asset(
        ["golden", "customers"], [staged.key], "golden",
        "Published golden.customers + golden.crosswalk and related tables; swapped in only "
        "when the critical expectations passed.",
        "publish", swap_stage, kinds={"duckdb"}, freshness_policy=golden_freshness,
    )  # fmt: skip
    snapshot = _stage_asset(
        ["archive", "snapshot"], [golden.key], "archive",
        "Immutable Parquet snapshot of the golden layer with a checksummed manifest.",
        "snapshot", _snapshot_and_report, kinds={"parquet"},
    )  # fmt: skip
    return [clean, match, staged, golden, snapshot]

"""Dagster assets: one per stage, each a thin wrapper over `pipelines.steps`."""

import resource
import time
from collections.abc import Callable, Sequence

import dagster as dg

from . import steps
from .faults import crash_point
from .reporting import run_log, write_run_report
from .resources import ArchiveResource
from .sharding import WAREHOUSE_TAGS, build_sharded_match_asset, stage_metadata

RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def _run_stage(context: dg.AssetExecutionContext, archive: ArchiveResource, stage: str, fn) -> dict:
    ctx = archive.run_context(context.run.run_id)
    started = time.perf_counter()
    crash_point(f"{stage}:before")
    with run_log(ctx.config, ctx.run_id, stage), archive.connection(ctx.config) as con:
        stats = fn(con, ctx)
        stats["seconds"] = round(time.perf_counter() - started, 3)
        stats["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        steps.record_stage(con, ctx, stage, stats)
    crash_point(f"{stage}:after")
    return stats


def raw_source_asset(source: str, department: str) -> dg.AssetsDefinition:
    """The raw asset of one declared source (new deliveries only, quarantine beside it)."""
    return _stage_asset(
        ["raw", source], [], "raw",
        f"New deliveries of the {source} source ({department}), read as text with lineage; "
        "bad rows and files to quarantine.*",
        f"ingest:{source}", lambda con, ctx: steps.ingest_stage(con, ctx, source),
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
    fn: Callable[..., dict],
    **asset_kwargs,
) -> dg.AssetsDefinition:
    """One pipeline stage as an asset: run ``fn`` under the stage wrapper, report its figures."""

    @dg.asset(
        key=key,
        deps=list(deps),
        group_name=group,
        description=description,
        op_tags=WAREHOUSE_TAGS,
        **asset_kwargs,
    )
    def _stage(context: dg.AssetExecutionContext, archive: ArchiveResource) -> dg.MaterializeResult:
        stats = _run_stage(context, archive, stage, fn)
        return dg.MaterializeResult(metadata=stage_metadata(stats))

    return _stage


def _snapshot_and_report(con, ctx: steps.RunContext) -> dict:
    """Publish the snapshot, then re-render the run's report with the snapshot path in it."""
    stats = steps.snapshot_stage(con, ctx)
    stats["report"] = str(write_run_report(con, ctx.config, ctx.run_id, data_docs=False))
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
        "clean", steps.clean_stage, kinds={"duckdb"},
    )  # fmt: skip
    match = (
        build_sharded_match_asset(clean.key)
        if match_shards > 1
        else _stage_asset(
            ["match", "clusters"], [clean.key], "match",
            "Candidate pairs, Fellegi–Sunter scores, clusters and the review queue.",
            "match", steps.match_stage, kinds={"duckdb"},
        )
    )  # fmt: skip
    staged = _stage_asset(
        ["staging", "golden"], [match.key], "golden",
        "The new golden state with stable customer IDs, not yet published.",
        "golden", steps.golden_stage, kinds={"duckdb"},
    )  # fmt: skip
    golden = _stage_asset(
        ["golden", "customers"], [staged.key], "golden",
        "Published golden.customers + golden.crosswalk and related tables; swapped in only "
        "when the critical expectations passed.",
        "publish", steps.swap_stage, kinds={"duckdb"}, freshness_policy=golden_freshness,
    )  # fmt: skip
    snapshot = _stage_asset(
        ["archive", "snapshot"], [golden.key], "archive",
        "Immutable Parquet snapshot of the golden layer with a checksummed manifest.",
        "snapshot", _snapshot_and_report, kinds={"parquet"},
    )  # fmt: skip
    return [clean, match, staged, golden, snapshot]

"""Dagster assets: one per stage, each a thin wrapper over `pipelines.steps`."""

import resource
import time
from collections.abc import Sequence

import dagster as dg

from . import steps
from .faults import crash_point
from .reporting import run_log, write_run_report
from .resources import ArchiveResource

RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


def _metadata(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if isinstance(v, int | float | str) and v is not None}


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

    @dg.asset(
        name=source,
        key_prefix=["raw"],
        group_name="raw",
        description=f"New deliveries of the {source} source ({department}), read as text with "
        "lineage; bad rows and files to quarantine.*",
        retry_policy=RETRY,
        kinds={"duckdb"},
    )
    def _raw(context: dg.AssetExecutionContext, archive: ArchiveResource) -> dg.MaterializeResult:
        stats = _run_stage(
            context,
            archive,
            f"ingest:{source}",
            lambda con, ctx: steps.ingest_stage(con, ctx, source),
        )
        return dg.MaterializeResult(metadata=_metadata(stats))

    return _raw


def build_raw_assets(sources: Sequence[tuple[str, str]]) -> list[dg.AssetsDefinition]:
    """One raw asset per (source name, department)."""
    return [raw_source_asset(name, dept) for name, dept in sources]


def build_stage_assets(
    raw_keys: Sequence[dg.AssetKey], golden_freshness: dg.FreshnessPolicy | None = None
) -> list[dg.AssetsDefinition]:
    """The clean → match → staged golden → published golden → snapshot chain."""

    @dg.asset(
        key=["clean", "records"],
        deps=list(raw_keys),
        group_name="clean",
        description="Standardized customer records (clean.records) with transactions, "
        "interactions and the follow-up list.",
        kinds={"duckdb"},
    )
    def clean_records(context: dg.AssetExecutionContext, archive: ArchiveResource):
        return dg.MaterializeResult(
            metadata=_metadata(_run_stage(context, archive, "clean", steps.clean_stage))
        )

    @dg.asset(
        key=["match", "clusters"],
        deps=[clean_records],
        group_name="match",
        description="Candidate pairs, Fellegi–Sunter scores, clusters and the review queue.",
        kinds={"duckdb"},
    )
    def match_clusters(context: dg.AssetExecutionContext, archive: ArchiveResource):
        return dg.MaterializeResult(
            metadata=_metadata(_run_stage(context, archive, "match", steps.match_stage))
        )

    @dg.asset(
        key=["staging", "golden"],
        deps=[match_clusters],
        group_name="golden",
        description="The new golden state with stable customer IDs, not yet published.",
        kinds={"duckdb"},
    )
    def staged_golden(context: dg.AssetExecutionContext, archive: ArchiveResource):
        return dg.MaterializeResult(
            metadata=_metadata(_run_stage(context, archive, "golden", steps.golden_stage))
        )

    @dg.asset(
        key=["golden", "customers"],
        deps=[staged_golden],
        group_name="golden",
        description="Published golden.customers + golden.crosswalk and related tables; "
        "swapped in only when the critical expectations passed.",
        kinds={"duckdb"},
        freshness_policy=golden_freshness,
    )
    def golden_customers(context: dg.AssetExecutionContext, archive: ArchiveResource):
        return dg.MaterializeResult(
            metadata=_metadata(_run_stage(context, archive, "publish", steps.swap_stage))
        )

    @dg.asset(
        key=["archive", "snapshot"],
        deps=[golden_customers],
        group_name="archive",
        description="Immutable Parquet snapshot of the golden layer with a checksummed manifest.",
        kinds={"parquet"},
    )
    def archive_snapshot(context: dg.AssetExecutionContext, archive: ArchiveResource):
        stats = _run_stage(context, archive, "snapshot", steps.snapshot_stage)
        ctx = archive.run_context(context.run.run_id)
        with archive.connection(ctx.config) as con:
            report = write_run_report(con, ctx.config, ctx.run_id, data_docs=False)
        stats["report"] = str(report)
        return dg.MaterializeResult(metadata=_metadata(stats))

    return [clean_records, match_clusters, staged_golden, golden_customers, archive_snapshot]

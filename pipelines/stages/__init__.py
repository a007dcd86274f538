"""The pipeline's stages as plain functions over the warehouse; the Dagster assets call these.

Each stage reads its inputs from the DuckDB warehouse, calls the stage packages, and writes its
outputs in one transaction, so a crash between stages leaves a consistent warehouse and the next
run converges to the same result. The transformations themselves live in the stage packages.
"""

from .clean import CleanStats, clean_stage
from .context import (
    PublishBlocked,
    RunContext,
    StageResult,
    check_matching_fields,
    ensure_dir,
    load_sources,
    stage_timing,
)
from .golden import GoldenStats, golden_stage
from .ingest import IngestStats, ingest_stage
from .match import (
    MatchInputs,
    MatchStats,
    latest_params,
    link,
    link_planned,
    match_inputs,
    match_stage,
    reusable_params,
    write_match,
)
from .publish import PublishStats, SnapshotStats, snapshot_stage, swap_stage
from .quality import check_outcomes, clean_quality_stage, quality_stage, raw_quality_stage
from .record import RunStats, record_stage, run_stats

__all__ = [
    "CleanStats",
    "GoldenStats",
    "IngestStats",
    "MatchInputs",
    "MatchStats",
    "PublishBlocked",
    "PublishStats",
    "RunContext",
    "RunStats",
    "SnapshotStats",
    "StageResult",
    "check_matching_fields",
    "check_outcomes",
    "clean_quality_stage",
    "clean_stage",
    "ensure_dir",
    "golden_stage",
    "ingest_stage",
    "latest_params",
    "link",
    "link_planned",
    "load_sources",
    "match_inputs",
    "match_stage",
    "quality_stage",
    "raw_quality_stage",
    "record_stage",
    "reusable_params",
    "run_stats",
    "snapshot_stage",
    "stage_timing",
    "swap_stage",
    "write_match",
]

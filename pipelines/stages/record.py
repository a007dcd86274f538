"""Each stage's figures in ``ops.stage_stats``: what the run summary and the report read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from warehouse.ops import read_stage_stats, write_stage_stats

from .context import RunContext, StageResult

__all__ = ["record_stage", "run_stats"]


def record_stage(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    stage: str,
    stats: StageResult | Mapping[str, Any],
) -> None:
    """Store one stage's figures in ``ops.stage_stats`` (the run summary and report read them)."""
    figures = stats.as_dict() if isinstance(stats, StageResult) else dict(stats)
    write_stage_stats(con, ctx.run_id, stage, figures)


def run_stats(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict]:
    """Every stage's figures recorded for a run, keyed by stage name."""
    return read_stage_stats(con, run_id)

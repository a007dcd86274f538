"""Each stage's figures in ``ops.stage_stats``: what the run summary and the report read back.

The figures are stored as JSON (``StageResult.as_dict``) and read back typed (``RunStats``,
``StageResult.from_json``), so a run started from the Dagster UI is summarised exactly like one
started from the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from warehouse.ops import read_stage_stats, write_stage_stats

from .clean import CleanStats
from .context import RunContext, StageResult
from .golden import GoldenStats
from .ingest import IngestStats
from .match import MatchStats
from .publish import PublishStats, SnapshotStats

__all__ = ["RunStats", "record_stage", "run_stats"]

_STAGE_TYPES: dict[str, type[StageResult]] = {
    "clean": CleanStats,
    "match": MatchStats,
    "golden": GoldenStats,
    "publish": PublishStats,
    "snapshot": SnapshotStats,
}


@dataclass
class RunStats:
    """Every stage's figures of one run, typed; a stage that did not run is None (or absent).

    Attributes:
        ingest: ``IngestStats`` per source (stage ``ingest:<source>``).
        clean, match, golden, publish, snapshot: the other stages' figures.
    """

    ingest: dict[str, IngestStats] = field(default_factory=dict)
    clean: CleanStats | None = None
    match: MatchStats | None = None
    golden: GoldenStats | None = None
    publish: PublishStats | None = None
    snapshot: SnapshotStats | None = None

    @classmethod
    def from_json(cls, stages: Mapping[str, Mapping[str, Any]]) -> RunStats:
        """Read the stored figures (``{stage: as_dict()}``) back into their dataclasses.

        Stages this version does not know are ignored.
        """
        out = cls()
        for stage, figures in stages.items():
            if stage.startswith("ingest:"):
                out.ingest[stage.split(":", 1)[1]] = IngestStats.from_json(figures)
            elif stage in _STAGE_TYPES:
                setattr(out, stage, _STAGE_TYPES[stage].from_json(figures))
        return out

    def by_stage(self) -> dict[str, StageResult]:
        """The figures keyed by stage name as recorded (``ingest:<source>``, ``clean``, …)."""
        out: dict[str, StageResult] = {f"ingest:{s}": v for s, v in sorted(self.ingest.items())}
        for stage in _STAGE_TYPES:
            value = getattr(self, stage)
            if value is not None:
                out[stage] = value
        return out


def record_stage(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    stage: str,
    stats: StageResult | Mapping[str, Any],
) -> None:
    """Store one stage's figures in ``ops.stage_stats`` (the run summary and report read them)."""
    figures = stats.as_dict() if isinstance(stats, StageResult) else dict(stats)
    write_stage_stats(con, ctx.run_id, stage, figures)


def run_stats(con: duckdb.DuckDBPyConnection, run_id: str) -> RunStats:
    """Every stage's figures recorded for a run, typed."""
    return RunStats.from_json(read_stage_stats(con, run_id))

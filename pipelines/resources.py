"""Dagster resources: the project configuration and the DuckDB warehouse it names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from warehouse import ensure_schemas

from .access import run_lock, step_warehouse
from .settings import ArchiveConfig, default_config_path, load_config
from .stages import RunContext

LOCK_HELD_TAG = "customer_archive/run_lock_held"
"""Run tag set by the launcher that already holds the run lock for the whole run."""


def run_day(cfg: ArchiveConfig, run_date: str | None = None) -> date:
    """A run's date: `run_date` (``YYYY-MM-DD``, a replayed night) or today in the schedule's
    timezone."""
    if run_date:
        return date.fromisoformat(run_date)
    return datetime.now(ZoneInfo(cfg.schedule.timezone)).date()


class ArchiveResource(dg.ConfigurableResource):
    """The customer archive: its configuration file and its DuckDB warehouse.

    Attributes:
        config_path: the project YAML (default ``$CUSTOMER_ARCHIVE_CONFIG`` or ``archive.yml``).
        warehouse: overrides the configured DuckDB file.
        run_date: overrides today's date (``YYYY-MM-DD``), e.g. to replay a night.
    """

    config_path: str | None = None
    warehouse: str | None = None
    run_date: str | None = None

    def load(self) -> ArchiveConfig:
        """The validated project configuration."""
        return load_config(self.config_path or default_config_path(), warehouse=self.warehouse)

    def run_context(self, run_id: str) -> RunContext:
        """What the stages of one Dagster run share."""
        cfg = self.load()
        return RunContext(config=cfg, run_id=run_id, run_date=run_day(cfg, self.run_date))

    @contextmanager
    def connection(
        self, cfg: ArchiveConfig, run_tags: Mapping[str, str] | None = None, cold: bool = False
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the warehouse with its schemas in place, under the run lock.

        A run started by `pipelines.runner.run_pipeline` holds the lock for the whole run and
        says so in its tags (``LOCK_HELD_TAG``); any other run (Dagster UI, schedule, sensor)
        takes the lock for the step, so it and the CLI writers exclude each other. In an
        in-process run that holds the warehouse open (`pipelines.access.run_warehouse`), the
        step's connection is to that database, its buffer pool warm from the steps before
        (``cold``: emptied first; `pipelines.access.step_warehouse`).
        """
        path = cfg.resolve(cfg.warehouse)
        path.parent.mkdir(parents=True, exist_ok=True)
        held = (run_tags or {}).get(LOCK_HELD_TAG) == "true"
        with nullcontext() if held else run_lock(cfg), step_warehouse(cfg, True, True, cold) as con:
            ensure_schemas(con)
            yield con

"""Dagster resources: the project configuration and the DuckDB warehouse it names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from warehouse import ensure_schemas

from .access import open_warehouse
from .settings import ArchiveConfig, default_config_path, load_config
from .stages import RunContext


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
        if self.run_date:
            day = date.fromisoformat(self.run_date)
        else:
            day = datetime.now(ZoneInfo(cfg.schedule.timezone)).date()
        return RunContext(config=cfg, run_id=run_id, run_date=day)

    @contextmanager
    def connection(self, cfg: ArchiveConfig) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the warehouse with its schemas in place."""
        path = cfg.resolve(cfg.warehouse)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = open_warehouse(cfg, create_key=True)
        try:
            ensure_schemas(con)
            yield con
        finally:
            con.close()

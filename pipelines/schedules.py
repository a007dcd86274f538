"""The nightly schedule of the archive job."""

from __future__ import annotations

import dagster as dg

from .settings import ArchiveConfig

__all__ = ["build_schedule"]


def build_schedule(config: ArchiveConfig, job) -> dg.ScheduleDefinition:
    """The nightly run (time and timezone from the config; default 02:00 Asia/Shanghai)."""
    return dg.ScheduleDefinition(
        name="nightly_archive",
        job=job,
        cron_schedule=config.schedule.cron,
        execution_timezone=config.schedule.timezone,
        description="Nightly customer-archive run.",
    )

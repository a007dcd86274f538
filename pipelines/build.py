"""Build the Dagster Definitions of one project configuration: assets, checks, job, sensors."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from .assets import build_raw_assets, build_stage_assets
from .checks import build_clean_checks, build_golden_checks, build_raw_checks
from .jobs import JOB_NAME, build_job
from .package_job import archive_package_job
from .resources import ArchiveResource
from .schedules import build_package_schedules, build_schedule
from .sensors import build_failure_alert_sensor, build_landing_sensor
from .settings import default_config_path, load_config
from .stages import check_matching_fields, load_sources

__all__ = ["archive_job", "build_definitions"]


def build_definitions(
    config_path: str | None = None, warehouse: str | None = None, run_date: str | None = None
) -> dg.Definitions:
    """Build the Definitions for one project configuration.

    Args:
        config_path: the project YAML; default ``$CUSTOMER_ARCHIVE_CONFIG`` or ``archive.yml``.
        warehouse: overrides the DuckDB file of the configuration.
        run_date: replay a given date (``YYYY-MM-DD``) instead of today.
    """
    path = str(config_path or default_config_path())
    config = load_config(path, warehouse=warehouse)
    sources = load_sources(config)
    enabled = [s for s in sources.sources if s.enabled]
    check_matching_fields(config, sources, path)
    raw = build_raw_assets([(s.name, s.department) for s in enabled])
    freshness = dg.FreshnessPolicy.cron(
        deadline_cron=config.schedule.freshness_deadline_cron,
        lower_bound_delta=timedelta(hours=config.schedule.freshness_hours),
        timezone=config.schedule.timezone,
    )
    stage = build_stage_assets(
        [a.key for a in raw],
        golden_freshness=freshness,
        match_shards=config.scale.match_shards,
    )
    job = build_job(config.scale)
    return dg.Definitions(
        assets=[*raw, *stage],
        asset_checks=[
            *build_raw_checks([s.name for s in enabled], config.quality),
            build_clean_checks(config.quality),
            build_golden_checks(config.quality),
        ],
        jobs=[job, archive_package_job],
        schedules=[
            build_schedule(config, job),
            *build_package_schedules(config, archive_package_job),
        ],
        sensors=[
            build_landing_sensor(config, job),
            build_failure_alert_sensor(config),
        ],
        resources={
            "archive": ArchiveResource(config_path=path, warehouse=warehouse, run_date=run_date)
        },
    )


def archive_job(
    config_path: str | None = None, warehouse: str | None = None, run_date: str | None = None
) -> dg.JobDefinition:
    """The archive job of one configuration, rebuilt by name in each step process.

    `dg.build_reconstructable_job("pipelines.build", "archive_job", ...)` points the
    multiprocess executor here (`pipelines.runner.run_pipeline`).

    Args:
        config_path: the project YAML.
        warehouse: overrides the DuckDB file of the configuration.
        run_date: replay a given date (``YYYY-MM-DD``).
    """
    return build_definitions(config_path, warehouse, run_date).resolve_job_def(JOB_NAME)

"""The nightly schedule and the landing-folder sensor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from .settings import ArchiveConfig, ScaleSettings
from .sharding import build_executor
from .steps import load_sources

JOB_NAME = "customer_archive_job"


def landing_fingerprint(config: ArchiveConfig) -> tuple[str, int]:
    """Fingerprint (path, size, mtime) every landed file the sources declare; also count them."""
    sources = load_sources(config)
    entries: list[str] = []
    for src in sources.sources:
        for path in sorted(Path(sources.landing_dir).glob(src.path)):
            if path.is_file():
                st = path.stat()
                entries.append(f"{path}|{st.st_size}|{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()
    return digest, len(entries)


def build_job(scale: ScaleSettings | None = None) -> dg.UnresolvedAssetJobDefinition:
    """The job that materializes the whole archive graph (run retries for transient failures).

    Args:
        scale: picks the executor (`pipelines.sharding.build_executor`); None = in-process.
    """
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all(),
        tags={"dagster/max_retries": "2", "customer_archive/warehouse": "write"},
        description="Ingest new deliveries, clean, match, build and check the golden layer, "
        "publish.",
        executor_def=build_executor(scale or ScaleSettings()),
    )


def build_schedule(config: ArchiveConfig, job) -> dg.ScheduleDefinition:
    """The nightly run (time and timezone from the config; default 02:00 Asia/Shanghai)."""
    return dg.ScheduleDefinition(
        name="nightly_archive",
        job=job,
        cron_schedule=config.schedule.cron,
        execution_timezone=config.schedule.timezone,
        description="Nightly customer-archive run.",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if config.schedule.enabled
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )


def build_landing_sensor(config: ArchiveConfig, job) -> dg.SensorDefinition:
    """Start a run when files land (or change) in the landing folder."""

    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=config.schedule.sensor_interval_seconds,
        description="Starts a run when new or changed files appear under the landing folder.",
        default_status=(
            dg.DefaultSensorStatus.RUNNING
            if config.schedule.sensor_enabled
            else dg.DefaultSensorStatus.STOPPED
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext):
        digest, count = landing_fingerprint(config)
        if context.cursor == digest:
            return dg.SkipReason(f"no new deliveries ({count} files landed)")
        context.update_cursor(digest)
        if count == 0:
            return dg.SkipReason("landing folder is empty")
        return dg.RunRequest(run_key=digest, tags={"customer_archive/trigger": "landing"})

    return _sensor


def build_failure_alert_sensor(config: ArchiveConfig) -> dg.RunFailureSensorDefinition:
    """Write an alert (log, alerts.jsonl, optional webhook) whenever an archive run fails."""
    from .reporting import raise_alert

    @dg.run_failure_sensor(name="archive_run_failure_alert", monitor_all_code_locations=False)
    def _alert(context: dg.RunFailureSensorContext) -> None:
        message = context.failure_event.message or "run failed"
        raise_alert(config, context.dagster_run.run_id, "run_failed", message)

    return _alert

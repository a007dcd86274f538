"""The landing-folder sensor and the run-failure alert sensor."""

from __future__ import annotations

import dagster as dg

from sources import landing_fingerprint

from .reporting import raise_alert
from .settings import ArchiveConfig
from .stages import load_sources

__all__ = ["build_failure_alert_sensor", "build_landing_sensor"]


def build_landing_sensor(config: ArchiveConfig, job) -> dg.SensorDefinition:
    """Start a run when files land (or change) in the landing folder."""

    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=config.schedule.sensor_interval_seconds,
        description="Starts a run when new or changed files appear under the landing folder.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        digest, count = landing_fingerprint(load_sources(config))
        if context.cursor == digest:
            return dg.SkipReason(f"no new deliveries ({count} files landed)")
        context.update_cursor(digest)
        if count == 0:
            return dg.SkipReason("landing folder is empty")
        return dg.RunRequest(run_key=digest, tags={"customer_archive/trigger": "landing"})

    return _sensor


def build_failure_alert_sensor(config: ArchiveConfig) -> dg.RunFailureSensorDefinition:
    """Write an alert (log, alerts.jsonl, optional webhook) whenever an archive run fails."""

    @dg.run_failure_sensor(name="archive_run_failure_alert", monitor_all_code_locations=False)
    def _alert(context: dg.RunFailureSensorContext) -> None:
        message = context.failure_event.message or "run failed"
        raise_alert(config, context.dagster_run.run_id, "run_failed", message)

    return _alert

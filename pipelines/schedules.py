"""The nightly schedule of the archive job, and the monthly / yearly archive package schedules."""

from __future__ import annotations

import dagster as dg

from .settings import ArchiveConfig

__all__ = ["build_package_schedules", "build_schedule"]


def build_schedule(config: ArchiveConfig, job) -> dg.ScheduleDefinition:
    """The nightly run (time and timezone from the config; default 02:00 Asia/Shanghai)."""
    return dg.ScheduleDefinition(
        name="nightly_archive",
        job=job,
        cron_schedule=config.schedule.cron,
        execution_timezone=config.schedule.timezone,
        description="Nightly customer-archive run.",
        # on by default wherever dagster-daemon runs (schedule.enabled; the UI still overrides)
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if config.schedule.enabled
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )


def build_package_schedules(
    config: ArchiveConfig, job: dg.JobDefinition
) -> list[dg.ScheduleDefinition]:
    """The monthly and yearly package schedules.

    Both check every day at ``filing.check_cron`` (Asia/Shanghai by default) whether a package
    is due by the Chinese working-day calendar (``filing.calendar``): monthly on the month's last
    working day, yearly in the first working week; otherwise they skip with the reason.
    ``filing.monthly_enabled`` / ``yearly_enabled`` set whether they start running.
    """
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .filing import calendar, due_packages

    def make(kind: str, enabled: bool) -> dg.ScheduleDefinition:
        def evaluate(context: dg.ScheduleEvaluationContext):
            when = context.scheduled_execution_time or datetime.now(
                ZoneInfo(config.schedule.timezone)
            )
            day = when.astimezone(ZoneInfo(config.schedule.timezone)).date()
            due = [d for d in due_packages(day, calendar(config), set()) if d.kind == kind]
            if not due:
                return dg.SkipReason(f"{day}: no {kind} archive package due")
            return dg.RunRequest(
                run_key=f"{kind}-{due[0].period}",
                run_config={"ops": {"write_due_packages": {"config": {"day": day.isoformat()}}}},
                tags={"customer_archive/package": f"{kind}-{due[0].period}"},
            )

        return dg.ScheduleDefinition(
            name=f"{kind}_archive_package",
            job=job,
            cron_schedule=config.filing.check_cron,
            execution_timezone=config.schedule.timezone,
            execution_fn=evaluate,
            description=f"{kind.capitalize()} archive package on its due working day (seed 004).",
            default_status=(
                dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
            ),
        )

    return [
        make("monthly", config.filing.monthly_enabled),
        make("yearly", config.filing.yearly_enabled),
    ]

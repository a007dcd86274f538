"""The archive package job: one op that writes the packages due on a day (seed 004 归档周期).

No ``from __future__ import annotations`` here: Dagster resolves the op's ``config`` type from
its annotation at definition time.
"""

import dagster as dg

__all__ = ["FILING_JOB", "archive_package_job"]

FILING_JOB = "archive_package_job"


class PackageDay(dg.Config):
    """The day whose due packages to write (``YYYY-MM-DD``; the schedule sets it)."""

    day: str


@dg.op(required_resource_keys={"archive"})
def write_due_packages(context: dg.OpExecutionContext, config: PackageDay) -> list[str]:
    """Write every archive package due on the configured day (seed 004 归档周期)."""
    from datetime import date

    from .filing import run_due_packages

    cfg = context.resources.archive.load()
    results = run_due_packages(cfg, date.fromisoformat(config.day))
    for r in results:
        context.log.info(f"{r.package_id}: {r.dossiers} dossiers → {r.folder}")
    return [r.package_id for r in results]


@dg.job(name=FILING_JOB, description="Monthly / yearly archive packages due on a day (归档).")
def archive_package_job() -> None:
    """The one-op job the package schedules launch."""
    write_due_packages()

"""Retention of snapshots: daily window, month-end (月度) and year-end (年度) roll-ups."""

from __future__ import annotations

import calendar
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from warehouse.archive._layout import DELETING_PREFIX, fsync_dir
from warehouse.archive.snapshots import SnapshotInfo, _sort_key, list_snapshots

LOG = logging.getLogger(__name__)

BusinessDayRule = Callable[[date], bool]
FIRST_WORK_WEEK_DAYS = 5


def is_weekday(day: date) -> bool:
    """Default business-day rule: Monday–Friday (pass a rule aware of 法定节假日/调休)."""
    return day.weekday() < 5


class RetentionPolicy(BaseModel):
    """How long snapshots are kept (config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_daily_days: int = Field(default=30, ge=0)
    keep_month_end: bool = True
    keep_year_end: bool = True
    keep_restore_backup_days: int = Field(default=365, ge=0)


@dataclass(frozen=True)
class RetentionPlan:
    """Snapshots to keep and to delete, with the reasons for each (by snapshot id)."""

    keep: list[SnapshotInfo]
    delete: list[SnapshotInfo]
    reasons: dict[str, list[str]] = field(default_factory=dict)


def last_business_day(year: int, month: int, business_days: BusinessDayRule = is_weekday) -> date:
    """Last business day of a month (月度归档 is due on or before it).

    Args:
        year: the year.
        month: the month (1-12).
        business_days: the business-day rule.

    Returns:
        The date.
    """
    day = date(year, month, calendar.monthrange(year, month)[1])
    while not business_days(day):
        day -= timedelta(days=1)
        if day.month != month:
            raise ValueError(f"{year}-{month:02d} has no business day under the given calendar")
    return day


def first_work_week_end(year: int, business_days: BusinessDayRule = is_weekday) -> date:
    """End of a year's first work week = its fifth business day (年度备份 is due by then).

    Args:
        year: the year whose first work week is meant (the backup of ``year - 1``).
        business_days: the business-day rule.

    Returns:
        The date of the fifth business day of ``year``.
    """
    day, seen = date(year, 1, 1), 0
    while True:
        if business_days(day):
            seen += 1
            if seen == FIRST_WORK_WEEK_DAYS:
                return day
        day += timedelta(days=1)


def due_kind(
    run_date: date,
    existing: Sequence[SnapshotInfo],
    business_days: BusinessDayRule = is_weekday,
) -> str:
    """Kind of snapshot a run on ``run_date`` should publish.

    ``year_end`` during the first work week of a year until the previous year has one,
    ``month_end`` on a month's last business day, else ``daily``.

    Args:
        run_date: the run's date.
        existing: published snapshots.
        business_days: the business-day rule.

    Returns:
        ``"year_end"``, ``"month_end"`` or ``"daily"``.
    """
    if run_date <= first_work_week_end(run_date.year, business_days):
        start = date(run_date.year, 1, 1)
        if not any(s.kind == "year_end" and s.created_at.date() >= start for s in existing):
            return "year_end"
    if run_date == last_business_day(run_date.year, run_date.month, business_days):
        return "month_end"
    return "daily"


def _month_end_picks(
    snapshots: Sequence[SnapshotInfo], today: date, business_days: BusinessDayRule
) -> dict[str, str]:
    """For each closed month: its month_end snapshot, else the last one on/before the due day."""
    by_month: dict[tuple[int, int], list[SnapshotInfo]] = {}
    for info in snapshots:
        by_month.setdefault((info.created_at.year, info.created_at.month), []).append(info)
    picks: dict[str, str] = {}
    for (year, month), infos in by_month.items():
        due = last_business_day(year, month, business_days)
        if today <= due:
            continue  # month still open: the daily window and the latest-snapshot rule cover it
        marked = [s for s in infos if s.kind == "month_end"]
        on_time = [s for s in infos if s.created_at.date() <= due]
        chosen = (marked or on_time or infos)[-1]
        picks[chosen.snapshot_id] = f"month-end {year}-{month:02d} (due {due.isoformat()})"
    return picks


def _year_end_picks(
    snapshots: Sequence[SnapshotInfo], today: date, business_days: BusinessDayRule
) -> dict[str, str]:
    """For each closed year Y: the year_end snapshot of Y+1's first work week, else Y's last."""
    years = {s.created_at.year for s in snapshots}
    picks: dict[str, str] = {}
    for year in sorted(years):
        window_end = first_work_week_end(year + 1, business_days)
        if today <= date(year, 12, 31):
            continue
        consolidated = [
            s
            for s in snapshots
            if s.kind == "year_end" and date(year + 1, 1, 1) <= s.created_at.date() <= window_end
        ]
        in_year = [s for s in snapshots if s.created_at.year == year]
        if consolidated:
            picks[consolidated[-1].snapshot_id] = f"year-end {year} (consolidated backup)"
        elif in_year and today > window_end:
            picks[in_year[-1].snapshot_id] = f"year-end {year} (last snapshot of the year)"
        elif in_year:
            picks[in_year[-1].snapshot_id] = f"year-end {year} (until the consolidated backup)"
    return picks


def plan_retention(
    snapshots: Sequence[SnapshotInfo],
    policy: RetentionPolicy,
    today: date,
    business_days: BusinessDayRule = is_weekday,
) -> RetentionPlan:
    """Decide which snapshots to keep.

    Kept: the latest snapshot (always); snapshots younger than ``keep_daily_days``; per closed
    month its month-end snapshot (a ``month_end`` one, else the last on/before the month's last
    business day, 每月最后1个工作日); per closed year its consolidated ``year_end`` snapshot from
    the next year's first work week (次年首个工作周, first five business days), else the year's
    last snapshot; ``restore_backup`` snapshots for ``keep_restore_backup_days``; and the base
    (full snapshot) of every kept delta snapshot, so a kept delta always stays restorable.

    Args:
        snapshots: published snapshots.
        policy: the retention policy.
        today: the date retention runs on.
        business_days: the business-day rule (Mon–Fri by default).

    Returns:
        A :class:`RetentionPlan`.
    """
    ordered = sorted(snapshots, key=_sort_key)
    reasons: dict[str, list[str]] = {s.snapshot_id: [] for s in ordered}
    if ordered:
        reasons[ordered[-1].snapshot_id].append("latest snapshot")
    for info in ordered:
        age = (today - info.created_at.date()).days
        if age < policy.keep_daily_days:
            reasons[info.snapshot_id].append(
                f"daily window ({age} < {policy.keep_daily_days} days)"
            )
        if info.kind == "restore_backup" and age < policy.keep_restore_backup_days:
            reasons[info.snapshot_id].append("pre-restore backup")
    if policy.keep_month_end:
        for snapshot_id, reason in _month_end_picks(ordered, today, business_days).items():
            reasons[snapshot_id].append(reason)
    if policy.keep_year_end:
        for snapshot_id, reason in _year_end_picks(ordered, today, business_days).items():
            reasons[snapshot_id].append(reason)
    by_id = {s.snapshot_id: s for s in ordered}
    for info in ordered:  # a kept delta needs its base (a full snapshot, so one step)
        if reasons[info.snapshot_id] and info.base_id is not None:
            base = by_id.get(info.base_id)
            if base is not None:
                reasons[base.snapshot_id].append(f"base of kept delta {info.snapshot_id}")
    keep = [s for s in ordered if reasons[s.snapshot_id]]
    delete = [s for s in ordered if not reasons[s.snapshot_id]]
    for info in delete:
        reasons[info.snapshot_id].append("delete: outside the daily window, not a roll-up")
    return RetentionPlan(keep=keep, delete=delete, reasons=reasons)


def apply_retention(
    archive_dir: Path,
    policy: RetentionPolicy,
    today: date,
    business_days: BusinessDayRule = is_weekday,
) -> RetentionPlan:
    """Plan retention and delete what the plan drops.

    Each deleted snapshot is first renamed to a hidden ``.deleting-…`` folder (atomic, so a crash
    never leaves a half-deleted snapshot listed), then removed.

    Args:
        archive_dir: the archive root.
        policy: the retention policy.
        today: the date retention runs on.
        business_days: the business-day rule.

    Returns:
        The executed :class:`RetentionPlan`.
    """
    plan = plan_retention(list_snapshots(archive_dir), policy, today, business_days)
    for info in plan.delete:
        doomed = info.path.with_name(f"{DELETING_PREFIX}{info.snapshot_id}")
        os.rename(info.path, doomed)
        fsync_dir(info.path.parent)
        shutil.rmtree(doomed)
        LOG.info("retention deleted snapshot %s", info.snapshot_id)
    return plan

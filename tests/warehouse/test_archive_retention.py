"""Tests for retention: daily window, month-end and year-end roll-ups on hand-built calendars."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from warehouse.archive import (
    RetentionPolicy,
    SnapshotInfo,
    apply_retention,
    due_kind,
    first_work_week_end,
    is_weekday,
    last_business_day,
    list_snapshots,
    plan_retention,
    publish_snapshot,
    verify_snapshot,
)

HOLIDAYS = {date(2027, 1, 1), date(2026, 10, 1), date(2026, 10, 2)}
MAKEUP_WORKDAYS = {date(2026, 2, 28)}  # a Saturday worked in exchange (调休)


def china_like(day: date) -> bool:
    """Weekdays minus holidays plus make-up Saturdays."""
    return (is_weekday(day) and day not in HOLIDAYS) or day in MAKEUP_WORKDAYS


def _info(day: date, kind: str = "daily", hour: int = 2) -> SnapshotInfo:
    moment = datetime(day.year, day.month, day.day, hour)
    snapshot_id = f"{moment:%Y-%m-%dT%H-%M-%S}_r{day:%Y%m%d}{hour:02d}"
    return SnapshotInfo(snapshot_id, Path(snapshot_id), f"r{day:%Y%m%d}", moment, "h", {}, kind)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.mark.parametrize(
    ("year", "month", "rule", "expected"),
    [
        (2026, 11, is_weekday, date(2026, 11, 30)),  # Monday the 30th
        (2026, 10, is_weekday, date(2026, 10, 30)),  # 31st is a Saturday
        (2026, 5, is_weekday, date(2026, 5, 29)),  # 31st is a Sunday
        (2026, 2, is_weekday, date(2026, 2, 27)),
        (2026, 2, china_like, date(2026, 2, 28)),  # make-up Saturday is a business day
    ],
)
def test_last_business_day(year: int, month: int, rule, expected: date) -> None:
    assert last_business_day(year, month, rule) == expected


@pytest.mark.parametrize(
    ("year", "rule", "expected"),
    [
        (2027, is_weekday, date(2027, 1, 7)),  # Fri 1st, Mon 4th … Thu 7th
        (2027, china_like, date(2027, 1, 8)),  # New Year's Day off
        (2026, is_weekday, date(2026, 1, 7)),  # Thu 1st, Fri 2nd, 5th, 6th, 7th
    ],
)
def test_first_work_week_end(year: int, rule, expected: date) -> None:
    assert first_work_week_end(year, rule) == expected


def test_daily_window_and_month_ends() -> None:
    snapshots = [_info(d) for d in _days(date(2026, 10, 1), date(2026, 12, 10))]
    plan = plan_retention(snapshots, RetentionPolicy(keep_daily_days=7), date(2026, 12, 10))
    kept = sorted(s.created_at.date() for s in plan.keep)
    assert kept == [
        date(2026, 10, 30),
        date(2026, 11, 30),
        *_days(date(2026, 12, 4), date(2026, 12, 10)),
    ]
    assert len(plan.keep) + len(plan.delete) == len(snapshots)
    oct_end = next(s for s in plan.keep if s.created_at.date() == date(2026, 10, 30))
    assert any("month-end 2026-10" in r for r in plan.reasons[oct_end.snapshot_id])
    assert all(plan.reasons[s.snapshot_id][0].startswith("delete") for s in plan.delete)


def test_month_end_prefers_marked_and_the_latest_on_the_due_day() -> None:
    snapshots = [
        _info(date(2026, 11, 30), hour=2),
        _info(date(2026, 11, 30), hour=20),  # later the same business day: the month's close
        _info(date(2026, 12, 1)),
    ]
    plan = plan_retention(snapshots, RetentionPolicy(keep_daily_days=0), date(2027, 3, 1))
    assert [s.snapshot_id for s in plan.keep] == [
        snapshots[1].snapshot_id,
        snapshots[2].snapshot_id,
    ]
    marked = [
        _info(date(2026, 11, 25), "month_end"),
        _info(date(2026, 11, 27)),
        _info(date(2026, 12, 2)),
    ]
    plan = plan_retention(marked, RetentionPolicy(keep_daily_days=0), date(2027, 3, 1))
    assert marked[0] in plan.keep and marked[1] in plan.delete


def test_year_end_is_the_consolidated_backup_of_the_first_work_week() -> None:
    snapshots = [_info(d) for d in _days(date(2025, 12, 20), date(2026, 1, 12))]
    consolidated = _info(date(2026, 1, 6), "year_end", hour=3)
    snapshots.append(consolidated)
    policy = RetentionPolicy(keep_daily_days=0)
    plan = plan_retention(snapshots, policy, date(2026, 3, 15))
    kept = {s.snapshot_id: plan.reasons[s.snapshot_id] for s in plan.keep}
    assert "year-end 2025 (consolidated backup)" in kept[consolidated.snapshot_id]
    assert sorted(s.created_at.date() for s in plan.keep) == [
        date(2025, 12, 31),  # December month-end
        date(2026, 1, 6),  # the year-end backup
        date(2026, 1, 12),  # January month-end (last before the due day) and latest
    ]
    no_year_end = plan_retention(
        snapshots[:-1], RetentionPolicy(keep_daily_days=0, keep_month_end=False), date(2026, 3, 15)
    )
    assert sorted(s.created_at.date() for s in no_year_end.keep) == [
        date(2025, 12, 31),  # year's last snapshot stands in for the missing backup
        date(2026, 1, 12),  # latest
    ]


def test_latest_snapshot_is_always_kept() -> None:
    only = [_info(date(2020, 3, 3))]
    policy = RetentionPolicy(keep_daily_days=0, keep_month_end=False, keep_year_end=False)
    assert plan_retention(only, policy, date(2026, 1, 1)).keep == only


@pytest.mark.parametrize(
    ("run_date", "existing", "expected"),
    [
        (date(2026, 11, 30), [], "month_end"),
        (date(2026, 11, 27), [], "daily"),
        (date(2027, 1, 4), [], "year_end"),
        (date(2027, 1, 5), [date(2027, 1, 4)], "daily"),  # year-end already taken
        (date(2027, 1, 11), [], "daily"),  # first work week is over
    ],
)
def test_due_kind(run_date: date, existing: list[date], expected: str) -> None:
    infos = [_info(d, "year_end") for d in existing]
    assert due_kind(run_date, infos) == expected


def test_policy_is_validated() -> None:
    with pytest.raises(ValidationError):
        RetentionPolicy(keep_daily_days=-1)
    with pytest.raises(ValidationError):
        RetentionPolicy(keep_weekly=True)


def test_apply_retention_deletes_whole_snapshots_only(tmp_path: Path) -> None:
    for i, day in enumerate(_days(date(2026, 10, 28), date(2026, 11, 3))):
        frame = pd.DataFrame({"customer_id": [f"C{i}"]})
        publish_snapshot(
            {"golden.customers": frame},
            tmp_path,
            f"r{i}",
            datetime.combine(day, datetime.min.time()),
        )
    plan = apply_retention(tmp_path, RetentionPolicy(keep_daily_days=2), date(2026, 11, 3))
    left = list_snapshots(tmp_path)
    assert [s.created_at.date() for s in left] == [
        date(2026, 10, 30),
        date(2026, 11, 2),
        date(2026, 11, 3),
    ]
    assert len(plan.delete) == 4
    assert all(verify_snapshot(s.path).ok for s in left)
    assert not [p for p in tmp_path.rglob(".*") if ".delta-cache" not in p.parts]  # no leftovers

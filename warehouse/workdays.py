"""Chinese working days (工作日): 法定节假日 and 调休 make-up days, plus the office's own overrides.

The State Council's holiday schedule comes from the ``chinesecalendar`` package (updated
every year once the schedule is published); ``overrides`` (``archive.yml``
``filing.calendar.overrides``) win over it, e.g. a company closing day or a year the package
does not cover yet. The rule plugs into ``warehouse.archive.last_business_day`` and
``first_work_week_end``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Literal

LOG = logging.getLogger(__name__)
DayKind = Literal["workday", "holiday"]
UnknownYears = Literal["weekdays", "error"]


class CalendarUnavailableError(ValueError):
    """The holiday calendar has no data for the year and ``unknown_years`` is ``error``."""


class WorkdayCalendar:
    """``calendar(day) -> bool``: is ``day`` a working day in mainland China?

    Args:
        overrides: date → ``workday`` / ``holiday``; wins over the holiday package.
        unknown_years: for a year the package does not cover: ``weekdays`` (Monday–Friday
            plus the overrides, logged and listed in :attr:`approximated_years`) or ``error``.

    Examples:
        >>> cal = WorkdayCalendar()
        >>> cal(date(2026, 2, 14)), cal(date(2026, 10, 1))  # 调休 Saturday, 国庆节
        (True, False)
    """

    def __init__(
        self,
        overrides: Mapping[date, DayKind] | None = None,
        unknown_years: UnknownYears = "weekdays",
    ) -> None:
        self.overrides = dict(overrides or {})
        bad = {d: k for d, k in self.overrides.items() if k not in ("workday", "holiday")}
        if bad:
            raise ValueError(f"calendar overrides must be 'workday' or 'holiday': {bad}")
        self.unknown_years = unknown_years
        self.approximated_years: set[int] = set()

    def __call__(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        kind = self.overrides.get(day)
        if kind is not None:
            return kind == "workday"
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            if self.unknown_years == "error":
                raise CalendarUnavailableError(
                    f"no holiday data for {day.year} in chinesecalendar: upgrade it or list the "
                    f"year's holidays and make-up days in filing.calendar.overrides ({exc})"
                ) from exc
            if day.year not in self.approximated_years:
                LOG.warning(
                    "no holiday data for %d: Monday–Friday plus filing.calendar.overrides",
                    day.year,
                )
                self.approximated_years.add(day.year)
            return day.weekday() < 5

    def note(self) -> dict[str, object]:
        """What the calendar was based on (for a package manifest)."""
        return {
            "source": "chinesecalendar",
            "overrides": len(self.overrides),
            "approximated_years": sorted(self.approximated_years),
        }

"""Dates in many forms, Excel serials and timestamps to ISO YYYY-MM-DD, order per source."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Literal

from cleaning.text import normalize_text

DateOrder = Literal["ymd", "dmy", "mdy", "auto"]
_CHINA_TZ = timezone(timedelta(hours=8))  # timestamps are read in China Standard Time (no DST)
_EXCEL_EPOCH = date(1899, 12, 30)
_MIN_YEAR, _MAX_YEAR = 1900, 2100
_TIME = (
    r"(?:[T\s]+\d{1,2}[:：]\d{2}(?:[:：]\d{2}(?:\.\d+)?)?\s*(?:[AaPp][Mm])?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?" + _TIME + "$")
_YMD_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})" + _TIME + "$")
_AB_Y = re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4}|\d{2})" + _TIME + "$")
_YM = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$")
_SERIAL = re.compile(r"^\d{5}(?:\.\d+)?$")
_EPOCH = re.compile(r"^\d{10}(?:\d{3})?$")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_EN_DMY = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[\s-]+([a-z]{3,9})\.?[\s,-]+(\d{4})$", re.I)
_EN_MDY = re.compile(r"^([a-z]{3,9})\.?[\s-]+(\d{1,2})(?:st|nd|rd|th)?,?[\s-]+(\d{4})$", re.I)
_CN_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
_CN_DATE = re.compile(
    r"^([〇零一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})[日号]$"
)


def _cn_number(text: str) -> int:
    """Value of a Chinese numeral from 1 to 31 (三, 十五, 二十一)."""
    if "十" not in text:
        return int(text.translate(_CN_DIGITS))
    tens, _, units = text.partition("十")
    return (int(tens.translate(_CN_DIGITS)) if tens else 1) * 10 + (
        int(units.translate(_CN_DIGITS)) if units else 0
    )


def _iso(y: int, m: int, d: int) -> tuple[str | None, str | None]:
    """ISO text for a y/m/d triple, or an issue code when impossible."""
    if not _MIN_YEAR <= y <= _MAX_YEAR:
        return None, "date_out_of_range"
    try:
        return date(y, m, d).isoformat(), None
    except ValueError:
        return None, "date_impossible"


def _two_digit_year(y: int) -> int:
    """Expand a two-digit year with a pivot: 00-69 → 2000s, 70-99 → 1900s."""
    return 2000 + y if y < 70 else 1900 + y


@lru_cache(maxsize=500_000)
def parse_date(text: str | None, order: DateOrder = "auto") -> tuple[str | None, str | None]:
    """Parse one date to ISO ``YYYY-MM-DD``.

    Forms: 2024-03-15, 2024/3/15, 2024.3.15, 2024年3月15日, 二〇二四年三月十五日, 20240315,
    15/03/2024 and 03/15/2024 (order from ``order``; with ``auto`` only when one part is > 12),
    15 Mar 2024, March 15, 2024, Excel serials (45366), Unix timestamps in s or ms (read in
    China Standard Time), any of them with a time part.

    Args:
        text: Raw date text.
        order: Day/month order for ``a/b/yyyy`` forms: ``dmy``, ``mdy``, ``ymd`` or ``auto``.

    Returns:
        ``(iso, issue)``: ``iso`` is None when the value is absent or unusable, and ``issue``
        is then ``date_unparsed``, ``date_ambiguous``, ``date_impossible`` or
        ``date_out_of_range`` (None for an absent value).

    Example:
        >>> parse_date("2024年3月15日")
        ('2024-03-15', None)
    """
    s = normalize_text(text)
    if s is None:
        return None, None
    if m := _YMD.match(s) or _YMD_COMPACT.match(s):
        return _iso(int(m[1]), int(m[2]), int(m[3]))
    if m := _AB_Y.match(s):
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        if len(m[3]) == 2:
            if order == "auto":
                return None, "date_ambiguous"
            y = _two_digit_year(y)
        if order == "dmy" or (order in ("auto", "ymd") and a > 12 >= b):
            return _iso(y, b, a)
        if order == "mdy" or (order in ("auto", "ymd") and b > 12 >= a):
            return _iso(y, a, b)
        if a == b:  # 03/03/2024 reads the same either way
            return _iso(y, a, b)
        return None, "date_impossible" if a > 12 and b > 12 else "date_ambiguous"
    if m := _CN_DATE.match(s):
        return _iso(int(m[1].translate(_CN_DIGITS)), _cn_number(m[2]), _cn_number(m[3]))
    if m := _EN_DMY.match(s):
        month = _MONTHS.get(m[2][:3].lower())
        return _iso(int(m[3]), month, int(m[1])) if month else (None, "date_unparsed")
    if m := _EN_MDY.match(s):
        month = _MONTHS.get(m[1][:3].lower())
        return _iso(int(m[3]), month, int(m[2])) if month else (None, "date_unparsed")
    if _SERIAL.match(s):
        serial = float(s)
        if 1 <= serial < 73051:  # up to 2099-12-31
            return (_EXCEL_EPOCH + timedelta(days=int(serial))).isoformat(), None
        return None, "date_out_of_range"
    if _EPOCH.match(s):
        seconds = int(s) / (1000 if len(s) == 13 else 1)
        return _iso_from_datetime(datetime.fromtimestamp(seconds, UTC).astimezone(_CHINA_TZ))
    if _YM.match(s):
        return None, "date_incomplete"
    return None, "date_unparsed"


def _iso_from_datetime(dt: datetime) -> tuple[str | None, str | None]:
    """ISO date of a datetime, range-checked."""
    return _iso(dt.year, dt.month, dt.day)


def infer_date_order(values: Iterable[str | None]) -> DateOrder:
    """Infer the day/month order of a source from its unambiguous ``a/b/yyyy`` dates.

    Args:
        values: All date texts of one source (several columns may be chained).

    Returns:
        ``dmy`` when some first part exceeds 12 and no second part does, ``mdy`` for the
        reverse, otherwise ``auto`` (no evidence, or contradictory evidence).
    """
    dmy = mdy = 0
    for value in set(values):
        s = normalize_text(value)
        if s is None:
            continue
        m = _AB_Y.match(s)
        if not m:
            continue
        a, b = int(m[1]), int(m[2])
        dmy += a > 12 >= b
        mdy += b > 12 >= a
    if dmy and not mdy:
        return "dmy"
    if mdy and not dmy:
        return "mdy"
    return "auto"

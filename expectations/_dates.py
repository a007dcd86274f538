"""Dates in the future (a last_seen in 2028): per-record flags, then one GX check per layer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import duckdb
import pandas as pd

from expectations._common import Results, skipped
from expectations._gx_import import import_gx
from expectations._gx_runner import CheckPart, GxCheck, finish, run_check_parts
from expectations._sql_checks import is_text
from expectations.settings import QualitySettings


def future_date_flags(
    frame: pd.DataFrame, key: str, columns: Sequence[str], latest: date
) -> pd.DataFrame:
    """``key, is_future``: 1 where any of ``columns`` holds a date after ``latest``.

    Text dates are read as ISO ``YYYY-MM-DD``; values that are not dates are left to the
    format checks (they are not flagged here).
    """
    future = pd.Series(False, index=frame.index)
    limit = pd.Timestamp(latest)
    for column in columns:
        if _iso_days_not_after(frame[column], latest):
            continue  # pandas would read each value as a day not after ``latest``: none flagged
        values = pd.to_datetime(frame[column], errors="coerce", format="mixed")
        future |= (values > limit).fillna(False).astype(bool)
    return pd.DataFrame({key: frame[key].to_numpy(), "is_future": future.astype(int).to_numpy()})


def _iso_days_not_after(values: pd.Series, latest: date) -> bool:
    """Every non-null value is text ``YYYY-MM-DD`` naming a real day not after ``latest``.

    Decided in DuckDB (no per-value Python): then ``pd.to_datetime`` reads each value as that
    day (or NaT beyond its range), none after ``latest``, and the column flags nothing. Any
    other value (a later day, another form, not text) leaves the column to pandas whole, so
    its verdicts, errors included, are what they were.
    """
    if not is_text(values):
        return False
    con = duckdb.connect()
    try:
        con.register("_days", pd.DataFrame({"v": values.reset_index(drop=True)}, copy=False))
        (others,) = con.execute(
            "SELECT count(*) FROM _days WHERE v IS NOT NULL AND NOT coalesce("
            "regexp_full_match(v, '[0-9]{4}-[0-9]{2}-[0-9]{2}')"
            " AND TRY_CAST(v AS DATE) <= $1::DATE, false)",
            [latest.isoformat()],
        ).fetchall()[0]
    finally:
        con.close()
    return others == 0


def future_date_results(
    name: str,
    suite: str,
    frame: pd.DataFrame,
    key: str,
    columns: Sequence[str],
    settings: QualitySettings,
    today: date | None = None,
    all_failing: bool = False,
) -> Results:
    """Run check ``name``: no date in ``columns`` lies more than ``max_future_days`` ahead.

    Args:
        name: the catalog check name.
        suite: the GX suite name (``clean.dates``, ``golden.dates``).
        frame: the records or customers.
        key: the column reported for offending rows.
        columns: the date columns present in ``frame`` (absent ones are ignored).
        settings: ``max_future_days`` (a day's slack by default: deliveries are stamped in
            Asia/Shanghai, ahead of UTC).
        today: the reference date (default: today).
        all_failing: list every offending key under ``observed["failing_keys"]``.
    """
    part = future_date_part(name, suite, frame, key, columns, settings, today, all_failing)
    return {name: finish(part) if isinstance(part, CheckPart) else part}


def future_date_part(
    name: str,
    suite: str,
    frame: pd.DataFrame,
    key: str,
    columns: Sequence[str],
    settings: QualitySettings,
    today: date | None = None,
    all_failing: bool = False,
) -> CheckPart | tuple[bool, dict]:
    """``future_date_results`` as a part (merged over chunks of rows), or its skipped result."""
    gxe = import_gx("great_expectations.expectations")

    present = [c for c in columns if c in frame.columns]
    if not present or frame.empty or key not in frame.columns:
        return skipped("no date column or no rows")
    latest = (today or date.today()) + timedelta(days=settings.max_future_days)
    flags = future_date_flags(frame, key, present, latest)
    check = GxCheck(
        name,
        [gxe.ExpectColumnValuesToBeInSet(column="is_future", value_set=[0])],
        key_column=key,
        thresholds={"latest_allowed": latest.isoformat(), "columns": present},
        extra={"future_rows": int(flags["is_future"].sum())},
        counts=("future_rows",),
    )
    return run_check_parts(suite, flags, [check], all_failing=all_failing)[name]

"""Wiring of the archive office's outputs: registers, dossiers, packages, dormant archive, 回访.

Shared by the CLI (``customer-archive export|package|dormant|reverify``) and the Dagster
schedules (``pipelines/schedules.py``); the work is in ``warehouse/`` (registers, dossier,
packages, dormant, reverify, workdays, filing).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from warehouse.archive import first_work_week_end, last_business_day
from warehouse.dormant import dormant_events, dormant_ids
from warehouse.dossier import CjkFont, find_cjk_font
from warehouse.filing import archive_packages, archived_documents
from warehouse.packages import (
    PackageKind,
    PackageResult,
    build_package,
    build_registers,
    golden_frames,
    write_dossiers,
    write_registers,
)
from warehouse.registers import DateSpan, Period, RegisterName, Span
from warehouse.security.mart import pseudonym_secret
from warehouse.workdays import WorkdayCalendar

from .access import actor, audit, keyring, open_warehouse, run_lock
from .settings import ArchiveConfig
from .stages import load_sources

log = logging.getLogger("customer_archive")


def filing_dir(cfg: ArchiveConfig) -> Path:
    """The filing root (``filing.dir``): registers/, dossiers/, packages/, reverify/."""
    return cfg.resolve(cfg.filing.dir)


def calendar(cfg: ArchiveConfig) -> WorkdayCalendar:
    """The working-day calendar of the configuration."""
    c = cfg.filing.calendar
    return WorkdayCalendar(c.overrides, c.unknown_years)


def departments(cfg: ArchiveConfig) -> dict[str, str]:
    """Source system → owning department (sources.yml ``department``)."""
    try:
        sources = load_sources(cfg)
    except FileNotFoundError:
        return {}
    return {s.name: s.department for s in sources.sources if getattr(s, "department", None)}


def font(cfg: ArchiveConfig) -> CjkFont:
    """The dossier font (``filing.font``, ``$CUSTOMER_ARCHIVE_CJK_FONT`` or a system font)."""
    return find_cjk_font(cfg.resolve(cfg.filing.font) if cfg.filing.font else None)


def export_registers(
    cfg: ArchiveConfig, period: Period, role: str, out: Path | None = None
) -> dict[RegisterName, Path]:
    """表1/表2/表3 of a month for a role (analysts masked; dormant customers left out)."""
    secret = None
    if role == "analyst":
        ring = keyring(cfg)
        if ring is None:
            raise SystemExit("analyst registers are pseudonymized: the master key is needed")
        secret = pseudonym_secret(ring)
    folder = out or filing_dir(cfg) / "registers" / str(period) / role
    with open_warehouse(cfg, read_only=True) as con:
        hidden = dormant_ids(con)
        registers = build_registers(
            golden_frames(con),
            archived_documents(con),
            period,
            role=role,
            secret=secret,
            departments=departments(cfg),
            exclude=hidden,
        )
    paths = write_registers(registers, period, folder)
    audit(
        cfg,
        "export",
        str(folder),
        details={
            "kind": "registers",
            "period": str(period),
            "role": role,
            "rows": {k: len(v) for k, v in registers.items()},
        },
    )
    return paths


def dossier_customers(con: duckdb.DuckDBPyConnection, period: Span) -> list[str]:
    """Customers new or changed in the period, without the dormant archive."""
    from warehouse.packages import changed_customers

    frames = golden_frames(con)
    hidden = dormant_ids(con)
    return [c for c in changed_customers(frames["customers_history"], period) if c not in hidden]


def export_dossiers(
    cfg: ArchiveConfig,
    customer_ids: Sequence[str],
    period: Period | None,
    on: date,
    role: str,
    out: Path | None = None,
) -> dict[str, Path]:
    """Dossier PDFs of the given customers (or the period's new/changed ones); steward/admin."""
    if role not in ("admin", "steward"):
        raise PermissionError(f"role {role!r} may not export dossiers (steward or admin only)")
    root = out or filing_dir(cfg) / "dossiers"
    the_font = font(cfg)
    with open_warehouse(cfg, read_only=True) as con:
        ids = list(customer_ids) if customer_ids else dossier_customers(con, period)  # type: ignore[arg-type]
        tables: dict = golden_frames(con)
        tables["events"] = dormant_events(con)
    written = write_dossiers(tables, ids, root, on, the_font)
    missing = sorted(set(ids) - set(written))
    if missing:
        log.warning("no golden record for %s: no dossier written", ", ".join(missing))
    audit(
        cfg,
        "export",
        str(root),
        customers=sorted(written),
        details={"kind": "dossier", "role": role, "date": on.isoformat()},
    )
    return written


@dataclass(frozen=True)
class DuePackage:
    """A package due on a day."""

    kind: PackageKind
    period: Span


def due_packages(day: date, cal: WorkdayCalendar, done: set[str]) -> list[DuePackage]:
    """The packages due on ``day`` (seed 004 归档周期).

    Monthly: on the month's last working day. Yearly (the previous year): on any working day of
    the first working week of ``day``'s year, until it exists.

    Args:
        day: the day.
        cal: the working-day calendar.
        done: ids of the packages already written (``filing.packages``).
    """
    out: list[DuePackage] = []
    if not cal(day):
        return out
    if day <= first_work_week_end(day.year, cal):
        year = DateSpan.year(day.year - 1)
        if f"yearly-{year}" not in done:
            out.append(DuePackage("yearly", year))
    if day == last_business_day(day.year, day.month, cal):
        month = Period(day.year, day.month)
        if f"monthly-{month}" not in done:
            out.append(DuePackage("monthly", month))
    return out


def done_packages(cfg: ArchiveConfig) -> set[str]:
    """Ids of the packages recorded in ``filing.packages``."""
    with open_warehouse(cfg, read_only=True) as con:
        packages = archive_packages(con)
    return set() if packages is None else set(packages["package_id"].astype(str))


def write_package(
    cfg: ArchiveConfig, kind: PackageKind, period: Span, on: date, by: str | None = None
) -> PackageResult:
    """Write one package under the run lock, and audit it."""
    cal = calendar(cfg)
    cal(on)  # the note records whether the day's year was approximated
    handled_by = by or cfg.filing.handled_by or actor()
    the_font = font(cfg)
    with run_lock(cfg), open_warehouse(cfg) as con:
        result = build_package(
            con,
            filing_dir(cfg) / "packages",
            kind,
            period,
            on,
            the_font,
            handled_by=handled_by,
            reviewed_by=cfg.filing.reviewed_by,
            departments=departments(cfg),
            exclude=dormant_ids(con),
            calendar_note=cal.note(),
        )
    audit(
        cfg,
        "archive_package",
        str(result.folder),
        customers=[],
        details={
            "package_id": result.package_id,
            "dossiers": result.dossiers,
            "archived_on": on.isoformat(),
        },
    )
    log.info("package %s: %d dossiers → %s", result.package_id, result.dossiers, result.folder)
    return result


def run_due_packages(cfg: ArchiveConfig, day: date) -> list[PackageResult]:
    """Write every package due on ``day`` (what the schedules run; replay with a past day)."""
    due = due_packages(day, calendar(cfg), done_packages(cfg))
    return [write_package(cfg, d.kind, d.period, day) for d in due]


def due_day(cfg: ArchiveConfig, kind: PackageKind, period: Span) -> date:
    """The due working day of a package: the month's last, or the end of the first work week."""
    cal = calendar(cfg)
    if kind == "monthly":
        assert isinstance(period, Period)
        return last_business_day(period.year, period.month, cal)
    return first_work_week_end(period.start.year + 1, cal)

"""`customer-archive export|package|dormant|reverify`: the archive office's documents (seed 004)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from warehouse import read_table
from warehouse.dormant import approve_dormant, dormant_candidates, dormant_ids
from warehouse.packages import period_of, verify_package
from warehouse.registers import Period
from warehouse.reverify import reverification_list, write_reverification_xlsx
from warehouse.security import resolve_role

from .. import filing
from ..access import actor, audit, open_warehouse, run_lock
from ..settings import ArchiveConfig


def _day(text: str | None) -> date:
    return date.fromisoformat(text) if text else date.today()


def _role(role: str | None) -> str:
    return role or resolve_role()


def export_registers_command(
    cfg: ArchiveConfig, period: str, role: str | None = None, out: str | None = None
) -> int:
    """`customer-archive export registers --period 2026-11 [--role analyst] [--out DIR]`."""
    paths = filing.export_registers(
        cfg, Period.parse(period), _role(role), Path(out) if out else None
    )
    for name, path in paths.items():
        print(f"{name}  {path}")
    return 0


def export_dossier_command(
    cfg: ArchiveConfig,
    customers: Sequence[str],
    period: str | None,
    on: str | None = None,
    role: str | None = None,
    out: str | None = None,
) -> int:
    """`customer-archive export dossier --customer C… | --period 2026-11 [--date D]`."""
    if bool(customers) == bool(period):
        print("give --customer (one or more) or --period, not both", file=sys.stderr)
        return 2
    written = filing.export_dossiers(
        cfg,
        list(customers),
        Period.parse(period) if period else None,
        _day(on),
        _role(role),
        Path(out) if out else None,
    )
    for path in written.values():
        print(path)
    missing = sorted(set(customers) - set(written))
    if missing:
        print(f"no such customer: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{len(written)} dossier(s)", file=sys.stderr)
    return 0


def package_command(
    cfg: ArchiveConfig, action: str, period: str | None = None, on: str | None = None,
    ids: Sequence[str] = (),
) -> int:  # fmt: skip
    """`customer-archive package monthly|yearly --period P`, `package due --date D`, `verify`."""
    if action == "due":
        day = _day(on)
        results = filing.run_due_packages(cfg, day)
        if not results:
            print(f"{day}: no package due")
        for r in results:
            print(f"{r.package_id}: {r.dossiers} dossier(s) → {r.folder}")
        return 0
    if action == "verify":
        root = filing.filing_dir(cfg) / "packages"
        folders = [Path(i) for i in ids] or sorted(
            p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")
        )
        bad = 0
        for folder in folders:
            problems = verify_package(folder)
            print(f"{folder.name}: {'ok' if not problems else '; '.join(problems)}")
            bad += bool(problems)
        return 1 if bad else 0
    if not period:
        print(f"package {action} needs --period", file=sys.stderr)
        return 2
    span = period_of(action, period)  # type: ignore[arg-type]
    day = _day(on) if on else filing.due_day(cfg, action, span)  # type: ignore[arg-type]
    r = filing.write_package(cfg, action, span, day)  # type: ignore[arg-type]
    print(f"{r.package_id}: {r.dossiers} dossier(s) → {r.folder}")
    return 0


def dormant_command(
    cfg: ArchiveConfig,
    action: str,
    customers: Sequence[str] = (),
    reason: str | None = None,
    on: str | None = None,
) -> int:
    """`customer-archive dormant review` / `dormant approve C… --reason R` (audited)."""
    role = resolve_role()
    if role not in ("admin", "steward"):
        print(f"role {role} may not review or approve the dormant archive", file=sys.stderr)
        return 2
    if action == "review":
        with open_warehouse(cfg, read_only=True) as con:
            customers_frame = read_table(con, "golden.customers")
            if customers_frame is None:
                raise SystemExit("nothing published yet: run `customer-archive run` first")
            listing = dormant_candidates(customers_frame, dormant_ids(con))
        audit(cfg, "dormant_review", "golden.customers", details={"candidates": len(listing)})
        if listing.empty:
            print("no dormant candidates")
        else:
            print(listing.to_string(index=False))
        return 0
    if not customers or not reason:
        print("dormant approve needs customer ids and --reason", file=sys.stderr)
        return 2
    with run_lock(cfg), open_warehouse(cfg) as con:
        moved = approve_dormant(con, customers, actor=actor(), reason=reason, on=_day(on))
    audit(cfg, "dormant_approve", "dormant.registry", customers=moved, details={"reason": reason})
    print(f"{len(moved)} customer(s) moved to the dormant archive: {', '.join(moved)}")
    return 0


def reverify_command(cfg: ArchiveConfig, as_of: str | None = None, out: str | None = None) -> int:
    """`customer-archive reverify [--as-of D] [--out F]`: the 回访 list per department."""
    day = _day(as_of)
    with open_warehouse(cfg, read_only=True) as con:
        customers = read_table(con, "golden.customers")
        lineage = read_table(con, "golden.attribute_lineage")
        hidden = dormant_ids(con)
    if customers is None or lineage is None:
        raise SystemExit("nothing published yet: run `customer-archive run` first")
    listing = reverification_list(
        customers,
        lineage,
        day,
        months=cfg.filing.reverify_months,
        departments=filing.departments(cfg),
        exclude=hidden,
    )
    path = Path(out) if out else filing.filing_dir(cfg) / "reverify" / f"回访清单_{day:%Y%m%d}.xlsx"
    write_reverification_xlsx(listing, path)
    audit(
        cfg,
        "export",
        str(path),
        customers=listing["customer_id"].astype(str).tolist(),
        details={"kind": "reverification", "as_of": day.isoformat()},
    )
    counts = listing.groupby("department").size().to_dict() if len(listing) else {}
    print(f"{len(listing)} customer(s) to re-verify {counts} → {path}")
    return 0

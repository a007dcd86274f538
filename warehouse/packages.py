"""Register and dossier exports, and the monthly / yearly archive packages of seed 004 (归档周期).

月度资料: by the month's last working day, the registers and the dossiers of customers new or
changed that month; 年度资料: in the first working week of the next year, the year's registers
and every customer's dossier. A package is a folder with a ``manifest.json`` (sha256 of every
file), written in a hidden temp folder and renamed into place; its dossiers are recorded in
``filing.documents`` (表3) and the package in ``filing.packages``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from warehouse.db import read_table, table_exists, transaction
from warehouse.dossier import (
    CjkFont,
    collect_dossiers,
    dossier_path,
    render_dossier,
    subset_font,
)
from warehouse.filing import (
    ArchivedDocument,
    archive_numbers,
    archive_packages,
    archived_documents,
    record_documents,
    record_package,
    sha256_file,
)
from warehouse.registers import (
    DateSpan,
    Period,
    RegisterName,
    Span,
    customers_as_of,
    format_register,
    mask_for_role,
    register_1,
    register_2,
    register_3,
    register_file_name,
    write_register_xlsx,
)

PackageKind = Literal["monthly", "yearly"]
DOSSIER_TABLES = ("customers", "contacts", "addresses", "transactions", "interactions",
                  "customers_history", "attribute_lineage")  # fmt: skip
MANIFEST = "manifest.json"
SUBSET_FROM = 3
"""Batches larger than this render against a font subset (:func:`subset_font`)."""


def golden_frames(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame | None]:
    """The golden tables a dossier or register reads (None when absent)."""
    return {
        t: read_table(con, f"golden.{t}") if table_exists(con, f"golden.{t}") else None
        for t in DOSSIER_TABLES
    }


def build_registers(
    tables: Mapping[str, pd.DataFrame | None],
    documents: pd.DataFrame | None,
    period: Span,
    *,
    role: str = "admin",
    secret: bytes | None = None,
    departments: Mapping[str, str] | None = None,
    exclude: set[str] | None = None,
) -> dict[RegisterName, pd.DataFrame]:
    """表1, 表2, 表3 of a period, masked for ``role`` and formatted with the seed's headers.

    表1 lists the customers as they stood at the period's end (``customers_as_of``), so a
    register of a past month shows that month's names, contacts and tiers.
    """
    customers = tables.get("customers")
    if customers is None:
        raise ValueError("no golden.customers: run `customer-archive run` first")
    canonical: dict[RegisterName, pd.DataFrame] = {
        "表1": register_1(
            customers_as_of(customers, tables.get("customers_history"), period.end), exclude
        ),
        "表2": register_2(
            tables.get("interactions"),
            tables.get("customers_history"),
            period,
            departments,
            exclude,
        ),
        "表3": register_3(documents, period),
    }
    return {
        name: format_register(mask_for_role(frame, role, secret), name)
        for name, frame in canonical.items()
    }


def write_registers(
    registers: Mapping[RegisterName, pd.DataFrame], period: Span, out_dir: Path
) -> dict[RegisterName, Path]:
    """Write each register as ``表1_客户基础信息表_<period>.xlsx`` under ``out_dir``."""
    return {
        name: write_register_xlsx(frame, name, out_dir / register_file_name(name, period))
        for name, frame in registers.items()
    }


def write_dossiers(
    tables: Mapping[str, pd.DataFrame | None],
    customer_ids: Sequence[str],
    root: Path,
    on: date,
    font: CjkFont,
) -> dict[str, Path]:
    """Render the dossier of each customer under ``root/<客户编号>-<年份>-<季度>/``.

    Returns:
        customer id → PDF path (customers unknown to ``golden.customers`` are skipped).
    """
    out: dict[str, Path] = {}
    dossiers = collect_dossiers(tables, customer_ids)
    with tempfile.TemporaryDirectory(prefix="dossier-font-") as work:
        if len(dossiers) > SUBSET_FROM:
            font = subset_font(font, dossiers, Path(work))
        for dossier in dossiers:
            path = dossier_path(root, dossier.customer_id, on)
            out[dossier.customer_id] = render_dossier(dossier, path, font, on)
    return out


def changed_customers(history: pd.DataFrame | None, period: Span) -> list[str]:
    """Customers with a version opened in the period (new: ``created``, changed: ``updated``)."""
    if history is None or history.empty:
        return []
    opened = pd.to_datetime(history["valid_from"].astype("string"), errors="coerce")
    inside = (opened >= pd.Timestamp(period.start)) & (opened <= pd.Timestamp(period.end))
    return sorted(set(history.loc[inside, "customer_id"].astype(str)))


@dataclass(frozen=True)
class PackageResult:
    """A written archive package."""

    package_id: str
    kind: PackageKind
    period: str
    folder: Path
    dossiers: int
    documents: list[str] = field(default_factory=list)


def package_id(kind: PackageKind, period: Span) -> str:
    """``monthly-2026-11`` / ``yearly-2026``."""
    return f"{kind}-{period}"


def package_folder(root: Path, kind: PackageKind, period: Span) -> Path:
    """``<root>/2026/monthly-2026-11`` (packages by year)."""
    return root / str(period.start.year) / package_id(kind, period)


def build_package(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    kind: PackageKind,
    period: Span,
    on: date,
    font: CjkFont,
    *,
    handled_by: str,
    reviewed_by: str | None = None,
    departments: Mapping[str, str] | None = None,
    exclude: set[str] | None = None,
    calendar_note: Mapping[str, object] | None = None,
    created_at: datetime | None = None,
) -> PackageResult:
    """Write one archive package and record it (表3 rows and ``filing.packages``).

    Monthly: dossiers of customers new or changed in the period; yearly: every customer's.
    The registers (full, unmasked: the archive office's copy) include the package's own
    dossiers in 表3. Everything is written in ``.tmp-<id>`` and renamed into place; the
    warehouse records are committed after the rename, in one transaction.

    Args:
        con: the warehouse (read-write).
        root: the packages folder.
        kind: ``monthly`` or ``yearly``.
        period: the month (:class:`Period`) or year (:class:`DateSpan`).
        on: the archive date (归档日期; the due working day).
        font: the dossier font.
        handled_by: 经办人.
        reviewed_by: 审核人.
        departments: source system → department (表2 参与人员).
        exclude: customers left out (the dormant archive).
        calendar_note: how the working day was determined (kept in the manifest).
        created_at: the manifest timestamp (default now).

    Raises:
        FileExistsError: the package was already written (packages are immutable).
    """
    pid = package_id(kind, period)
    folder = package_folder(root, kind, period)
    packages = archive_packages(con)
    if folder.exists() or (packages is not None and pid in set(packages["package_id"])):
        raise FileExistsError(f"archive package {pid} already exists ({folder})")
    tables = golden_frames(con)
    customers = tables["customers"]
    if customers is None:
        raise ValueError("no golden.customers: run `customer-archive run` first")
    exclude = exclude or set()
    if kind == "monthly":
        wanted = changed_customers(tables["customers_history"], period)
    else:
        wanted = sorted(customers["customer_id"].astype(str))
    wanted = [c for c in wanted if c not in exclude]
    temp = folder.with_name(f".tmp-{folder.name}")
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir(parents=True)
    try:
        written = write_dossiers(tables, wanted, temp / "dossiers", on, font)
        numbers = archive_numbers(con, on, len(written))
        docs = [
            ArchivedDocument(
                archive_no=no,
                customer_id=cid,
                archived_on=on,
                doc_type="档案",
                copies=1,
                storage="电子",
                handled_by=handled_by,
                reviewed_by=reviewed_by,
                file=str((folder / path.relative_to(temp)).as_posix()),
                sha256=sha256_file(path),
                package_id=pid,
            )
            for no, (cid, path) in zip(numbers, written.items(), strict=True)
        ]
        existing = archived_documents(con)
        new = pd.DataFrame([d.__dict__ for d in docs])
        documents = new if existing is None else pd.concat([existing, new], ignore_index=True)
        registers = build_registers(
            tables, documents, period, departments=departments, exclude=exclude
        )
        write_registers(registers, period, temp / "registers")
        files = sorted(p for p in temp.rglob("*") if p.is_file())
        manifest = {
            "package_id": pid,
            "kind": kind,
            "period": str(period),
            "archived_on": on.isoformat(),
            "created_at": (created_at or datetime.now().astimezone()).isoformat(timespec="seconds"),
            "handled_by": handled_by,
            "reviewed_by": reviewed_by,
            "customers": [d.customer_id for d in docs],
            "calendar": dict(calendar_note or {}),
            "files": [
                {
                    "path": p.relative_to(temp).as_posix(),
                    "sha256": sha256_file(p),
                    "bytes": p.stat().st_size,
                }
                for p in files
            ],
        }
        (temp / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
        folder.parent.mkdir(parents=True, exist_ok=True)
        temp.rename(folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    with transaction(con):
        record_documents(con, docs)
        record_package(
            con,
            {
                "package_id": pid,
                "kind": kind,
                "period": str(period),
                "archived_on": on,
                "folder": str(folder),
                "manifest_sha256": sha256_file(folder / MANIFEST),
                "dossiers": len(docs),
                "handled_by": handled_by,
                "reviewed_by": reviewed_by,
            },
        )
    return PackageResult(pid, kind, str(period), folder, len(docs), [d.archive_no for d in docs])


def verify_package(folder: Path) -> list[str]:
    """Problems of a package: missing/extra files or checksum mismatches (empty: it verifies)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return [f"{folder}: no {MANIFEST}"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    listed = {f["path"]: f for f in manifest["files"]}
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    for path in sorted(present - set(listed)):
        problems.append(f"extra file {path}")
    for path, entry in sorted(listed.items()):
        if path not in present:
            problems.append(f"missing file {path}")
        elif sha256_file(folder / path) != entry["sha256"]:
            problems.append(f"checksum mismatch {path}")
    return problems


def period_of(kind: PackageKind, text: str) -> Span:
    """``monthly`` + ``2026-11`` → :class:`Period`; ``yearly`` + ``2026`` → the year."""
    if kind == "monthly":
        return Period.parse(text)
    if not (text.isdigit() and len(text) == 4):
        raise ValueError(f"a yearly package needs a year (YYYY), got {text!r}")
    return DateSpan.year(int(text))

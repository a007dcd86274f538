"""Generate the demo departmental exports (CRM CSV, ticket XLSX, leads JSONL) and their truth."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sources.demo.entities import build_world, entities_frame
from sources.demo.marketing import build_marketing
from sources.demo.records import SourceTable, allocate_records
from sources.demo.sales import build_sales
from sources.demo.service import build_service
from sources.demo.writers import write_marketing_jsonl, write_sales_csv, write_service_xlsx

_ID_COLUMN = {"sales": "客户编号", "service": "工单号", "marketing": "lead_id"}


@dataclass(frozen=True)
class DemoData:
    """The three departmental exports as text frames, with the ground truth kept apart.

    Attributes:
        sales: CRM customers; columns are the Chinese CRM headers, values str or None.
        service: service tickets; columns are the ticket headers, values str or None.
        marketing: leads; columns are the JSON keys, None where the key is absent on the line.
        truth: source_system, source_record_id, entity_id — one row per source record.
        entities: one row per true entity (entity_id, customer_type, name, credit_code, phone,
            email, province, city, district, industry_section, kind).
    """

    sales: pd.DataFrame
    service: pd.DataFrame
    marketing: pd.DataFrame
    truth: pd.DataFrame
    entities: pd.DataFrame


@dataclass(frozen=True)
class DemoFiles:
    """Paths written by write_demo and the number of records in each."""

    sales_csv: Path
    service_xlsx: Path
    marketing_jsonl: Path
    truth_csv: Path
    entities_csv: Path
    record_counts: dict[str, int]


@dataclass(frozen=True)
class _Generated:
    """Frames plus the per-cell hints the XLSX writer needs."""

    data: DemoData
    tables: dict[str, SourceTable]


def _generate(entities: int, seed: int) -> _Generated:
    """Draw the world, allocate records and build every department's table."""
    rng = np.random.default_rng(seed)
    world = build_world(rng, entities)
    allocation = allocate_records(world, rng)
    seeds = rng.integers(0, 2**63 - 1, size=3).tolist()
    tables = {
        "sales": build_sales(world, allocation.sales, seeds[0]),
        "service": build_service(world, allocation.service, seeds[1]),
        "marketing": build_marketing(world, allocation.marketing, seeds[2]),
    }
    truth = pd.concat(
        [
            pd.DataFrame(
                {
                    "source_system": source,
                    "source_record_id": table.frame[_ID_COLUMN[source]].to_numpy(),
                    "entity_id": np.array(world.entity_id, dtype=object)[table.entity],
                },
                dtype=object,
            )
            for source, table in tables.items()
        ],
        ignore_index=True,
    )
    # In the CSV and XLSX an empty cell is simply missing; JSON keeps '' apart from absent.
    sales = tables["sales"].frame.replace({"": None})
    service = tables["service"].frame.replace({"": None})
    data = DemoData(
        sales=sales,
        service=service,
        marketing=tables["marketing"].frame,
        truth=truth,
        entities=entities_frame(world),
    )
    return _Generated(data=data, tables=tables)


def generate_demo_data(entities: int = 5000, seed: int = 42) -> DemoData:
    """Generate demo customer exports of three departments with ground truth.

    About 2.4 source records per entity; ~65 % enterprises (some branch offices of another
    generated enterprise), ~35 % individuals; every record is a noisy re-typing of its entity.

    Args:
        entities: number of true customers (at least 1).
        seed: random seed; the same seed gives identical data.

    Returns:
        The exports as text frames, the record → entity truth and the entity table.

    Example:
        >>> demo = generate_demo_data(entities=50, seed=1)
        >>> len(demo.truth) == len(demo.sales) + len(demo.service) + len(demo.marketing)
        True
    """
    return _generate(entities, seed).data


def write_demo(
    out_dir: Path, entities: int = 5000, seed: int = 42, delivery_date: str = "2026-11-23"
) -> DemoFiles:
    """Write the demo landing files, truth.csv and entities.csv under out_dir.

    Files: landing/sales/<date>/crm_customers.csv (GBK), landing/service/<date>/tickets.xlsx
    (sheet 工单, header on row 3), landing/marketing/<date>/leads.jsonl (UTF-8), truth.csv,
    entities.csv.

    Args:
        out_dir: output folder (created when absent).
        entities: number of true customers.
        seed: random seed; the same arguments give byte-identical files.
        delivery_date: the delivery folder name, an ISO date (YYYY-MM-DD).

    Returns:
        The written paths and their record counts.

    Raises:
        ValueError: when delivery_date is not an ISO date.
    """
    try:
        delivered = dt.date.fromisoformat(delivery_date)
    except ValueError as exc:
        raise ValueError(f"delivery_date must be YYYY-MM-DD, got {delivery_date!r}") from exc
    out_dir = Path(out_dir)
    generated = _generate(entities, seed)
    landing = out_dir / "landing"
    folder = delivered.isoformat()
    sales_csv = landing / "sales" / folder / "crm_customers.csv"
    service_xlsx = landing / "service" / folder / "tickets.xlsx"
    marketing_jsonl = landing / "marketing" / folder / "leads.jsonl"
    counts = {
        "sales": write_sales_csv(generated.tables["sales"], sales_csv),
        "service": write_service_xlsx(
            generated.tables["service"],
            service_xlsx,
            title=f"客服工单导出（{delivered.year}年{delivered.month}月）",
            created=dt.datetime.combine(delivered, dt.time(8, 0)),
        ),
        "marketing": write_marketing_jsonl(generated.tables["marketing"], marketing_jsonl),
    }
    truth_csv = out_dir / "truth.csv"
    entities_csv = out_dir / "entities.csv"
    generated.data.truth.to_csv(truth_csv, index=False, encoding="utf-8", lineterminator="\n")
    generated.data.entities.to_csv(entities_csv, index=False, encoding="utf-8", lineterminator="\n")
    counts["entities"] = len(generated.data.entities)
    return DemoFiles(
        sales_csv=sales_csv,
        service_xlsx=service_xlsx,
        marketing_jsonl=marketing_jsonl,
        truth_csv=truth_csv,
        entities_csv=entities_csv,
        record_counts=counts,
    )


class TruthFileError(ValueError):
    """A truth file without the columns an evaluation needs (a user's file to fix)."""


def check_truth_columns(frame: pd.DataFrame, source: object) -> None:
    """Raise ``TruthFileError`` unless ``frame`` names each record and its entity.

    A record is named by ``record_key`` or by ``source_system`` and ``source_record_id``.
    """
    columns = set(frame.columns)
    named = "record_key" in columns or {"source_system", "source_record_id"} <= columns
    if "entity_id" in columns and named:
        return
    shown = ", ".join(map(str, list(frame.columns)[:12])) or "none"
    raise TruthFileError(
        f"{source}: a truth file needs the columns entity_id and record_key (or source_system"
        f" and source_record_id), one row per labelled record; its columns are: {shown}"
    )


def read_truth(path: Path) -> pd.DataFrame:
    """Read a ground-truth CSV (``source_system, source_record_id, entity_id``) as text.

    ``record_key, entity_id`` is accepted too. Raises ``TruthFileError`` for other columns.
    """
    frame = pd.read_csv(path, dtype=str)
    check_truth_columns(frame, path)
    return frame

"""File naming for document exports (seed 004: 客户编号+文件类型+日期) and Parquet exports."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import duckdb

from warehouse.db import table_exists

_CUSTOMER_ID = re.compile(r"^C\d{8}\d{3,}$")
_UNSAFE = re.compile(r'[\\/:*?"<>|\s\x00-\x1f]+')
# Fact tables partitioned by year so engines prune by date; the rest are one file each.
PARTITIONS = {"transactions": "txn_year", "interactions": "interaction_year"}
GOLDEN_TABLES = (
    "customers",
    "crosswalk",
    "attribute_lineage",
    "contacts",
    "addresses",
    "transactions",
    "interactions",
)
"""The tables a run builds (``GoldenTables``); history and ID events are kept across runs."""
EXPORTED = (*GOLDEN_TABLES, "customers_history", "customer_ids")


def attachment_name(customer_id: str, doc_type: str, on: date, ext: str) -> str:
    """The seed's attachment name: ``<customer_id>_<doc type>_<YYYYMMDD>.<ext>``.

    Example: ``attachment_name("C20240315001", "合同", date(2024, 3, 15), "pdf")`` →
    ``C20240315001_合同_20240315.pdf``.

    Args:
        customer_id: 客户编号 (``C`` + 8-digit date + 3+ digit sequence).
        doc_type: 文件类型 (合同, 资质证明, 拜访纪要 …); path separators and blanks are removed.
        on: the document date.
        ext: the file extension, with or without the leading dot.

    Returns:
        The file name.

    Raises:
        ValueError: the customer ID is malformed, or the doc type or extension is empty.
    """
    if not _CUSTOMER_ID.match(customer_id):
        raise ValueError(f"not a customer ID (C + YYYYMMDD + sequence): {customer_id!r}")
    kind = _UNSAFE.sub("", doc_type).strip("._")
    suffix = _UNSAFE.sub("", ext).lstrip(".").lower()
    if not kind:
        raise ValueError(f"empty document type: {doc_type!r}")
    if not suffix:
        raise ValueError(f"empty file extension: {ext!r}")
    return f"{customer_id}_{kind}_{on:%Y%m%d}.{suffix}"


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[Path]:
    """Export the golden tables as Parquet for Polars, Spark and pandas.

    ``transactions`` and ``interactions`` are hive-partitioned by year
    (``transactions/txn_year=2025/…``); every other table is one ``<table>.parquet`` file.
    Each table is written to a temporary path and renamed into place, so a reader never sees
    a half-written export.

    Args:
        con: a connection holding the ``golden.*`` tables.
        out_dir: the export folder (created if absent).

    Returns:
        The files and partition folders written, one per exported table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in EXPORTED:
        name = f"golden.{table}"
        if not table_exists(con, name):
            continue
        partition = PARTITIONS.get(table)
        target = out_dir / (table if partition else f"{table}.parquet")
        temp = out_dir / f".{target.name}.tmp"
        _remove(temp)
        path_sql = str(temp).replace("'", "''")
        if partition:
            con.execute(f"COPY {name} TO '{path_sql}' (FORMAT parquet, PARTITION_BY ({partition}))")
        else:
            con.execute(f"COPY {name} TO '{path_sql}' (FORMAT parquet)")
        if not temp.exists():  # an empty partitioned table writes no folder
            temp.mkdir()
        _remove(target)
        temp.rename(target)
        written.append(target)
    return written


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()

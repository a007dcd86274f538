"""The filing record (归档记录): archived documents (表3) and archive packages in ``filing.*``.

Seed 004: electronic records in folders ``客户编号-年份-季度``, files named
客户编号+文件类型+日期, every archived document recorded with 归档编号, 归档日期, 资料类型,
归档份数, 存储位置, 经办人 and 审核人.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.db import append_table, read_table, table_exists

DOCUMENTS = "filing.documents"
PACKAGES = "filing.packages"
DOCUMENT_COLUMNS = (
    "archive_no",
    "customer_id",
    "archived_on",
    "doc_type",
    "copies",
    "storage",
    "handled_by",
    "reviewed_by",
    "file",
    "sha256",
    "package_id",
)


@dataclass(frozen=True)
class ArchivedDocument:
    """One row of 表3 (plus where the file is and its checksum)."""

    archive_no: str
    customer_id: str
    archived_on: date
    doc_type: str
    copies: int
    storage: str
    handled_by: str
    reviewed_by: str | None
    file: str
    sha256: str
    package_id: str | None = None


def customer_folder(customer_id: str, on: date) -> str:
    """``C20240315001-2026-Q4``: the seed's folder 客户编号-年份-季度 of a document dated ``on``.

    Seed 004: 按"客户编号-年份-季度"建立文件夹层级.
    """
    return f"{customer_id}-{on.year}-Q{(on.month - 1) // 3 + 1}"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (streamed)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_numbers(con: duckdb.DuckDBPyConnection, on: date, count: int) -> list[str]:
    """The next ``count`` 归档编号 of the day's month: ``GD202611-00001`` … (never reused).

    Args:
        con: the warehouse.
        on: the archive date.
        count: how many numbers.
    """
    prefix = f"GD{on:%Y%m}-"
    last = 0
    if table_exists(con, DOCUMENTS):
        row = con.execute(
            f"SELECT max(archive_no) FROM {DOCUMENTS} WHERE archive_no LIKE ?", [prefix + "%"]
        ).fetchone()
        if row and row[0]:
            last = int(str(row[0]).rsplit("-", 1)[1])
    return [f"{prefix}{last + i:05d}" for i in range(1, count + 1)]


def record_documents(con: duckdb.DuckDBPyConnection, documents: Sequence[ArchivedDocument]) -> int:
    """Append archived documents to ``filing.documents`` (表3's source); returns the count."""
    if not documents:
        return 0
    con.execute("CREATE SCHEMA IF NOT EXISTS filing")
    frame = pd.DataFrame([asdict(d) for d in documents], columns=list(DOCUMENT_COLUMNS))
    frame["archived_on"] = pd.to_datetime(frame["archived_on"]).dt.date
    frame["copies"] = frame["copies"].astype("int64")
    for column in DOCUMENT_COLUMNS:
        if column not in ("archived_on", "copies"):
            frame[column] = frame[column].astype("string")
    append_table(con, DOCUMENTS, frame)
    return len(frame)


def record_package(con: duckdb.DuckDBPyConnection, package: dict[str, object]) -> None:
    """Append one archive package (id, kind, period, due date, folder, manifest sha256 …)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS filing")
    frame = pd.DataFrame([package])
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].astype("string")
    append_table(con, PACKAGES, frame)


def archived_documents(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """``filing.documents``, or None before anything was archived."""
    return read_table(con, DOCUMENTS) if table_exists(con, DOCUMENTS) else None


def archive_packages(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """``filing.packages``, or None before the first package."""
    return read_table(con, PACKAGES) if table_exists(con, PACKAGES) else None

"""Shared helpers for the sources tests: a CRM-like mapping, file writers and reconciliation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import xlsxwriter

from sources import IngestResult, SourceConfig, ingest_source

HEADERS = ["客户编号", "客户名称", "联系人", "手机", "邮箱", "地址"]
ROWS = [
    ["K001", "北京星辰科技有限公司", "张伟经理", "13912345678", "zw@qq.com", "北京市海淀区中关村"],
    ["K002", "上海浦江贸易有限公司", "王女士", "021-61234567", "", "上海市浦东新区"],
    ["K003", "李娜", "", "0106123456", "lina@163.com", "广州市天河区"],
]
COLUMNS: dict[str, str | list[str]] = {
    "source_record_id": "客户编号",
    "customer_name": ["客户名称", "客户全称"],
    "contact_name": "联系人",
    "phone": ["手机", "手机号码", "联系电话"],
    "email": "邮箱",
    "address": "地址",
}


def make_source(pattern: str = "crm/**/*", **overrides: Any) -> SourceConfig:
    """A CRM-like source mapping; keyword overrides replace fields."""
    settings: dict[str, Any] = {"name": "crm", "department": "销售部", "path": pattern}
    settings["columns"] = COLUMNS
    settings.update(overrides)
    return SourceConfig(**settings)


def csv_text(headers: list[str], rows: list[list[str]], sep: str = ",", eol: str = "\n") -> str:
    """Render rows as delimited text (values here never need quoting)."""
    return "".join(sep.join(r) + eol for r in [headers, *rows])


def write_xlsx(path: Path, build: Callable[[Any, Any], None], sheet: str = "客户") -> Path:
    """Write a workbook; ``build(workbook, worksheet)`` fills the sheet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path))
    worksheet = workbook.add_worksheet(sheet)
    build(workbook, worksheet)
    workbook.close()
    return path


def assert_reconciled(result: IngestResult) -> None:
    """Rows read = rows kept + rows quarantined, for every file the run read."""
    for delivery in result.files:
        if not delivery.to_ingest:
            continue
        kept = int((result.rows["source_file"] == delivery.path).sum())
        rejected = int((result.quarantined_rows["source_file"] == delivery.path).sum())
        assert delivery.rows_read == kept + rejected, (delivery, kept, rejected)


def assert_contract(result: IngestResult) -> None:
    """Contract dtypes: every raw column text except source_row (int64); keys unique per file.

    A record_key may repeat across files: each file's row is one version of the record.
    """
    rows = result.rows
    for column in rows.columns:
        expected = "int64" if column == "source_row" else "string"
        assert str(rows[column].dtype) == expected, column
    assert not rows.duplicated(subset=["source_file", "record_key"]).any()
    assert (rows["record_key"] == "crm:" + rows["source_record_id"]).all()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """An empty landing folder."""
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def run(source: SourceConfig, landing: Path, manifest: pd.DataFrame | None = None) -> IngestResult:
    """Ingest and check the invariants every run must keep."""
    result = ingest_source(source, landing, "run-1", "2024-03-15T02:00:00", manifest)
    assert_reconciled(result)
    assert_contract(result)
    return result

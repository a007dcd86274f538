"""Write the departmental exports the way each department's system produces them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import xlsxwriter

from sources.demo.records import SourceTable


def write_sales_csv(table: SourceTable, path: Path) -> int:
    """Write the CRM export as GBK-encoded CSV (no BOM, CRLF line ends); return the row count.

    Raises:
        UnicodeEncodeError: when a value has a character GBK cannot encode (nothing is written).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.frame.columns.tolist())
    for row in table.frame.itertuples(index=False, name=None):
        writer.writerow(["" if v is None else v for v in row])
    data = buffer.getvalue().encode("gbk")  # strict: fail loudly rather than write '?'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(table.frame)


XLSX_MAX_ROWS = 1_048_576  # rows of one Excel worksheet (title, blank and header rows included)
_XLSX_HEADER_ROWS = 3


def write_service_xlsx(table: SourceTable, path: Path, title: str, created: dt.datetime) -> int:
    """Write the ticket export: sheet 工单, title on row 1, blank row 2, header on row 3.

    Args:
        table: the ticket rows with their date-cell / number-cell hints.
        path: the .xlsx file to write.
        title: the report title on row 1 (客服工单导出（2026年11月）).
        created: document creation time stored in the file (fixed for reproducible bytes).

    Returns:
        The number of ticket rows written.

    Raises:
        ValueError: the rows do not fit on one worksheet (Excel's limit; the writer would
            drop the rows beyond it without a word). Split the export into several files.
    """
    frame = table.frame
    if len(frame) + _XLSX_HEADER_ROWS > XLSX_MAX_ROWS:
        raise ValueError(
            f"{path.name}: {len(frame):,} ticket rows do not fit on one worksheet "
            f"(at most {XLSX_MAX_ROWS - _XLSX_HEADER_ROWS:,} below the title and header rows); "
            "write them into several files"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    date_col = frame.columns.get_loc("工单日期")
    phone_col = frame.columns.get_loc("联系电话")
    date_cells = table.date_cells or [False] * len(frame)
    number_cells = table.number_cells or [False] * len(frame)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        workbook.set_properties({"created": created, "author": "客服系统"})
        sheet = workbook.add_worksheet("工单")
        bold = workbook.add_format({"bold": True})
        date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
        sheet.write_string(0, 0, title, bold)
        for col, header in enumerate(frame.columns):
            sheet.write_string(2, col, str(header), bold)
        for r, row in enumerate(frame.itertuples(index=False, name=None)):
            excel_row = r + 3
            for col, value in enumerate(row):
                if value is None or value == "":
                    continue
                if col == date_col and date_cells[r]:
                    sheet.write_datetime(
                        excel_row, col, dt.datetime.fromisoformat(value), date_format
                    )
                elif col == phone_col and number_cells[r]:
                    sheet.write_number(excel_row, col, int(value))
                else:
                    sheet.write_string(excel_row, col, value)
    finally:
        workbook.close()
    return len(frame)


def write_marketing_jsonl(table: SourceTable, path: Path) -> int:
    """Write the leads as UTF-8 JSON Lines; absent (None) keys are left out, epoch ms as numbers."""
    lines: list[str] = []
    columns = table.frame.columns.tolist()
    for row in table.frame.itertuples(index=False, name=None):
        obj: dict[str, object] = {}
        for key, value in zip(columns, row, strict=True):
            if value is None:
                continue
            obj[key] = int(value) if key == "created_at" and value.isdigit() else value
        lines.append(json.dumps(obj, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return len(lines)

"""The XLSX reader's bulk route (rows transposed at once, text columns straight to Arrow) reads
every cell as ``cell_text`` of it, row by row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
from python_calamine import CalamineWorkbook

from sources.read_excel import cell_text, read_excel
from tests.sources.conftest import write_xlsx

HEADERS = ["客户编号", "客户名称", "手机", "签约日期", "备注"]


def _fill(workbook: Any, sheet: Any) -> None:
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, HEADERS)
    for r in range(1, 60):
        sheet.write_string(r, 0, f"C{r:04d}")
        if r % 7:
            sheet.write_string(r, 1, f"客户{r % 11}")  # a text column with empty cells
        if r % 3 == 0:
            sheet.write_number(r, 2, 13912345600.0 + r)  # text and numbers in one column
        elif r % 3 == 1:
            sheet.write_string(r, 2, f"139 1234 {r:04d}")
        if r % 5 == 0:
            sheet.write_datetime(r, 3, dt.datetime(2024, 1, 1) + dt.timedelta(days=r), date)
        if r % 13 == 0:
            sheet.write_string(r, 5, "多出来的格子")  # under no header: column_6
        elif r % 4 == 0:
            sheet.write_string(r, 4, "  ")
    # a short last row: only the id
    sheet.write_string(61, 0, "C9999")


def test_bulk_reader_equals_cell_by_cell(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", _fill)
    table = read_excel(path, {"source_record_id": ["客户编号"]}, sheet=0)
    headers = [*HEADERS, "column_6"]
    assert table.headers == headers
    rows = list(CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).iter_rows())
    expected: dict[int, list[str | None]] = {}
    for number, row in enumerate(rows[1:], start=2):
        cells = [cell_text(row[i]) if i < len(row) else None for i in range(len(headers))]
        if any(c not in (None, "") for c in cells):  # blank rows are dropped
            expected[number] = [c or None for c in cells]
    got = table.data.set_index("__source_row__")
    assert list(got.index) == list(expected) and 61 not in expected and 62 in expected
    for number, cells in expected.items():
        assert [None if pd.isna(v) else v for v in got.loc[number, headers]] == cells, number
    assert not table.bad_rows
    assert all(str(got[h].dtype) == "string" for h in headers)
    assert got.loc[4, "手机"] == "13912345603" and got.loc[6, "签约日期"] == "2024-01-06"

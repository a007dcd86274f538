"""A file read in batches gives the same raw rows, quarantine and counts as the one-pass read.

Small ``batch_rows`` (and, for CSV, a tiny Arrow block) put batch boundaries between a row
and its exact duplicate, between the rows of one id with different contents, and before a
bad record that sends the CSV reader to its record-by-record path mid-file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sources import IngestResult, SourceConfig, ingest_source
from sources import ingest as ingest_module
from sources import read_delimited as delimited_module
from sources.raw_table import FileRejected, RawTable
from tests.sources.conftest import HEADERS, assert_contract, make_source, write_xlsx

AT = "2024-03-15T02:00:00"

# rows 2.. of the file; the comments say what each row is
DATA: list[list[str]] = [
    ["K001", "北京星辰科技有限公司", "张伟", "13912345678", "zw@qq.com", "北京市海淀区"],  # 2
    ["K002", "上海浦江贸易有限公司", "王女士", "021-61234567", "", "上海市浦东新区"],  # 3
    ["合计：3条", "", "", "", "", ""],  # 4 summary row
    ["K003", "李娜", "", "0106123456", "lina@163.com", "广州市天河区"],  # 5
    ["K001", "北京星辰科技有限公司", "张伟", "13912345678", "zw@qq.com", "北京市海淀区"],  # 6 dup 2
    ["K001", "北京星辰科技有限公司", "张伟", "13900000000", "zw@qq.com", "北京市海淀区"],  # 7 ~2
    ["", "无编号公司", "", "", "", ""],  # 8 empty key
    ["K004", "深圳华乐百货有限公司", "王娟", "1.39123E+10", "", "深圳市南山区"],  # 9
    ["", "", "", "", "", ""],  # 10 blank
    ["K001", "北京星辰科技有限公司", "张伟", "13811111111", "zw@qq.com", "北京市海淀区"],  # 11 ~3
    ["K003", "李娜", "", "0106123456", "lina@163.com", "广州市天河区"],  # 12 dup 5
    ["客户编号", "客户名称", "联系人", "手机", "邮箱", "地址"],  # 13 repeated header
    ["K005", "杭州西湖茶业有限公司", "陈", "0571-8888888", "", "杭州市西湖区"],  # 14
    ["K006", "成都天府软件有限公司", "刘", "028-6666666", "", "成都市高新区"],  # 15
    # 16: a duplicate of row 7
    ["K001", "北京星辰科技有限公司", "张伟", "13900000000", "zw@qq.com", "北京市海淀区"],
    ["K007", "武汉长江物流有限公司", "赵", "027-5555555", "", "武汉市江岸区"],  # 17
]
BAD_RECORD = "K008,多一列的公司,钱,,,,多余"  # a record with one cell too many


def _write_csv(path: Path, lines: list[str], encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode(encoding))


def _lines(bad_at: int | None = None) -> list[str]:
    lines = [",".join(HEADERS), *(",".join(row) for row in DATA)]
    if bad_at is not None:
        lines.insert(bad_at, BAD_RECORD)
    return lines


class ListSink:
    """Keeps what the ingest hands over, as the warehouse staging would."""

    def __init__(self) -> None:
        self.rows: list[pd.DataFrame] = []
        self.quarantined: list[pd.DataFrame] = []
        self.discarded: list[str] = []

    def append(self, rows: pd.DataFrame, quarantined_rows: pd.DataFrame) -> None:
        self.rows.append(rows)
        self.quarantined.append(quarantined_rows)

    def discard(self, source_file: str) -> None:
        self.discarded.append(source_file)
        self.rows = [r.loc[r["source_file"] != source_file] for r in self.rows]
        self.quarantined = [q.loc[q["source_file"] != source_file] for q in self.quarantined]


def _whole(result: IngestResult, sink: ListSink | None = None) -> tuple[pd.DataFrame, ...]:
    """Kept and quarantined rows (sink's first, as the warehouse publishes them)."""
    rows = pd.concat([*(sink.rows if sink else []), result.rows], ignore_index=True)
    quarantined = pd.concat(
        [*(sink.quarantined if sink else []), result.quarantined_rows], ignore_index=True
    )
    quarantined = quarantined.sort_values(["source_file", "source_row"], kind="stable")
    return rows, quarantined.reset_index(drop=True)


def _content_hash(frame: pd.DataFrame) -> str:
    return str(pd.util.hash_pandas_object(frame, index=False).sum())


def _assert_same(
    source: SourceConfig, landing: Path, batch_rows: int, expect_batches: bool = True
) -> IngestResult:
    one_pass = ingest_source(source, landing, "run-1", AT)
    sink = ListSink()
    batched = ingest_source(source, landing, "run-1", AT, batch_rows=batch_rows, sink=sink)
    held = ingest_source(source, landing, "run-1", AT, batch_rows=batch_rows)
    expected_rows, expected_quarantine = _whole(one_pass)
    for result, given in ((batched, sink), (held, None)):
        rows, quarantine = _whole(result, given)
        pd.testing.assert_frame_equal(rows, expected_rows)
        pd.testing.assert_frame_equal(quarantine, expected_quarantine)
        assert _content_hash(rows) == _content_hash(expected_rows)
        assert [f.rows_read for f in result.files] == [f.rows_read for f in one_pass.files]
        assert sorted(result.warnings) == sorted(one_pass.warnings)
    assert len(sink.rows) > 1 if expect_batches else not sink.rows
    assert_contract(held)
    return one_pass


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 5, 100])
def test_csv_batches_give_the_one_pass_rows(
    landing: Path, batch_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delimited_module, "_BLOCK_BYTES", 256)
    _write_csv(landing / "crm" / "a.csv", _lines(), "gb18030")
    result = _assert_same(make_source(), landing, batch_rows, expect_batches=batch_rows < 16)
    reasons = dict(
        zip(result.quarantined_rows["source_row"], result.quarantined_rows["reason"], strict=True)
    )
    assert reasons[6] == "duplicate of row 2"
    assert reasons[12] == "duplicate of row 5"
    assert reasons[16] == "duplicate of row 7"
    ids = dict(zip(result.rows["source_row"], result.rows["source_record_id"], strict=True))
    assert (ids[7], ids[11]) == ("K001~2", "K001~3")


@pytest.mark.parametrize("bad_at", [2, 9, 15])
def test_csv_bad_record_mid_file_switches_to_the_careful_read(
    landing: Path, bad_at: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow batches before the bad record stay; the careful read numbers the rest the same."""
    monkeypatch.setattr(delimited_module, "_BLOCK_BYTES", 128)
    _write_csv(landing / "crm" / "a.csv", _lines(bad_at), "utf-8")
    result = _assert_same(make_source(), landing, 3)
    bad = result.quarantined_rows.loc[result.quarantined_rows["source_row"] == bad_at + 1]
    assert bad["reason"].str.startswith("wrong column count").all() and len(bad) == 1


def test_csv_undecodable_bytes_mid_file(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delimited_module, "_BLOCK_BYTES", 128)
    path = landing / "crm" / "a.csv"
    _write_csv(path, _lines(), "gb18030")
    data = path.read_bytes().replace("武汉长江".encode("gb18030"), b"\xff\xfe\xfd\xfc")
    path.write_bytes(data)
    source = make_source(encoding="gb18030")
    result = _assert_same(source, landing, 4)
    assert "undecodable bytes" in set(result.quarantined_rows["reason"])


def test_xlsx_batches_give_the_one_pass_rows(landing: Path) -> None:
    def build(workbook: Any, sheet: Any) -> None:
        sheet.write_row(0, 0, ["客户清单"])  # a title row above the header
        sheet.write_row(1, 0, HEADERS)
        for number, row in enumerate(DATA, start=2):
            sheet.write_row(number, 0, row)
        sheet.write_number(len(DATA) + 2, 0, 12345)  # a numeric id
        sheet.write_row(len(DATA) + 2, 1, ["数字编号公司"])

    write_xlsx(landing / "crm" / "a.xlsx", build)
    for batch_rows in (1, 3, 7):
        result = _assert_same(make_source(), landing, batch_rows)
    assert "duplicate of row 8" in set(result.quarantined_rows["reason"])  # a title row above


def test_xlsx_long_numbers_are_warned_once_for_the_whole_sheet(landing: Path) -> None:
    """Numbers Excel cut to 15 digits in several batches: one warning, the sheet's total."""

    def build(workbook: Any, sheet: Any) -> None:
        sheet.write_row(0, 0, HEADERS)
        for number, row in enumerate(DATA[:3] + DATA[4:6], start=1):
            sheet.write_row(number, 0, row)
            if number != 3:  # not on the summary row
                sheet.write_number(number, 3, 1.2345678901234567e17 + number)  # 18 digits

    write_xlsx(landing / "crm" / "a.xlsx", build)
    result = _assert_same(make_source(), landing, 2)
    long_number = [w for w in result.warnings if "15 significant digits" in w]
    assert len(long_number) == 1, result.warnings
    assert "'手机': 4 numeric cell(s)" in long_number[0]


def test_parquet_batches_give_the_one_pass_rows(landing: Path) -> None:
    path = landing / "crm" / "a.parquet"
    path.parent.mkdir(parents=True)
    frame = pd.DataFrame([r for r in DATA if any(r)], columns=HEADERS)
    frame["手机"] = range(len(frame))  # a number column, rendered as text
    frame.to_parquet(path, row_group_size=4)
    _assert_same(make_source(), landing, 3)


def test_mixed_files_keep_file_order_and_count_versions(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file before and after a streamed one: order, repeats across files, warnings."""
    monkeypatch.setattr(delimited_module, "_BLOCK_BYTES", 256)
    _write_csv(landing / "crm" / "1.csv", _lines()[:4], "utf-8")
    _write_csv(landing / "crm" / "2.csv", _lines(), "utf-8")
    _write_csv(landing / "crm" / "3.csv", [_lines()[0], *_lines()[14:]], "utf-8")
    result = _assert_same(make_source(), landing, 4)
    assert any("further versions" in w for w in result.warnings)


def test_a_file_that_breaks_after_some_batches_is_quarantined_whole(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_csv(landing / "crm" / "1.csv", _lines()[:4], "utf-8")
    _write_csv(landing / "crm" / "2.csv", _lines(), "utf-8")
    real = ingest_module.read_delivery_batches

    def breaking(path: Path, source: SourceConfig, batch_rows: int | None) -> Iterator[RawTable]:
        batches = real(path, source, batch_rows)
        if path.name != "2.csv":
            yield from batches
            return
        yield next(batches)
        yield next(batches)
        raise FileRejected("unreadable file: disk error")

    monkeypatch.setattr(ingest_module, "read_delivery_batches", breaking)
    sink = ListSink()
    result = ingest_source(make_source(), landing, "run-1", AT, batch_rows=3, sink=sink)
    rows, quarantine = _whole(result, sink)
    assert sink.discarded == ["crm/2.csv"]
    assert set(rows["source_file"]) == {"crm/1.csv"} and len(rows) == 2
    assert "crm/2.csv" not in set(quarantine["source_file"])
    assert list(result.quarantined_files["source_file"]) == ["crm/2.csv"]
    assert next(f for f in result.files if f.path == "crm/2.csv").rows_read == 0

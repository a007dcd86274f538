"""Awkward and broken departmental exports: each has an asserted outcome and reconciles."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter

from sources import IngestResult
from sources.row_checks import REPEATED_HEADER, SUMMARY_ROW
from tests.sources.conftest import HEADERS, ROWS, csv_text, make_source, run, write_xlsx


def _put(landing: Path, name: str, data: bytes) -> None:
    path = landing / "crm" / "2024-03-15" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _names(result: IngestResult) -> list[str]:
    return result.rows["customer_name"].tolist()


def _reasons(result: IngestResult) -> list[str]:
    return result.quarantined_rows["reason"].tolist()


# --- writers -----------------------------------------------------------------------------


def gbk_no_bom(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, ROWS).encode("gbk"))


def gb18030_rare_chars(landing: Path) -> None:
    rows = [["K001", "𠮷野家餐饮有限公司", "", "", "", "喆啡酒店"], *ROWS[1:]]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("gb18030"))


def utf8_bom(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, ROWS).encode("utf-8-sig"))


def utf16_tab(landing: Path) -> None:
    # Excel's "Unicode text" export: UTF-16 with BOM, tab separated, CRLF.
    _put(landing, "a.txt", csv_text(HEADERS, ROWS, sep="\t", eol="\r\n").encode("utf-16"))


def mixed_line_endings(landing: Path) -> None:
    text = ",".join(HEADERS) + "\r\n" + ",".join(ROWS[0]) + "\n" + ",".join(ROWS[1]) + "\r"
    _put(landing, "a.csv", (text + ",".join(ROWS[2]) + "\r\n").encode("utf-8"))


def quoted_newlines(landing: Path) -> None:
    text = ",".join(HEADERS) + "\n" + 'K001,"北京星辰科技\n有限公司",张伟,,,"北京市,海淀区"\n'
    _put(landing, "a.csv", (text + ",".join(ROWS[1]) + "\n").encode("utf-8"))


def csv_title_rows(landing: Path) -> None:
    text = "客户清单（导出于2024-03-15）\n\n" + csv_text(HEADERS, ROWS)
    _put(landing, "a.csv", text.encode("gbk"))


def xlsx_header_row_3(landing: Path) -> None:
    def build(book: Any, sheet: Any) -> None:
        sheet.merge_range(0, 0, 0, 5, "客户资料导出 2024年3月")
        sheet.write_row(2, 0, HEADERS)
        for offset, row in enumerate(ROWS):
            sheet.write_row(3 + offset, 0, row)

    write_xlsx(landing / "crm" / "a.xlsx", build)


def renamed_columns(landing: Path) -> None:
    headers = ["客户编号", "客户全称", "联系人", "手机号码", "邮箱", "地址"]  # after a CRM upgrade
    _put(landing, "a.csv", csv_text(headers, ROWS).encode("utf-8"))


def messy_headers(landing: Path) -> None:
    headers = [" 客户编号 ", "*客户名称：", "联系人", "手 机", "ＥＭＡＩＬ", "地址"]
    _put(landing, "a.csv", csv_text(headers, ROWS).encode("utf-8"))


def missing_required(landing: Path) -> None:
    headers = ["客户编号", "公司", "联系人", "手机", "邮箱", "地址"]
    _put(landing, "a.csv", csv_text(headers, ROWS).encode("utf-8"))


def optional_column_renamed(landing: Path) -> None:
    headers = ["客户编号", "客户名称", "联系人", "联系方式", "邮箱", "地址"]  # 联系方式: undeclared
    _put(landing, "a.csv", csv_text(headers, ROWS).encode("utf-8"))


def extra_columns(landing: Path) -> None:
    headers = [*HEADERS, "备注", "客户经理"]
    rows = [[*row, "重点客户", "赵六"] for row in ROWS]
    _put(landing, "a.csv", csv_text(headers, rows).encode("utf-8"))


def empty_file(landing: Path) -> None:
    _put(landing, "a.csv", b"")


def header_only(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, []).encode("utf-8"))


def truncated(landing: Path) -> None:
    text = csv_text(HEADERS, ROWS).encode("utf-8")
    _put(landing, "a.csv", text[: text.rindex("广州".encode()) - 1])  # upload cut mid-row


def undecodable_bytes(landing: Path) -> None:
    good = csv_text(HEADERS, ROWS).encode("gbk")
    broken = "K009,坏字节公司,,,,".encode("gbk").replace("坏".encode("gbk"), b"\x81\x20")
    _put(landing, "a.csv", good + broken + b"\n")


def corrupt_xlsx(landing: Path) -> None:
    _put(landing, "a.xlsx", b"PK\x03\x04 this is not really a workbook")


def xlsx_mangled_numbers(landing: Path) -> None:
    def build(book: Any, sheet: Any) -> None:
        sheet.write_row(0, 0, [*HEADERS, "证件号"])
        sheet.write_row(1, 0, ["K001", "北京星辰科技有限公司", "张伟"])
        sheet.write_number(1, 3, 13912345678)  # phone typed as a number
        sheet.write_number(1, 6, 110101199001011234)  # 18-digit ID typed as a number
        sheet.write_number(2, 0, 1002)  # numeric customer id
        sheet.write_row(2, 1, ["上海浦江贸易有限公司", "王女士"])
        date_format = book.add_format({"num_format": "yyyy-mm-dd"})
        sheet.write_datetime(2, 6, dt.datetime(2024, 3, 1), date_format)

    write_xlsx(landing / "crm" / "a.xlsx", build)


def csv_mangled_numbers(landing: Path) -> None:
    rows = [["K001", "北京星辰科技有限公司", "", "1.39123E+10", "", ""], ROWS[2]]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("utf-8"))


def formula_like(landing: Path) -> None:
    text = (
        ",".join(HEADERS)
        + "\n"
        + 'K001,"=HYPERLINK(""http://x.cn"",""星辰"")",,+8613912345678,,@SUM(A1)\n'
    )
    _put(landing, "a.csv", text.encode("utf-8"))


def empty_keys_and_duplicates(landing: Path) -> None:
    rows = [
        ROWS[0],
        ["", "无编号公司", "", "", "", ""],
        ROWS[0],
        [*ROWS[1][:5], "另一地址"],
        ROWS[1],
    ]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("utf-8"))


def blank_rows(landing: Path) -> None:
    text = csv_text(HEADERS, [ROWS[0], [""] * 6, ROWS[1]]) + "\n\n"
    _put(landing, "a.csv", text.encode("utf-8"))


def semicolons(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, ROWS, sep=";").encode("utf-8"))


def jsonl_bad_line(landing: Path) -> None:
    lines = [json.dumps(dict(zip(HEADERS, r, strict=True)), ensure_ascii=False) for r in ROWS]
    lines.insert(2, '{"客户编号": "K9", "客户名称": ')
    lines.insert(3, '["not", "an", "object"]')
    _put(landing, "a.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))


def json_array(landing: Path) -> None:
    records: list[Any] = [dict(zip(HEADERS, r, strict=True)) for r in ROWS]
    records[0]["标签"] = ["VIP", "华北"]
    records[1]["客户编号"] = 1002
    records.append("stray string")
    data = json.dumps({"data": records}, ensure_ascii=False)
    _put(landing, "a.json", data.encode("utf-8"))


def parquet_typed(landing: Path) -> None:
    table = pa.table(
        {
            "客户编号": pa.array([1001, 1002], pa.int64()),
            "客户名称": ["北京星辰科技有限公司", "李娜"],
            "手机": pa.array([13912345678.0, None]),
            "签约日期": pa.array([dt.date(2024, 1, 2), dt.date(2024, 2, 29)]),
        }
    )
    path = landing / "crm" / "a.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)


def concatenated_exports(landing: Path) -> None:
    # `cat monday.csv tuesday.csv`: the second export's header line lands mid-file; a third
    # part comes from after a CRM upgrade (客户全称, 手机号码: aliases of the mapping)
    renamed = ["客户编号", "客户全称", "联系人", "手机号码", "邮箱", "地址"]
    text = (
        csv_text(HEADERS, [ROWS[0]]) + csv_text(HEADERS, [ROWS[1]]) + csv_text(renamed, [ROWS[2]])
    )
    _put(landing, "a.csv", text.encode("utf-8"))


def summary_footer_rows(landing: Path) -> None:
    rows = [
        *ROWS,
        ["K004", "合计科技有限公司", "", "", "", ""],  # a real company, not a total
        ["合计：4条", "", "", "", "", ""],
        ["", "总计", "", "", "", ""],
        ["小计", "4", "", "", "", ""],
        ["共4条记录", "", "", "", "", ""],
        ["Total: 4", "", "", "", "", ""],
    ]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("gbk"))


def ids_off_pattern(landing: Path) -> None:
    rows = [
        ROWS[0],
        ["12345", "杭州某某有限公司", "", "", "", ""],  # another system's id
        ROWS[1],
        ["K01", "深圳某某有限公司", "", "", "", ""],  # truncated id
        [" K003 ", *ROWS[2][1:]],  # padded: trimmed before matching
    ]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("utf-8"))


def xlsx_readme_first_sheet(landing: Path) -> None:
    path = landing / "crm" / "a.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path))
    readme = workbook.add_worksheet("说明")
    readme.write(0, 0, "本文件为客户资料导出，数据见第二个工作表。")
    readme.write(1, 0, "字段说明：客户编号、客户名称、手机")
    data = workbook.add_worksheet("客户数据")
    data.write_row(0, 0, HEADERS)
    for offset, row in enumerate(ROWS):
        data.write_row(1 + offset, 0, row)
    workbook.close()


def _jsonl(landing: Path, records: list[dict[str, str]]) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    _put(landing, "a.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))


def jsonl_key_absent(landing: Path) -> None:
    # no lead has a company name: the key is simply not written (not a changed export)
    _jsonl(landing, [{"客户编号": r[0], "联系人": r[2], "手机": r[3]} for r in ROWS])


def jsonl_key_renamed(landing: Path) -> None:
    # the name key was renamed to one the mapping does not know: real schema drift
    _jsonl(landing, [{"客户编号": r[0], "公司名": r[1], "手机": r[3]} for r in ROWS])


# --- more awkward deliveries (issue #18) --------------------------------------------------


def nul_bytes(landing: Path) -> None:
    # a NUL byte inside a cell (a C-based export tool): kept verbatim in raw, the row loads
    rows = [["K001", "北京星辰\x00科技有限公司", "", "13912345678", "", ""], *ROWS[1:]]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("utf-8"))


def pipe_delimiter(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, ROWS, sep="|").encode("utf-8"))


def trailing_delimiters(landing: Path) -> None:
    # every line ends with a delimiter: an unnamed empty last column
    text = "".join(",".join(r) + ",\n" for r in [HEADERS, *ROWS])
    _put(landing, "a.csv", text.encode("utf-8"))


def jsonl_utf8_bom(landing: Path) -> None:
    lines = [json.dumps(dict(zip(HEADERS, r, strict=True)), ensure_ascii=False) for r in ROWS]
    _put(landing, "a.jsonl", ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8"))


def json_top_level_array(landing: Path) -> None:
    records = [dict(zip(HEADERS, r, strict=True)) for r in ROWS]
    _put(landing, "a.json", json.dumps(records, ensure_ascii=False).encode("utf-8"))


def footer_only_zero_records(landing: Path) -> None:
    # a night with nothing to report: the header and a "共0条" footer
    _put(landing, "a.csv", (csv_text(HEADERS, []) + "共0条,,,,,\n").encode("gbk"))


def _xlsx_rows(landing: Path, rows: list[list[str]]) -> None:
    def build(_workbook: Any, sheet: Any) -> None:
        for i, row in enumerate(rows):
            sheet.write_row(i, 0, row)

    write_xlsx(landing / "crm" / "2024-03-15" / "a.xlsx", build)


def xlsx_summary_footer(landing: Path) -> None:
    _xlsx_rows(landing, [HEADERS, *ROWS, ["合计", "3", "", "", "", ""]])


def xlsx_concatenated(landing: Path) -> None:
    _xlsx_rows(landing, [HEADERS, ROWS[0], HEADERS, ROWS[1], ROWS[2]])


def xlsx_empty_sheet(landing: Path) -> None:
    _xlsx_rows(landing, [])


def tsv_utf8(landing: Path) -> None:
    _put(landing, "a.tsv", csv_text(HEADERS, ROWS, sep="\t").encode("utf-8"))


def quoted_everything_crlf_bom(landing: Path) -> None:
    text = "".join(",".join(f'"{v}"' for v in r) + "\r\n" for r in [HEADERS, *ROWS])
    _put(landing, "a.csv", text.encode("utf-8-sig"))


def ids_with_spaces(landing: Path) -> None:
    rows = [[" K001 ", *ROWS[0][1:]], ["K002\t", *ROWS[1][1:]], ROWS[2]]
    _put(landing, "a.csv", csv_text(HEADERS, rows).encode("utf-8"))


def two_files_two_encodings(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, ROWS[:2]).encode("gbk"))
    _put(landing, "b.csv", csv_text(HEADERS, ROWS[2:]).encode("utf-8"))


def headers_and_footers_interleaved(landing: Path) -> None:
    text = (
        csv_text(HEADERS, [ROWS[0]])
        + "合计：1条,,,,,\n"
        + csv_text(HEADERS, ROWS[1:])
        + "合计：2条,,,,,\n"
    )
    _put(landing, "a.csv", text.encode("utf-8"))


def office_lock_and_hidden_files(landing: Path) -> None:
    _put(landing, "a.csv", csv_text(HEADERS, ROWS).encode("utf-8"))
    _put(landing, "~$a.xlsx", b"\x00lock")  # Excel's lock file while someone has it open
    _put(landing, ".a.csv.swp", b"\x00swap")  # an editor's swap file


# --- cases -------------------------------------------------------------------------------


@dataclass
class Case:
    """One awkward delivery and what must come out of it."""

    name: str
    write: Callable[[Path], None]
    check: Callable[[IngestResult], None]
    source: dict[str, Any] = field(default_factory=dict)


def _check_three(result: IngestResult) -> None:
    assert _names(result) == [r[1] for r in ROWS]
    assert result.rows["phone"].tolist()[2] == "0106123456"  # leading zero kept
    assert result.quarantined_rows.empty and result.quarantined_files.empty


def _check_title_rows(result: IngestResult) -> None:
    _check_three(result)
    assert result.rows["source_row"].tolist() == [3, 4, 5]  # title, header on record 2


def _check_xlsx_row3(result: IngestResult) -> None:
    _check_three(result)
    assert result.rows["source_row"].tolist() == [4, 5, 6]  # the rows Excel shows


def _check_missing(result: IngestResult) -> None:
    assert result.rows.empty
    assert "customer_name" in result.quarantined_files["reason"].iloc[0]
    assert len(result.quarantined_rows) == 3  # the file's rows stay recoverable
    assert json.loads(result.quarantined_rows["raw_content"].iloc[0])["公司"] == ROWS[0][1]


def _check_optional_renamed(result: IngestResult) -> None:
    """A declared optional field the file lacks: kept rows, the field empty, and the user told
    which declared headers were not found (not only that 联系方式 went to `extra`)."""
    assert result.rows["source_record_id"].tolist() == ["K001", "K002", "K003"]
    assert result.rows["phone"].isna().all()
    notes = [w for w in result.warnings if "declared column(s) not found" in w]
    assert len(notes) == 1 and "phone (手机 / 手机号码 / 联系电话)" in notes[0]
    assert "联系方式" in notes[0]  # the file's headers, so the fix is obvious


def _check_extra(result: IngestResult) -> None:
    assert json.loads(result.rows["extra"].iloc[0]) == {"备注": "重点客户", "客户经理": "赵六"}
    assert any("备注" in w for w in result.warnings)


def _check_file_quarantined(fragment: str) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        assert result.rows.empty and result.quarantined_rows.empty
        assert fragment in result.quarantined_files["reason"].iloc[0]
        assert result.files[0].rows_read == 0

    return check


def _check_header_only(result: IngestResult) -> None:
    assert result.rows.empty and result.quarantined_files.empty
    assert any("no data rows" in w for w in result.warnings)


def _check_truncated(result: IngestResult) -> None:
    assert _names(result) == [ROWS[0][1], ROWS[1][1]]
    assert result.quarantined_rows["source_row"].tolist() == [4]
    assert "wrong column count" in _reasons(result)[0]
    assert result.quarantined_rows["raw_content"].iloc[0].startswith("K003,李娜")


def _check_undecodable(result: IngestResult) -> None:
    assert _names(result) == [r[1] for r in ROWS]
    assert _reasons(result) == ["undecodable bytes"]
    assert "\\x81" in result.quarantined_rows["raw_content"].iloc[0]


def _check_xlsx_numbers(result: IngestResult) -> None:
    assert result.rows["phone"].tolist()[0] == "13912345678"
    assert result.rows["source_record_id"].tolist() == ["K001", "1002"]
    extra = [json.loads(e)["证件号"] for e in result.rows["extra"]]
    assert extra == ["110101199001011200", "2024-03-01"]  # Excel kept 15 digits
    assert any("15 significant digits" in w for w in result.warnings)


def _check_csv_numbers(result: IngestResult) -> None:
    assert result.rows["phone"].tolist() == ["1.39123E+10", "0106123456"]  # verbatim
    assert any("scientific notation" in w for w in result.warnings)


def _check_formula(result: IngestResult) -> None:
    assert _names(result) == ['=HYPERLINK("http://x.cn","星辰")']
    assert result.rows["address"].tolist() == ["@SUM(A1)"]


def _check_keys(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["K001", "K002", "K002~2"]
    assert _reasons(result) == ["empty key: source_record_id", "duplicate of row 2"]
    assert result.quarantined_rows["source_row"].tolist() == [3, 4]
    assert any("~n suffix" in w for w in result.warnings)


def _check_blank(result: IngestResult) -> None:
    assert _names(result) == [ROWS[0][1], ROWS[1][1]]
    assert result.rows["source_row"].tolist() == [2, 4]


def _check_jsonl(result: IngestResult) -> None:
    assert _names(result) == [r[1] for r in ROWS]
    assert result.quarantined_rows["source_row"].tolist() == [3, 4]
    assert _reasons(result)[0].startswith("invalid JSON")
    assert _reasons(result)[1] == "not a JSON object but list"


def _check_json(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["K001", "1002", "K003"]
    assert json.loads(result.rows["extra"].iloc[0]) == {"标签": '["VIP","华北"]'}
    assert result.quarantined_rows["source_row"].tolist() == [4]


def _check_parquet(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["1001", "1002"]
    assert result.rows["phone"].tolist()[0] == "13912345678"
    assert result.rows["phone"].isna().tolist() == [False, True]
    assert json.loads(result.rows["extra"].iloc[1]) == {"签约日期": "2024-02-29"}


def _check_missing_jsonl(result: IngestResult) -> None:
    assert result.rows.empty
    assert "schema drift" in result.quarantined_files["reason"].iloc[0]
    assert result.quarantined_rows["source_row"].tolist() == [1, 2, 3]


def _check_concatenated(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["K001", "K002", "K003"]
    assert _names(result) == [r[1] for r in ROWS]
    assert result.quarantined_rows["source_row"].tolist() == [3, 5]
    assert _reasons(result) == [REPEATED_HEADER, REPEATED_HEADER]
    assert json.loads(result.quarantined_rows["raw_content"].iloc[0])["客户名称"] == "客户名称"


def _check_summary(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["K001", "K002", "K003", "K004"]
    assert _names(result)[3] == "合计科技有限公司"
    assert result.quarantined_rows["source_row"].tolist() == [6, 7, 8, 9, 10]
    assert _reasons(result) == [SUMMARY_ROW] * 5


def _check_id_pattern(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["K001", "K002", "K003"]
    assert result.quarantined_rows["source_row"].tolist() == [3, 5]
    assert _reasons(result) == ["id does not match id_pattern 'K\\\\d{3}'"] * 2


def _check_second_sheet(result: IngestResult) -> None:
    _check_three(result)
    assert result.rows["source_row"].tolist() == [2, 3, 4]
    assert any("客户数据" in w for w in result.warnings)


def _check_key_absent(result: IngestResult) -> None:
    assert result.rows["source_record_id"].tolist() == ["K001", "K002", "K003"]
    assert result.rows["customer_name"].isna().all()
    assert result.rows["phone"].tolist() == [r[3] for r in ROWS]
    assert result.quarantined_files.empty and result.quarantined_rows.empty
    assert any("read as missing values" in w for w in result.warnings)


def _ids(result: IngestResult) -> list[str]:
    return result.rows["source_record_id"].tolist()


def _check_ids_k1_k3(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert _names(result) == [r[1] for r in ROWS]
    assert result.quarantined_rows.empty and result.quarantined_files.empty


def _check_nul(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert _names(result)[0] == "北京星辰\x00科技有限公司"  # raw keeps it; cleaning strips it


def _check_trailing(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert result.quarantined_rows.empty and result.quarantined_files.empty
    assert all(json.loads(e) == {} for e in result.rows["extra"])  # the empty column is dropped


def _check_zero_records(result: IngestResult) -> None:
    assert result.rows.empty
    assert result.quarantined_rows["source_row"].tolist() == [2]
    assert _reasons(result) == [SUMMARY_ROW]
    assert result.quarantined_files.empty


def _check_xlsx_footer(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert result.quarantined_rows["source_row"].tolist() == [5]
    assert _reasons(result) == [SUMMARY_ROW]


def _check_xlsx_concatenated(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert result.quarantined_rows["source_row"].tolist() == [3]
    assert _reasons(result) == [REPEATED_HEADER]


def _check_interleaved(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert result.quarantined_rows["source_row"].tolist() == [3, 4, 7]
    assert _reasons(result) == [SUMMARY_ROW, REPEATED_HEADER, SUMMARY_ROW]


def _check_two_files(result: IngestResult) -> None:
    assert _ids(result) == ["K001", "K002", "K003"]
    assert result.rows["source_file"].tolist() == ["crm/2024-03-15/a.csv"] * 2 + [
        "crm/2024-03-15/b.csv"
    ]


def _check_only_the_export(result: IngestResult) -> None:
    _check_ids_k1_k3(result)
    assert [f.path for f in result.files] == ["crm/2024-03-15/a.csv"]


CASES = [
    Case("gbk_no_bom", gbk_no_bom, _check_three),
    Case("gb18030_rare_chars", gb18030_rare_chars, lambda r: _names(r)[0].startswith("𠮷")),
    Case("utf8_bom", utf8_bom, _check_three),
    Case("utf16_tab_crlf", utf16_tab, _check_three),
    Case("mixed_line_endings", mixed_line_endings, _check_three),
    Case(
        "quoted_newlines",
        quoted_newlines,
        lambda r: (
            _names(r)[0] == "北京星辰科技\n有限公司" and r.rows["address"][0] == "北京市,海淀区"
        ),
    ),
    Case("csv_title_rows", csv_title_rows, _check_title_rows),
    Case("xlsx_header_row_3_merged_title", xlsx_header_row_3, _check_xlsx_row3),
    Case("renamed_columns_aliases", renamed_columns, _check_three),
    Case(
        "fullwidth_spaced_headers",
        messy_headers,
        _check_three,
        {
            "columns": {
                "source_record_id": "客户编号",
                "customer_name": "客户名称",
                "phone": "手机",
                "email": "email",
            }
        },
    ),
    Case("missing_required_column", missing_required, _check_missing),
    Case("extra_columns", extra_columns, _check_extra),
    Case("optional_column_renamed", optional_column_renamed, _check_optional_renamed),
    Case("empty_file", empty_file, _check_file_quarantined("empty file")),
    Case("header_only", header_only, _check_header_only),
    Case("truncated_csv", truncated, _check_truncated),
    Case("undecodable_bytes", undecodable_bytes, _check_undecodable),
    Case("corrupt_xlsx", corrupt_xlsx, _check_file_quarantined("unreadable workbook")),
    Case("xlsx_mangled_numbers", xlsx_mangled_numbers, _check_xlsx_numbers),
    Case("csv_mangled_numbers", csv_mangled_numbers, _check_csv_numbers),
    Case("formula_like_cells", formula_like, _check_formula),
    Case("empty_keys_and_duplicates", empty_keys_and_duplicates, _check_keys),
    Case("blank_rows", blank_rows, _check_blank),
    Case("semicolon_delimiter", semicolons, _check_three),
    Case("jsonl_bad_lines", jsonl_bad_line, _check_jsonl),
    Case("json_array_in_object", json_array, _check_json),
    Case("parquet_typed_columns", parquet_typed, _check_parquet),
    Case("concatenated_exports_repeated_header", concatenated_exports, _check_concatenated),
    Case("summary_footer_rows", summary_footer_rows, _check_summary),
    Case("ids_off_id_pattern", ids_off_pattern, _check_id_pattern, {"id_pattern": r"K\d{3}"}),
    Case(
        "xlsx_readme_first_sheet_auto",
        xlsx_readme_first_sheet,
        _check_second_sheet,
        {"sheet": "auto"},
    ),
    Case(
        "xlsx_configured_sheet_missing",
        xlsx_readme_first_sheet,
        _check_second_sheet,
        {"sheet": "客户"},
    ),
    Case("jsonl_optional_key_absent", jsonl_key_absent, _check_key_absent),
    Case("jsonl_key_renamed_is_drift", jsonl_key_renamed, _check_missing_jsonl),
    Case("nul_bytes_in_cells", nul_bytes, _check_nul),
    Case("pipe_delimiter", pipe_delimiter, _check_ids_k1_k3),
    Case("trailing_delimiters", trailing_delimiters, _check_trailing),
    Case("jsonl_utf8_bom", jsonl_utf8_bom, _check_ids_k1_k3),
    Case("json_top_level_array", json_top_level_array, _check_ids_k1_k3),
    Case("footer_only_zero_records", footer_only_zero_records, _check_zero_records),
    Case("xlsx_summary_footer", xlsx_summary_footer, _check_xlsx_footer),
    Case("xlsx_concatenated_exports", xlsx_concatenated, _check_xlsx_concatenated),
    Case("xlsx_empty_sheet", xlsx_empty_sheet, _check_file_quarantined("empty sheet")),
    Case("tsv_utf8", tsv_utf8, _check_ids_k1_k3),
    Case("quoted_everything_crlf_bom", quoted_everything_crlf_bom, _check_ids_k1_k3),
    Case("ids_with_surrounding_spaces", ids_with_spaces, _check_ids_k1_k3),
    Case("two_files_two_encodings", two_files_two_encodings, _check_two_files),
    Case("headers_and_footers_interleaved", headers_and_footers_interleaved, _check_interleaved),
    Case("office_lock_and_hidden_files", office_lock_and_hidden_files, _check_only_the_export),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_awkward_delivery(case: Case, landing: Path) -> None:
    case.write(landing)
    result = run(make_source(**case.source), landing)  # run() asserts reconciliation
    outcome = case.check(result)
    assert outcome is None or outcome is True


def test_the_corpus_covers_at_least_40_kinds() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 40

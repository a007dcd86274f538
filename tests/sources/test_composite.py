"""Composite mappings: fields joined from several columns, combined cells parsed, attributes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sources import SourceConfigError, load_sources_config
from sources.combined import split_address_phone, split_bank_account
from tests.sources.conftest import csv_text, run

INVOICE_YAML = """
landing_dir: landing
sources:
  - name: crm
    department: 财务部
    path: "invoice/*.csv"
    columns:
      source_record_id: 客户编号
      customer_name: {join: [姓, 名], sep: ""}
      family_name: 姓
      given_name: 名
      id_number: 身份证号
    split:
      - {column: [地址电话, 地址、电话], kind: address_phone}
      - {column: 开户行及账号, kind: bank_account}
    attributes:
      wechat_id: [微信号, 微信]
"""

HEADERS = ["客户编号", "姓", "名", "身份证号", "地址电话", "开户行及账号", "微信号", "备注"]
ROWS = [
    [
        "A1",
        "张",
        "伟",
        "11010519491231002X",
        "北京市朝阳区建国路1号 010-65001234",
        "中国工商银行北京朝阳支行 0200 0012 3456 7890",
        "zhangwei88",
        "老客户",
    ],
    ["A2", "李", "娜", "", "上海市浦东新区世纪大道88号138****5678", "", "", ""],
    ["A3", "王", "", "", "", "", "wx_wang", ""],
]


def _write(tmp_path: Path, yaml_text: str = INVOICE_YAML) -> Path:
    folder = tmp_path / "landing" / "invoice"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2024-03-15.csv").write_text(csv_text(HEADERS, ROWS), encoding="utf-8")
    path = tmp_path / "sources.yml"
    path.write_text(yaml_text, encoding="utf-8")
    return path


def test_new_department_file_maps_by_configuration_alone(tmp_path: Path) -> None:
    config = load_sources_config(_write(tmp_path))
    result = run(config.sources[0], config.landing_dir)
    rows = result.rows.set_index("source_record_id")
    assert rows.loc["A1", "customer_name"] == "张伟"
    assert rows.loc["A3", "customer_name"] == "王"  # a blank part is skipped
    assert rows.loc["A1", "address"] == "北京市朝阳区建国路1号"
    assert rows.loc["A1", "phone"] == "010-65001234"
    assert rows.loc["A2", "phone"] == "138****5678"  # masked: kept as written for cleaning
    assert rows.loc["A2", "address"] == "上海市浦东新区世纪大道88号"
    first = json.loads(rows.loc["A1", "attributes"])
    assert first == {
        "bank_account": "020000123456789 0".replace(" ", ""),
        "bank_name": "中国工商银行北京朝阳支行",
        "wechat_id": "zhangwei88",
    }
    assert json.loads(rows.loc["A2", "attributes"]) == {}
    # only the truly unmapped column is left in extra
    assert json.loads(rows.loc["A1", "extra"]) == {"备注": "老客户"}


SPLIT_CASES = [
    {
        "text": "北京市海淀区中关村大街1号 010-62345678",
        "expected": ("北京市海淀区中关村大街1号", "010-62345678"),
    },
    {
        "text": "上海市浦东新区世纪大道88号13812345678",
        "expected": ("上海市浦东新区世纪大道88号", "13812345678"),
    },
    {
        "text": "广州市天河区体育西路1号 电话:020-87654321",
        "expected": ("广州市天河区体育西路1号", "020-87654321"),
    },
    {"text": "138****5678 深圳市南山区科技园", "expected": ("深圳市南山区科技园", "138****5678")},
    {"text": "杭州市西湖区文三路1号", "expected": ("杭州市西湖区文三路1号", None)},
    {"text": "0571-88886666", "expected": (None, "0571-88886666")},
    {"text": "", "expected": (None, None)},
]


@pytest.mark.parametrize("case", SPLIT_CASES, ids=[c["text"] or "blank" for c in SPLIT_CASES])
def test_address_phone_cell_splits(case: dict[str, object]) -> None:
    assert split_address_phone(case["text"]) == case["expected"]  # type: ignore[arg-type]


def test_bank_account_cell_splits() -> None:
    assert split_bank_account("招商银行上海分行121908765410301") == (
        "招商银行上海分行",
        "121908765410301",
    )
    assert split_bank_account("中国银行") == ("中国银行", None)


BAD = [
    (
        "attribute_named_like_a_field",
        INVOICE_YAML.replace("wechat_id:", "phone:"),
        "attributes",
        "canonical field",
    ),
    (
        "attribute_bad_name",
        INVOICE_YAML.replace("wechat_id:", "WeChat:"),
        "attributes",
        "lowercase",
    ),
    (
        "unknown_split_kind",
        INVOICE_YAML.replace("kind: bank_account", "kind: bank"),
        "split.1.kind",
        "Input should be",
    ),
    (
        "unknown_split_part",
        INVOICE_YAML.replace("kind: address_phone}", "kind: address_phone, into: {fax: phone}}"),
        "split.0",
        "cannot map part 'fax'",
    ),
    (
        "empty_join",
        INVOICE_YAML.replace('{join: [姓, 名], sep: ""}', "{join: []}"),
        "columns.customer_name",
        "at least 1",
    ),
    (
        "extra_as_column",
        INVOICE_YAML.replace("      id_number: 身份证号", "      wechat: 微信号"),
        "columns",
        "declare it under 'attributes:'",
    ),
]


@pytest.mark.parametrize(("text", "key", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_composite_mapping_names_file_source_and_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SourceConfigError) as error:
        load_sources_config(path)
    assert str(path) in str(error.value)
    assert "source 'crm'" in str(error.value)
    assert f"key '{key}" in str(error.value)
    assert message in str(error.value)


def test_required_name_is_covered_by_a_join(tmp_path: Path) -> None:
    config = load_sources_config(_write(tmp_path))
    assert "customer_name" in config.sources[0].required_fields()
    assert config.sources[0].has_id


def test_invoice_file_cleans_into_identity_and_masked_phone(tmp_path: Path) -> None:
    """The generated department file through ingest and cleaning: configuration only."""
    from cleaning import clean_records

    config = load_sources_config(_write(tmp_path))
    raw = run(config.sources[0], config.landing_dir).rows
    records = clean_records(raw).records.set_index("source_record_id")
    assert records.loc["A1", "phone"] == "+861065001234"
    assert records.loc["A1", "city"] == "北京市" and records.loc["A1", "district"] == "朝阳区"
    assert records.loc["A1", "id_number"] == "11010519491231002X"
    assert records.loc["A1", "gender"] == "F" and records.loc["A1", "birth_date"] == "1949-12-31"
    assert pd.isna(records.loc["A2", "phone"])
    assert records.loc["A2", "phone_masked"] == "138****5678"
    issues = {i["code"] for i in json.loads(records.loc["A2", "issues"])}
    assert "phone_masked" in issues and "phone_invalid" not in issues
    assert json.loads(records.loc["A3", "attributes"]) == {"wechat_id": "wx_wang"}

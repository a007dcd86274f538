"""sources.yml loading: the demo mapping loads; bad mappings fail naming file, source and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sources import CANONICAL_FIELDS, SourceConfigError, load_sources_config

DEMO_YAML = Path(__file__).parents[2] / "sources" / "sources.yml"

GOOD = """
landing_dir: landing
sources:
  - name: crm
    path: "crm/*.csv"
    columns: {source_record_id: 客户编号, customer_name: [客户名称, 客户全称]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "landing" / "crm").mkdir(parents=True, exist_ok=True)
    (tmp_path / "landing" / "crm" / "a.csv").write_text("客户编号,客户名称\n", encoding="utf-8")
    path = tmp_path / "sources.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_mapping_loads_with_the_three_departments() -> None:
    config = load_sources_config(DEMO_YAML, landing_dir=Path("/nowhere"), check_files=False)
    assert [s.name for s in config.sources] == ["sales", "service", "marketing"]
    sales = config.source("sales")
    assert sales.department == "销售部"
    aliases = sales.field_aliases()
    assert aliases["registered_date"][0] == "签约日期" == aliases["txn_date"][0]
    assert {"手机", "联系电话"} <= set(aliases["phone"])
    service = config.source("service")
    assert service.sheet == "工单" and service.header_row == "auto"
    assert service.field_aliases()["interaction_id"][0] == "工单号"
    assert set(config.source("marketing").field_aliases()) <= set(CANONICAL_FIELDS)


def test_relative_landing_dir_resolves_against_the_yaml(tmp_path: Path) -> None:
    config = load_sources_config(_write(tmp_path, GOOD))
    assert config.landing_dir == tmp_path / "landing"
    override = load_sources_config(_write(tmp_path, GOOD), landing_dir=tmp_path / "landing")
    assert override.landing_dir == tmp_path / "landing"


BAD_CASES = [
    ("unknown_field", GOOD.replace("customer_name:", "customer_nam:"), "columns", "customer_nam"),
    (
        "missing_required",
        GOOD.replace("customer_name: [客户名称, 客户全称]", "phone: 手机"),
        "columns.customer_name",
        "required field has no header mapping",
    ),
    ("duplicate_name", GOOD + GOOD.split("sources:")[1], "name", "duplicate source name"),
    ("glob_matches_nothing", GOOD.replace("crm/*.csv", "crm/*.xlsx"), "path", "matches no file"),
    (
        "bad_format",
        GOOD.replace('path: "crm/*.csv"', 'path: "crm/*.csv"\n    format: xlsb'),
        "format",
        "Input should be",
    ),
    (
        "bad_encoding",
        GOOD.replace('path: "crm/*.csv"', 'path: "crm/*.csv"\n    encoding: gbq'),
        "encoding",
        "unknown encoding",
    ),
    (
        "header_row_zero",
        GOOD.replace('path: "crm/*.csv"', 'path: "crm/*.csv"\n    header_row: 0'),
        "header_row",
        "1-based",
    ),
    (
        "bad_id_pattern",
        GOOD.replace('path: "crm/*.csv"', 'path: "crm/*.csv"\n    id_pattern: "KH[0-9{8}"'),
        "id_pattern",
        "invalid regular expression",
    ),
    (
        "id_pattern_without_id",
        GOOD.replace("source_record_id: 客户编号, ", "").replace(
            'path: "crm/*.csv"', 'path: "crm/*.csv"\n    id_pattern: "KH[0-9]{8}"'
        ),
        "id_pattern",
        "needs an id column",
    ),
    (
        "unknown_key",
        GOOD.replace('path: "crm/*.csv"', 'path: "crm/*.csv"\n    sheeet: 1'),
        "sheeet",
        "Extra inputs",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "message"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_mapping_names_file_source_and_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SourceConfigError) as error:
        load_sources_config(path)
    text_of_error = str(error.value)
    assert str(path) in text_of_error
    assert "source 'crm'" in text_of_error
    assert f"key '{key}" in text_of_error
    assert message in text_of_error


def test_glob_is_not_checked_when_asked_not_to(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("crm/*.csv", "crm/*.xlsx"))
    assert load_sources_config(path, check_files=False).sources[0].path == "crm/*.xlsx"


def test_missing_landing_dir_is_an_error_only_when_files_are_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("landing_dir: landing\n", ""))
    with pytest.raises(SourceConfigError, match="landing_dir"):
        load_sources_config(path)
    assert load_sources_config(path, check_files=False).sources[0].name == "crm"


def test_id_pattern_and_sheet_auto_load(tmp_path: Path) -> None:
    extra = '\n    id_pattern: "K[0-9]{3}"\n    sheet: auto'
    path = _write(tmp_path, GOOD.replace('path: "crm/*.csv"', 'path: "crm/*.csv"' + extra))
    source = load_sources_config(path).source("crm")
    assert source.id_pattern == "K[0-9]{3}" and source.sheet == "auto"

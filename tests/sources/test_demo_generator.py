"""Tests for the demo data generator: files, determinism, truth coverage and realistic noise."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from sources.demo import DemoFiles, generate_demo_data, write_demo, writers
from sources.demo.records import SourceTable

SALES_HEADERS = [
    "客户编号",
    "客户名称",
    "客户类型",
    "联系人",
    "手机",
    "邮箱",
    "地址",
    "所属行业",
    "统一社会信用代码",
    "签约日期",
    "合同编号",
    "合同金额",
    "更新时间",
]
SERVICE_HEADERS = [
    "工单号",
    "客户",
    "联系人姓名",
    "联系电话",
    "电子邮件",
    "所在省",
    "所在市",
    "详细地址",
    "行业",
    "工单日期",
    "渠道",
    "问题描述",
    "处理结果",
    "满意度",
]
MARKETING_KEYS = {
    "lead_id",
    "company",
    "contact",
    "mobile",
    "email",
    "city",
    "address",
    "industry",
    "created_at",
    "campaign",
    "channel",
    "customer_type",
}

# Independent GB 32100-2015 check (not the generator's code).
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def credit_code_valid(code: str) -> bool:
    """True when an 18-char code has only allowed characters and a correct check character."""
    if len(code) != 18 or any(c not in _ALPHABET for c in code):
        return False
    total = sum(_ALPHABET.index(c) * w for c, w in zip(code[:17], _WEIGHTS, strict=True))
    return _ALPHABET[(31 - total % 31) % 31] == code[17]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("91350100M000100Y43", True),  # published sample code
        ("91350100M000100Y44", False),  # wrong check character
        ("91350100M000100Y4", False),  # too short
        ("91350100M000100I43", False),  # I is not in the alphabet
    ],
)
def test_independent_credit_code_check(code: str, expected: bool) -> None:
    assert credit_code_valid(code) is expected


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DemoFiles]]:
    out = tmp_path_factory.mktemp("demo")
    yield out, write_demo(out, entities=1500, seed=7, delivery_date="2026-11-23")


def _read_sales(files: DemoFiles) -> pd.DataFrame:
    return pd.read_csv(files.sales_csv, encoding="gbk", dtype=str, keep_default_na=False)


def _read_service(files: DemoFiles) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(files.service_xlsx)).get_sheet_by_name("工单").to_python()


def _read_leads(files: DemoFiles) -> list[dict[str, object]]:
    text = files.marketing_jsonl.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def test_files_land_in_department_delivery_folders(demo_dir: tuple[Path, DemoFiles]) -> None:
    out, files = demo_dir
    assert files.sales_csv == out / "landing/sales/2026-11-23/crm_customers.csv"
    assert files.service_xlsx == out / "landing/service/2026-11-23/tickets.xlsx"
    assert files.marketing_jsonl == out / "landing/marketing/2026-11-23/leads.jsonl"
    assert files.truth_csv.exists() and files.entities_csv.exists()
    assert files.record_counts["entities"] == 1500


def test_same_seed_gives_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = write_demo(tmp_path / "a", entities=200, seed=3)
    b = write_demo(tmp_path / "b", entities=200, seed=3)
    c = write_demo(tmp_path / "c", entities=200, seed=4)
    for attr in ("sales_csv", "service_xlsx", "marketing_jsonl", "truth_csv", "entities_csv"):
        assert getattr(a, attr).read_bytes() == getattr(b, attr).read_bytes(), attr
    assert a.sales_csv.read_bytes() != c.sales_csv.read_bytes()


def test_sizes_scale_with_entities() -> None:
    small, large = generate_demo_data(entities=300, seed=1), generate_demo_data(1200, seed=1)
    assert len(small.entities) == 300 and len(large.entities) == 1200
    for demo, n in ((small, 300), (large, 1200)):
        per_entity = len(demo.truth) / n
        assert 2.1 <= per_entity <= 2.7, per_entity
        kinds = demo.entities["kind"].value_counts(normalize=True)
        assert 0.30 <= kinds["individual"] <= 0.40
        assert kinds["branch"] > 0
        assert demo.truth.groupby("entity_id")["source_system"].nunique().max() <= 3
    with pytest.raises(ValueError, match="at least 1"):
        generate_demo_data(entities=0)


def test_sales_csv_is_gbk_with_exact_headers(demo_dir: tuple[Path, DemoFiles]) -> None:
    _, files = demo_dir
    raw = files.sales_csv.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    sales = _read_sales(files)
    assert list(sales.columns) == SALES_HEADERS
    assert len(sales) == files.record_counts["sales"]
    assert sales["客户编号"].str.fullmatch(r"KH\d+").all()
    assert sales["客户编号"].is_unique
    assert {"NULL", ""} <= set(sales["邮箱"])  # the CRM's two ways of writing nothing


def test_service_xlsx_has_title_blank_row_and_header_on_row_3(
    demo_dir: tuple[Path, DemoFiles],
) -> None:
    _, files = demo_dir
    rows = _read_service(files)
    assert str(rows[0][0]).startswith("客服工单导出（2026年11月")
    assert all(v in ("", None) for v in rows[1])
    assert rows[2] == SERVICE_HEADERS
    data = rows[3:]
    assert len(data) == files.record_counts["service"]
    ids = [r[0] for r in data]
    assert all(re.fullmatch(r"GD\d{12}", str(i)) for i in ids) and len(set(ids)) == len(ids)
    ticket_dates = [r[SERVICE_HEADERS.index("工单日期")] for r in data]
    assert any(isinstance(d, dt.date) for d in ticket_dates)  # real date cells …
    assert any(isinstance(d, str) for d in ticket_dates)  # … and typed text
    phones = [r[SERVICE_HEADERS.index("联系电话")] for r in data]
    assert any(isinstance(p, float | int) for p in phones)  # Excel turned some into numbers


def test_service_rows_beyond_one_worksheet_are_refused_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = pd.DataFrame({h: ["x"] * 8 for h in SERVICE_HEADERS})
    table = SourceTable(frame=frame, entity=list(range(8)))
    created = dt.datetime(2026, 11, 1)
    monkeypatch.setattr(writers, "XLSX_MAX_ROWS", 3 + 8)  # a worksheet that just holds them
    assert writers.write_service_xlsx(table, tmp_path / "fits.xlsx", "t", created) == 8
    assert len(CalamineWorkbook.from_path(str(tmp_path / "fits.xlsx")).get_sheet_by_index(0)
               .to_python()) == 3 + 8  # fmt: skip
    monkeypatch.setattr(writers, "XLSX_MAX_ROWS", 3 + 7)  # one row too many: an error, no file
    with pytest.raises(ValueError, match="8 ticket rows do not fit on one worksheet"):
        writers.write_service_xlsx(table, tmp_path / "short.xlsx", "t", created)
    assert not (tmp_path / "short.xlsx").exists()


def test_leads_are_jsonl_with_optional_keys(demo_dir: tuple[Path, DemoFiles]) -> None:
    _, files = demo_dir
    leads = _read_leads(files)
    assert len(leads) == files.record_counts["marketing"]
    assert all(set(lead) <= MARKETING_KEYS for lead in leads)
    assert any(set(lead) != MARKETING_KEYS for lead in leads)
    ids = [lead["lead_id"] for lead in leads]
    assert all(re.fullmatch(r"L\d+", str(i)) for i in ids) and len(set(ids)) == len(ids)
    created = [lead["created_at"] for lead in leads]
    assert any(isinstance(c, int) for c in created)
    assert any(isinstance(c, str) and c.endswith("+08:00") for c in created)


def test_truth_covers_every_written_record_once(demo_dir: tuple[Path, DemoFiles]) -> None:
    _, files = demo_dir
    truth = pd.read_csv(files.truth_csv, dtype=str)
    entities = pd.read_csv(files.entities_csv, dtype=str)
    written = (
        [("sales", i) for i in _read_sales(files)["客户编号"]]
        + [("service", str(r[0])) for r in _read_service(files)[3:]]
        + [("marketing", str(lead["lead_id"])) for lead in _read_leads(files)]
    )
    keys = list(zip(truth["source_system"], truth["source_record_id"], strict=True))
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted(written)
    assert set(truth["entity_id"]) <= set(entities["entity_id"])
    assert entities["entity_id"].is_unique


def test_credit_codes_are_valid_except_deliberate_typos() -> None:
    demo = generate_demo_data(entities=3000, seed=11)
    ents = demo.entities
    enterprise_codes = ents.loc[ents["customer_type"] == "enterprise", "credit_code"]
    assert enterprise_codes.notna().all() and enterprise_codes.is_unique
    assert all(credit_code_valid(c) for c in enterprise_codes)
    assert ents.loc[ents["customer_type"] == "individual", "credit_code"].isna().all()

    sales = demo.sales.merge(
        demo.truth[demo.truth["source_system"] == "sales"],
        left_on="客户编号",
        right_on="source_record_id",
    ).merge(ents, on="entity_id")
    typed = sales["统一社会信用代码"].fillna("NULL")
    given = sales[typed != "NULL"]
    assert (given["customer_type"] == "enterprise").all()  # never for individuals
    same = given["统一社会信用代码"].str.upper() == given["credit_code"]
    wrong = given.loc[~same, "统一社会信用代码"]
    assert len(wrong) > 0 and not any(credit_code_valid(c.upper()) for c in wrong)
    assert same.mean() > 0.95  # most codes are typed right


def test_branches_are_distinct_entities_from_their_hq() -> None:
    ents = generate_demo_data(entities=2000, seed=5).entities
    hq = ents[ents["kind"] == "hq"].set_index("name")
    branches = ents[ents["kind"] == "branch"]
    assert len(branches) > 20
    for row in branches.itertuples():
        assert row.name.endswith("分公司")
        parents = [n for n in hq.index if row.name.startswith(n)]
        assert parents, row.name
        parent = hq.loc[parents[0]]
        assert parent["entity_id"] != row.entity_id
        assert parent["credit_code"] != row.credit_code
        assert parent["city"] != row.city


def test_hard_negatives_share_names_but_not_identity() -> None:
    ents = generate_demo_data(entities=3000, seed=5).entities
    people = ents[ents["kind"] == "individual"]
    same_city = people.groupby(["name", "city"])["entity_id"].nunique()
    assert (same_city > 1).sum() >= 3  # e.g. two different 张伟 in 北京市
    clash = people[people.duplicated(["name", "city"], keep=False)]
    assert (
        clash.groupby(["name", "city"])["phone"]
        .nunique()
        .eq(clash.groupby(["name", "city"]).size())
        .all()
    )  # … with different phones
    companies = ents[ents["kind"] == "hq"]
    core = [
        re.sub(
            r"(股份有限公司|有限责任公司|有限公司)$", "", name.replace(city[:-1], "", 1)
        ).replace("（）", "")
        for name, city in zip(companies["name"], companies["city"], strict=True)
    ]
    same_core = companies.assign(core=core).groupby("core")["city"].nunique()
    assert (same_core > 1).sum() >= 5  # e.g. 北京华信科技 and 上海华信科技: different companies


def test_records_are_noisy_but_recognisable() -> None:
    demo = generate_demo_data(entities=2000, seed=9)
    svc = demo.service.merge(
        demo.truth[demo.truth["source_system"] == "service"],
        left_on="工单号",
        right_on="source_record_id",
    ).merge(demo.entities, on="entity_id")
    exact = (svc["客户"] == svc["name"]).mean()
    assert 0.3 < exact < 0.95  # re-typed with variation, not copied verbatim
    enterprises = svc[svc["customer_type"] == "enterprise"]
    sales = demo.sales
    phones = pd.concat([sales["手机"], demo.service["联系电话"], demo.marketing["mobile"]]).dropna()
    assert phones.str.contains("转|ext", regex=True).any()
    assert phones.str.startswith("+86").any() and phones.str.contains("１").any()
    assert demo.service["所在省"].isin(["无", "-", "/"]).any()
    assert sales["签约日期"].dropna().str.fullmatch(r"\d{2}/\d{2}/\d{4}").any()
    assert enterprises["客户"].str.contains("（|\\(", regex=True).any()
    assert sales["合同金额"].dropna().str.contains("万|￥|,", regex=True).any()


def test_each_source_keeps_one_day_month_order() -> None:
    demo = generate_demo_data(entities=1500, seed=2)
    sales_slash = demo.sales["签约日期"].dropna().loc[lambda s: s.str.contains("/")]
    parsed = pd.to_datetime(sales_slash, format="%d/%m/%Y", errors="coerce")
    assert parsed.notna().all()  # the CRM always writes day first
    service_text = demo.service["工单日期"].dropna().loc[lambda s: s.str.contains("/")]
    assert service_text.str.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}").all()  # year first


def test_english_company_names_stay_distinct_beyond_the_word_lists() -> None:
    """At millions of entities the English name combinations run out: names get numbered."""
    import random

    from sources.demo.entities import CITIES, _english_names

    cities = list(CITIES)[:3]
    names = _english_names(random.Random(1), [cities[i % 3] for i in range(30_000)], 30_000)
    texts = [name for name, _ in names]
    assert len(set(texts)) == 30_000
    assert any(any(ch.isdigit() for ch in t) for t in texts)  # some draws were all taken


def test_no_contract_is_signed_after_the_export(demo_dir: tuple[Path, DemoFiles]) -> None:
    """A re-entered customer's second contract is weeks to years later, but never after the
    export's newest day (it made the quickstart's not-in-the-future checks warn)."""
    _, files = demo_dir
    sales = _read_sales(files)
    years = sales["合同编号"].str.extract(r"^HT(\d{4})", expand=False).dropna().astype(int)
    assert len(years) > 0
    assert years.max() <= 2026

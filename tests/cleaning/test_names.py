"""Labelled company and person names: match key, region, branch, legal form; titles split off."""

from __future__ import annotations

import pytest

from cleaning import parse_company_name, split_person_name

# (raw, name_key, region, branch, legal_form)
COMPANIES: list[tuple[str, str, str | None, str | None, str | None]] = [
    ("华为技术有限公司", "华为技术", None, None, "有限公司"),
    ("华为技术有限公司上海分公司", "华为技术", None, "上海分公司", "有限公司"),
    ("华为技术有限公司（上海分公司）", "华为技术", None, "上海分公司", "有限公司"),
    ("华为上海办事处", "华为", None, "上海办事处", None),
    ("深圳市腾讯计算机系统有限公司", "腾讯计算机系统", "深圳市", None, "有限公司"),
    ("阿里巴巴（中国）有限公司", "阿里巴巴", "中国", None, "有限公司"),
    ("阿里巴巴(中国)有限公司", "阿里巴巴", "中国", None, "有限公司"),
    ("北京某某（上海）科技有限公司", "某某科技", "北京/上海", None, "有限公司"),
    ("广东省深圳市某某贸易有限公司", "某某贸易", "广东省深圳市", None, "有限公司"),
    ("北京银行股份有限公司", "北京银行", None, None, "股份有限公司"),
    ("招商银行股份有限公司北京分行", "招商银行", None, "北京分行", "股份有限公司"),
    ("中国工商银行北京海淀支行", "中国工商银行", None, "北京海淀支行", None),
    ("中国平安保险（集团）股份有限公司", "中国平安保险", None, None, "(集团)股份有限公司"),
    ("小米科技有限责任公司", "小米科技", None, None, "有限责任公司"),
    ("臺灣積體電路製造股份有限公司", "积体电路制造", "台湾", None, "股份有限公司"),
    ("  上海  某某  实业有限公司 ", "某某实业", "上海", None, "有限公司"),
    ("杭州某某网络科技有限公司滨江营业部", "某某网络科技", "杭州", "滨江营业部", "有限公司"),
    ("某某控股集团有限公司", "某某", None, None, "控股集团有限公司"),
    ("某某律师事务所（特殊普通合伙）", "某某律师事务所", None, None, "(特殊普通合伙)"),
    ("ACME Co., Ltd.", "acme", None, None, "Co., Ltd"),
    ("ＡＣＭＥ　Ｃｏ．，Ｌｔｄ．", "acme", None, None, "Co.,Ltd"),
    ("Acme Inc.", "acme", None, None, "Inc"),
    ("Acme Corporation", "acme", None, None, "Corporation"),
    ("Acme Trading LLC", "acmetrading", None, None, "LLC"),
    ("Siemens AG", "siemens", None, None, "AG"),
    ("Apple Inc. Shanghai Branch", "apple", None, "Shanghai Branch", "Inc"),
    ("Foo Bar GmbH", "foobar", None, None, "GmbH"),
    ("Acme (Shanghai) Co., Ltd.", "acme", "Shanghai", None, "Co., Ltd"),
    ("Acme (China) Co., Ltd.", "acme", "China", None, "Co., Ltd"),
    ("Acme (Hong Kong) Limited", "acme", "Hong Kong", None, "Limited"),
    # a place name is the region only when a 字号 of two or more characters follows it: in
    # 金华拓供应链 (金华 is also a city) and 新星投资 (新星 a district) it is the 字号 itself
    ("金华拓供应链股份有限公司", "金华拓供应链", None, None, "股份有限公司"),
    ("广东省金华拓供应链股份有限公司", "金华拓供应链", "广东省", None, "股份有限公司"),
    ("金华拓供应链（广州）股份有限公司", "金华拓供应链", "广州", None, "股份有限公司"),
    ("新星投资有限公司", "新星投资", None, None, "有限公司"),
    ("上海电气集团股份有限公司", "上海电气", None, None, "集团股份有限公司"),
    ("南京航德科技有限公司", "航德科技", "南京", None, "有限公司"),
]


@pytest.mark.parametrize(("raw", "key", "region", "branch", "form"), COMPANIES)
def test_company_name(raw: str, key: str, region: str | None, branch: str | None,
                      form: str | None) -> None:  # fmt: skip
    parsed = parse_company_name(raw)
    assert (parsed.name_key, parsed.region, parsed.branch, parsed.legal_form) == (
        key,
        region,
        branch,
        form,
    )


def test_display_keeps_legal_name() -> None:
    assert parse_company_name("華為技術有限公司　").display == "华为技术有限公司"
    assert parse_company_name(None).name_key is None


def test_branch_and_headquarters_share_key_but_not_branch() -> None:
    hq = parse_company_name("招商银行股份有限公司")
    br = parse_company_name("招商银行股份有限公司上海分行")
    assert hq.name_key == br.name_key and hq.branch is None and br.branch == "上海分行"


PERSONS: list[tuple[str, str | None, str | None]] = [
    ("张伟", "张伟", None),
    ("张 伟", "张伟", None),
    ("张伟经理", "张伟", "经理"),
    ("王女士", "王", "女士"),
    ("陈先生", "陈", "先生"),
    ("李总", "李", "总"),
    ("刘副总经理", "刘", "副总经理"),
    ("赵 老师", "赵", "老师"),
    ("张伟(销售经理)", "张伟", "销售经理"),
    ("张伟（采购）", "张伟", "采购"),
    ("张伟 - 采购经理", "张伟", "采购经理"),
    ("经理", None, "经理"),
    ("欧阳娜娜", "欧阳娜娜", None),
    ("張偉", "张伟", None),
    ("Mr. JOHN SMITH", "John Smith", "Mr"),
    ("Mr John Smith", "John Smith", "Mr"),
    ("Dr Jane Doe", "Jane Doe", "Dr"),
    ("Ms. 李娜", "李娜", "Ms"),
    ("Smith, John", "John Smith", None),
    ("john smith", "John Smith", None),
    ("John Smith Jr.", "John Smith", "Jr"),
    ("Mary-Jane O'Neil", "Mary-Jane O'Neil", None),
]


@pytest.mark.parametrize(("raw", "name", "title"), PERSONS)
def test_person_name(raw: str, name: str | None, title: str | None) -> None:
    assert split_person_name(raw) == (name, title)

"""Places of customers: region names, division codes, landline area codes, office qualifiers."""

from __future__ import annotations

import pytest

from cleaning.company import branch_place, looks_like_organisation, parse_company_name
from cleaning.divisions import place_of_code, place_of_name
from cleaning.phone import landline_place


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("深圳", "4403"),
        ("广东省深圳市", "4403"),
        ("江苏省", "32"),
        ("北京", "1101"),  # municipalities are their own city
        ("重庆市", "5001"),
        ("浦东新区", "3101"),  # a district names its city
        ("朝阳区", None),  # 朝阳区 is in 北京 and in 长春: ambiguous
        ("湖南省长沙市、湘潭市、株州市", "43"),  # several cities: the province
        ("火星", None),
        (None, None),
    ],
)
def test_place_of_name(text, expected) -> None:
    assert place_of_name(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [("330106", "3301"), ("330100", "3301"), ("440000", "44"), ("110105", "1101"), ("x", None)],
)
def test_place_of_code(code, expected) -> None:
    assert place_of_code(code) == expected


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+8657112345678", "3301"),  # 0571 杭州
        ("+861062345678", "1101"),  # 010 北京
        ("+8659212345678", "3502"),  # 0592 厦门 (7-digit local numbers)
        ("+8613912345678", None),  # a mobile says nothing about a company's seat
        ("+864001234567", None),  # 400 hotline
        ("+12125551234", None),
        (None, None),
    ],
)
def test_landline_place(phone, expected) -> None:
    assert landline_place(phone) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("恒丰集团有限公司北京分公司", ("1101", False)),
        ("恒丰集团有限公司(北京)", ("1101", True)),  # a qualifier, not part of the legal name
        ("恒丰(北京)科技有限公司", (None, False)),  # region inside a registered name
        ("天源厦门分公司", ("3502", False)),
        ("某某银行营业部", ("营业部", False)),  # a branch without a place keeps its text
        ("恒丰集团有限公司", (None, False)),
    ],
)
def test_branch_place(name, expected) -> None:
    parsed = parse_company_name(name)
    assert branch_place(parsed.display, parsed.branch) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("聚达建筑工程", True),  # trade ending without legal form
        ("中远实业", True),
        ("华信科技有限公司", True),
        ("王建工", False),  # a person
        ("张伟", False),
        ("科技", False),  # too short to be a name with a trade
    ],
)
def test_looks_like_organisation(name, expected) -> None:
    assert looks_like_organisation(name) is expected


@pytest.mark.parametrize(
    ("name", "key", "branch"),
    [
        ("拓鼎集团厦门分公 司", "拓鼎", "厦门分公司"),  # a stray space inside Chinese text
        ("南京航德", "航德", None),  # region + trade name: a short form
    ],
)
def test_company_name_short_forms_and_stray_spaces(name, key, branch) -> None:
    parsed = parse_company_name(name)
    assert (parsed.name_key, parsed.branch) == (key, branch)


@pytest.mark.parametrize(
    ("address", "city"),
    [
        ("南京街43号", None),  # a street named after a city is not the city
        ("北京西路100号", None),
        ("上海市普陀区南京街43号", "上海市"),
        ("南京市鼓楼区中山路1号", "南京市"),
    ],
)
def test_streets_named_after_places(address, city) -> None:
    from cleaning.address import parse_address

    assert parse_address(address).city == city

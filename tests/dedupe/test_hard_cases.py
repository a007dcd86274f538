"""Hard negatives stay apart, strong identity evidence links (table-driven, one pair per case)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedupe.comparisons import COMPARISONS, PairContext, sufficient, uncorroborated
from dedupe.prepare import prepare_records
from dedupe.rules import hard_rule_reasons
from dedupe.similarity import one_slip, score_pairs_of_values
from tests.dedupe.conftest import record

PERSON = {
    "customer_type": "individual",
    "contact_name": None,
    "email": None,
    "email_domain": None,
    "address": None,
}

CASES = [
    # (left overrides, right overrides, expected hard rule or None)
    # a bracketed place after the legal form names the office, as 北京分公司 does
    (
        {"customer_name": "恒丰集团有限公司(北京)", "name_key": "恒丰", "branch": None},
        {"customer_name": "恒丰集团有限公司北京分公司", "name_key": "恒丰", "branch": "北京分公司"},
        None,
    ),
    (
        {"customer_name": "恒丰集团有限公司(上海)", "name_key": "恒丰", "branch": None},
        {"customer_name": "恒丰集团有限公司北京分公司", "name_key": "恒丰", "branch": "北京分公司"},
        "branch_conflict",
    ),
    # the qualifier is compatible with the head office, a real branch is not
    (
        {"customer_name": "恒丰集团有限公司(北京)", "name_key": "恒丰", "branch": None},
        {"customer_name": "恒丰集团有限公司", "name_key": "恒丰", "branch": None},
        None,
    ),
    (
        {"customer_name": "恒丰集团有限公司", "name_key": "恒丰", "branch": None},
        {"customer_name": "恒丰集团有限公司北京分公司", "name_key": "恒丰", "branch": "北京分公司"},
        "branch_conflict",
    ),
    # shared switchboard / bookkeeping agent: two firms with unrelated names, same phone
    ({}, {"name_key": "恒辰贸易", "customer_name": "恒辰贸易有限公司"}, "name_conflict"),
    # a look-alike typo is not a conflict (凯夭 / 凯天数据)
    ({"name_key": "凯天数据"}, {"name_key": "凯夭"}, None),
    # family: two people, one home phone and address, different full names
    ({**PERSON, "name_key": "李志子"}, {**PERSON, "name_key": "李强红"}, "name_conflict"),
    # a person and a company share a phone: the lead of the company's contact, left to the model
    ({**PERSON, "name_key": "王伟"}, {}, None),
    # city twins: same trade name, other city
    ({}, {"city": "上海市", "province": "上海市", "district": "浦东新区"}, "place_conflict"),
    # a province-only place is compatible with its cities
    ({"city": None, "province": "北京市", "district": None}, {}, None),
]


@pytest.mark.parametrize(("left", "right", "expected"), CASES)
def test_hard_rules(left: dict, right: dict, expected: str | None) -> None:
    rows = [record(record_key="a:1", **left), record(record_key="b:1", **right)]
    prepared = prepare_records(pd.DataFrame(rows))
    ctx = PairContext(prepared, np.array([0]), np.array([1]))
    assert hard_rule_reasons(ctx, merge_branches=False)[0] == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("凯夭", "凯天数据", 1.0),  # aligned at the start, one character off
        ("西按信讯食品", "新讯食品", 1.0),  # aligned at the end
        ("创泰", "添津创泰网络科技", 1.0),  # contained
        ("孙亥", "孙海", 1.0),
        ("李志子", "李强红", 0.0),
        ("信泰医药", "恒辰贸易", 0.0),
        ("a", "ab", 0.0),  # too short to tell
    ],
)
def test_one_slip_bulk_equals_reference(a: str, b: str, expected: float) -> None:
    assert one_slip(a, b) == expected
    assert score_pairs_of_values("one_slip", [a], [b])[0] == expected


def test_look_alike_name_alone_cannot_match() -> None:
    rows = [
        record(record_key="a:1", name_key="泰聚网络科技", phone=None, email=None, address=None),
        record(
            record_key="b:1",
            name_key="太聚网络科技",
            phone=None,
            email=None,
            contact_name=None,
            address=None,
        ),
        record(record_key="c:1", name_key="太聚网络科技", email=None, address=None),
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    ctx = PairContext(prepared, np.array([0, 0]), np.array([1, 2]))
    comps = [COMPARISONS[n] for n in ("name_key", "phone", "email", "contact_name", "place")]
    levels = {c.name: c.evaluate(ctx) for c in comps}
    assert COMPARISONS["name_key"].labels[levels["name_key"][0]] == "same_pinyin"
    # a–b: only the look-alike name and the city; a–c: the same contact person too
    assert uncorroborated(levels, comps).tolist() == [True, False]


def test_bookkeeping_agents_mailbox_is_no_ones_identity() -> None:
    # three small firms give their bookkeeping agent's (代账公司) e-mail; a fourth record of one
    # of them has no name: the mailbox must not make it a match on its own
    agent = {"email": "daizhang@caishui.cn", "email_domain": "caishui.cn", "phone": None}
    rows = [
        record(record_key="a:1", name_key="华信科技", **agent),
        record(record_key="b:1", name_key="远东物流", **agent),
        record(record_key="c:1", name_key="金飞电子", **agent),
        record(record_key="d:1", name_key=None, customer_name=None, **agent),
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    ctx = PairContext(prepared, np.array([0, 0]), np.array([1, 3]))
    email = COMPARISONS["email"]
    assert [email.labels[c] for c in email.evaluate(ctx)] == ["exact_shared", "exact_shared"]
    assert hard_rule_reasons(ctx, merge_branches=False).tolist() == ["name_conflict", None]


def test_a_persons_name_with_one_holder_stands_alone_a_shared_one_does_not() -> None:
    # 韦思远: three departments' records that never disagree (one phone, one mailbox, one
    # city) — one person, even the ticket with nothing but the name. 王磊: two phones in two
    # cities carry the name, so a record with only the name could be either of them.
    person = {
        **PERSON,
        "customer_name": None,
        "phone": None,
        "city": None,
        "province": None,
        "district": None,
    }
    rows = [
        record(record_key="a:1", name_key="韦思远", **{**person, "phone": "+8613911112222"}),
        record(record_key="b:1", name_key="韦思远", **person),
        record(
            record_key="c:1",
            name_key="韦思远",
            **{**person, "email": "wsy@qq.com", "city": "成都市", "province": "四川省"},
        ),
        record(
            record_key="d:1",
            name_key="王磊",
            **{**person, "phone": "+8613933334444", "city": "北京市", "province": "北京市"},
        ),
        record(
            record_key="e:1",
            name_key="王磊",
            **{**person, "phone": "+8613955556666", "city": "成都市", "province": "四川省"},
        ),
        record(record_key="f:1", name_key="王磊", **person),
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    assert prepared["name_one_holder"].tolist() == [True, True, True, False, False, False]
    ctx = PairContext(prepared, np.array([0, 0, 1, 3, 4]), np.array([1, 2, 2, 5, 5]))
    comps = [COMPARISONS[n] for n in ("name_key", "phone", "email", "contact_name", "place")]
    levels = {c.name: c.evaluate(ctx) for c in comps}
    labels = [COMPARISONS["name_key"].labels[c] for c in levels["name_key"]]
    assert labels == ["exact_sole_holder"] * 3 + ["exact"] * 2
    assert sufficient(levels, comps).tolist() == [True, True, True, False, False]


def test_a_persons_mobile_and_home_landline_are_one_holder_two_mobiles_are_not() -> None:
    # 郭刚杰: a marketing lead with a home landline in 成都, a service ticket with a mobile —
    # one person (a mobile and a landline are not a disagreement). 肖博博: two different
    # mobiles carry the name — two people; so do two landlines (何林欣).
    person = {
        **PERSON,
        "customer_name": None,
        "phone": None,
        "city": None,
        "province": None,
        "district": None,
    }
    rows = [
        record(
            record_key="a:1",
            name_key="郭刚杰",
            **{**person, "phone": "+862864730831", "city": "成都市", "province": "四川省"},
        ),
        record(record_key="a:2", name_key="郭刚杰", **{**person, "phone": "+8618918668589"}),
        record(record_key="b:1", name_key="肖博博", **{**person, "phone": "+8613638485406"}),
        record(record_key="b:2", name_key="肖博博", **{**person, "phone": "+8617638485406"}),
        record(record_key="c:1", name_key="何林欣", **{**person, "phone": "+862132211069"}),
        record(record_key="c:2", name_key="何林欣", **{**person, "phone": "+862164730831"}),
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    assert prepared["name_one_holder"].tolist() == [True, True, False, False, False, False]
    ctx = PairContext(prepared, np.array([0, 2, 4]), np.array([1, 3, 5]))
    name = COMPARISONS["name_key"]
    labels = [name.labels[c] for c in name.evaluate(ctx)]
    assert labels == ["exact_sole_holder", "exact", "exact"]
    assert sufficient({name.name: name.evaluate(ctx)}, [name]).tolist() == [True, False, False]

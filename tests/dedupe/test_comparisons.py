"""Table-driven tests of comparison levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedupe.comparisons import COMPARISONS, PairContext
from dedupe.prepare import prepare_records
from tests.dedupe.conftest import record

CASES = [
    # (comparison, left overrides, right overrides, expected level label)
    ("name_key", {}, {}, "exact_org"),
    # a person's name agreement is its own level (张伟 is shared by strangers, 华信科技 is not)
    (
        "name_key",
        {"customer_type": "individual", "name_key": "张伟"},
        {"customer_type": "individual", "name_key": "张伟", "phone": "+8613800000000"},
        "exact",
    ),
    # …and when no record of the name disagrees with another (one phone, one mailbox, one
    # city among them all), one person holds it: the agreement stands alone
    (
        "name_key",
        {"customer_type": "individual", "name_key": "张伟"},
        {"customer_type": "individual", "name_key": "张伟", "phone": None},
        "exact_sole_holder",
    ),
    # the trade name sounds the same (诚星 / 成星投资), a short form keeps the trade name
    ("name_key", {"name_key": "诚星"}, {"name_key": "成星投资"}, "brand_sound"),
    ("name_key", {"name_key": "金飞"}, {"name_key": "金飞电子"}, "brand_sound"),
    ("name_key", {"name_key": "金"}, {"name_key": "金飞电子"}, "prefix"),
    # a person's lead naming the contact of a company's record
    (
        "name_key",
        {"customer_type": "individual", "name_key": "王伟", "contact_name": None},
        {"contact_name": "王伟"},
        "person_is_contact",
    ),
    ("name_key", {}, {"name_key": "华信科枝"}, "brand_sound"),
    ("name_key", {"name_key": "张伟"}, {"name_key": "张玮"}, "same_pinyin"),
    ("name_key", {}, {"name_key": "远东物流"}, "else"),
    ("name_key", {}, {"name_key": None}, "null"),
    ("name_key", {"name_key": "Acme Trading"}, {"name_key": "Acme Tradng"}, "jw>=0.92"),
    ("phone", {}, {}, "exact_mobile"),
    ("phone", {"phone": "+861062345678"}, {"phone": "+861062345678"}, "exact"),
    ("phone", {"phone_shared": True}, {"phone_shared": True}, "exact_shared"),
    ("phone", {}, {"phone": "+8613900000000"}, "else"),
    ("phone", {"phone": None}, {}, "null"),
    ("email", {}, {}, "exact"),
    ("email", {}, {"email": "li@huaxin.cn"}, "same_company_domain"),
    (
        "email",
        {"email": "a@qq.com", "email_domain": "qq.com", "email_is_free": True},
        {"email": "b@qq.com", "email_domain": "qq.com", "email_is_free": True},
        "else",
    ),
    (
        "credit_code",
        {"credit_code": "91110108MA01ABCD1X", "credit_code_valid": True},
        {"credit_code": "91110108MA01ABCD1X", "credit_code_valid": True},
        "exact",
    ),
    (
        "credit_code",
        {"credit_code": "91110108MA01ABCD1X", "credit_code_valid": True},
        {"credit_code": "91310000MA1FL0001Y", "credit_code_valid": True},
        "both_valid_differ",
    ),
    (
        "credit_code",
        {"credit_code": "91110108MA01ABCD1X", "credit_code_valid": True},
        {"credit_code": "91110108MA01ABCD2X", "credit_code_valid": False},
        "ratio>=0.88",
    ),
    ("contact_name", {}, {"contact_name": "王玮"}, "close"),
    ("contact_name", {}, {"contact_name": "李娜"}, "else"),
    ("location", {}, {}, "city_district"),
    ("location", {}, {"district": "朝阳区"}, "city"),
    ("location", {}, {"city": "上海市", "province": "上海市", "district": "浦东新区"}, "else"),
    ("location", {"city": None}, {}, "null"),
    # place: address city, else the region in the name, else a landline's area code
    ("place", {}, {}, "city_district"),
    ("place", {}, {"district": "朝阳区"}, "city"),
    ("place", {}, {"city": "上海市", "province": "上海市", "district": "浦东新区"}, "else"),
    (
        "place",
        {"city": None, "province": None, "district": None, "phone": "+861062345678"},
        {},
        "city",
    ),
    (
        "place",
        {"city": None, "province": None, "district": None, "name_region": "北京"},
        {},
        "city",
    ),
    (
        "place",
        {"city": None, "province": "广东省", "district": None},
        {"city": "深圳市", "province": "广东省"},
        "province_city_unknown",
    ),
    (
        "place",
        {"city": "广州市", "province": "广东省", "district": None},
        {"city": "深圳市", "province": "广东省"},
        "province",
    ),
    ("place", {"city": None, "province": None, "district": None, "phone": None}, {}, "null"),
    ("address", {}, {"address": "海淀区中关村大街1号院"}, "ratio>=0.90"),
    ("customer_type", {}, {"customer_type": "individual"}, "else"),
    # romanized name in Western order vs the Chinese name (梁浩 = Liang Hao = "Hao Liang")
    ("name_key", {"name_key": "梁浩"}, {"name_key": "hao liang"}, "pinyin_reordered"),
    ("name_key", {"name_key": "梁浩"}, {"name_key": "hao liu"}, "else"),
    # a contact recorded by surname only (刘经理 → 刘) vs the full name
    ("contact_name", {"contact_name": "刘"}, {"contact_name": "刘浩然"}, "surname_only"),
    ("contact_name", {"contact_name": "刘"}, {"contact_name": "王浩然"}, "else"),
    # a short street address inside the full one with province/city/building
    (
        "address",
        {"address": "长江街107号"},
        {"address": "天津市南开区长江街107号长江商务中心1818室"},
        "contained",
    ),
    ("address", {"address": "长江街107号"}, {"address": "黄河路23号"}, "else"),
    # placeholders are no values: "NULL" credit codes, "-" contacts never agree
    ("credit_code", {"credit_code": "NULL"}, {"credit_code": "NULL"}, "null"),
    ("contact_name", {"contact_name": "-"}, {"contact_name": "-"}, "null"),
    ("contact_name", {"contact_name": "无"}, {}, "null"),
]


@pytest.mark.parametrize(("name", "left", "right", "expected"), CASES)
def test_comparison_levels(name: str, left: dict, right: dict, expected: str) -> None:
    rows = [record(record_key="a:1", **left), record(record_key="b:1", **right)]
    prepared = prepare_records(pd.DataFrame(rows))
    ctx = PairContext(prepared, np.array([0]), np.array([1]))
    comp = COMPARISONS[name]
    assert comp.labels[int(comp.evaluate(ctx)[0])] == expected


def test_similarity_is_computed_once_per_distinct_pair() -> None:
    names = ["华信科技" if i % 2 else "华信科枝" for i in range(6)]
    rows = [record(record_key=f"k{i}", name_key=name) for i, name in enumerate(names)]
    prepared = prepare_records(pd.DataFrame(rows))
    left, right = np.array([0, 0, 2, 4]), np.array([1, 3, 5, 5])
    sims = PairContext(prepared, left, right).similarity("name_key", "jaro_winkler")
    assert sims.shape == (4,)
    assert np.all((sims > 0.8) & (sims <= 1.0))


def test_individual_named_by_placeholder_takes_the_contact_name() -> None:
    rows = [
        record(record_key="a:1", customer_type="individual", name_key="个人", contact_name="李倩"),
        record(record_key="b:1", customer_type="individual", name_key="李倩", contact_name="李倩"),
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    assert prepared["name_key"].tolist() == ["李倩", "李倩"]
    # the contact is the customer: compared once (as the name), not twice
    assert prepared["contact_name"].isna().all()


def _counted_name_pairs(monkeypatch):  # type: ignore[no-untyped-def]
    """Six names, four pairs, their fresh similarities, and a list of how many value pairs
    each later ``score_pairs_of_values`` call scores."""
    import dedupe.comparisons as comparisons

    names = ["泰聚网络科技", "太聚网络科技", "华信科技", "华信科枝", "远东物流", "远东物留"]
    rows = [record(record_key=f"r:{i}", name_key=n) for i, n in enumerate(names)]
    prepared = prepare_records(pd.DataFrame(rows))
    left, right = np.array([0, 2, 4, 0]), np.array([1, 3, 5, 2])
    fresh = PairContext(prepared, left, right).similarity("name_key", "jaro_winkler")
    scored: list[int] = []
    real = comparisons.score_pairs_of_values

    def counting(
        scorer: str, a: list[str], b: list[str], at_least: float = 0.0, **kw: object
    ) -> np.ndarray:
        scored.append(len(a))
        return real(scorer, a, b, at_least, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(comparisons, "score_pairs_of_values", counting)
    return prepared, left, right, fresh, scored


def test_similarities_scored_once_per_run_are_reused_identically(monkeypatch) -> None:
    """A sorted neighbourhood's filter scores names; the levels read those scores back."""
    prepared, left, right, fresh, scored = _counted_name_pairs(monkeypatch)
    codes: dict = {}
    PairContext(prepared, left[:3], right[:3], codes).similarity("name_key", "jaro_winkler")
    again = PairContext(prepared, left, right, codes).similarity("name_key", "jaro_winkler")
    assert scored == [3, 1]  # the second context scored only the pair the first had not
    assert np.array_equal(again, fresh)


def test_a_context_that_does_not_grow_the_memo_still_reads_it(monkeypatch) -> None:
    """The full link's level chunks read what blocking scored and add nothing to the memo."""
    import dedupe.comparisons as comparisons

    prepared, left, right, fresh, scored = _counted_name_pairs(monkeypatch)
    codes: dict = {}
    PairContext(prepared, left[:3], right[:3], codes).similarity("name_key", "jaro_winkler")
    (memo,) = [k for k in codes if k.startswith(comparisons.SIMILARITY_MEMO)]
    again = PairContext(prepared, left, right, codes, grow_memo=False).similarity(
        "name_key", "jaro_winkler"
    )
    assert scored == [3, 1]  # the three pairs read back, the fourth scored
    assert np.array_equal(again, fresh)
    assert len(codes[memo][0]) == 3  # and not added
    # a value pair met twice in one context is scored once, in whatever order it is met
    twice = PairContext(prepared, np.array([2, 0, 2]), np.array([3, 1, 3]), {}, grow_memo=False)
    scored.clear()
    sims = twice.similarity("name_key", "jaro_winkler")
    assert scored == [2] and sims[0] == sims[2] == fresh[1] and sims[1] == fresh[0]


def test_shared_cache_lengths_are_each_columns_own() -> None:
    """`contains` on two columns through one run-wide cache (each column's distinct values'
    lengths cached under its own name) scores every pair as the per-pair definition does."""
    from dedupe.similarity import REFERENCE

    names = ["天津市南开区长江街", "南开区长江街", "华信科技有限公司", "华信科技"]
    streets = ["长江街107号长江商务中心", "长江街107号", "中山路", "中山路一号院"]
    rows = [
        record(record_key=f"r:{i}", name_key=n, address=a)
        for i, (n, a) in enumerate(zip(names, streets, strict=True))
    ]
    prepared = prepare_records(pd.DataFrame(rows))
    left, right = np.array([0, 2, 0, 1]), np.array([1, 3, 2, 3])
    codes: dict = {}
    for column in ("address", "name_key", "address"):
        got = PairContext(prepared, left, right, codes).similarity(column, "contains")
        values = prepared[column].tolist()
        pairs = zip(left.tolist(), right.tolist(), strict=True)
        want = [float(np.float32(REFERENCE["contains"](values[a], values[b]))) for a, b in pairs]
        assert got.tolist() == want

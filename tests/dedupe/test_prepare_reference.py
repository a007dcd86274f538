"""`prepare_records` returns the frame the former per-row implementation returned.

The oracle is `tests/dedupe/prepare_reference.py` (the code before it was vectorized): same
columns in the same order, same dtypes, None where it had None and NaN where it had NaN, same
values, on demo exports through cleaning, on the synthetic set, and on hand-made edge cases
(placeholders, masks, NUL characters, branches, fixed lines, attributes, key expressions,
nullable flags, absent and all-null columns, Python-held text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dedupe import MatchSettings
from dedupe.prepare import prepare_records
from tests.dedupe import prepare_reference
from tests.dedupe.synth import make_records

_ROOT = Path(__file__).resolve().parents[2]


def _differences(expected: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    """What differs between two prepared frames, column by column (empty: the same)."""
    if list(expected.columns) != list(got.columns):
        return [f"columns: {list(expected.columns)} != {list(got.columns)}"]
    problems = [] if expected.index.equals(got.index) else ["index"]
    for column in expected.columns:
        want, have = expected[column], got[column]
        if want.dtype != have.dtype:
            problems.append(f"{column}: dtype {want.dtype!r} != {have.dtype!r}")
            continue
        a, b = want.to_numpy(dtype=object), have.to_numpy(dtype=object)
        # None and NaN are told apart (type), values compared where not missing
        kinds = np.array([type(v) for v in a]) != np.array([type(v) for v in b])
        missing = pd.isna(want).to_numpy()
        unequal = kinds | (missing != pd.isna(have).to_numpy())
        unequal[~missing] |= a[~missing] != b[~missing]
        if unequal.any():
            at = np.flatnonzero(unequal)[:3]
            problems.append(f"{column}: rows {at.tolist()}: {a[at].tolist()} != {b[at].tolist()}")
    return problems


def _assert_same(records: pd.DataFrame, settings: MatchSettings | None = None) -> pd.DataFrame:
    got = prepare_records(records, settings)
    expected = prepare_reference.prepare_records(records, settings)
    assert _differences(expected, got) == []
    return got


@pytest.fixture(scope="module")
def demo_records() -> pd.DataFrame:
    """800 demo entities through header mapping and cleaning (as `test_demo_regression`)."""
    from cleaning import clean_records
    from sources.demo import generate_demo_data
    from tests.dedupe.test_demo_regression import _canonical

    data = generate_demo_data(800, 5)
    config = yaml.safe_load((_ROOT / "sources" / "sources.yml").read_text(encoding="utf-8"))
    sources = ("sales", "service", "marketing")
    raw = pd.concat([_canonical(getattr(data, s), s, config) for s in sources], ignore_index=True)
    return clean_records(raw).records


def test_demo_records_prepare_as_before(demo_records: pd.DataFrame) -> None:
    shuffled = demo_records.sample(frac=1.0, random_state=3)  # not in record_key order
    got = _assert_same(shuffled)
    assert got["record_key"].is_monotonic_increasing
    assert got["branch_key"].notna().any() and got["place_city"].notna().any()


def test_synthetic_records_prepare_as_before() -> None:
    records, _ = make_records(600, seed=5)
    _assert_same(records.iloc[::-1])


def _edge_records() -> pd.DataFrame:
    ind, ent = "individual", "enterprise"
    rows = [
        # placeholders, whitespace, case, a masked name and contact, a NUL character
        dict(
            record_key="s:9",
            name_key=" 无 ",
            customer_name="个人",
            customer_type="INDIVIDUAL",
            contact_name="王*",
            phone="+8613912345678",
            email="Wang@QQ.com",
            credit_code="91abc",
            city=" N/A ",
        ),
        dict(
            record_key="s:10",
            name_key="张*",
            customer_name="张*",
            customer_type=ind,
            contact_name="张三",
            phone="+861062751234",
            email="x\x00y@a.cn",
            email_domain="given.cn",
            address="ab\x00 cd",
        ),
        # an individual under a placeholder name known by the contact; a one-letter contact
        dict(
            record_key="a:1",
            name_key=None,
            customer_name="客户",
            customer_type=ind,
            contact_name="李四",
            phone="+8657188886666",
            email="li@163.com",
        ),
        dict(
            record_key="a:2",
            name_key=None,
            customer_type=ind,
            contact_name="李",
            phone="-",
            email="none",
        ),
        # branches: a branch part, a bracketed region, a name holding "|", head offices
        dict(
            record_key="b:1",
            name_key="恒丰集团",
            customer_name="恒丰集团有限公司西安分公司",
            branch="西安分公司",
            customer_type=ent,
            name_region="深圳/西安",
            phone="+862988887777",
            province="陕西省",
            city="西安市",
            division_code="610103",
        ),
        dict(
            record_key="b:2",
            name_key="恒丰集团",
            customer_name="恒丰集团有限公司(北京)",
            customer_type=ent,
            phone="+15551234567",
            province="北京市",
        ),
        dict(
            record_key="b:3",
            name_key="恒丰集团",
            customer_name="恒丰|集团(上海)",
            branch="办事处",
            customer_type=None,
            phone="+8610",
            city="杭州市",
        ),
        dict(
            record_key="b:4",
            name_key="ab",
            customer_name="AB Ltd (HK)",
            customer_type=ent,
            city="长沙市",
            email="info@ab.com",
        ),
        dict(
            record_key="b:5",
            name_key="ab",
            customer_type=ent,
            city="杭州市",
            email="INFO@ab.com",
            phone="+8657188886666",
        ),
        # one person's name with one holder, another with two phones
        dict(
            record_key="p:1",
            name_key="赵六",
            customer_type=ind,
            phone="+8613700000001",
            given_name="Liu",
            family_name="ZHAO",
            gender="M",
            id_kind="ID",
            birth_date="1980-02-03",
        ),
        dict(
            record_key="p:2",
            name_key="赵六",
            customer_type=ind,
            phone="+8613700000001",
            given_name="zhao",
            family_name="liu",
            gender="m",
            birth_date="1980",
        ),
        dict(record_key="p:3", name_key="钱七", customer_type=ind, phone="+8613700000002"),
        dict(
            record_key="p:4",
            name_key="钱七",
            customer_type=ind,
            phone="+8613700000003",
            id_number="110101198001010011",
        ),
    ]
    frame = pd.DataFrame(rows)
    frame["attributes"] = [
        '{"wechat_id": " WX_1 ", "n": null}',
        "{}",
        "not json",
        None,
        "[1]",
        '{"wechat_id": "无"}',
        '{"wechat_id": "wx_1"}',
        None,
        None,
        None,
        '{"wechat_id": "Zw"}',
        None,
        None,
    ]
    frame["phone_shared"] = pd.array([True, None, False] + [None] * 10, dtype="boolean")
    frame["email_is_free"] = ["yes", "0", None, "T"] + [None] * 9
    return frame


_EDGE_SETTINGS = MatchSettings(
    comparisons=[{"name": "wechat", "field": "wechat_id", "levels": ["exact"]}, "phone"],
    blocking_rules=[
        {"name": "swapped", "keys": ["sorted(given_name, family_name)"]},
        {"name": "wx", "keys": ["first(wechat_id, 2)", "last(phone, 4)"]},
        {"name": "born", "keys": ["year(birth_date)", "pinyin(contact_name)"]},
        {"name": "py", "keys": ["pinyin(customer_name)", "city"]},
        {"name": "flagged", "keys": ["phone_shared", "city"]},
        "phone",
    ],
)


@pytest.mark.parametrize("settings", [None, _EDGE_SETTINGS], ids=["defaults", "key expressions"])
def test_edge_cases_prepare_as_before(settings: MatchSettings | None) -> None:
    frame = _edge_records()
    arrow_text = frame.astype({c: "str" for c in frame.columns if frame[c].dtype == object})
    got = _assert_same(arrow_text, settings)
    # and the same again from text held as Python objects
    _assert_same(
        frame.astype({c: object for c in frame.columns if frame[c].dtype != bool}), settings
    )
    assert got.set_index("record_key").loc["s:10", "address"] == "ab"  # cut at the NUL


def test_absent_and_all_null_columns_prepare_as_before() -> None:
    _assert_same(pd.DataFrame({"record_key": ["z:2", "z:1"], "name_key": ["甲乙", None]}))
    _assert_same(
        pd.DataFrame(
            {
                "record_key": ["z:2", "z:1"],
                "name_key": [None, None],
                "email": [None, None],
                "phone": ["x", None],
            }
        )
    )


def test_no_records_and_a_foreign_index_prepare_as_before() -> None:
    _assert_same(pd.DataFrame({"record_key": pd.Series([], dtype=object)}))
    # integer keys (ordered as text), an index neither ordered nor from 0
    _assert_same(
        pd.DataFrame(
            {
                "record_key": [3, 10, 2],
                "name_key": ["甲乙", "甲乙", None],
                "customer_type": ["enterprise"] * 3,
                "city": ["杭州市", "长沙市", None],
            },
            index=[10, 5, 7],
        )
    )

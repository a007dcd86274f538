"""Identity numbers and masked values in matching: hard rules, must-match, partial evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cleaning.identity import gb11643_check_char
from dedupe import LinkResult, link_records
from dedupe.levels import masked_compatible
from dedupe.scoring import PARTIAL_MAX_BITS
from tests.dedupe.conftest import record


def _id(first17: str) -> str:
    return first17 + gb11643_check_char(first17)


ID_A, ID_B = _id("11010519800101123"), _id("44030419900307123")


def _person(key: str, name: str, **fields: object) -> dict[str, object]:
    base = record(record_key=key, name_key=name, customer_name=name, customer_type="individual",
                  contact_name=None, email=None, email_domain=None, email_is_free=True,
                  credit_code=None, credit_code_valid=False, id_number=None,
                  id_number_valid=False)  # fmt: skip
    base.update(fields)
    return base


@pytest.fixture(scope="module")
def identity_linked(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> LinkResult:
    """The synthetic set plus people with 居民身份证号 and masked phones."""
    people = pd.DataFrame([
        # same valid id, compatible names (一字之差), nothing else in common
        _person("id:same1", "张伟", id_number=ID_A, id_number_valid=True,
                phone="+8613900000001", city="北京市", district="海淀区", address=None),
        _person("id:same2", "张玮", id_number=ID_A, id_number_valid=True,
                phone="+8613700000002", city="上海市", district="浦东新区", province="上海市",
                address=None),
        # different valid ids, everything else identical: two people
        _person("id:diff1", "李娜", id_number=ID_A.replace("1980", "1981")[:17] + "0",
                id_number_valid=False, phone="+8613911112222"),
        _person("id:diff2", "王芳", id_number=ID_B, id_number_valid=True, phone="+8613933334444",
                email="wf@qq.com", address="海淀区中关村大街88号"),
        _person("id:diff3", "王芳", id_number=_id("44030419900307125"), id_number_valid=True,
                phone="+8613933334444", email="wf@qq.com", address="海淀区中关村大街88号"),
        # a masked phone is all two different people share
        _person("mask:full", "赵敏", phone="+8613812345678", city=None, district=None,
                address=None),
        _person("mask:part", "孙丽", phone=None, phone_masked="138****5678", city=None,
                district=None, address=None),
    ])  # fmt: skip
    return link_records(pd.concat([synthetic[0], people], ignore_index=True))


def _cluster(result: LinkResult, key: str) -> str:
    clusters = result.clusters.set_index("record_key")["cluster_key"]
    return str(clusters[key])


def test_same_valid_id_number_and_compatible_names_always_match(
    identity_linked: LinkResult,
) -> None:
    assert _cluster(identity_linked, "id:same1") == _cluster(identity_linked, "id:same2")


def test_different_valid_id_numbers_never_merge(identity_linked: LinkResult) -> None:
    assert _cluster(identity_linked, "id:diff2") != _cluster(identity_linked, "id:diff3")
    pairs = identity_linked.pairs
    pair = pairs[(pairs["left_key"] == "id:diff2") & (pairs["right_key"] == "id:diff3")]
    assert pair["hard_rule"].tolist() == ["id_number_conflict"]


def test_masked_phone_is_never_a_match_alone(identity_linked: LinkResult) -> None:
    assert _cluster(identity_linked, "mask:full") != _cluster(identity_linked, "mask:part")
    phone = identity_linked.params.comparisons["phone"]
    masked = phone.labels.index("masked_compatible")
    assert phone.weights()[masked] <= PARTIAL_MAX_BITS + 1e-9
    assert phone.weights()[masked] < phone.weights()[phone.labels.index("exact")]


MASK_CASES = [
    {"mask": "138****5678", "other": "+8613812345678", "expected": True},
    {"mask": "138****5678", "other": "13812345678", "expected": True},
    {"mask": "138****5678", "other": "13912345678", "expected": False},
    {"mask": "138****5678", "other": "1381234567", "expected": False},
    {"mask": "138****5678", "other": "138****5678", "expected": True},
    {"mask": "138****5678", "other": "139****5678", "expected": False},
    {"mask": "张*", "other": "张伟", "expected": True},
    {"mask": "张*", "other": "张伟伟", "expected": True},
    {"mask": "张*", "other": "李伟", "expected": False},
    {"mask": "张*", "other": "张", "expected": False},
    {"mask": "*伟", "other": "张伟", "expected": True},
]


@pytest.mark.parametrize("case", MASK_CASES, ids=[f"{c['mask']}~{c['other']}" for c in MASK_CASES])
def test_masked_compatibility(case: dict[str, object]) -> None:
    assert masked_compatible(str(case["mask"]), str(case["other"])) is case["expected"]


def test_masked_name_is_not_an_exact_name_agreement() -> None:
    from dedupe.comparisons import PairContext
    from dedupe.levels import builtin_comparisons
    from dedupe.prepare import prepare_records

    rows = [_person("a:1", "张", customer_name="张*"), _person("a:2", "张伟")]
    prepared = prepare_records(pd.DataFrame(rows))
    assert prepared["name_key"].tolist()[0] is None
    ctx = PairContext(prepared, np.array([0]), np.array([1]))
    comp = builtin_comparisons()["name_key"]
    assert comp.labels[int(comp.evaluate(ctx)[0])] == "masked_compatible"


def test_the_id_number_rule_is_what_joins_them(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    from dedupe import MatchSettings

    people = pd.DataFrame([
        _person("id:same1", "张伟", id_number=ID_A, id_number_valid=True, phone="+8613900000001"),
        _person("id:same2", "张玮", id_number=ID_A, id_number_valid=True, phone="+8613700000002",
                city="上海市", district="浦东新区", province="上海市", address=None),
    ])  # fmt: skip
    records = pd.concat([synthetic[0], people], ignore_index=True)
    without = link_records(records, MatchSettings(id_number_match=False))
    assert _cluster(without, "id:same1") != _cluster(without, "id:same2")

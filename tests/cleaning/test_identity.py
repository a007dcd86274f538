"""Identity fields: 居民身份证号 (GB 11643) on labelled cases, gender, masks, composed names."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cleaning import clean_records
from cleaning.identity import (
    compose_name,
    gb11643_check_char,
    masked_phone,
    normalize_gender,
    validate_id_number,
)


def _with_check(first17: str) -> str:
    return first17 + gb11643_check_char(first17)


# (label, number, id_type, expected number, valid, reason, birth date, gender)
ID_CASES = [
    ("valid", "11010519491231002X", None, "11010519491231002X", True, None, "1949-12-31", "F"),
    (
        "valid_male",
        _with_check("44030419900307123"),
        None,
        _with_check("44030419900307123"),
        True,
        None,
        "1990-03-07",
        "M",
    ),
    (
        "lowercase_x",
        "11010519491231002x",
        None,
        "11010519491231002X",
        True,
        None,
        "1949-12-31",
        "F",
    ),
    ("spaces", "110105 19491231 002X", None, "11010519491231002X", True, None, "1949-12-31", "F"),
    (
        "wrong_check_char",
        "110105194912310021",
        None,
        "110105194912310021",
        False,
        "id_number_invalid_check",
        None,
        None,
    ),
    (
        "impossible_birth_date",
        _with_check("11010519490231002"),
        None,
        _with_check("11010519490231002"),
        False,
        "id_number_invalid_birth_date",
        None,
        None,
    ),
    (
        "future_birth_date",
        _with_check("11010521990101002"),
        None,
        _with_check("11010521990101002"),
        False,
        "id_number_invalid_birth_date",
        None,
        None,
    ),
    (
        "unknown_province",
        _with_check("99010519491231002"),
        None,
        _with_check("99010519491231002"),
        False,
        "id_number_invalid_region",
        None,
        None,
    ),
    (
        "fifteen_digit",
        "110105491231002",
        None,
        "11010519491231002X",
        True,
        "id_number_converted_15",
        "1949-12-31",
        "F",
    ),
    (
        "too_short",
        "1101051949123",
        "身份证",
        "1101051949123",
        False,
        "id_number_invalid_length",
        None,
        None,
    ),
    (
        "masked",
        "110105********002X",
        None,
        "110105********002X",
        None,
        "id_number_masked",
        None,
        None,
    ),
    ("passport", "e1234 5678", "护照", "passport:E12345678", None, None, None, None),
    ("untyped_other", "G12345678", None, "other:G12345678", None, None, None, None),
]


@pytest.mark.parametrize("case", ID_CASES, ids=[c[0] for c in ID_CASES])
def test_resident_id_numbers_on_labelled_cases(case: tuple) -> None:
    _, text, id_type, number, valid, reason, birth, gender = case
    result = validate_id_number(text, id_type)
    assert (result.number, result.valid, result.reason) == (number, valid, reason)
    assert (result.birth_date, result.gender) == (birth, gender)


def test_check_character_is_iso_7064_mod_11_2() -> None:
    assert gb11643_check_char("11010519491231002") == "X"
    assert gb11643_check_char("44052418800101001") == "4"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("男", "M"), (" 女 ", "F"), ("Male", "M"), ("f", "F"), ("2", "F"), ("未知", None)],
)
def test_gender(text: str, expected: str | None) -> None:
    assert normalize_gender(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("138****5678", "138****5678"), ("+86 138-****-5678", "138****5678"),
     ("13812345678", None), ("张*", None), ("****", None)],
)  # fmt: skip
def test_masked_phone(text: str, expected: str | None) -> None:
    assert masked_phone(text) == expected


def test_compose_name_order() -> None:
    assert compose_name("伟", "张") == "张伟"
    assert compose_name("John", "Smith") == "John Smith"
    assert compose_name(None, "Smith") == "Smith"
    assert compose_name(None, None) is None


def _raw(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(columns, dtype="string")
    frame["source_system"] = "crm"
    frame["source_record_id"] = [str(i) for i in range(n)]
    frame["record_key"] = "crm:" + frame["source_record_id"]
    return frame


def test_clean_records_fill_identity_columns() -> None:
    raw = _raw(
        customer_name=[None, "王芳", "李*"],
        given_name=["伟", None, None],
        family_name=["张", None, None],
        id_number=["11010519491231002x", "110105194912310021", None],
        birth_date=[None, "1980-02-30", "1985/6/1"],
        gender=["男", "女", None],
        phone=["13812345678", "138****5678", "无"],
    )
    records = clean_records(raw).records.set_index("source_record_id")
    assert records.loc["0", "customer_name"] == "张伟"
    assert records.loc["0", "id_number"] == "11010519491231002X"
    assert bool(records.loc["0", "id_number_valid"])
    assert records.loc["0", "birth_date"] == "1949-12-31"  # from the id number
    assert records.loc["0", "gender"] == "M"  # the source's, with a conflict issue
    codes0 = {i["code"] for i in json.loads(records.loc["0", "issues"])}
    assert {"name_composed", "gender_conflict"} <= codes0
    # invalid: kept as written with an issue code, never dropped
    assert records.loc["1", "id_number"] == "110105194912310021"
    assert not bool(records.loc["1", "id_number_valid"])
    codes1 = {i["code"] for i in json.loads(records.loc["1", "issues"])}
    assert {"id_number_invalid_check", "date_impossible", "phone_masked"} <= codes1
    # masked phone: partial evidence, not invalid, not in the E.164 column
    assert pd.isna(records.loc["1", "phone"]) and records.loc["1", "phone_masked"] == "138****5678"
    assert "phone_invalid" not in codes1
    assert records.loc["2", "birth_date"] == "1985-06-01"
    assert records.loc["2", "customer_name"] == "李*"  # masked: kept, flagged, not missing
    codes2 = {i["code"] for i in json.loads(records.loc["2", "issues"])}
    assert "name_masked" in codes2 and "missing_name" not in codes2

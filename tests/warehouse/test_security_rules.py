"""Masking, PII classes, formula neutralization, roles and key handling."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from warehouse.security import (
    KeyMaterialError,
    KeyRing,
    allowed_tables,
    classify,
    generate_key_file,
    is_table_allowed,
    load_keyring,
    mask_email,
    mask_person_name,
    mask_phone,
    mask_series,
    neutralize_formulas,
    pseudonym,
    quarantine_counts,
    read_key_file,
    resolve_role,
    treatment,
)
from warehouse.security.keys import encode_key

PHONES = [
    {"value": "+8613912345678", "expected": "139****5678"},
    {"value": "139 1234 5678", "expected": "139****5678"},
    {"value": "+861062345678", "expected": "****5678"},  # Beijing fixed line
    {"value": "+442079460958", "expected": "+44 ****0958"},
    {"value": "+14155552671", "expected": "+1 ****2671"},
    {"value": "12345", "expected": "****45"},
    {"value": "12", "expected": "****"},
]
EMAILS = [
    {"value": "zhang@example.com", "expected": "z***@example.com"},
    {"value": "Li.Na@Corp.CN", "expected": "L***@Corp.CN"},
    {"value": "not-an-email", "expected": "***"},
]
NAMES = [
    {"value": "张伟", "expected": "张*"},
    {"value": "王小明", "expected": "王**"},
    {"value": "欧阳娜娜", "expected": "欧阳**"},
    {"value": "John Smith", "expected": "J*** S***"},
    {"value": "Ｊｏｈｎ", "expected": "J***"},  # full-width Latin
]


@pytest.mark.parametrize("case", PHONES, ids=lambda c: c["value"])
def test_mask_phone(case: dict) -> None:
    assert mask_phone(case["value"]) == case["expected"]


@pytest.mark.parametrize("case", EMAILS, ids=lambda c: c["value"])
def test_mask_email(case: dict) -> None:
    assert mask_email(case["value"]) == case["expected"]


@pytest.mark.parametrize("case", NAMES, ids=lambda c: c["value"])
def test_mask_person_name(case: dict) -> None:
    assert mask_person_name(case["value"]) == case["expected"]


def test_pseudonym_is_stable_keyed_and_distinct() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert pseudonym("C20240315001", a) == pseudonym("C20240315001", a)
    assert pseudonym("C20240315001", a) != pseudonym("C20240315001", b)
    assert pseudonym("C20240315001", a) != pseudonym("C20240315002", a)
    assert "C20240315001" not in pseudonym("C20240315001", a)


def test_mask_series_keeps_nulls_and_alignment() -> None:
    values = pd.Series(["+8613912345678", None, "+8613912345678"], index=[5, 6, 7], dtype="string")
    out = mask_series(values, "phone")
    assert out.tolist()[0] == "139****5678" and pd.isna(out.loc[6]) and list(out.index) == [5, 6, 7]
    with pytest.raises(ValueError, match="secret"):
        mask_series(values, "pseudonym")


CLASSES = [
    {"column": "phone", "type": None, "expected": "direct"},
    {"column": "left_email", "type": None, "expected": "direct"},
    {"column": "phone_r", "type": None, "expected": "direct"},
    {"column": "customer_name", "type": "individual", "expected": "direct"},
    {"column": "customer_name", "type": "enterprise", "expected": "business"},
    {"column": "province", "type": None, "expected": "quasi"},
    {"column": "credit_code", "type": None, "expected": "business"},
    {"column": "source_file", "type": None, "expected": "none"},
    {"column": "phone_level", "type": None, "expected": "none"},
    {"column": "mystery", "type": None, "expected": None},
]


@pytest.mark.parametrize("case", CLASSES, ids=lambda c: f"{c['column']}-{c['type']}")
def test_classify(case: dict) -> None:
    assert classify(case["column"], case["type"]) == case["expected"]


def test_unknown_columns_are_dropped_from_the_mart() -> None:
    assert treatment("mystery") == "drop"
    assert treatment("address") == "drop"
    assert treatment("customer_id") == "pseudonym"


FORMULAS = [
    {"value": "=1+1", "expected": "'=1+1"},
    {"value": "+8613912345678", "expected": "+8613912345678"},  # E.164 phone: data
    {"value": "+86 139-1234-5678", "expected": "+86 139-1234-5678"},  # formatted phone: data
    {"value": "-2", "expected": "-2"},  # a negative number: data
    {"value": "-", "expected": "-"},  # the exports' placeholder for "none"
    {"value": "+1+cmd|' /C calc'!A0", "expected": "'+1+cmd|' /C calc'!A0"},  # DDE payload
    {"value": '-HYPERLINK("http://x")', "expected": '\'-HYPERLINK("http://x")'},
    {"value": "@SUM(A1)", "expected": "'@SUM(A1)"},
    {"value": "\t=cmd", "expected": "'\t=cmd"},
    {"value": "\r=cmd", "expected": "'\r=cmd"},
    {"value": "北京=好", "expected": "北京=好"},
    {"value": "plain", "expected": "plain"},
]


@pytest.mark.parametrize("case", FORMULAS, ids=lambda c: repr(c["value"]))
def test_neutralize_formulas(case: dict) -> None:
    frame = pd.DataFrame({"text": pd.Series([case["value"]], dtype="string"), "n": [-5]})
    out = neutralize_formulas(frame)
    assert out["text"].iloc[0] == case["expected"]
    assert out["n"].iloc[0] == -5  # numbers untouched
    assert frame["text"].iloc[0] == case["value"]  # input untouched


def test_neutralize_formulas_object_columns_with_nulls() -> None:
    frame = pd.DataFrame({"x": pd.Series(["=A1", None, 3], dtype="object")})
    out = neutralize_formulas(frame)
    assert out["x"].tolist()[0] == "'=A1" and out["x"].tolist()[2] == 3


ROLE_CASES = [
    {"role": "analyst", "table": "mart.customers", "ok": True},
    {"role": "analyst", "table": "golden.customers", "ok": False},
    {"role": "ops", "table": "ops.check_results", "ok": True},
    {"role": "ops", "table": "quarantine.rows", "ok": False},
    {"role": "steward", "table": "match.review_queue", "ok": True},
    {"role": "steward", "table": "raw.crm", "ok": False},
    {"role": "steward", "table": "clean.records", "ok": True},
    {"role": "steward", "table": "quarantine.rows", "ok": False},
    {"role": "admin", "table": "raw.crm", "ok": True},
    # a full golden build waiting for its quality gate (warehouse.golden_staged): not published
    {"role": "steward", "table": "golden._staged_customers", "ok": False},
    {"role": "steward", "table": "golden.customers", "ok": True},
    {"role": "admin", "table": "golden._staged_customers", "ok": True},
]


@pytest.mark.parametrize("case", ROLE_CASES, ids=lambda c: f"{c['role']}-{c['table']}")
def test_roles(case: dict) -> None:
    assert is_table_allowed(case["role"], case["table"]) is case["ok"]


def test_resolve_role() -> None:
    assert resolve_role({}) == "admin"
    assert resolve_role({"CUSTOMER_ARCHIVE_ROLE": "Analyst"}) == "analyst"
    with pytest.raises(ValueError, match="unknown role"):
        resolve_role({"CUSTOMER_ARCHIVE_ROLE": "root"})
    with pytest.raises(ValueError):
        allowed_tables("guest")


def test_quarantine_counts_hold_no_content() -> None:
    rows = pd.DataFrame(
        {
            "source_system": ["crm", "crm"],
            "source_file": ["a.csv", "a.csv"],
            "raw_content": ["张伟,13912345678", "x"],
            "reason": ["bad row", "bad row"],
        }
    )
    out = quarantine_counts(rows)
    assert out.to_dict("records") == [
        {"source_system": "crm", "source_file": "a.csv", "reason": "bad row", "rows": 2}
    ]


def test_key_file_is_0600_and_wider_permissions_are_refused(tmp_path) -> None:
    path = tmp_path / "keys" / "archive.key"
    ring = generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path).current == ring.current
    assert encode_key(ring.current) not in repr(ring)  # never printed
    with pytest.raises(FileExistsError):
        generate_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyMaterialError, match="chmod 600"):
        read_key_file(path)


def test_key_from_environment_hex_or_base64_with_previous_keys() -> None:
    current, old = KeyRing(b"\x01" * 32), KeyRing(b"\x02" * 32)
    env = {
        "CUSTOMER_ARCHIVE_KEY": current.current.hex(),
        "CUSTOMER_ARCHIVE_PREVIOUS_KEYS": encode_key(old.current),
    }
    ring = load_keyring(env=env)
    assert ring.current == current.current and ring.previous == (old.current,)
    assert ring.derive("x") != ring.derive("y")
    assert ring.derive("x", old.current_id) == old.derive("x")
    with pytest.raises(KeyMaterialError, match="not 32 bytes"):
        load_keyring(env={"CUSTOMER_ARCHIVE_KEY": "short"})
    with pytest.raises(KeyMaterialError, match="no encryption key"):
        load_keyring(env={})

"""Shared fixtures: one GX context per session and a small, consistent golden layer."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations._gx_runner import gx_context
from expectations.reference import credit_code_is_valid

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def with_check_digit(body: str) -> str:
    """Complete a 17-character credit-code body with its GB 32100 check digit."""
    for ch in _ALPHABET:
        if credit_code_is_valid(body + ch):
            return body + ch
    raise AssertionError(f"no check digit for {body}")


CODE_A = with_check_digit("91110108MA01A0001")
CODE_B = with_check_digit("91310115MA1K40002")
CODE_C = with_check_digit("91440300MA5F00003")


@pytest.fixture(scope="session")
def gx() -> None:
    """Create the process-wide ephemeral GX context once (GX is slow to import)."""
    gx_context()


@pytest.fixture()
def customers() -> pd.DataFrame:
    """Four well-formed golden customers (two enterprises, two individuals)."""
    rows = [
        (
            "C20240315001",
            "北京星辰科技有限公司",
            "enterprise",
            "+8613912345678",
            "info@xingchen.cn",
            "北京市",
            "I",
            CODE_A,
            "A",
            "active",
        ),
        (
            "C20240315002",
            "上海浦江贸易有限公司",
            "enterprise",
            "+862161234567",
            None,
            "上海市",
            "F",
            CODE_B,
            "B",
            "new",
        ),
        (
            "C20240315003",
            "张伟",
            "individual",
            "+8613800001111",
            "zhangwei@qq.com",
            "广东省",
            None,
            None,
            "C",
            "potential",
        ),
        (
            "C20240316004",
            "Maria Rossi",
            "individual",
            "+390612345678",
            "maria@example.it",
            None,
            None,
            None,
            "C",
            "dormant",
        ),
    ]
    frame = pd.DataFrame(rows, columns=[
        "customer_id", "customer_name", "customer_type", "phone", "email", "province",
        "industry_code", "credit_code", "tier", "lifecycle",
    ])  # fmt: skip
    for column in (
        "contact_name",
        "address",
        "city",
        "district",
        "industry",
        "registered_date",
        "first_seen",
        "last_seen",
    ):
        frame[column] = None
    frame["source_count"] = [2, 1, 1, 1]
    frame["record_count"] = [2, 1, 2, 1]
    frame["updated_run_id"] = "run-1"
    return frame.astype(
        {c: "string" for c in frame.columns if c not in ("source_count", "record_count")}
    )


@pytest.fixture()
def crosswalk() -> pd.DataFrame:
    """Six clean records linked to the four customers."""
    rows = [
        ("crm", "1", "C20240315001"),
        ("sales", "S-9", "C20240315001"),
        ("crm", "2", "C20240315002"),
        ("crm", "3", "C20240315003"),
        ("service", "T-7", "C20240315003"),
        ("crm", "4", "C20240316004"),
    ]
    frame = pd.DataFrame(rows, columns=["source_system", "source_record_id", "customer_id"])
    frame.insert(2, "record_key", frame["source_system"] + ":" + frame["source_record_id"])
    frame["match_score"] = 12.5
    return frame.astype(
        {
            "source_system": "string",
            "source_record_id": "string",
            "record_key": "string",
            "customer_id": "string",
        }
    )


@pytest.fixture()
def clean_records(crosswalk: pd.DataFrame) -> pd.DataFrame:
    """The clean records behind the crosswalk; credit codes agree within each customer."""
    frame = crosswalk[["record_key", "source_system", "source_record_id"]].copy()
    frame["customer_name"] = [
        "北京星辰科技有限公司",
        "星辰科技",
        "上海浦江贸易有限公司",
        "张伟",
        "张伟",
        "Maria Rossi",
    ]
    frame["customer_type"] = [
        "enterprise",
        "enterprise",
        "enterprise",
        "individual",
        "individual",
        "individual",
    ]
    frame["phone"] = [
        "+8613912345678",
        None,
        "+862161234567",
        "+8613800001111",
        None,
        "+390612345678",
    ]
    frame["email"] = ["info@xingchen.cn", None, None, "zhangwei@qq.com", None, "maria@example.it"]
    frame["province"] = ["北京市", "北京市", "上海市", "广东省", None, None]
    frame["industry_code"] = ["I", "I", "F", None, None, None]
    # the second CRM record of customer 1 carries an invalid (typo) code: not a conflict
    frame["credit_code"] = [
        CODE_A,
        CODE_A[:-1] + ("0" if CODE_A[-1] != "0" else "1"),
        CODE_B,
        None,
        None,
        None,
    ]
    frame["credit_code_valid"] = pd.array([True, False, True, None, None, None], dtype="boolean")
    frame["registered_date"] = ["2021-03-04", None, "2019-12-31", None, "2024-02-29", None]
    frame["updated_at"] = ["2024-03-01", "2024-03-02", None, None, None, "2024-03-15"]
    frame["issues"] = [
        "[]",
        "[]",
        "[]",
        '[{"field": "phone", "code": "missing", "detail": ""}]',
        "[]",
        "[]",
    ]
    frame["source_row"] = [1, 2, 3, 4, 5, 6]
    return frame.astype(
        {c: "string" for c in frame.columns if c not in ("credit_code_valid", "source_row")}
    )

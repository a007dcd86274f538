"""统一社会信用代码 check (100 %), customer-type mapping and inference."""

from __future__ import annotations

import pytest

from cleaning import (
    credit_code_check_char,
    customer_type_from_source,
    infer_customer_type,
    validate_credit_code,
)

# published codes of well-known companies (营业执照): the check digit must hold
REAL = [
    "914403001922038216",  # 华为技术有限公司
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "91330100799655058B",  # 阿里巴巴(中国)有限公司
    "91110000802100433B",  # 北京百度网讯科技有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
]
_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _mutations() -> list[str]:
    """Every real code with its check character replaced by each wrong character."""
    out = []
    for code in REAL:
        out += [code[:17] + c for c in _CHARSET if c != code[17]]
    return out


@pytest.mark.parametrize("code", REAL)
def test_real_codes_valid(code: str) -> None:
    assert validate_credit_code(code) == (code, True, None)


def test_every_wrong_check_character_detected() -> None:
    wrong = _mutations()
    assert len(wrong) == 150
    assert not any(validate_credit_code(c).valid for c in wrong)


def test_single_substitution_anywhere_detected() -> None:
    code = REAL[0]
    for pos in range(17):
        for c in "0A":
            if code[pos] != c and (pos not in (2, 3, 4, 5, 6, 7) or c.isdigit()):
                assert not validate_credit_code(code[:pos] + c + code[pos + 1 :]).valid


@pytest.mark.parametrize(
    ("raw", "code", "valid", "reason"),
    [
        ("91440300 708461136t", "91440300708461136T", True, None),
        ("９１４４０３００７０８４６１１３６Ｔ", "91440300708461136T", True, None),
        ("9144-0300-7084-6113-6T", "91440300708461136T", True, None),
        ("91440300708461136", "91440300708461136", False, "length"),
        ("91440300708461136TT", "91440300708461136TT", False, "length"),
        ("914403007084611I6T", "914403007084611I6T", False, "charset"),
        ("91440300708461136O", "91440300708461136O", False, "charset"),
        ("91AB0300708461136T", "91AB0300708461136T", False, "charset"),
        (None, None, False, None),
        ("", None, False, None),
    ],
)
def test_format_errors(raw: str | None, code: str | None, valid: bool, reason: str | None) -> None:
    assert validate_credit_code(raw) == (code, valid, reason)


def test_check_char_builds_valid_codes() -> None:
    assert credit_code_check_char(REAL[1][:17]) == "T"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("企业", "enterprise"),
        ("企业客户", "enterprise"),
        ("公司", "enterprise"),
        ("Enterprise", "enterprise"),
        ("B2B", "enterprise"),
        ("对公", "enterprise"),
        ("个人", "individual"),
        ("个人客户", "individual"),
        ("自然人", "individual"),
        ("Individual", "individual"),
        ("b2c", "individual"),
        ("VIP", None),
        (None, None),
    ],
)
def test_customer_type_from_source(raw: str | None, expected: str | None) -> None:
    assert customer_type_from_source(raw) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((True, None, None, False), "enterprise"),
        ((False, "有限公司", None, False), "enterprise"),
        ((False, None, "上海分公司", False), "enterprise"),
        ((False, None, None, True), "enterprise"),
        ((False, None, None, False), "individual"),
    ],
)
def test_infer_customer_type(args: tuple, expected: str) -> None:
    assert infer_customer_type(*args) == expected

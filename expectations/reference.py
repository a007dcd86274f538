"""Reference value sets and formats the quality checks validate against."""

from __future__ import annotations

import numpy as np
import pandas as pd

PROVINCES: frozenset[str] = frozenset(
    {
        "北京市",
        "天津市",
        "河北省",
        "山西省",
        "内蒙古自治区",
        "辽宁省",
        "吉林省",
        "黑龙江省",
        "上海市",
        "江苏省",
        "浙江省",
        "安徽省",
        "福建省",
        "江西省",
        "山东省",
        "河南省",
        "湖北省",
        "湖南省",
        "广东省",
        "广西壮族自治区",
        "海南省",
        "重庆市",
        "四川省",
        "贵州省",
        "云南省",
        "西藏自治区",
        "陕西省",
        "甘肃省",
        "青海省",
        "宁夏回族自治区",
        "新疆维吾尔自治区",
        "台湾省",
        "香港特别行政区",
        "澳门特别行政区",
    }
)
"""China's 34 provincial-level divisions by full official name (省级行政区)."""

INDUSTRY_SECTIONS: frozenset[str] = frozenset("ABCDEFGHIJKLMNOPQRST")
"""GB/T 4754-2017 section letters (门类)."""

CUSTOMER_TYPES: tuple[str, ...] = ("enterprise", "individual")
TIERS: tuple[str, ...] = ("A", "B", "C")
LIFECYCLES: tuple[str, ...] = (
    "potential",
    "new",
    "active",
    "churned",
    "dormant",
    "deleted_at_source",
)

CUSTOMER_ID_REGEX = r"^C\d{8}\d{3,}$"
E164_REGEX = r"^\+[1-9]\d{6,14}$"
EMAIL_REGEX = r"^[^\s@A-Z]+@[^\s@.A-Z]+(?:\.[^\s@.A-Z]+)+$"
"""Well-formed, lowercased address; internationalised (IDN) domains are allowed."""
ISO_DATE_FORMAT = "%Y-%m-%d"

_CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_REGEX = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_is_valid(code: str) -> bool:
    """Return whether ``code`` is a 统一社会信用代码 with a correct GB 32100 check digit.

    Args:
        code: Candidate code (already uppercased).

    Returns:
        True for an 18-character code in the GB 32100 alphabet whose last character is the
        check digit of the first 17.

    Example:
        >>> credit_code_is_valid("91350100M000100Y43")
        True
        >>> credit_code_is_valid("91350100M000100Y44")
        False
    """
    if len(code) != 18 or any(ch not in _CREDIT_CODE_ALPHABET for ch in code):
        return False
    values = [_CREDIT_CODE_ALPHABET.index(ch) for ch in code[:17]]
    total = sum(v * w for v, w in zip(values, _CREDIT_CODE_WEIGHTS, strict=True))
    return _CREDIT_CODE_ALPHABET[(31 - total % 31) % 31] == code[17]


def valid_credit_code_mask(codes: pd.Series) -> pd.Series:
    """Flag valid credit codes in a column, checking each distinct value once.

    The check runs on a (distinct codes x 18) array of alphabet positions, so it costs a few
    numpy operations whatever the number of codes (same verdicts as ``credit_code_is_valid``).

    Args:
        codes: Credit codes; nulls (and non-text values) are never valid.

    Returns:
        Boolean series aligned with ``codes``.
    """
    positions, distinct = pd.factorize(codes)
    verdict = np.append(_valid_codes(pd.Index(distinct)), False)  # position -1 (null): False
    return pd.Series(verdict[positions], index=codes.index, dtype=bool)


def _valid_codes(distinct: pd.Index) -> np.ndarray:
    """GB 32100 verdict per distinct value (vectorized ``credit_code_is_valid``)."""
    values = distinct.to_numpy(dtype=object)
    is_text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    text = pd.Series(np.where(is_text, values, ""), dtype=object)
    ok = is_text & (text.str.len().to_numpy() == 18)
    if not ok.any():
        return np.zeros(len(values), dtype=bool)
    chars = np.array(text[ok].tolist(), dtype="<U18").view(np.uint32).reshape(-1, 18)
    table = np.full(128, -1, dtype=np.int64)  # ASCII -> alphabet position (-1: not allowed)
    table[[ord(c) for c in _CREDIT_CODE_ALPHABET]] = np.arange(len(_CREDIT_CODE_ALPHABET))
    index = table[np.minimum(chars, 127)]  # non-ASCII -> DEL -> -1
    total = index[:, :17] @ np.array(_CREDIT_CODE_WEIGHTS, dtype=np.int64)
    good = (index >= 0).all(axis=1) & ((31 - total % 31) % 31 == index[:, 17])
    out = np.zeros(len(values), dtype=bool)
    out[np.flatnonzero(ok)] = good
    return out

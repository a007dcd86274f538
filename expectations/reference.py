"""Reference value sets and formats the quality checks validate against."""

from __future__ import annotations

from collections.abc import Iterable

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
LIFECYCLES: tuple[str, ...] = ("potential", "new", "active", "churned", "dormant")

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

    Args:
        codes: Credit codes; nulls are never valid.

    Returns:
        Boolean series aligned with ``codes``.
    """
    present = codes.dropna()
    distinct: Iterable[str] = pd.unique(present.astype(str))
    verdict = {code: credit_code_is_valid(code) for code in distinct}
    mask = np.zeros(len(codes), dtype=bool)
    if verdict:
        mapped = codes.map(verdict)
        mask = mapped.fillna(False).astype(bool).to_numpy()
    return pd.Series(mask, index=codes.index, dtype=bool)

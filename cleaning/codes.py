"""统一社会信用代码 (GB 32100) validation and customer-type inference."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from cleaning.text import normalize_text

_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, Z, S, V
_VALUE = {c: i for i, c in enumerate(_CHARSET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_SEPARATORS = re.compile(r"[\s\-_.]")
_FORMAT = re.compile(r"^[0-9A-HJ-NPQRTUW-Y]{2}\d{6}[0-9A-HJ-NPQRTUW-Y]{10}$")


class CreditCode(NamedTuple):
    """A normalized credit code (uppercase, no separators) and whether its check digit holds."""

    code: str | None
    valid: bool
    reason: str | None


def credit_code_check_char(first17: str) -> str:
    """Compute the GB 32100 check character for the first 17 characters of a code.

    Args:
        first17: Registration authority, type, region code and organisation code.

    Returns:
        The 18th character.
    """
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHARSET[(31 - total % 31) % 31]


@lru_cache(maxsize=200_000)
def validate_credit_code(text: str | None) -> CreditCode:
    """Validate a 统一社会信用代码 with its GB 32100 check character.

    Args:
        text: Raw code (full-width, lowercase and separators are tolerated).

    Returns:
        A :class:`CreditCode`; ``reason`` says why an invalid code failed
        (``length``, ``charset``, ``check_digit``).

    Example:
        >>> validate_credit_code("91440300 708461136T").valid
        True
    """
    norm = normalize_text(text)
    if norm is None:
        return CreditCode(None, False, None)
    code = _SEPARATORS.sub("", norm).upper()
    if len(code) != 18:
        return CreditCode(code, False, "length")
    if not _FORMAT.match(code):
        return CreditCode(code, False, "charset")
    if credit_code_check_char(code[:17]) != code[17]:
        return CreditCode(code, False, "check_digit")
    return CreditCode(code, True, None)


_ENTERPRISE_WORDS = frozenset(
    [
        "企业",
        "公司",
        "单位",
        "法人",
        "机构",
        "组织",
        "政府",
        "事业单位",
        "社会团体",
        "团体",
        "enterprise",
        "company",
        "corporate",
        "corporation",
        "business",
        "b2b",
        "org",
        "organization",
        "organisation",
        "institution",
        "对公",
        "政企",
        "商户",
        "个体工商户",
    ]
)
_INDIVIDUAL_WORDS = frozenset(
    [
        "个人",
        "自然人",
        "散客",
        "散户",
        "私人",
        "individual",
        "person",
        "personal",
        "consumer",
        "private",
        "b2c",
        "retail",
        "customer",
        "对私",
        "c端",
    ]
) | {"retail customer"}


def customer_type_from_source(text: str | None) -> str | None:
    """Map a source's 客户类型 value to ``enterprise`` / ``individual``.

    Args:
        text: The source value (企业, 个人, Enterprise, B2C, 企业客户 …).

    Returns:
        The canonical type, or None when the value is absent or not understood.
    """
    norm = normalize_text(text)
    if norm is None:
        return None
    low = norm.lower().removesuffix("客户").removesuffix("用户").removesuffix("customer").strip()
    if low in _ENTERPRISE_WORDS:
        return "enterprise"
    if low in _INDIVIDUAL_WORDS:
        return "individual"
    return None


def infer_customer_types(
    has_credit_code: pd.Series, legal_form: pd.Series, branch: pd.Series, looks_like_org: pd.Series
) -> pd.Series:
    """Infer the customer type when the source does not say it (the one definition of the rule).

    A credit code, a legal-form suffix, a branch part or organisation words (学校, 医院, 银行 …)
    make the customer an enterprise; otherwise it is an individual.

    Args:
        has_credit_code: A credit code is present (boolean per record).
        legal_form: Legal-form suffix found in the name (有限公司, Ltd.), missing when none.
        branch: Branch part found in the name, missing when none.
        looks_like_org: The name contains organisation words (boolean per record).

    Returns:
        ``enterprise`` or ``individual`` per record (pandas ``string``).
    """
    evidence = has_credit_code | legal_form.notna() | branch.notna() | looks_like_org
    return pd.Series(
        np.where(evidence, "enterprise", "individual"), index=has_credit_code.index, dtype="string"
    )


def infer_customer_type(has_credit_code: bool, legal_form: str | None, branch: str | None,
                        looks_like_org: bool) -> str:  # fmt: skip
    """`infer_customer_types` for one record (empty texts count as absent).

    Returns:
        ``enterprise`` or ``individual``.
    """
    return str(
        infer_customer_types(
            pd.Series([bool(has_credit_code)]),
            pd.Series([legal_form or None], dtype=object),
            pd.Series([branch or None], dtype=object),
            pd.Series([bool(looks_like_org)]),
        ).iloc[0]
    )

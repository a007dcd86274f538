"""Combined cells (VAT invoice 地址电话, 开户行及账号) split into their parts, and joined fields."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

# a phone at the end (or start) of an address cell: mobile, masked mobile, landline with
# optional area code and extension, optionally +86
_PHONE = (
    r"(?:\+?86[\s\-]?)?"
    r"(?:1[3-9]\d[\s\-]?[\d*]{4}[\s\-]?\d{4}"
    r"|\(?0\d{2,3}\)?[\s\-]?\d{7,8}(?:\s*(?:-|转|ext\.?)\s*\d{1,6})?"
    r"|[48]00[\s\-]?\d{3}[\s\-]?\d{4}"
    r"|\d{7,8})"
)
_SEP = r"[\s,，;；:：/|]"
_PHONE_END = re.compile(
    r"^(?P<rest>.*?)" + _SEP + r"*(?:电话|tel|TEL|Tel)?[\s:：]*(?P<phone>" + _PHONE + r")\s*$"
)
_PHONE_START = re.compile(r"^\s*(?P<phone>" + _PHONE + r")[\s,，;；:：/|]+(?P<rest>.+)$")
_ACCOUNT_END = re.compile(
    r"^(?P<rest>.*?)" + _SEP + r"*(?:账号|帐号)?[\s:：]*(?P<account>\d[\d\s\-]{6,}\d)\s*$"
)


def split_address_phone(text: str | None) -> tuple[str | None, str | None]:
    """Split a VAT invoice 地址、电话 cell into (address, phone).

    Args:
        text: e.g. ``北京市海淀区中关村大街1号 010-62345678`` or ``上海市浦东新区88号13812345678``.

    Returns:
        ``(address, phone)``; the phone is None when the cell holds none, the address None
        when nothing else remains. Phone text is returned as written (cleaning normalizes it).

    Example:
        >>> split_address_phone("北京市海淀区中关村大街1号 010-62345678")
        ('北京市海淀区中关村大街1号', '010-62345678')
    """
    if text is None or not str(text).strip():
        return None, None
    value = unicodedata.normalize("NFKC", str(text)).strip()
    for pattern in (_PHONE_END, _PHONE_START):
        m = pattern.match(value)
        if m and m.group("rest").strip(" ,，;；:：/|"):
            return m.group("rest").strip(" ,，;；:：/|") or None, m.group("phone").strip()
    if re.fullmatch(_PHONE, value):
        return None, value
    return value, None


def split_bank_account(text: str | None) -> tuple[str | None, str | None]:
    """Split a VAT invoice 开户行及账号 cell into (bank, account number without spaces).

    Example:
        >>> split_bank_account("中国工商银行北京海淀支行 0200 0045 0900 1234 567")
        ('中国工商银行北京海淀支行', '0200004509001234567')
    """
    if text is None or not str(text).strip():
        return None, None
    value = unicodedata.normalize("NFKC", str(text)).strip()
    m = _ACCOUNT_END.match(value)
    if not m:
        return value, None
    account = re.sub(r"[\s\-]", "", m.group("account"))
    return (m.group("rest").strip(" ,，;；:：/|") or None), account


SPLITTERS = {"address_phone": split_address_phone, "bank_account": split_bank_account}
"""Parse kind (sources.yml ``split.kind``) → function returning its parts in order."""


def split_column(values: pd.Series, kind: str) -> list[pd.Series]:
    """Parse a combined column once per distinct value; one ``string`` Series per part.

    Args:
        values: The combined cells (text, nulls allowed).
        kind: ``address_phone`` or ``bank_account``.

    Returns:
        The parts in the order of ``sources.config.SPLIT_PARTS[kind]``.
    """
    func = SPLITTERS[kind]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = [func(str(u)) for u in uniques.tolist()]
    parts = []
    for i in range(2):
        mapped = pd.array([p[i] for p in parsed] + [None], dtype="string")
        parts.append(pd.Series(mapped[codes], index=values.index, dtype="string"))
    return parts


def join_columns(columns: list[pd.Series], sep: str) -> pd.Series:
    """Join text columns row-wise with ``sep``, skipping blank parts (null when all are blank)."""
    result: pd.Series | None = None
    for col in columns:
        part = col.astype("string").str.strip()
        part = part.mask(part == "")
        if result is None:
            result = part
            continue
        both = result.notna() & part.notna()
        result = result.fillna(part).where(~both, result + sep + part)
    assert result is not None
    return result

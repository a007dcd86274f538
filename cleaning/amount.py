"""Money amounts (合同金额): thousands separators, 万/亿 units, currency marks to float."""

from __future__ import annotations

import re
from functools import lru_cache

from cleaning.text import normalize_text

_CURRENCY = re.compile(r"(人民币|rmb|cny|元整?|圆|块|¥|￥|yuan)", re.IGNORECASE)
_FOREIGN = re.compile(r"(usd|us\$|\$|eur|€|gbp|£|hkd|jpy|美元|欧元|港币|日元)", re.IGNORECASE)
_UNITS = {"万": 1e4, "w": 1e4, "千": 1e3, "k": 1e3, "百万": 1e6, "m": 1e6, "亿": 1e8}
_NUMBER = re.compile(r"^([-+]?)(\d{1,3}(?:,\d{3})+|\d+)?(\.\d+)?\s*(百万|万|千|亿|w|k|m)?$", re.I)
_EURO = re.compile(r"^\d{1,3}(?:\.\d{3})+,\d{1,2}$")  # 1.234,56


@lru_cache(maxsize=200_000)
def parse_amount(text: str | None) -> tuple[float | None, str | None]:
    """Parse a money amount.

    Handles ``12,345.00``, ``1.2万``, ``3亿``, ``¥8800``, ``8800元``, ``RMB 8,800``, ``(1,000)``
    for negatives and ``1.234,56`` (European separators). Foreign currency marks are parsed
    but reported, since amounts are not converted.

    Args:
        text: Raw amount text.

    Returns:
        ``(value, issue)``; issue is ``amount_unparsed`` or ``amount_foreign_currency``.

    Example:
        >>> parse_amount("1.2万")
        (12000.0, None)
    """
    s = normalize_text(text)
    if s is None:
        return None, None
    issue = "amount_foreign_currency" if _FOREIGN.search(s) else None
    s = _FOREIGN.sub("", _CURRENCY.sub("", s)).replace(" ", "")
    negative = s.startswith("(") and s.endswith(")")
    s = s.strip("()")
    if _EURO.match(s):
        s = s.replace(".", "").replace(",", ".")
    m = _NUMBER.match(s)
    if not m or not (m[2] or m[3]):
        return None, "amount_unparsed"
    value = float((m[2] or "0").replace(",", "") + (m[3] or ""))
    if m[4]:
        value *= _UNITS[m[4].lower()]
    if m[1] == "-" or negative:
        value = -value
    return round(value, 2), issue

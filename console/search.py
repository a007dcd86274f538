"""Search keys (搜索键) for the console: names in simplified characters, pinyin and initials.

A traditional or simplified name, its full pinyin (``shenzhenjinfu``) or its initials
(``szjf``) find the same customer; phones are matched on digits, e-mails case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from cleaning import normalize_text
from dedupe.prepare import pinyin

__all__ = ["SearchQuery", "name_keys", "parse_query"]

_CUSTOMER_ID = re.compile(r"^C\d{6,}$", re.IGNORECASE)
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$", re.IGNORECASE)
_LATIN = re.compile(r"^[a-z ]+$")
_DIGITS = re.compile(r"\D+")


@dataclass(frozen=True)
class SearchQuery:
    """A query read for what it is: ``kind`` and the ``key`` to look up."""

    kind: str  # customer_id, record_key, email, credit_code, phone, pinyin, name, empty
    key: str


@lru_cache(maxsize=100_000)
def _initial(char: str) -> str:
    return pinyin(char)[:1] if "\u3400" <= char <= "\u9fff" else char.lower()


def name_keys(name: str) -> tuple[str, str, str]:
    """The search keys of one name: simplified text, toneless pinyin, initials.

    Example:
        >>> name_keys("深圳金福")
        ('深圳金福', 'shenzhenjinfu', 'szjf')
    """
    simple = normalize_text(name) or ""
    return (
        simple.lower(),
        pinyin(simple),
        "".join(_initial(c) for c in simple if not c.isspace()),
    )


def name_key_frame(names: pd.Series) -> pd.DataFrame:
    """:func:`name_keys` of many names (each distinct name once): name, simple, pinyin, initials."""
    distinct = names.dropna().astype(str).drop_duplicates()
    keys = [name_keys(n) for n in distinct]
    return pd.DataFrame(
        {
            "name": distinct.to_numpy(),
            "simple": [k[0] for k in keys],
            "pinyin": [k[1] for k in keys],
            "initials": [k[2] for k in keys],
        }
    )


def parse_query(text: str) -> SearchQuery:
    """What a steward typed: an id, a record key, an e-mail, a credit code, a phone or a name.

    Example:
        >>> parse_query("張偉")
        SearchQuery(kind='name', key='张伟')
        >>> parse_query("138-0013 8000")
        SearchQuery(kind='phone', key='13800138000')
    """
    raw = (normalize_text(text) or "").strip()
    if not raw:
        return SearchQuery("empty", "")
    if _CUSTOMER_ID.match(raw):
        return SearchQuery("customer_id", raw.upper())
    if ":" in raw and " " not in raw:
        return SearchQuery("record_key", raw)
    if "@" in raw:
        return SearchQuery("email", raw.lower())
    if _CREDIT_CODE.match(raw) and not raw.isdigit():
        return SearchQuery("credit_code", raw.upper())
    digits = _DIGITS.sub("", raw)
    if len(digits) >= 4 and len(digits) >= len(raw.replace(" ", "")) - 4:
        if len(digits) == 18:
            return SearchQuery("credit_code", digits)
        return SearchQuery("phone", digits)
    lowered = raw.lower()
    if _LATIN.match(lowered):
        return SearchQuery("pinyin", lowered.replace(" ", ""))
    return SearchQuery("name", lowered)

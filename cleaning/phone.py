"""Phones (电话): E.164 via phonenumbers, type, extension, validity, shared numbers."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat, PhoneNumberType
from phonenumbers.phonenumberutil import (
    REGION_CODE_FOR_NON_GEO_ENTITY,
    _number_type_helper,
    country_code_for_valid_region,
    national_significant_number,
    region_code_for_number,
)

from cleaning.text import normalize_text

_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed",
    PhoneNumberType.TOLL_FREE: "toll_free",
    # 400 numbers: China's caller-pays-local service hotlines, treated as toll_free
    PhoneNumberType.SHARED_COST: "toll_free",
}
# 转 / 分机 / ext / x / # introduce an extension: 010-12345678转8001, 021-6888 8888 ext.12
_EXT = re.compile(
    r"\s*(?:转|分机号?|ext\.?|extension|x|#|-(?=\d{1,5}$)(?<=\d{7}-))\s*:?\s*(\d{1,6})\s*$",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"\s*(?:[/;,|、]|或|\s{2,})\s*")
_LABEL = re.compile(
    r"^(?:tel|phone|mobile|mob|cell|电话|手机|座机|联系电话|固话|热线)\s*[:.]?\s*", re.I
)
_JUNK = re.compile(r"[^\d+]")


class PhoneResult(NamedTuple):
    """A normalized phone: E.164 (None when invalid), type, extension, validity, others found."""

    e164: str | None
    type: str | None
    ext: str | None
    valid: bool
    others: tuple[str, ...] = ()


def _parse_one(text: str, region: str) -> PhoneResult:
    """Parse a single phone number text."""
    text = _LABEL.sub("", text)
    ext = None
    m = _EXT.search(text)
    if m:
        ext, text = m.group(1), text[: m.start()]
    digits = _JUNK.sub("", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif region == "CN" and digits.startswith("86") and len(digits) in (12, 13):
        digits = "+" + digits  # 86 13912345678 / 86 10 12345678 without the plus
    number = _number(digits, region)
    if number is None:
        return PhoneResult(None, None, ext, False)
    return PhoneResult(number[0], number[1], ext, True)


def _valid_type(num: phonenumbers.PhoneNumber) -> int | None:
    """``number_type(num)`` when ``is_valid_number(num)``, else None, classifying once.

    Both library calls resolve the number's region and metadata and run the same type
    classification (``_number_type_helper``); a number is valid when its region's calling
    code is its own and the type is known. ``tests/cleaning/test_phone.py`` pins this
    against the two public calls.
    """
    region = region_code_for_number(num)
    if region is None:
        return None
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(num.country_code, region.upper())
    if metadata is None or (
        region != REGION_CODE_FOR_NON_GEO_ENTITY
        and num.country_code != country_code_for_valid_region(region)
    ):
        return None
    kind = _number_type_helper(national_significant_number(num), metadata)
    return None if kind == PhoneNumberType.UNKNOWN else kind


@lru_cache(maxsize=200_000)
def _number(digits: str, region: str) -> tuple[str, str] | None:
    """(E.164, type) of a valid number's digits (a leading + for a country code), else None.

    Remembered per digits: one number is written many ways (139 1234 5678, 139-1234-5678).
    """
    try:
        num = phonenumbers.parse(digits, region)
    except NumberParseException:
        return None
    kind = _valid_type(num)
    if kind is None:
        return None
    return phonenumbers.format_number(num, PhoneNumberFormat.E164), _TYPES.get(kind, "other")


@lru_cache(maxsize=500_000)
def normalize_phone(text: str | None, region: str = "CN") -> PhoneResult:
    """Normalize one phone field to E.164 (default region CN).

    Accepts spaces, dashes, dots, brackets, +86 / 0086 / 86 prefixes, area codes with or
    without the trunk 0, extensions (转, 分机, ext, x, #), labels (电话:), and several numbers
    in one field (the first valid one wins, the rest are reported in ``others``).

    Args:
        text: Raw phone text.
        region: ISO region for numbers written without a country code.

    Returns:
        A :class:`PhoneResult`; invalid numbers have ``e164=None`` and ``valid=False``.

    Example:
        >>> normalize_phone("(010) 6275-1234 转 8001")
        PhoneResult(e164='+861062751234', type='fixed', ext='8001', valid=True, others=())
    """
    norm = normalize_text(text)
    if norm is None:
        return PhoneResult(None, None, None, False)
    parts = [p for p in _SPLIT.split(norm) if _JUNK.sub("", p)]
    results = [_parse_one(p, region) for p in parts] or [PhoneResult(None, None, None, False)]
    valid = [r for r in results if r.valid]
    if not valid:
        return results[0]
    first = valid[0]
    others = tuple(r.e164 for r in valid[1:] if r.e164 and r.e164 != first.e164)
    return first._replace(others=others)


def flag_shared_phones(phone: pd.Series, name_key: pd.Series, min_names: int = 3) -> pd.Series:
    """Flag switchboard numbers shared by many unrelated customers (总机).

    Args:
        phone: E.164 phones (nulls ignored).
        name_key: Customer match keys aligned with ``phone``.
        min_names: A phone seen with at least this many distinct name keys is shared. Names
            count by the sound of their first two characters, and a lone Chinese surname (杨 of
            杨女士) not at all: one customer's typos (李秀, 李绣, 李 秀) are one name.

    Returns:
        A boolean Series aligned with ``phone``.
    """
    # only numbers on at least `min_names` records can be shared: sound out just their names
    many = phone.map(phone.value_counts()).fillna(0).to_numpy() >= min_names
    frame = pd.DataFrame({"phone": phone[many], "name_key": _name_sound(name_key[many])})
    counts = frame.dropna(subset=["phone"]).groupby("phone")["name_key"].nunique()
    shared = counts.index[counts >= min_names]
    return phone.isin(shared).fillna(False).astype(bool)


@lru_cache(maxsize=65536)
def _char_sound(char: str) -> str:
    """Pinyin of one character without tone (other characters as they are)."""
    if not "\u3400" <= char <= "\u9fff":
        return char.lower()
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(char))


def _name_sound(name_key: pd.Series) -> pd.Series:
    """Pinyin of a name key's first two characters (None for a lone surname), per distinct key."""
    codes, uniques = pd.factorize(name_key, use_na_sentinel=True)

    def sound(name: str) -> str | None:
        if len(name) == 1 and "\u4e00" <= name <= "\u9fff":
            return None  # a surname alone (杨 of 杨女士)
        return "".join(_char_sound(c) for c in name[:2])

    sounds = [sound(str(u)) for u in uniques]
    values = pd.Series([*sounds, None], dtype=object)
    return pd.Series(values.to_numpy()[codes], index=name_key.index, dtype=object)


@lru_cache(maxsize=1)
def _area_places() -> dict[str, str]:
    """Area code → place, from ``resources/area_codes.csv`` (built from phonenumbers' geocoder)."""
    import csv
    from pathlib import Path

    path = Path(__file__).parent / "resources" / "area_codes.csv"
    with path.open(encoding="utf-8") as fh:
        return {row["area_code"]: row["place"] for row in csv.DictReader(fh)}


def landline_place(e164: str | None) -> str | None:
    """Where a Chinese fixed line is: its area code's city (4 digits) or province (2 digits).

    Mobiles, 400/800 hotlines and foreign numbers carry no place (a mobile's home region says
    little about a company's seat).

    Args:
        e164: an E.164 number such as +8657112345678 (杭州 0571).

    Returns:
        The place code, or None.

    Example:
        >>> landline_place("+8657112345678"), landline_place("+8613912345678")
        ('3301', None)
    """
    if not e164 or not e164.startswith("+86") or len(e164) < 10:
        return None
    digits = e164[3:]
    if digits[0] in "1" and not digits.startswith("10"):
        return None  # mobile
    if digits[0] in "2" or digits.startswith("10"):
        area = digits[:2]
    elif digits[0] in "345789":
        area = digits[:3]
        if area in ("400", "800"):
            return None
    else:
        return None
    return _area_places().get(area)

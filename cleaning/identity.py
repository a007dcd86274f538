"""Person identity fields: 居民身份证号 (GB 11643), other documents, birth date, gender, masks."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from typing import NamedTuple

from cleaning.divisions import division_index

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SEPARATORS = re.compile(r"[\s\-–—_.]+")
_MASKED_PHONE = re.compile(r"^(?:\+?86)?([0-9*]{7,12})$")

RESIDENT_ID = "resident_id"
"""``id_kind`` of a 中华人民共和国居民身份证 number."""
# 证件类型 as departments write it → the kind recorded (other kinds are kept as typed identifiers)
ID_TYPES: dict[str, str] = {
    "居民身份证": RESIDENT_ID, "身份证": RESIDENT_ID, "二代身份证": RESIDENT_ID,
    "身份证号": RESIDENT_ID, "id card": RESIDENT_ID, "resident id": RESIDENT_ID,
    "idcard": RESIDENT_ID, "01": RESIDENT_ID, "1": RESIDENT_ID,
    "护照": "passport", "passport": "passport", "中国护照": "passport", "外国护照": "passport",
    "港澳通行证": "hk_macao_permit", "港澳居民来往内地通行证": "hk_macao_permit",
    "回乡证": "hk_macao_permit", "台胞证": "taiwan_permit",
    "台湾居民来往大陆通行证": "taiwan_permit",
    "外国人永久居留身份证": "foreign_permanent_resident", "军官证": "military_id",
    "港澳台居民居住证": "residence_permit", "驾驶证": "driving_licence",
}  # fmt: skip


def gb11643_check_char(first17: str) -> str:
    """Check character of a 18-character 居民身份证号 (GB 11643, ISO 7064 MOD 11-2).

    Example:
        >>> gb11643_check_char("11010519491231002")
        'X'
    """
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


class IdNumber(NamedTuple):
    """A cleaned identity-document number.

    ``number`` is the canonical text: an 18-character 居民身份证号 (upper-case X) for resident
    ids — also when invalid, then as written without separators — or ``<kind>:<NUMBER>`` for
    other documents (passport:E12345678). ``valid`` is None when not checkable (other kinds,
    masked numbers). ``reason`` is an issue code when the number is invalid or was converted.
    """

    number: str | None
    kind: str | None
    valid: bool | None
    reason: str | None
    birth_date: str | None
    gender: str | None


_NONE = IdNumber(None, None, None, None, None, None)


def _id_kind(id_type: str | None) -> str | None:
    if id_type is None:
        return None
    text = unicodedata.normalize("NFKC", id_type).strip().lower()
    if not text:
        return None
    return ID_TYPES.get(text) or re.sub(r"\W+", "_", text).strip("_") or None


def _birth(text: str) -> str | None:
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
    return born.isoformat() if date(1900, 1, 1) <= born <= date.today() else None


def _region_known(code: str) -> bool:
    """The first two digits name a province (省级行政区) and the next two are plausible."""
    return f"{code[:2]}0000" in division_index().by_code or code[:2] in ("71", "81", "82", "83")


@lru_cache(maxsize=200_000)
def validate_id_number(text: str | None, id_type: str | None = None) -> IdNumber:
    """Validate and normalize an identity-document number (证件号码).

    A resident id (居民身份证号, the default kind when the type is absent and the number
    looks like one) must have 18 characters — 17 digits and a GB 11643 check character —
    with a province code known to GB/T 2260 and a real birth date between 1900 and today;
    a 15-digit first-generation number is converted to 18 (19YY and the check character
    added). A lowercase x is read as X. Masked numbers (``110105********002X``) are kept as
    written, neither valid nor invalid. Other kinds (护照, 港澳通行证 …) are kept as typed
    identifiers ``passport:E12345678``.

    Args:
        text: The number as written.
        id_type: 证件类型 as written (居民身份证, 护照, passport …), or None.

    Returns:
        An :class:`IdNumber`; ``reason`` is one of ``id_number_invalid_length``,
        ``id_number_invalid_check``, ``id_number_invalid_birth_date``,
        ``id_number_invalid_region``, ``id_number_converted_15`` or ``id_number_masked``.

    Example:
        >>> validate_id_number("11010519491231002x").number
        '11010519491231002X'
    """
    if text is None:
        return _NONE
    value = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if not value:
        return _NONE
    kind = _id_kind(id_type)
    looks_resident = re.fullmatch(r"[0-9*]{14,17}[0-9X*]", value) is not None
    if kind not in (None, RESIDENT_ID) or (kind is None and not looks_resident):
        kind = kind or "other"
        return IdNumber(f"{kind}:{value}", kind, None, None, None, None)
    if "*" in value:
        return IdNumber(value, RESIDENT_ID, None, "id_number_masked", None, None)
    if re.fullmatch(r"\d{15}", value):
        body = value[:6] + "19" + value[6:]
        value = body + gb11643_check_char(body)
        converted = True
    else:
        converted = False
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return IdNumber(value, RESIDENT_ID, False, "id_number_invalid_length", None, None)
    if gb11643_check_char(value[:17]) != value[17]:
        return IdNumber(value, RESIDENT_ID, False, "id_number_invalid_check", None, None)
    born = _birth(value[6:14])
    if born is None:
        return IdNumber(value, RESIDENT_ID, False, "id_number_invalid_birth_date", None, None)
    if not _region_known(value[:6]):
        return IdNumber(value, RESIDENT_ID, False, "id_number_invalid_region", None, None)
    gender = "M" if int(value[16]) % 2 else "F"
    reason = "id_number_converted_15" if converted else None
    return IdNumber(value, RESIDENT_ID, True, reason, born, gender)


_GENDERS = {
    "男": "M", "男性": "M", "m": "M", "male": "M", "先生": "M", "1": "M",
    "女": "F", "女性": "F", "f": "F", "female": "F", "女士": "F", "2": "F",
}  # fmt: skip


def normalize_gender(text: str | None) -> str | None:
    """性别 as ``M`` / ``F`` (男/女, M/F, male/female, GB/T 2261.1 codes 1/2), else None.

    Example:
        >>> normalize_gender(" 女 ")
        'F'
    """
    if text is None:
        return None
    return _GENDERS.get(unicodedata.normalize("NFKC", text).strip().lower())


def is_masked(text: str | None) -> bool:
    """Whether a value hides characters behind ``*`` (``138****5678``, ``张*``, ``张**``)."""
    return text is not None and ("*" in text or "＊" in text)


def masked_phone(text: str | None) -> str | None:
    """A masked phone as digits and ``*`` (``138****5678``), or None when it is not one.

    Separators and a +86 prefix are dropped; at least 3 digits must remain visible.

    Example:
        >>> masked_phone("+86 138-****-5678")
        '138****5678'
    """
    if not is_masked(text):
        return None
    value = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", str(text)))
    m = _MASKED_PHONE.match(value)
    if not m or sum(c.isdigit() for c in m.group(1)) < 3:
        return None
    return m.group(1)


def compose_name(given: str | None, family: str | None) -> str | None:
    """A display name from 名 and 姓: Chinese order without space (张伟), Latin given first.

    Example:
        >>> compose_name("伟", "张"), compose_name("John", "Smith")
        ('张伟', 'John Smith')
    """
    parts = [p.strip() for p in (family, given) if p and p.strip()]
    if not parts:
        return None
    if any("\u3400" <= c <= "\u9fff" for p in parts for c in p):
        return "".join(parts)
    given_part = (given or "").strip()
    family_part = (family or "").strip()
    return " ".join(p for p in (given_part, family_part) if p)

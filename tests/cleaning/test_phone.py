"""Labelled phone numbers: every valid form normalized (100 %), invalid ones flagged not dropped."""

from __future__ import annotations

import pandas as pd
import pytest

from cleaning import flag_shared_phones, normalize_phone

# (raw, e164, type, ext)
VALID: list[tuple[str, str, str, str | None]] = [
    ("13912345678", "+8613912345678", "mobile", None),
    ("139 1234 5678", "+8613912345678", "mobile", None),
    ("139-1234-5678", "+8613912345678", "mobile", None),
    ("139.1234.5678", "+8613912345678", "mobile", None),
    ("+86 139 1234 5678", "+8613912345678", "mobile", None),
    ("+86-13912345678", "+8613912345678", "mobile", None),
    ("(+86)13912345678", "+8613912345678", "mobile", None),
    ("0086 13912345678", "+8613912345678", "mobile", None),
    ("8613912345678", "+8613912345678", "mobile", None),
    ("86 139 1234 5678", "+8613912345678", "mobile", None),
    ("１３９１２３４５６７８", "+8613912345678", "mobile", None),
    ("手机：13912345678", "+8613912345678", "mobile", None),
    ("Tel: 139 1234 5678", "+8613912345678", "mobile", None),
    ("\u200b13912345678 ", "+8613912345678", "mobile", None),
    ("18600001111", "+8618600001111", "mobile", None),
    ("15012345678", "+8615012345678", "mobile", None),
    ("17712345678", "+8617712345678", "mobile", None),
    ("19912345678", "+8619912345678", "mobile", None),
    ("010-62751234", "+861062751234", "fixed", None),
    ("(010) 6275-1234", "+861062751234", "fixed", None),
    ("010 6275 1234", "+861062751234", "fixed", None),
    ("01062751234", "+861062751234", "fixed", None),
    ("+86 10 6275 1234", "+861062751234", "fixed", None),
    ("+86-10-62751234", "+861062751234", "fixed", None),
    ("86-10-62751234", "+861062751234", "fixed", None),
    ("10-62751234", "+861062751234", "fixed", None),
    ("021-68881234", "+862168881234", "fixed", None),
    ("021 6888 1234", "+862168881234", "fixed", None),
    ("0755-86013388", "+8675586013388", "fixed", None),
    ("(0755)86013388", "+8675586013388", "fixed", None),
    ("电话：0755-86013388", "+8675586013388", "fixed", None),
    ("0571-88886666", "+8657188886666", "fixed", None),
    ("028-85551234", "+862885551234", "fixed", None),
    ("0512-6552 1234", "+8651265521234", "fixed", None),
    ("010-62751234转8001", "+861062751234", "fixed", "8001"),
    ("(010) 6275-1234 转 8001", "+861062751234", "fixed", "8001"),
    ("010-62751234 分机 12", "+861062751234", "fixed", "12"),
    ("010-62751234分机号:305", "+861062751234", "fixed", "305"),
    ("021-68881234-808", "+862168881234", "fixed", "808"),
    ("021 6888 1234 ext. 12", "+862168881234", "fixed", "12"),
    ("021 6888 1234 x12", "+862168881234", "fixed", "12"),
    ("0571-88886666#201", "+8657188886666", "fixed", "201"),
    ("400-800-1234", "+864008001234", "toll_free", None),
    ("4008001234", "+864008001234", "toll_free", None),
    ("400 830 8300", "+864008308300", "toll_free", None),
    ("800-830-1880", "+868008301880", "toll_free", None),
    ("+1 (650) 253-0000", "+16502530000", "fixed", None),
    ("+44 20 7946 0958", "+442079460958", "fixed", None),
    ("+852 2123 4567", "+85221234567", "fixed", None),
    ("+852 9123 4567", "+85291234567", "mobile", None),
    ("+886 912 345 678", "+886912345678", "mobile", None),
    ("+81 3-1234-5678", "+81312345678", "fixed", None),
    ("+49 30 12345678", "+493012345678", "fixed", None),
    ("001 650 253 0000", "+16502530000", "fixed", None),
]

INVALID = ["1391234567", "139123456789", "12345", "abc", "0755-8888888", "95588",
           "000-0000-0000", "N/A", "无", "03/15/2024", "+86 123"]  # fmt: skip


@pytest.mark.parametrize(("raw", "e164", "kind", "ext"), VALID)
def test_valid_forms(raw: str, e164: str, kind: str, ext: str | None) -> None:
    r = normalize_phone(raw)
    assert (r.e164, r.type, r.ext, r.valid) == (e164, kind, ext, True)


def test_valid_accuracy_is_total() -> None:
    ok = sum(normalize_phone(raw).e164 == e164 for raw, e164, _, _ in VALID)
    assert ok == len(VALID)


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_flagged(raw: str) -> None:
    r = normalize_phone(raw)
    assert r.valid is False and r.e164 is None


def test_several_numbers_first_valid_kept_rest_reported() -> None:
    r = normalize_phone("13912345678/010-62751234")
    assert r.e164 == "+8613912345678" and r.others == ("+861062751234",)
    assert normalize_phone("abc; 021-68881234").e164 == "+862168881234"


def test_other_default_region() -> None:
    assert normalize_phone("(650) 253-0000", "US").e164 == "+16502530000"


def test_shared_phone_needs_distinct_names() -> None:
    phone = pd.Series(["+1", "+1", "+1", "+2", "+2", "+2", None], dtype="string")
    keys = pd.Series(["a", "b", "c", "d", "d", "d", "e"], dtype="string")
    assert flag_shared_phones(phone, keys, 3).tolist() == [True] * 3 + [False] * 4


def test_shared_phone_counts_a_customers_typos_once() -> None:
    phone = pd.Series(["+1"] * 4 + ["+2"] * 3, dtype="string")
    # one person's variants (same sound, a lone surname from 李女士) vs three companies
    keys = pd.Series(
        ["李秀", "李绣", "李", "李秀", "华信科技", "远东物流", "金飞电子"], dtype="string"
    )
    assert flag_shared_phones(phone, keys, 3).tolist() == [False] * 4 + [True] * 3


def test_one_classification_equals_is_valid_and_number_type() -> None:
    """``_valid_type`` (one type classification) == is_valid_number + number_type, on numbers
    of every kind: CN mobiles/landlines/400/800, foreign, non-geographic, short and long."""
    import random

    import phonenumbers

    from cleaning.phone import _valid_type

    rng = random.Random(7)
    prefixes = ["", "0", "1", "13", "17", "19", "10", "20", "21", "400", "800", "571", "0571"]
    prefixes += ["+1", "+44", "+852", "+886", "+81", "+800", "+882", "+86", "+8610", "+86400"]
    checked = valid = 0
    for _ in range(6000):
        text = rng.choice(prefixes) + "".join(rng.choices("0123456789", k=rng.randrange(3, 12)))
        try:
            num = phonenumbers.parse(text, rng.choice(["CN", "CN", "US", "HK"]))
        except phonenumbers.NumberParseException:
            continue
        checked += 1
        expected = phonenumbers.number_type(num) if phonenumbers.is_valid_number(num) else None
        valid += expected is not None
        assert _valid_type(num) == expected, text
    assert checked > 5000 and valid > 300

"""The bulk phone route (segment fast path) equals normalize_phone (phonenumbers) value by value."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from cleaning.phone import normalize_phone
from cleaning.phone_bulk import _mobile_fast_path, normalize_phones
from cleaning.text import normalize_text

_reference = normalize_phone.__wrapped__  # the per-value route, without its cache


def _expected(values: list[str | None], region: str = "CN") -> list[tuple]:
    out = []
    for v in values:
        r = _reference(v, region)
        others = ",".join(r.others) or None
        out.append((r.e164, r.type, r.ext, others, normalize_text(v) is not None))
    return out


def _got(values: list[str | None], region: str = "CN") -> list[tuple]:
    cols = normalize_phones(values, region)
    return list(zip(*(c.to_pylist() for c in cols), strict=True))


def _every_segment(rng: random.Random) -> list[str]:
    """One random 11-digit number per five-digit segment 10000–19999, in assorted spellings."""
    forms = ["{n}", "+86 {a} {b} {c}", "0086{n}", "86{n}", "{a}-{b}-{c}", "(+86){n}",
             "+86-{n}", "{a}.{b}.{c}", " {n} ", "86 {a} {b} {c}"]  # fmt: skip
    values = []
    for seg in range(10000, 20000):
        n = f"{seg}{rng.randrange(10**6):06d}"
        values.append(rng.choice(forms).format(n=n, a=n[:3], b=n[3:7], c=n[7:]))
    return values


EDGE_CASES: list[str | None] = [
    None, "", "   ", "-", "无", "abc",
    "13912345678", "1391234567", "139123456789", "03912345678", "23912345678",  # short/long/not 1
    "12345678901", "11912345678", "17900123456", "17911123456",  # carrier-prefix look-alikes
    "16101234567", "17405123456", "17406123456", "14512345678", "14012345678",  # rare segments
    "19212345678", "16612345678", "10012345678", "+8613912345678", "+86 13912345678",
    "008613912345678", "8613912345678", "86-139-1234-5678", "+0086 13912345678",
    "++8613912345678", "1391234+5678", "+1 13912345678",
    "13912345678转8001", "13912345678 ext 12", "1391234-5678", "13912345678-12", "13912345678#1",
    "139 1234 5678 / 138 0013 8000", "13912345678,13800138000", "13912345678或13800138000",
    "１３９１２３４５６７８", "手机：13912345678", "Tel: 139 1234 5678", "\u200b13912345678 ",
    "139  1234  5678", "(139) 1234 5678", "139\t1234\t5678",
    "010-62751234", "(010) 6275-1234 转 8001", "01062751234", "+86 10 6275 1234",
    "0755-86013388", "075586013388", "400-800-1234", "800-810-8888", "95588", "10086",
    "+1 650 253 0000", "+44 20 7946 0958", "+852 2123 4567", "+886 2 2345 6789",
    "03/15/2024", "12345",
]  # fmt: skip


def test_bulk_equals_library_on_every_segment_and_edge_cases() -> None:
    rng = random.Random(20241124)
    values = _every_segment(rng) + EDGE_CASES
    assert _got(values) == _expected(values)


def test_fast_path_actually_decides_plain_mobiles() -> None:
    values = ["13912345678", "+86 139 1234 5678", "17406123456", "1391234-5678", "139转1"]
    norms = pa.array([normalize_text(v) for v in values], pa.string())
    mask, e164, kinds = _mobile_fast_path(norms)
    assert mask.tolist() == [True, True, True, False, False]
    assert e164.to_pylist()[:3] == ["+8613912345678", "+8613912345678", None]
    assert kinds.to_pylist()[:3] == ["mobile", "mobile", None]


@pytest.mark.parametrize("region", ["US", "GB"])
def test_other_regions_take_the_full_route(region: str) -> None:
    values = ["13912345678", "+8613912345678", "(650) 253-0000", "020 7946 0958", None]
    assert _got(values, region) == _expected(values, region)


def test_empty_input() -> None:
    assert all(len(c) == 0 for c in normalize_phones([]))

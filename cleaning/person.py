"""Person names (联系人): Chinese and Latin names, honorifics split into a title."""

from __future__ import annotations

import re
from functools import lru_cache

from cleaning.text import normalize_text

# longest first so 副总经理 wins over 经理 and 总
_CN_TITLES = sorted(
    [
        "先生",
        "女士",
        "小姐",
        "太太",
        "夫人",
        "同学",
        "师傅",
        "老师",
        "教授",
        "博士",
        "医生",
        "大夫",
        "律师",
        "会计",
        "工程师",
        "总工",
        "董事长",
        "副董事长",
        "董事",
        "总裁",
        "副总裁",
        "总经理",
        "副总经理",
        "经理",
        "副经理",
        "总监",
        "副总监",
        "主任",
        "副主任",
        "主管",
        "助理",
        "专员",
        "部长",
        "副部长",
        "处长",
        "科长",
        "局长",
        "校长",
        "院长",
        "所长",
        "行长",
        "老板",
        "老总",
        "总",
        "秘书",
        "顾问",
        "厂长",
        "店长",
        "组长",
        "负责人",
        "法人",
        "法定代表人",
        "采购",
        "销售",
        "财务",
        "销售经理",
        "采购经理",
        "财务经理",
        "客户经理",
        "项目经理",
        "技术总监",
        "市场总监",
        "经理助理",
    ],
    key=len,
    reverse=True,
)
_CN_TITLE_RE = re.compile("(" + "|".join(_CN_TITLES) + ")+$")
_EN_PREFIX = re.compile(r"^(mr|mrs|ms|miss|mx|dr|prof|sir|madam|mme|mlle|herr|frau)\.?\s+", re.I)
_EN_SUFFIX = re.compile(r",?\s+(jr|sr|phd|md|esq|ii|iii)\.?$", re.I)
_BRACKETED = re.compile(r"\s*[(\[]([^()\[\]]*)[)\]]\s*$")  # 张伟(销售经理)
_DASHED = re.compile(r"^(.+?)\s*[-/|:]\s*(.+)$")  # 张伟 - 采购经理 / 经理:张伟
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_COMMA = re.compile(r"^([A-Za-z'\-]+),\s*([A-Za-z'.\- ]+)$")  # Smith, John


def _title_only(text: str) -> bool:
    """True when the text is nothing but titles (经理, Mr)."""
    return bool(_CN_TITLE_RE.fullmatch(text)) or bool(_EN_PREFIX.match(text + " "))


def _latin_case(name: str) -> str:
    """Title-case Latin names written all upper or all lower (JOHN SMITH → John Smith)."""
    if name.isupper() or name.islower():
        return " ".join(p[:1].upper() + p[1:].lower() for p in name.split(" "))
    return name


@lru_cache(maxsize=500_000)
def split_person_name(text: str | None) -> tuple[str | None, str | None]:
    """Split a contact name into the person name and the honorific or title (称谓/职务).

    Args:
        text: Raw name such as 张伟经理, 王女士, 李总, 张伟(销售经理), Mr. John Smith, Smith, John.

    Returns:
        ``(name, title)``; either may be None (王先生 → ('王', '先生'); 经理 → (None, '经理')).

    Example:
        >>> split_person_name("Mr. JOHN SMITH")
        ('John Smith', 'Mr')
    """
    return split_normalized_person_name(normalize_text(text))


@lru_cache(maxsize=500_000)  # a full clean's slices share contacts: each split once a stage
def split_normalized_person_name(s: str | None) -> tuple[str | None, str | None]:
    """:func:`split_person_name` for a name already through ``normalize_text`` (bulk callers).

    Args:
        s: ``normalize_text`` of the raw name.

    Returns:
        The same ``(name, title)`` as ``split_person_name`` on the raw name.
    """
    if s is None:
        return None, None
    titles: list[str] = []
    m = _BRACKETED.search(s)
    if m and m.group(1):
        titles.append(m.group(1).strip())
        s = s[: m.start()].strip()
    m = _DASHED.match(s)
    if m:
        left, right = m.group(1).strip(), m.group(2).strip()
        if _title_only(left) or (_CN_TITLE_RE.search(left) and not _CN_TITLE_RE.search(right)):
            titles.insert(0, left)
            s = right
        elif _title_only(right) or _CN_TITLE_RE.search(right):
            titles.insert(0, right)
            s = left
    m = _EN_PREFIX.match(s)
    if m:
        titles.insert(0, m.group(1).capitalize())
        s = s[m.end() :]
    if _CJK.search(s):
        s = s.replace(" ", "")
        m = _CN_TITLE_RE.search(s)
        if m and m.start() > 0:
            titles.insert(0, m.group(0))
            s = s[: m.start()]
        elif m:  # only a title
            return None, "".join([m.group(0), *titles])
    else:
        m = _EN_SUFFIX.search(s)
        if m:
            titles.append(m.group(1))
            s = s[: m.start()]
        m = _LATIN_COMMA.match(s)
        if m:
            s = f"{m.group(2).strip()} {m.group(1)}"
        s = _latin_case(s.strip())
    return (s or None), (" ".join(titles) or None)


def person_key(name: str | None) -> str | None:
    """Match key for a person: no spaces or punctuation, lowercase.

    Args:
        name: A name returned by :func:`split_person_name`.

    Returns:
        The key, or None for an empty name.
    """
    if not name:
        return None
    key = re.sub(r"[^\w]|_", "", name).lower()
    return key or None

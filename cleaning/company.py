"""Company names (客户名称): match key without legal form, region and branch."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from pypinyin import lazy_pinyin

from cleaning.divisions import division_index
from cleaning.text import normalize_text

# legal-form suffixes (组织形式), longest first; stripped repeatedly from the end of the name
_CN_FORMS = sorted(
    [
        "股份有限公司",
        "有限责任公司",
        "有限公司",
        "集团有限公司",
        "集团股份有限公司",
        "股份公司",
        "集团公司",
        "总公司",
        "公司",
        "集团",
        "(集团)",
        "(集团)有限公司",
        "有限合伙",
        "(有限合伙)",
        "普通合伙",
        "(普通合伙)",
        "特殊普通合伙",
        "(特殊普通合伙)",
        "合伙企业",
        "个人独资企业",
        "个体工商户",
        "有限",
        "控股集团",
        "控股",
    ],
    key=len,
    reverse=True,
)
_CN_FORM_TUPLE = tuple(_CN_FORMS)
_CN_FORM_RE = re.compile("(?:" + "|".join(re.escape(f) for f in _CN_FORMS) + ")$")
_EN_FORM_RE = re.compile(
    r"[\s,.]*\b(co\.?,?\s*ltd|company\s+limited|co\.?|company|corp(?:oration)?|inc(?:orporated)?|"
    r"l\.?l\.?c|l\.?l\.?p|ltd|limited|plc|gmbh|ag|s\.?a\.?s?|s\.?a\.?r\.?l|s\.?p\.?a|b\.?v|n\.?v|"
    r"pte|pty|k\.?k|oy|ab|group|holdings?)\.?$",
    re.IGNORECASE,
)
_BRANCH_WORDS = (
    "分公司|办事处|营业部|分店|分行|支行|分理处|分厂|分部|分中心|分所|分院|门店|经营部|代表处"
)
_BRANCH_RE = re.compile(rf"({_BRANCH_WORDS})$")
_EN_BRANCH_RE = re.compile(
    r"[\s,(-]*\b((?:[a-z]+\s+)?(?:branch(?:\s+office)?|representative\s+office))\)?$", re.I
)
_BRACKET = re.compile(r"\(([^()]*)\)")
_PUNCT = re.compile(r"[^\w]|_")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff]) +(?=[\u4e00-\u9fff])")
_CJK_GAP = re.compile(r"(?<=[\u4e00-\u9fff)]) (?=[\u4e00-\u9fff(])")
_COUNTRY = {"中国", "china", "中华", "prc"}
# words that cannot stand alone as a company's core name once the region is removed
_GENERIC = frozenset(
    [
        "银行",
        "大学",
        "医院",
        "科技",
        "公司",
        "集团",
        "商行",
        "商店",
        "超市",
        "酒店",
        "学校",
        "中学",
        "小学",
        "日报",
        "电视台",
        "电力",
        "燃气",
        "自来水",
        "农商银行",
        "农村商业银行",
        "商业银行",
        "证券",
        "保险",
        "人民医院",
        "中医院",
        "实业",
        "贸易",
        "师范大学",
        "理工大学",
        "职业学院",
    ]
)
ORG_WORDS = re.compile(
    r"(公司|集团|银行|大学|学院|学校|中学|小学|幼儿园|医院|诊所|事务所|研究院|研究所|中心|协会|商会|合作社|"
    r"委员会|局|厅|政府|工作室|厂|店|超市|商行|酒店|宾馆|餐厅|基金会|俱乐部|\b(?:university|bank|hospital|"
    r"school|college|association|foundation|institute|trading|technolog(?:y|ies)|solutions?|"
    r"services|systems|industries|international|consulting|partners|enterprises?|studio|"
    r"labs?|store|shop|hotel|restaurant|factory|agency|ventures|capital|media)\b)",
    re.IGNORECASE,
)


# 行业表述: the trade part of a company name (字号 + 行业 + 组织形式). A name of four or more
# characters ending in one (中远实业, 聚达建筑工程, 海盛投资) is an organisation written without
# its legal form; a person's name never ends so.
TRADE_WORDS = re.compile(
    r"(?:科技|技术|信息|网络|软件|数据|电子|通信|电器|机械|设备|仪器|器械|制造|材料|新材料|化工|"
    r"能源|电力|环保|建筑|建设|工程|装饰|装修|设计|置业|地产|房地产|物业|投资|资本|金融|租赁|"
    r"融资租赁|担保|保险|证券|实业|贸易|商贸|进出口|物流|运输|快递|供应链|餐饮|餐饮管理|食品|"
    r"饮料|酒业|农业|养殖|医药|医疗|生物|健康|药业|教育|培训|文化|传媒|广告|影视|出版|旅游|"
    r"酒店|咨询|管理|服务|人力资源|企业管理|会计|律师|印务|包装|纺织|服饰|服装|家居|家具|汽车|"
    r"汽配|五金|建材|钢铁|有色|矿业|石油|燃气|水务|电气|自动化|智能|光电|新能源)$"
)


def looks_like_organisation(name: str | None) -> bool:
    """True when a name reads as an organisation: an org word (公司, 医院) or a trade ending.

    Args:
        name: a normalized customer name.

    Returns:
        Whether the name is an organisation's rather than a person's.

    Example:
        >>> looks_like_organisation("聚达建筑工程"), looks_like_organisation("王建工")
        (True, False)
    """
    if not name:
        return False
    if ORG_WORDS.search(name):
        return True
    compact = _CJK_SPACE.sub("", name)
    return len(compact) >= 4 and TRADE_WORDS.search(compact) is not None


class CompanyName(NamedTuple):
    """A parsed company name."""

    display: str | None
    name_key: str | None
    region: str | None
    branch: str | None
    legal_form: str | None


@lru_cache(maxsize=1)
def _region_tables() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Names usable as a region in a company name: provinces, cities named 市, districts.

    Short forms of 地区 / 自治州 / 盟 (阿里, 海西) are left out: they collide with brand names
    (阿里巴巴) and company naming rules use the 省 / 市 / 县 names.
    """
    idx = division_index()
    by_code = idx.by_code
    cities = frozenset(
        n for n, codes in idx.cities.items()
        if any(by_code[c].name.endswith("市") for c in codes)
    )  # fmt: skip
    return frozenset(idx.provinces), cities, frozenset(idx.district_full)


@lru_cache(maxsize=1)
def _region_names() -> frozenset[str]:
    """All names usable as a region (union of :func:`_region_tables`)."""
    p, c, d = _region_tables()
    return p | c | d


@lru_cache(maxsize=1)
def _latin_regions() -> frozenset[str]:
    """Pinyin of province and city short names (shanghai, guangdong) for (Shanghai) in names."""
    provinces, cities, _ = _region_tables()
    names = {n for n in provinces | cities if len(n) <= 4 and not n.endswith(("市", "省"))}
    return frozenset("".join(lazy_pinyin(n)) for n in names) | {"hongkong", "macau", "taiwan"}


@lru_cache(maxsize=1)
def _region_prefixes() -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    """Each region table of :func:`_region_tables` with the set of all its names' prefixes."""
    return tuple(
        (names, frozenset(n[:k] for n in names for k in range(1, len(n) + 1)))
        for names in _region_tables()
    )


def _leading_region(core: str) -> tuple[str | None, str]:
    """Strip a leading province and/or city/district name (北京, 广东省深圳市) from a core name.

    Per table only the longest name the core starts with counts (found by walking the prefix
    set, as a trie would); it is stripped when the rest still holds a trade name
    (`keeps_trade_name`).
    """
    idx = division_index()
    found: list[str] = []
    rest = core
    for names, prefixes in _region_prefixes():
        limit = min(idx.max_len, len(rest) - 2)
        best, length = 0, 1
        while length <= limit and rest[:length] in prefixes:
            if length >= 2 and rest[:length] in names:
                best = length
            length += 1
        if best:
            head, tail = rest[:best], rest[best:]
            if keeps_trade_name(tail):
                found.append(head)
                rest = tail
    return ("".join(found) or None), rest


def keeps_trade_name(rest: str) -> bool:
    """Whether a core name without its leading region still holds a trade name (字号).

    A registered name is region + 字号 + 行业 + legal form, and a 字号 has two or more characters:
    what remains must be two or more characters, not a generic word (银行, 大学), and not one
    character or none before its trade words (行业表述, `TRADE_WORDS`). Else the "region" is part
    of the 字号 itself: 金华拓供应链 (金华 is also a city) keeps it, and so does 上海电气;
    南京航德科技 drops 南京.

    Example:
        >>> keeps_trade_name("航德科技"), keeps_trade_name("拓供应链"), keeps_trade_name("电气")
        (True, False, False)
    """
    if len(rest) < 2 or rest in _GENERIC:
        return False
    trade = rest
    while (found := TRADE_WORDS.search(trade)) is not None:
        trade = trade[: found.start()]
    return len(trade) >= 2


def _strip_forms(name: str) -> tuple[str, list[str]]:
    """Strip legal-form suffixes (Chinese and Latin) repeatedly from the end."""
    forms: list[str] = []
    while True:
        # endswith() first: the anchored alternation can only match where a form ends the name
        # (or before a final newline, which normalized names never hold)
        cn = _CN_FORM_RE.search(name) if name.endswith(_CN_FORM_TUPLE) or "\n" in name else None
        m = cn or _EN_FORM_RE.search(name)
        if not m or m.start() == 0:
            return name.strip(" ,.-"), forms
        forms.insert(0, m.group(0).strip(" ,."))
        name = name[: m.start()].rstrip(" ,.-")


def _split_branch(name: str) -> tuple[str, str | None]:
    """Split a branch part off a name: 某某有限公司上海分公司 → (某某有限公司, 上海分公司)."""
    m = _BRACKET.search(name)
    if m and _BRANCH_RE.search(m.group(1)) and name.endswith(")"):
        return (name[: m.start()] + name[m.end() :]).strip(), m.group(1)
    m = _BRANCH_RE.search(name)
    if m:
        head = name[: m.start()]
        # the branch starts after the last legal form or bank word of the head office name
        ends = ("公司", "集团", "银行", ")", "厂")
        cut = max((head.rfind(w) + len(w) for w in ends if w in head),
                  default=-1)  # fmt: skip
        if cut <= 0:  # no head-office suffix: the branch is the place name before it
            cut = max(len(head) - 4, 2)
            for length in range(min(6, len(head) - 2), 1, -1):  # 华为上海办事处 → 上海办事处
                if head[-length:] in _region_names():
                    cut = len(head) - length
                    break
        if cut >= len(head) and m.start() > 0:
            return head, name[m.start() :]
        return head[:cut], name[cut:]
    m = _EN_BRANCH_RE.search(name)
    if m and m.start() > 0:
        return name[: m.start()], m.group(1).strip()
    return name, None


@lru_cache(maxsize=500_000)
def parse_company_name(text: str | None) -> CompanyName:
    """Parse a company's legal name into display name, match key, region, branch and legal form.

    The display name is the legal name as given (normalized text). The key drops the legal form
    (有限公司, 股份有限公司, 集团, Co., Ltd., Inc. …), a region in brackets (（上海）) or at the
    start (北京, 广东省深圳市), the branch part (上海分公司, 北京办事处, Shanghai Branch),
    punctuation and spaces, and is lowercase and simplified.

    Args:
        text: Raw company name.

    Returns:
        A :class:`CompanyName`.

    Example:
        >>> parse_company_name("北京某某（上海）科技有限公司杭州分公司")
        CompanyName(display='北京某某(上海)科技有限公司杭州分公司', name_key='某某科技', region='北京/上海', branch='杭州分公司', legal_form='有限公司')
    """  # noqa: E501
    return parse_normalized_company_name(normalize_text(text))


@lru_cache(maxsize=500_000)  # a full clean's slices share names: each parsed once a stage
def parse_normalized_company_name(display: str | None) -> CompanyName:
    """:func:`parse_company_name` for a name already through ``normalize_text`` (bulk callers).

    Args:
        display: ``normalize_text`` of the raw name.

    Returns:
        The same :class:`CompanyName` as ``parse_company_name`` on the raw name.
    """
    if display is None:
        return CompanyName(None, None, None, None, None)
    # a stray space inside Chinese text (分公 司, 宏创餐 饮) is a typing slip, not a separator
    core, branch = _split_branch(_CJK_SPACE.sub("", display))
    core, forms = _strip_forms(core)
    regions: list[str] = []
    for m in reversed(list(_BRACKET.finditer(core))):
        inner = m.group(1).strip()
        latin = re.sub(r"[\s-]", "", inner.lower())
        if latin in _COUNTRY or inner in _region_names() or latin in _latin_regions():
            regions.insert(0, inner)
            core = core[: m.start()] + core[m.end() :]
        elif _CN_FORM_RE.fullmatch(inner) or _EN_FORM_RE.fullmatch(" " + inner):
            forms.insert(0, inner)
            core = core[: m.start()] + core[m.end() :]
    core, more_forms = _strip_forms(core.strip())
    forms = more_forms + forms
    if _CJK.search(core):
        lead, core = _leading_region(core)
        if lead:
            regions.insert(0, lead)
    key = _PUNCT.sub("", core).lower() or _PUNCT.sub("", display).lower()
    return CompanyName(
        display,
        key or None,
        ("/".join(regions) or None),
        branch,
        (_CJK_GAP.sub("", " ".join(forms)) or None),
    )


_TRAILING_REGION = re.compile(r"(?:公司|集团|厂|银行)\(([^()]+)\)$")


def branch_place(display: str | None, branch: str | None) -> tuple[str | None, bool]:
    """Which office of an organisation a record names: (place or branch text, qualifier only).

    A branch part (上海分公司, 武汉办事处) gives its place code (`place_of_name`, so 上海 and
    上海市 agree) or, without a place, its text. A region in brackets *after* the legal form
    (恒丰集团有限公司（北京）) is not part of a registered name (the region of a registered
    name sits before the trade or in the middle): departments add it to say which office they
    deal with, so it names a place but not whether that is a branch — the second value is True
    and the record stays compatible with the headquarters and with a branch in that place.

    Args:
        display: the normalized customer name.
        branch: the branch part found by `parse_company_name`.

    Returns:
        (place code, branch text or None for the headquarters; True for a bracketed qualifier).

    Example:
        >>> branch_place("恒丰集团有限公司北京分公司", "北京分公司")
        ('1101', False)
        >>> branch_place("恒丰集团有限公司(北京)", None)
        ('1101', True)
    """
    from cleaning.divisions import place_of_name

    if branch:
        words = _BRANCH_RE.sub("", branch).strip("() ")
        return (place_of_name(words) if words else None) or branch, False
    if display:
        m = _TRAILING_REGION.search(display)
        if m:
            place = place_of_name(m.group(1).strip())
            if place:
                return place, True
    return None, False

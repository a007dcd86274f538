"""Company-name shortcuts (region prefix walk, endswith before the form regex) equal plain code."""

from __future__ import annotations

import random

from cleaning.company import (
    _CN_FORM_RE,
    _CN_FORMS,
    _EN_FORM_RE,
    _leading_region,
    _region_tables,
    _strip_forms,
    keeps_trade_name,
)
from cleaning.divisions import division_index


def _leading_region_reference(core: str) -> tuple[str | None, str]:
    idx = division_index()
    found: list[str] = []
    rest = core
    for names in _region_tables():
        for length in range(min(idx.max_len, len(rest) - 2), 1, -1):
            head = rest[:length]
            if head in names:
                tail = rest[length:]
                if keeps_trade_name(tail):
                    found.append(head)
                    rest = tail
                break
    return ("".join(found) or None), rest


def _strip_forms_reference(name: str) -> tuple[str, list[str]]:
    forms: list[str] = []
    while True:
        m = _CN_FORM_RE.search(name) or _EN_FORM_RE.search(name)
        if not m or m.start() == 0:
            return name.strip(" ,.-"), forms
        forms.insert(0, m.group(0).strip(" ,."))
        name = name[: m.start()].rstrip(" ,.-")


def _names(rng: random.Random) -> list[str]:
    provinces, cities, districts = (sorted(t) for t in _region_tables())
    cores = ["星辰", "华为技术", "银行", "科技", "阿里巴巴", "A", "ACME", "北京银行", "东方明珠"]
    forms = ["", *_CN_FORMS, " Co., Ltd.", " Inc.", " GmbH", "有限公司有限公司", "(集团)有限公司"]
    out = []
    for _ in range(4000):
        parts = [rng.choice(t) for t in (provinces, cities, districts) if rng.random() < 0.5]
        out.append("".join(parts) + rng.choice(cores) + rng.choice(forms))
    return [*out, "", "北京", "北京市", "上海浦东", "有限公司", "A有限公司\n", "x\n有限"]


def test_leading_region_equals_plain_scan() -> None:
    for name in _names(random.Random(3)):
        assert _leading_region(name) == _leading_region_reference(name), name


def test_strip_forms_equals_regex_only() -> None:
    for name in _names(random.Random(4)):
        assert _strip_forms(name) == _strip_forms_reference(name), name

"""The sales CRM export (销售 CRM 客户表): careful typists, day-first dates, NULL for nulls."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from sources.demo.credit_code import corrupt_check_char
from sources.demo.draw import between, pick
from sources.demo.entities import World
from sources.demo.formats import (
    LAST_DAY,
    address_text,
    amount_text,
    date_text,
    day_to_date,
    industry_text,
)
from sources.demo.records import (
    SourceTable,
    contact_name_text,
    customer_name,
    email_for,
    phone_for,
)
from sources.demo.variants import NameNoise

SALES_HEADERS: tuple[str, ...] = (
    "客户编号",
    "客户名称",
    "客户类型",
    "联系人",
    "手机",
    "邮箱",
    "地址",
    "所属行业",
    "统一社会信用代码",
    "签约日期",
    "合同编号",
    "合同金额",
    "更新时间",
)
_COMPANY_NOISE = NameNoise(
    short_name=0.02,
    move_region=0.05,
    suffix_change=0.06,
    half_brackets=0.3,
    typo=0.015,
    traditional=0.01,
    spaces=0.03,
    title=0.0,
    latin=0.0,
)
_PERSON_NOISE = NameNoise(
    short_name=0.0,
    move_region=0.0,
    suffix_change=0.0,
    half_brackets=0.0,
    typo=0.01,
    traditional=0.01,
    spaces=0.02,
    title=0.03,
    latin=0.01,
)
_CONTACT_NOISE = NameNoise(
    short_name=0.0,
    move_region=0.0,
    suffix_change=0.0,
    half_brackets=0.0,
    typo=0.01,
    traditional=0.0,
    spaces=0.02,
    title=0.55,
    latin=0.01,
)
_TYPE_TEXT = {
    "enterprise": ("企业", "企业", "企业", "企业", "公司", "企业客户", "单位"),
    "individual": ("个人", "个人", "个人", "个人客户", "自然人"),
}
_DATE_STYLES = ("iso", "iso", "dmy", "dmy", "cn")  # the CRM's locale writes 15/03/2024


def _missing(r: random.Random) -> str:
    """How the CRM exports an empty field."""
    return "NULL" if r.random() < 0.35 else ""


def build_sales(world: World, entity_rows: np.ndarray, seed: int) -> SourceTable:
    """Build the CRM customer table: one row per CRM record, some entities entered twice.

    Args:
        world: the true entities.
        entity_rows: the entity number of each CRM record.
        seed: seed for this department's noise.

    Returns:
        The export rows (SALES_HEADERS, all text) and each row's true entity.
    """
    r = random.Random(seed)
    # A re-entered customer got its second record later: sign date shifted by weeks to years.
    order = np.argsort(entity_rows, kind="stable")
    ents = entity_rows[order].tolist()
    days: list[int] = []
    for pos, i in enumerate(ents):
        again = pos > 0 and ents[pos - 1] == i
        # never after the export's newest day: a CRM exported on 2026-11-20 holds no contract
        # signed in 2027 (the clean layer's not-in-the-future check would flag it)
        days.append(min(world.registered_day[i] + (between(r, 20, 700) if again else 0), LAST_DAY))
    by_day = np.argsort(np.array(days), kind="stable")
    ents = [ents[k] for k in by_day]
    days = [days[k] for k in by_day]
    ids = 10_000_000 + np.cumsum(np.array([between(r, 1, 4) for _ in ents], dtype=np.int64))

    rows: list[list[str | None]] = []
    for n, (i, day) in enumerate(zip(ents, days, strict=True)):
        individual = world.kind[i] == "individual"
        ctype = "individual" if individual else "enterprise"
        signed = day_to_date(day)
        if individual:
            contact = (
                contact_name_text(world, i, _CONTACT_NOISE, r, 0.0)
                if r.random() < 0.6
                else _missing(r)
            )
        else:
            contact = contact_name_text(world, i, _CONTACT_NOISE, r, 0.3)
        code = world.credit_code[i]
        if code is None or r.random() >= 0.85:
            code_text = _missing(r)
        else:
            code_text = corrupt_check_char(code, r) if r.random() < 0.025 else code
            if r.random() < 0.01:
                code_text = code_text.lower()
        section = world.section[i]
        amount = float(pick(r, (5, 8, 10, 12, 20, 30, 50, 88, 120, 300)) * pick(r, (100, 1000)))
        if not individual and (i * 2654435761) % 7 == 0:
            amount *= 10  # a few key accounts sign far larger contracts (tier A/B material)
        rows.append(
            [
                f"KH{ids[n]}",
                customer_name(world, i, _PERSON_NOISE if individual else _COMPANY_NOISE, r),
                pick(r, _TYPE_TEXT[ctype]) if r.random() > 0.03 else _missing(r),
                contact,
                phone_for(world, i, r, landline_share=0.25, old_share=0.5)
                if r.random() > 0.03
                else _missing(r),
                email_for(world, i, r, present=0.9) or _missing(r),
                address_text(world.place[i], world.street[i], world.building[i], r)
                if r.random() > 0.04
                else _missing(r),
                industry_text(section, world.industry_word[i], r)
                if section is not None and r.random() < 0.85
                else _missing(r),
                code_text,
                date_text(day, _DATE_STYLES, r) if r.random() > 0.03 else _missing(r),
                f"HT{signed.year}{n + 1:06d}" if r.random() > 0.1 else _missing(r),
                amount_text(amount, r, currency="￥") if r.random() > 0.1 else _missing(r),
                _updated_at(day, r),
            ]
        )
    frame = pd.DataFrame(rows, columns=list(SALES_HEADERS), dtype=object)
    return SourceTable(frame=frame, entity=ents)


def _updated_at(day: int, r: random.Random) -> str:
    """The CRM's last-modified timestamp (always the same layout)."""
    d = day_to_date(min(day + between(r, 0, 400), LAST_DAY))
    hour, minute, second = between(r, 8, 20), between(r, 0, 60), between(r, 0, 60)
    return f"{d.isoformat()} {hour:02d}:{minute:02d}:{second:02d}"

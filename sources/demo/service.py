"""The customer-service ticket export (客服工单): one row per ticket, details re-typed each time."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from sources.demo.draw import between, pick
from sources.demo.entities import World
from sources.demo.formats import (
    LAST_DAY,
    address_text,
    city_text,
    date_text,
    day_to_date,
    industry_text,
    province_text,
)
from sources.demo.records import (
    SourceTable,
    contact_name_text,
    customer_name,
    email_for,
    phone_for,
)
from sources.demo.variants import NameNoise
from sources.demo.vocab import (
    SATISFACTION_TEXT,
    SERVICE_CHANNELS,
    SERVICE_OUTCOMES,
    SERVICE_PROBLEMS,
)

SERVICE_HEADERS: tuple[str, ...] = (
    "工单号",
    "客户",
    "联系人姓名",
    "联系电话",
    "电子邮件",
    "所在省",
    "所在市",
    "详细地址",
    "行业",
    "工单日期",
    "渠道",
    "问题描述",
    "处理结果",
    "满意度",
)
_COMPANY_NOISE = NameNoise(
    short_name=0.22,
    move_region=0.12,
    suffix_change=0.12,
    half_brackets=0.5,
    typo=0.03,
    traditional=0.02,
    spaces=0.05,
    title=0.0,
    latin=0.0,
)
_PERSON_NOISE = NameNoise(
    short_name=0.0,
    move_region=0.0,
    suffix_change=0.0,
    half_brackets=0.0,
    typo=0.02,
    traditional=0.02,
    spaces=0.03,
    title=0.06,
    latin=0.01,
)
_CONTACT_NOISE = NameNoise(
    short_name=0.0,
    move_region=0.0,
    suffix_change=0.0,
    half_brackets=0.0,
    typo=0.02,
    traditional=0.01,
    spaces=0.03,
    title=0.5,
    latin=0.01,
)
_TEXT_DATE_STYLES = ("slash", "slash", "dot", "iso")


def _missing(r: random.Random) -> str:
    """How service agents leave a field empty (blank, 无, -, /)."""
    roll = r.random()
    return "" if roll < 0.55 else ("无" if roll < 0.7 else ("-" if roll < 0.88 else "/"))


def _maybe(value: str | None, present: float, r: random.Random) -> str:
    """Keep value with probability present, else an empty marker."""
    return value if value is not None and r.random() < present else _missing(r)


def build_service(world: World, entity_rows: np.ndarray, seed: int) -> SourceTable:
    """Build the ticket export: one row per ticket, sorted by ticket date.

    Args:
        world: the true entities.
        entity_rows: the entity number of each ticket.
        seed: seed for this department's noise.

    Returns:
        The export rows (SERVICE_HEADERS, all text), each row's true entity, and which
        工单日期 / 联系电话 cells the XLSX writes as real date / number cells.
    """
    r = random.Random(seed)
    ents = entity_rows.tolist()
    days = [between(r, min(world.registered_day[i] + 7, LAST_DAY), LAST_DAY + 1) for i in ents]
    order = np.argsort(np.array(days, dtype=np.int64), kind="stable").tolist()
    ents = [ents[k] for k in order]
    days = [days[k] for k in order]

    rows: list[list[str | None]] = []
    date_cells: list[bool] = []
    number_cells: list[bool] = []
    per_day: dict[int, int] = {}
    for i, day in zip(ents, days, strict=True):
        per_day[day] = per_day.get(day, 0) + 1
        individual = world.kind[i] == "individual"
        section = world.section[i]
        if individual:
            contact = _maybe(world.person[i], 0.5, r)
            if contact == world.person[i]:
                contact = contact_name_text(world, i, _CONTACT_NOISE, r, 0.0)
        else:
            contact = contact_name_text(world, i, _CONTACT_NOISE, r, 0.3)
        phone = (
            phone_for(world, i, r, landline_share=0.45, old_share=0.15, local_only=0.04)
            if r.random() < 0.96
            else None
        )
        roll = r.random()
        address = (
            address_text(world.place[i], world.street[i], world.building[i], r, with_region=False)
            if roll < 0.6
            else address_text(world.place[i], world.street[i], world.building[i], r)
            if roll < 0.85
            else None
        )
        as_date_cell = r.random() < 0.45
        ticket_date = (
            day_to_date(day).isoformat() if as_date_cell else date_text(day, _TEXT_DATE_STYLES, r)
        )
        satisfaction = (
            str(between(r, 1, 6))
            if r.random() < 0.5
            else pick(r, SATISFACTION_TEXT)
            if r.random() < 0.6
            else None
        )
        rows.append(
            [
                f"GD{day_to_date(day).strftime('%Y%m%d')}{per_day[day]:04d}",
                customer_name(world, i, _PERSON_NOISE if individual else _COMPANY_NOISE, r),
                contact,
                phone if phone is not None else _missing(r),
                email_for(world, i, r, present=0.55) or _missing(r),
                _maybe(province_text(world.place[i], r), 0.88, r),
                _maybe(city_text(world.place[i], r), 0.94, r),
                address if address is not None else _missing(r),
                _maybe(
                    industry_text(section, world.industry_word[i], r) if section else None, 0.6, r
                ),
                ticket_date,
                pick(r, SERVICE_CHANNELS),
                pick(r, SERVICE_PROBLEMS),
                pick(r, SERVICE_OUTCOMES),
                satisfaction if satisfaction is not None else _missing(r),
            ]
        )
        date_cells.append(as_date_cell)
        number_cells.append(phone is not None and phone.isdigit() and r.random() < 0.5)
    frame = pd.DataFrame(rows, columns=list(SERVICE_HEADERS), dtype=object)
    return SourceTable(frame=frame, entity=ents, date_cells=date_cells, number_cells=number_cells)

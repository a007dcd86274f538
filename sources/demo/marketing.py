"""The marketing leads export (市场线索, JSON Lines): self-typed web forms, keys often missing."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pandas as pd

from sources.demo.draw import between, pick
from sources.demo.entities import World
from sources.demo.formats import EPOCH, LAST_DAY, address_text, city_text, industry_text
from sources.demo.records import (
    SourceTable,
    contact_name_text,
    email_for,
    enterprise_name,
    phone_for,
)
from sources.demo.variants import NameNoise
from sources.demo.vocab import MARKETING_CAMPAIGNS, MARKETING_CHANNELS

MARKETING_KEYS: tuple[str, ...] = (
    "lead_id",
    "company",
    "contact",
    "mobile",
    "email",
    "city",
    "address",
    "industry",
    "created_at",
    "campaign",
    "channel",
    "customer_type",
)
_COMPANY_NOISE = NameNoise(
    short_name=0.3,
    move_region=0.15,
    suffix_change=0.15,
    half_brackets=0.6,
    typo=0.03,
    traditional=0.03,
    spaces=0.06,
    title=0.0,
    latin=0.0,
)
_CONTACT_NOISE = NameNoise(
    short_name=0.0,
    move_region=0.0,
    suffix_change=0.0,
    half_brackets=0.0,
    typo=0.02,
    traditional=0.03,
    spaces=0.03,
    title=0.1,
    latin=0.04,
)
_TYPE_TEXT = {
    "enterprise": ("企业", "企业", "B2B", "enterprise", "公司"),
    "individual": ("个人", "个人", "B2C", "individual"),
}
_CST = dt.timezone(dt.timedelta(hours=8))


def _created_at(day: int, r: random.Random) -> str:
    """Lead creation time: ISO timestamp with +08:00, or epoch milliseconds (as digits)."""
    moment = dt.datetime.combine(
        EPOCH + dt.timedelta(days=day), dt.time(between(r, 7, 23), between(r, 0, 60)), _CST
    )
    if r.random() < 0.3:
        return str(int(moment.timestamp() * 1000) + between(r, 0, 1000))
    return moment.isoformat()


def build_marketing(world: World, entity_rows: np.ndarray, seed: int) -> SourceTable:
    """Build the leads export: one row per lead, sorted by creation time; None = key absent.

    Args:
        world: the true entities.
        entity_rows: the entity number of each lead.
        seed: seed for this department's noise.

    Returns:
        The lead rows (MARKETING_KEYS, text or None for an absent key) and each row's entity.
    """
    r = random.Random(seed)
    ents = entity_rows.tolist()
    days = [between(r, max(0, world.registered_day[i] - 200), LAST_DAY + 1) for i in ents]
    order = np.argsort(np.array(days, dtype=np.int64), kind="stable").tolist()
    ents = [ents[k] for k in order]
    days = [days[k] for k in order]
    next_id = 1_000_000
    rows: list[list[str | None]] = []
    for i, day in zip(ents, days, strict=True):
        next_id += between(r, 1, 5)
        individual = world.kind[i] == "individual"
        section = world.section[i]
        if individual:
            company = None if r.random() < 0.6 else ("" if r.random() < 0.6 else "个人")
            contact = contact_name_text(world, i, _CONTACT_NOISE, r, 0.0)
        else:
            company = enterprise_name(world, i, _COMPANY_NOISE, r)
            contact = contact_name_text(world, i, _CONTACT_NOISE, r, 0.2)
        mobile = (
            phone_for(world, i, r, landline_share=0.12, old_share=0.1)
            if r.random() < 0.95
            else None
        )
        roll = r.random()
        address = (
            address_text(world.place[i], world.street[i], world.building[i], r)
            if roll < 0.35
            else address_text(
                world.place[i], world.street[i], world.building[i], r, with_region=False
            )
            if roll < 0.5
            else None
        )
        ctype = "individual" if individual else "enterprise"
        rows.append(
            [
                f"L{next_id}",
                company,
                contact if r.random() < 0.97 else "",
                mobile,
                email_for(world, i, r, present=0.75),
                city_text(world.place[i], r) if r.random() < 0.85 else None,
                address,
                industry_text(section, world.industry_word[i], r)
                if section is not None and r.random() < 0.5
                else None,
                _created_at(day, r),
                pick(r, MARKETING_CAMPAIGNS) if r.random() < 0.9 else None,
                pick(r, MARKETING_CHANNELS),
                pick(r, _TYPE_TEXT[ctype]) if r.random() < 0.8 else None,
            ]
        )
    frame = pd.DataFrame(rows, columns=list(MARKETING_KEYS), dtype=object)
    return SourceTable(frame=frame, entity=ents)

"""Which entities each department holds, how often, and the contact details its records show."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sources.demo.entities import World
from sources.demo.formats import email_text, landline_text, mobile_text
from sources.demo.variants import NameNoise, company_name, person_name

SOURCES: tuple[str, ...] = ("sales", "service", "marketing")
# Preference of enterprises / individuals for each department (sales, service, marketing).
_ENTERPRISE_WEIGHTS = np.array([0.45, 0.35, 0.20])
_INDIVIDUAL_WEIGHTS = np.array([0.25, 0.40, 0.35])
_SOURCE_COUNT_P = np.array([0.45, 0.35, 0.20])  # an entity is known to 1, 2 or 3 departments
_RECORDS_PER_SOURCE: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
    "sales": ((1, 2), (0.93, 0.07)),  # CRM entered twice now and then
    "service": ((1, 2, 3, 4), (0.45, 0.30, 0.15, 0.10)),  # several tickets per customer
    "marketing": ((1, 2), (0.86, 0.14)),  # signed up for two campaigns
}


@dataclass(frozen=True)
class Allocation:
    """Entity numbers of each department's records (one entry per record, unordered)."""

    sales: np.ndarray
    service: np.ndarray
    marketing: np.ndarray


def allocate_records(world: World, rng: np.random.Generator) -> Allocation:
    """Decide which departments know each entity and how many records each holds.

    Args:
        world: the true entities.
        rng: random generator.

    Returns:
        Per department, the entity number of every record it will hold.
    """
    n = len(world)
    individual = np.array([k == "individual" for k in world.kind])
    weights = np.where(individual[:, None], _INDIVIDUAL_WEIGHTS, _ENTERPRISE_WEIGHTS)
    k = rng.choice(3, size=n, p=_SOURCE_COUNT_P) + 1
    # Gumbel top-k: a weighted sample of k departments without replacement, for all rows at once.
    keys = np.log(weights) + rng.gumbel(size=(n, 3))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    member = rank < k[:, None]
    out: dict[str, np.ndarray] = {}
    for s, source in enumerate(SOURCES):
        ids = np.flatnonzero(member[:, s])
        values, probs = _RECORDS_PER_SOURCE[source]
        counts = np.array(values)[rng.choice(len(values), size=len(ids), p=probs)]
        out[source] = np.repeat(ids, counts)
    return Allocation(**out)


def enterprise_name(world: World, i: int, noise: NameNoise, r: random.Random) -> str:
    """Return enterprise i's name as one department re-types it."""
    h = world.hq_index[i]
    return company_name(
        kind=world.kind[i],
        name=world.name[i],
        brand=world.brand[i],
        word=world.industry_word[i],
        form=world.legal_form[i],
        style=world.region_style[i],
        place=world.place[i],
        hq_place=world.place[h] if h is not None else None,
        hq_style=world.region_style[h] if h is not None else None,
        english=world.english[i],
        noise=noise,
        r=r,
    )


def customer_name(world: World, i: int, noise: NameNoise, r: random.Random) -> str:
    """Return the customer name of entity i (company or person) as a department types it."""
    if world.kind[i] == "individual":
        return person_name(world.name[i], world.gender[i], noise, r)
    return enterprise_name(world, i, noise, r)


def contact_person(world: World, i: int, r: random.Random, earlier: float = 0.3) -> tuple[str, str]:
    """Return (name, gender) of a record's contact person (sometimes the earlier contact)."""
    earlier_name, earlier_gender = world.person2[i], world.gender2[i]
    if earlier_name is not None and earlier_gender is not None and r.random() < earlier:
        return earlier_name, earlier_gender
    return world.person[i], world.gender[i]


def phone_for(
    world: World,
    i: int,
    r: random.Random,
    *,
    landline_share: float,
    old_share: float,
    local_only: float = 0.0,
    wrong_digit: float = 0.01,
) -> str | None:
    """Pick which of entity i's phones a record shows and write it in a realistic format.

    Args:
        world: the true entities.
        i: entity number.
        r: random source.
        landline_share: probability of showing the enterprise landline instead of a mobile.
        old_share: probability of showing a phone no longer in use (when the entity had one).
        local_only: probability a landline lacks its area code.
        wrong_digit: probability of one mistyped digit.

    Returns:
        The phone as typed.
    """
    land = world.landline[i]
    if land is not None and r.random() < landline_share:
        return landline_text(land, world.extension[i], r, local_only, wrong_digit)
    number = world.mobile[i]
    if world.old_phone[i] is not None and r.random() < old_share:
        number = world.old_phone[i]
    elif world.mobile2[i] is not None and r.random() < 0.35:
        number = world.mobile2[i]
    return mobile_text(number, r, wrong_digit)


def email_for(world: World, i: int, r: random.Random, present: float) -> str | None:
    """Pick entity i's email for a record (main or role mailbox), or None when not given."""
    email = world.email[i]
    if email is None or r.random() >= present:
        return None
    alt = world.email_alt[i]
    if alt is not None and r.random() < 0.15:
        email = alt
    return email_text(email, r)


def contact_name_text(
    world: World, i: int, noise: NameNoise, r: random.Random, earlier: float = 0.3
) -> str:
    """Return the contact person of a record as typed (张伟经理, 王女士 …)."""
    name, gender = contact_person(world, i, r, earlier)
    return person_name(name, gender, noise, r)


@dataclass(frozen=True)
class SourceTable:
    """One department's export: text rows, the true entity of each row, and cell-type hints."""

    frame: pd.DataFrame
    entity: list[int]
    date_cells: list[bool] | None = None  # service: 工单日期 written as a real date cell
    number_cells: list[bool] | None = None  # service: 联系电话 written as a numeric cell

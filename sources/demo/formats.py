"""Re-typing noise for contact details, addresses, industries, dates and amounts."""

from __future__ import annotations

import datetime as dt
import random

from sources.demo.draw import between, pick
from sources.demo.places import CITIES, MUNICIPALITIES, PLACES, PROVINCES
from sources.demo.vocab import EMAIL_DOMAIN_TYPOS, INDUSTRY_SYNONYMS

_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
EPOCH = dt.date(2016, 1, 1)
LAST_DAY = (dt.date(2026, 11, 20) - EPOCH).days  # the newest activity in the exports


def _wrong_digit(number: str, r: random.Random) -> str:
    """Change one digit of a number (a typing mistake)."""
    spots = [i for i, ch in enumerate(number) if ch.isdigit()]
    i = pick(r, spots[3:] or spots)
    return number[:i] + str((int(number[i]) + between(r, 1, 10)) % 10) + number[i + 1 :]


def mobile_text(number: str, r: random.Random, wrong_digit: float = 0.01) -> str:
    """Write an 11-digit mobile number in one of the formats people use.

    Args:
        number: 11 digits.
        r: random source.
        wrong_digit: probability of one mistyped digit.

    Returns:
        e.g. 13912345678, 139-1234-5678, +86 139 1234 5678, 0086-13912345678, １３９…
    """
    if r.random() < wrong_digit:
        number = _wrong_digit(number, r)
    a, b, c = number[:3], number[3:7], number[7:]
    roll = r.random()
    if roll < 0.55:
        return number
    if roll < 0.68:
        return f"{a}-{b}-{c}"
    if roll < 0.76:
        return f"{a} {b} {c}"
    if roll < 0.84:
        return f"+86 {a} {b} {c}"
    if roll < 0.89:
        return f"+86{number}"
    if roll < 0.93:
        return f"0086-{number}"
    if roll < 0.96:
        return f"86-{number}"
    return number.translate(_FULL_WIDTH)


def landline_text(
    number: str,
    ext: str | None,
    r: random.Random,
    local_only: float = 0.0,
    wrong_digit: float = 0.01,
) -> str:
    """Write a landline 'AREA-LOCAL' with an optional extension in a common format.

    Args:
        number: 'AREA-LOCAL', e.g. 010-62345678.
        ext: extension digits or None.
        r: random source.
        local_only: probability that the area code is left out.
        wrong_digit: probability of one mistyped digit.

    Returns:
        e.g. 010-62345678转123, (021)5888 1234 ext 8, +86 10 6234 5678.
    """
    if r.random() < wrong_digit:
        number = _wrong_digit(number, r)
    area, local = number.split("-")
    spaced = f"{local[:4]} {local[4:]}"
    roll = r.random()
    if r.random() < local_only:
        text = local
    elif roll < 0.45:
        text = number
    elif roll < 0.58:
        text = area + local
    elif roll < 0.70:
        text = f"({area}){spaced}"
    elif roll < 0.78:
        text = f"（{area}）{local}"
    elif roll < 0.88:
        text = f"{area} {spaced}"
    else:
        text = f"+86 {area[1:]} {spaced}"
    if ext is not None and r.random() < 0.7:
        sep = pick(r, ("转", "转", "-", " ext ", " ext.", "#"))
        text = f"{text}{sep}{ext}"
    return text


def email_text(email: str, r: random.Random, typo: float = 0.01) -> str:
    """Write an email address with case variants and occasional domain typos."""
    local, domain = email.split("@")
    if r.random() < typo:
        domain = EMAIL_DOMAIN_TYPOS.get(domain, domain.replace(".com", ".cmo"))
    roll = r.random()
    if roll < 0.08:
        local = local.capitalize()
    elif roll < 0.12:
        local, domain = local.upper(), domain.upper()
    elif roll < 0.14:
        return f" {local}@{domain}"
    return f"{local}@{domain}"


def address_text(
    place: int,
    street: str,
    building: str | None,
    r: random.Random,
    *,
    with_region: bool = True,
    abbreviations: float = 0.01,
) -> str:
    """Write an address in one of the usual shapes.

    Args:
        place: index into PLACES.
        street: street and number (科技路88号).
        building: building and room, or None.
        r: random source.
        with_region: whether province/city/district lead the address.
        abbreviations: probability of a one-character province abbreviation (京/沪/粤 …).

    Returns:
        e.g. 广东省深圳市南山区科技路88号A座1203室, 广东深圳南山区科技路88号, 深圳市南山区…
    """
    p = PLACES[place]
    if r.random() < 0.12:
        street = street.replace("号", " 号") if r.random() < 0.5 else street.replace("号", "#")
    tail = street
    if building is not None and r.random() < 0.75:
        b = building
        if r.random() < 0.15:
            b = b.replace("室", "")
        tail = f"{street}{b}"
    if not with_region:
        return p.district + tail if r.random() < 0.6 else tail
    prov_short, prov_abbr = PROVINCES[p.province]
    city_short = CITIES[p.city].short
    roll = r.random()
    if roll < abbreviations:
        head = prov_abbr + (p.district if p.city in MUNICIPALITIES else p.city + p.district)
    elif p.city in MUNICIPALITIES:
        head = (p.city if roll < 0.7 else city_short) + p.district
    elif roll < 0.45:
        head = p.province + p.city + p.district
    elif roll < 0.6:
        head = prov_short + city_short + p.district
    elif roll < 0.9:
        head = p.city + p.district
    else:
        head = city_short + p.district
    return head + tail


def province_text(place: int, r: random.Random) -> str:
    """Write a province as typed into a separate column (广东省 / 广东)."""
    prov = PLACES[place].province
    return prov if r.random() < 0.6 else PROVINCES[prov][0]


def city_text(place: int, r: random.Random) -> str:
    """Write a city as typed into a separate column (深圳市 / 深圳)."""
    city = PLACES[place].city
    return city if r.random() < 0.6 else CITIES[city].short


def industry_text(section: str, name_word: str | None, r: random.Random) -> str:
    """Write a customer's industry as free text (软件 / IT / 制造业 …) for its GB/T 4754 section."""
    if name_word is not None and r.random() < 0.1:
        return name_word
    return pick(r, INDUSTRY_SYNONYMS[section])


def day_to_date(day: int) -> dt.date:
    """Convert days since 2016-01-01 to a date."""
    return EPOCH + dt.timedelta(days=day)


def date_text(day: int, formats: tuple[str, ...], r: random.Random) -> str:
    """Write a date in one of the given styles: iso, slash, dot, cn, dmy (15/03/2024), compact."""
    d = day_to_date(day)
    style = pick(r, formats)
    if style == "iso":
        return d.isoformat()
    if style == "slash":
        return f"{d.year}/{d.month}/{d.day}"
    if style == "dot":
        return f"{d.year}.{d.month}.{d.day}"
    if style == "cn":
        return f"{d.year}年{d.month}月{d.day}日"
    if style == "dmy":
        return f"{d.day:02d}/{d.month:02d}/{d.year}"
    if style == "compact":
        return d.strftime("%Y%m%d")
    raise ValueError(f"unknown date style {style!r}")


def amount_text(amount: float, r: random.Random, currency: str = "¥") -> str:
    """Write a money amount: 12,345.00 / 1.2万 / ¥8800 / 8800."""
    roll = r.random()
    if roll < 0.4:
        return f"{amount:,.2f}"
    if roll < 0.55 and amount >= 10000:
        return f"{amount / 10000:g}万"
    if roll < 0.7:
        return f"{currency}{amount:.0f}"
    if roll < 0.85:
        return f"{amount:.2f}"
    return f"{amount:.0f}"

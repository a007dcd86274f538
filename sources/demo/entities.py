"""True demo entities (企业总部/分公司/个人) with their real attributes, before any re-typing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import pandas as pd

from sources.demo.credit_code import generate_credit_codes
from sources.demo.draw import between, pick
from sources.demo.people import (
    draw_landlines,
    draw_mobiles,
    draw_person_names,
    personal_email,
    pinyin_of,
    pinyin_syllables,
    place_pinyin,
)
from sources.demo.places import BUILDING_WORDS, CITIES, PLACES, STREET_KINDS, STREET_STEMS
from sources.demo.vocab import (
    BRAND_CHARS,
    CORPORATE_MAILBOXES,
    CORPORATE_TLDS,
    ENGLISH_BRANDS,
    ENGLISH_BUSINESS,
    ENGLISH_FORMS,
    LEGAL_FORM_WEIGHTS,
    LEGAL_FORMS,
    NAME_INDUSTRY_WORDS,
    SECTION_WEIGHTS,
)

_ENGLISH_SECOND = ("", "", "Global", "Pacific", "United", "Asia", "International", "Bridge")
_EPOCH = np.datetime64("2016-01-01")
_REG_SPAN_DAYS = int((np.datetime64("2026-06-30") - _EPOCH).astype(int))


@dataclass
class World:
    """All true entities as parallel lists (index = entity number)."""

    entity_id: list[str]
    kind: list[str]  # hq / branch / individual
    name: list[str]  # legal name or person's name
    brand: list[str | None]  # 字号 (华信) for Chinese enterprises
    industry_word: list[str | None]  # 科技 / 贸易 … inside the name
    legal_form: list[str | None]  # 有限公司 …
    region_style: list[str]  # prefix / bracket / none / english / person
    hq_name: list[str | None]  # for branches: the HQ legal name
    hq_index: list[int | None]  # for branches: the HQ's entity number
    english: list[bool]
    person: list[str]  # the individual, or the enterprise's contact person
    person2: list[str | None]  # an earlier contact person (enterprises)
    gender2: list[str | None]
    gender: list[str]
    place: list[int]  # index into PLACES
    street: list[str]  # 科技路88号 …
    building: list[str | None]  # 华信大厦1203室 …
    section: list[str | None]
    credit_code: list[str | None]
    mobile: list[str]
    mobile2: list[str | None]  # a second current phone
    old_phone: list[str | None]  # a phone no longer in use
    landline: list[str | None]
    extension: list[str | None]
    email: list[str | None]
    email_alt: list[str | None]
    registered_day: list[int]  # days since 2016-01-01

    def __len__(self) -> int:
        """Number of entities."""
        return len(self.entity_id)


def _city_probabilities() -> np.ndarray:
    """Per-place probability: the city's weight shared among its districts."""
    per_city = {c: sum(1 for p in PLACES if p.city == c) for c in CITIES}
    w = np.array([CITIES[p.city].weight / per_city[p.city] for p in PLACES])
    return w / w.sum()


_PLACE_P = _city_probabilities()
_PLACE_CUM = list(accumulate(_PLACE_P.tolist()))
_PLACE_INDEX = list(range(len(PLACES)))


def _draw_brands(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw 2-character (sometimes 3) brand names."""
    chars = np.array(BRAND_CHARS, dtype=object)
    brand = chars[rng.integers(0, len(chars), n)] + chars[rng.integers(0, len(chars), n)]
    three = rng.random(n) < 0.12
    brand[three] = brand[three] + chars[rng.integers(0, len(chars), int(three.sum()))]
    same = np.array([len(set(b)) < len(b) for b in brand])  # avoid 华华 style brands
    if same.any():
        brand[same] = _draw_brands(rng, int(same.sum()))
    return brand


def _enterprise_names(
    rng: np.random.Generator, cities: np.ndarray, sections: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (brand, industry word) so that no two enterprises of one city share both."""
    n = len(cities)
    words = np.empty(n, dtype=object)
    for sec in np.unique(sections):
        idx = np.flatnonzero(sections == sec)
        pool = np.array(NAME_INDUSTRY_WORDS[sec], dtype=object)
        words[idx] = pool[rng.integers(0, len(pool), len(idx))]
    brands = _draw_brands(rng, n)
    for _ in range(50):
        key = pd.Series(cities + "|" + brands + "|" + words)
        dup = key.duplicated().to_numpy()
        if not dup.any():
            return brands, words
        brands[dup] = _draw_brands(rng, int(dup.sum()))
    raise RuntimeError("could not draw distinct company names; too many entities per city")


def _street_addresses(rng: np.random.Generator, n: int) -> tuple[list[str], list[str | None]]:
    """Draw street addresses (科技路88号) and optional building/room parts."""
    stems = np.array(STREET_STEMS, dtype=object)[rng.integers(0, len(STREET_STEMS), n)]
    kinds = np.array(STREET_KINDS, dtype=object)[rng.integers(0, len(STREET_KINDS), n)]
    numbers = rng.integers(1, 999, n).astype(str).astype(object)
    street = (stems + kinds + numbers + "号").tolist()
    has_building = rng.random(n) < 0.55
    bwords = np.array(BUILDING_WORDS, dtype=object)[rng.integers(0, len(BUILDING_WORDS), n)]
    block = np.array(["", "", "A座", "B座", "C座", "1号楼", "2号楼"], dtype=object)[
        rng.integers(0, 7, n)
    ]
    room = (rng.integers(1, 30, n) * 100 + rng.integers(1, 20, n)).astype(str).astype(object)
    building_text = stems + bwords + block + room + "室"
    pairs = zip(building_text.tolist(), has_building.tolist(), strict=True)
    building = [b if h else None for b, h in pairs]
    return street, building


def _corporate_email(
    brand: str,
    word: str,
    city_short: str,
    person: str,
    r: random.Random,
    taken_domains: set[str],
) -> tuple[str, str]:
    """Pick an unused corporate domain and return (person mailbox, role mailbox)."""
    tld = pick(r, CORPORATE_TLDS)
    b, w, c = pinyin_of(brand), pinyin_syllables(word), place_pinyin(city_short)
    candidates = [
        b + tld,
        b + "".join(s[0] for s in w) + tld,
        b + "-" + "".join(w[:2]) + tld,
        c[:2] + b + tld,
        b + c + tld,
    ]
    domain = next((d for d in candidates if d not in taken_domains), None)
    while domain is None or domain in taken_domains:
        domain = f"{b}{between(r, 10, 9999)}{tld}"
    taken_domains.add(domain)
    syl = pinyin_syllables(person)
    style = between(r, 0, 3)
    local = (
        ("".join(syl[1:]) + "." + syl[0])
        if style == 0
        else ("".join(syl) if style == 1 else syl[0] + "".join(s[0] for s in syl[1:]))
    )
    role = pick(r, CORPORATE_MAILBOXES)
    return f"{local}@{domain}", f"{role}@{domain}"


def _english_names(r: random.Random, cities: list[str], n: int) -> list[tuple[str, str]]:
    """Draw distinct English company names with their industry section."""
    names: list[tuple[str, str]] = []
    seen: set[str] = set()
    numbered: dict[str, int] = {}
    sections = list(ENGLISH_BUSINESS)
    for i in range(n):
        for _ in range(100):
            sec = pick(r, sections)
            city = place_pinyin(CITIES[cities[i]].short).capitalize()
            parts = [
                pick(r, ENGLISH_BRANDS),
                pick(r, _ENGLISH_SECOND),
                pick(r, ENGLISH_BUSINESS[sec]),
            ]
            if r.random() < 0.5:
                parts.append(f"({city})")
            parts.append(pick(r, ENGLISH_FORMS))
            name = " ".join(p for p in parts if p)
            if name not in seen:
                seen.add(name)
                names.append((name, sec))
                break
        else:  # every draw taken (millions of entities): number the last draw's name
            stem = " ".join(p for p in parts[:-1] if p)
            numbered[stem] = numbered.get(stem, 1) + 1
            while (name := f"{stem} {numbered[stem]} {parts[-1]}") in seen:
                numbered[stem] += 1
            seen.add(name)
            names.append((name, sec))
    return names


def build_world(rng: np.random.Generator, n: int) -> World:
    """Draw n true entities: ~65 % enterprises (some branches of another), ~35 % individuals.

    Args:
        rng: random generator (the only source of randomness).
        n: number of entities.

    Returns:
        The entities as a World of parallel lists.
    """
    if n < 1:
        raise ValueError(f"entities must be at least 1, got {n}")
    n_ent = round(n * 0.65)
    n_branch = round(n_ent * 0.06) if n_ent >= 10 else 0
    n_hq = n_ent - n_branch
    n_eng = round(n_hq * 0.025)
    kind = np.array(["hq"] * n_hq + ["branch"] * n_branch + ["individual"] * (n - n_ent), object)
    kind = kind[rng.permutation(n)]
    hq_idx = np.flatnonzero(kind == "hq")
    br_idx = np.flatnonzero(kind == "branch")
    ent_idx = np.flatnonzero(kind != "individual")

    r = random.Random(int(rng.integers(0, 2**63 - 1)))  # fast scalar draws for the loops below
    place = rng.choice(len(PLACES), size=n, p=_PLACE_P)
    city = np.array([PLACES[p].city for p in place], dtype=object)
    sec_letters = list(SECTION_WEIGHTS)
    sec_w = np.array([SECTION_WEIGHTS[s] for s in sec_letters], dtype=float)
    section = np.full(n, None, dtype=object)
    section[ent_idx] = np.array(sec_letters, dtype=object)[
        rng.choice(len(sec_letters), size=len(ent_idx), p=sec_w / sec_w.sum())
    ]

    brand = np.full(n, None, dtype=object)
    word = np.full(n, None, dtype=object)
    brand[hq_idx], word[hq_idx] = _enterprise_names(rng, city[hq_idx], section[hq_idx])
    # Hard negatives: the same 字号 + industry word registered in another city.
    taken = set(
        zip(city[hq_idx].tolist(), brand[hq_idx].tolist(), word[hq_idx].tolist(), strict=True)
    )
    for i in rng.choice(hq_idx, size=round(len(hq_idx) * 0.03), replace=False).tolist():
        j = int(hq_idx[between(r, 0, len(hq_idx))])
        key = (city[i], brand[j], word[j])
        if city[i] != city[j] and section[i] == section[j] and key not in taken:
            taken.add(key)
            brand[i], word[i] = brand[j], word[j]

    styles = np.array(["prefix", "bracket", "none"], dtype=object)
    region_style = np.full(n, "person", dtype=object)
    region_style[hq_idx] = styles[rng.choice(3, size=len(hq_idx), p=[0.78, 0.12, 0.10])]
    legal_form = np.full(n, None, dtype=object)
    legal_form[ent_idx] = np.array(LEGAL_FORMS, dtype=object)[
        rng.choice(len(LEGAL_FORMS), size=len(ent_idx), p=LEGAL_FORM_WEIGHTS)
    ]
    english = np.zeros(n, dtype=bool)
    names = np.full(n, None, dtype=object)
    for i in hq_idx.tolist():
        short = CITIES[city[i]].short
        if region_style[i] == "prefix":
            names[i] = f"{short}{brand[i]}{word[i]}{legal_form[i]}"
        elif region_style[i] == "bracket":
            names[i] = f"{brand[i]}（{short}）{word[i]}{legal_form[i]}"
        else:
            names[i] = f"{brand[i]}{word[i]}{legal_form[i]}"
    eng_idx = rng.choice(hq_idx, size=n_eng, replace=False) if n_eng else np.empty(0, int)
    eng_names = _english_names(r, city[eng_idx].tolist(), n_eng)
    for i, (ename, esec) in zip(eng_idx.tolist(), eng_names, strict=True):
        names[i], section[i], english[i], region_style[i] = ename, esec, True, "english"
        brand[i] = word[i] = legal_form[i] = None

    # Branch offices (分公司) of a Chinese HQ, in another city: distinct entities.
    hq_name = np.full(n, None, dtype=object)
    hq_index = np.full(n, None, dtype=object)
    chinese_hq = hq_idx[~english[hq_idx]]
    used_names = set(names[hq_idx].tolist())
    for i in br_idx.tolist():
        for _ in range(100):
            h = int(chinese_hq[between(r, 0, len(chinese_hq))])
            p = r.choices(_PLACE_INDEX, cum_weights=_PLACE_CUM)[0]
            short = CITIES[PLACES[p].city].short
            candidate = f"{names[h]}{short}分公司"
            if PLACES[p].city != city[h] and candidate not in used_names:
                break
        else:
            raise RuntimeError("could not place a branch office")
        used_names.add(candidate)
        names[i], hq_name[i], place[i], city[i] = candidate, names[h], p, PLACES[p].city
        hq_index[i] = h
        brand[i], word[i], legal_form[i], section[i] = brand[h], word[h], legal_form[h], section[h]
        region_style[i] = "branch"

    person, _, gender = draw_person_names(rng, n)
    ind_idx = np.flatnonzero(kind == "individual")
    names[ind_idx] = person[ind_idx]
    person2 = np.full(n, None, dtype=object)
    gender2 = np.full(n, None, dtype=object)
    changed = ent_idx[rng.random(len(ent_idx)) < 0.15]
    earlier = draw_person_names(rng, len(changed))
    person2[changed], gender2[changed] = earlier[0], earlier[2]

    codes = np.full(n, None, dtype=object)
    codes[ent_idx] = generate_credit_codes(
        rng, np.array([PLACES[p].code for p in place[ent_idx]], dtype=object)
    )

    has_m2 = rng.random(n) < 0.10
    has_old = rng.random(n) < 0.08
    pool = iter(draw_mobiles(rng, n + int(has_m2.sum()) + int(has_old.sum())).tolist())
    mobile = [next(pool) for _ in range(n)]
    mobile2 = [next(pool) if f else None for f in has_m2.tolist()]
    old_phone = [next(pool) if f else None for f in has_old.tolist()]

    street, building = _street_addresses(rng, n)
    landline = np.full(n, None, dtype=object)
    with_land = ent_idx[rng.random(len(ent_idx)) < 0.85]
    landline[with_land] = draw_landlines(
        rng, np.array([CITIES[c].area_code for c in city[with_land]], dtype=object)
    )
    # Shared switchboards: unrelated companies in one building answer on one number.
    by_city: dict[str, list[int]] = {}
    for i in with_land.tolist():
        by_city.setdefault(city[i], []).append(i)
    for i in rng.choice(with_land, size=round(len(with_land) * 0.02), replace=False).tolist():
        j = pick(r, by_city[city[i]])
        if j != i:
            landline[i], street[i], building[i] = landline[j], street[j], building[j]
            place[i] = place[j]
    extension = np.full(n, None, dtype=object)
    with_ext = with_land[rng.random(len(with_land)) < 0.25]
    extension[with_ext] = rng.integers(100, 9000, len(with_ext)).astype(str)

    email = np.full(n, None, dtype=object)
    email_alt = np.full(n, None, dtype=object)
    domains: set[str] = set()
    hq_mail: dict[str, str] = {}
    for i in np.concatenate([hq_idx, br_idx]).tolist():
        if r.random() >= 0.85:
            continue
        if english[i]:
            b = names[i].split(" ")[0].lower()
            w, short = "co", ""
        else:
            b, w, short = brand[i], word[i], CITIES[city[i]].short
        if kind[i] == "branch" and hq_name[i] in hq_mail and r.random() < 0.7:
            domain = hq_mail[hq_name[i]]
            syl = pinyin_syllables(person[i])
            email[i] = f"{''.join(syl)}@{domain}"
            email_alt[i] = f"{place_pinyin(CITIES[city[i]].short)}@{domain}"
            continue
        if english[i]:
            dom = f"{b}{between(r, 1, 999)}.com"
            while dom in domains:
                dom = f"{b}{between(r, 1, 9999)}.com"
            domains.add(dom)
            syl = pinyin_syllables(person[i])
            email[i], email_alt[i] = f"{syl[-1]}.{syl[0]}@{dom}", f"info@{dom}"
        else:
            email[i], email_alt[i] = _corporate_email(b, w, short, person[i], r, domains)
        hq_mail[names[i]] = email[i].split("@")[1]
    taken_mail: set[str] = set()
    for i in ind_idx[rng.random(len(ind_idx)) < 0.72].tolist():
        email[i] = personal_email(r, person[i], taken_mail)

    return World(
        entity_id=[f"E{i + 1:07d}" for i in range(n)],
        kind=kind.tolist(),
        name=names.tolist(),
        brand=brand.tolist(),
        industry_word=word.tolist(),
        legal_form=legal_form.tolist(),
        region_style=region_style.tolist(),
        hq_name=hq_name.tolist(),
        hq_index=hq_index.tolist(),
        english=english.tolist(),
        person=person.tolist(),
        person2=person2.tolist(),
        gender2=gender2.tolist(),
        gender=gender.tolist(),
        place=place.tolist(),
        street=street,
        building=building,
        section=section.tolist(),
        credit_code=codes.tolist(),
        mobile=mobile,
        mobile2=mobile2,
        old_phone=old_phone,
        landline=landline.tolist(),
        extension=extension.tolist(),
        email=email.tolist(),
        email_alt=email_alt.tolist(),
        registered_day=rng.integers(0, _REG_SPAN_DAYS, n).tolist(),
    )


def entities_frame(world: World) -> pd.DataFrame:
    """Return the ground-truth entity table (one row per true entity)."""
    phone = [
        land if land is not None else mob
        for land, mob in zip(world.landline, world.mobile, strict=True)
    ]
    return pd.DataFrame(
        {
            "entity_id": world.entity_id,
            "customer_type": [
                "individual" if k == "individual" else "enterprise" for k in world.kind
            ],
            "name": world.name,
            "credit_code": world.credit_code,
            "phone": phone,
            "email": world.email,
            "province": [PLACES[p].province for p in world.place],
            "city": [PLACES[p].city for p in world.place],
            "district": [PLACES[p].district for p in world.place],
            "industry_section": world.section,
            "kind": world.kind,
        },
        dtype=object,
    )

"""Re-typing noise for names: legal-suffix and region variants, typos, traditional characters."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache

import opencc
from pypinyin import lazy_pinyin

from sources.demo.draw import between, pick
from sources.demo.places import CITIES, PLACES
from sources.demo.vocab import CONFUSABLES, FEMALE_TITLES, LEGAL_SUFFIX_VARIANTS, MALE_TITLES

_S2T = opencc.OpenCC("s2t")
_ENGLISH_PUNCT = re.compile(r"[.,()]")
_SURNAME_ONLY_TITLES = frozenset({"总", "工", "小姐"})


@dataclass(frozen=True)
class NameNoise:
    """How carelessly one department re-types names (probabilities per record)."""

    short_name: float  # drop region and legal form (华信科技)
    move_region: float  # region moved/dropped relative to the legal name
    suffix_change: float  # legal form replaced by another variant
    half_brackets: float  # （） typed as ()
    typo: float  # one look-alike / homophone character
    traditional: float  # whole name in traditional characters
    spaces: float  # stray spaces
    title: float  # honorific appended to a person's name
    latin: float  # person's name in pinyin


@cache
def to_traditional(text: str) -> str:
    """Convert simplified Chinese to traditional (cached per distinct string)."""
    return str(_S2T.convert(text))


def _typo(text: str, r: random.Random) -> str:
    """Replace one character by a commonly confused one (形近字 / 同音字), if any is present."""
    spots = [i for i, ch in enumerate(text) if ch in CONFUSABLES]
    if not spots:
        return text
    i = pick(r, spots)
    return text[:i] + CONFUSABLES[text[i]] + text[i + 1 :]


def _stray_space(text: str, r: random.Random) -> str:
    """Insert a stray space inside or around a string, as copy-paste does."""
    where = r.random()
    if where < 0.3:
        return " " + text if r.random() < 0.5 else text + " "
    if len(text) < 3:
        return text + " "
    i = between(r, 1, len(text) - 1)
    return text[:i] + (" " if r.random() < 0.8 else "　") + text[i:]


def _chinese_company(
    region: str | None,
    brand: str,
    word: str,
    form: str,
    style: str,
    noise: NameNoise,
    r: random.Random,
) -> str:
    """Re-type a Chinese company name from its parts."""
    if r.random() < noise.suffix_change:
        form = pick(r, LEGAL_SUFFIX_VARIANTS)
    if r.random() < noise.short_name:
        return brand + word
    if region is not None and r.random() < noise.move_region:
        style = pick(r, ("prefix", "bracket", "none"))
    if style == "prefix" and region:
        return f"{region}{brand}{word}{form}"
    if style == "bracket" and region:
        left, right = ("(", ")") if r.random() < noise.half_brackets else ("（", "）")
        return f"{brand}{left}{region}{right}{word}{form}"
    return f"{brand}{word}{form}"


def _english_company(name: str, r: random.Random) -> str:
    """Re-type an English company name (case, punctuation, spelled-out legal form)."""
    roll = r.random()
    if roll < 0.45:
        return name
    if roll < 0.65:
        return re.sub(r"\s+", " ", _ENGLISH_PUNCT.sub(" ", name)).strip().upper()
    if roll < 0.8:
        return name.replace("Co., Ltd.", "Company Limited").replace("Inc.", "Incorporated")
    if roll < 0.9:
        return name.upper()
    return name.replace("Co., Ltd.", "Co.,Ltd").replace(" (", "(")


def company_name(
    *,
    kind: str,
    name: str,
    brand: str | None,
    word: str | None,
    form: str | None,
    style: str,
    place: int,
    hq_place: int | None,
    hq_style: str | None,
    english: bool,
    noise: NameNoise,
    r: random.Random,
) -> str:
    """Return one department's re-typed version of an enterprise's legal name.

    Args:
        kind: 'hq' or 'branch'.
        name: the legal name.
        brand: 字号 (Chinese names only).
        word: industry word in the name.
        form: legal form (有限公司 …).
        style: where the region sits in the legal name (prefix / bracket / none / branch).
        place: index of the entity's place.
        hq_place: for branches, the index of the HQ's place.
        hq_style: for branches, where the region sits in the HQ's legal name.
        english: whether the legal name is English.
        noise: the department's noise profile.
        r: random source.

    Returns:
        The name as typed into the department's system.
    """
    if english:
        out = _english_company(name, r)
        return out + " " if r.random() < noise.spaces else out
    assert brand is not None and word is not None and form is not None
    if kind == "branch":
        branch_city = CITIES[PLACES[place].city].short
        hq_region = CITIES[PLACES[hq_place if hq_place is not None else place].city].short
        base = _chinese_company(hq_region, brand, word, form, hq_style or "none", noise, r)
        tail = f"{branch_city}分公司"
        if r.random() < 0.12:
            tail = f"（{tail}）" if r.random() > noise.half_brackets else f"({tail})"
        out = base + tail
    else:
        region = CITIES[PLACES[place].city].short
        out = _chinese_company(region, brand, word, form, style, noise, r)
    return _surface_noise(out, noise, r)


def _surface_noise(text: str, noise: NameNoise, r: random.Random) -> str:
    """Apply typo / traditional / stray-space noise to a Chinese string."""
    if r.random() < noise.typo:
        text = _typo(text, r)
    if r.random() < noise.traditional:
        text = to_traditional(text)
    if r.random() < noise.spaces:
        text = _stray_space(text, r)
    return text


@cache
def _latin_name(name: str, style: int) -> str:
    """Write a Chinese name in pinyin (Zhang Wei / ZHANG Wei / Wei Zhang)."""
    syl = lazy_pinyin(name)
    surname, given = syl[0].capitalize(), "".join(syl[1:]).capitalize()
    if style == 0:
        return f"{surname} {given}"
    if style == 1:
        return f"{surname.upper()} {given}"
    return f"{given} {surname}"


def person_name(name: str, gender: str, noise: NameNoise, r: random.Random) -> str:
    """Return a person's name as a department types it (honorific, pinyin, typo …).

    Args:
        name: the true Chinese name.
        gender: 'm' or 'f' (chooses 先生/女士).
        noise: the department's noise profile.
        r: random source.

    Returns:
        The re-typed name.
    """
    if r.random() < noise.latin:
        return _latin_name(name, between(r, 0, 3))
    if r.random() < noise.title:
        titles = MALE_TITLES if gender == "m" else FEMALE_TITLES
        title = pick(r, titles)
        surname = name[:2] if len(name) >= 4 else name[0]
        # 王女士 / 张总 / 李工 use the surname only; 张伟经理 keeps the full name
        if title in _SURNAME_ONLY_TITLES or r.random() < 0.4:
            return surname + title
        return name + title
    return _surface_noise(name, noise, r)

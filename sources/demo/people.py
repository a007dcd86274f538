"""Person names, phone numbers and email addresses for demo entities, drawn in bulk."""

from __future__ import annotations

import random
from functools import cache
from itertools import accumulate

import numpy as np
from pypinyin import lazy_pinyin

from sources.demo.draw import between
from sources.demo.vocab import (
    COMMON_FULL_NAMES,
    FREE_MAIL_DOMAINS,
    GIVEN_CHARS_FEMALE,
    GIVEN_CHARS_MALE,
    SURNAMES,
)

# Real mobile prefixes (China Mobile / Unicom / Telecom / virtual operators).
_MOBILE_PREFIXES = np.array(
    [
        130,
        131,
        132,
        133,
        135,
        136,
        137,
        138,
        139,
        150,
        151,
        152,
        153,
        155,
        156,
        157,
        158,
        159,
        166,
        176,
        177,
        178,
        180,
        181,
        182,
        183,
        185,
        186,
        187,
        188,
        189,
        191,
        198,
        199,
    ],
    dtype=np.int64,
)


_FREE_DOMAINS = [d for d, _ in FREE_MAIL_DOMAINS]
_FREE_CUM = list(accumulate(w for _, w in FREE_MAIL_DOMAINS))


@cache
def place_pinyin(text: str) -> str:
    """Return the pinyin of a place name using phrase readings (重庆 → chongqing)."""
    return "".join(lazy_pinyin(text))


@cache
def _char_pinyin(ch: str) -> str:
    """Toneless pinyin of one character (cached: names reuse a few hundred characters)."""
    return lazy_pinyin(ch)[0]


def pinyin_syllables(text: str) -> tuple[str, ...]:
    """Return the toneless pinyin syllables of a name, character by character (fast)."""
    return tuple(_char_pinyin(ch) for ch in text)


def pinyin_of(text: str) -> str:
    """Return the toneless pinyin of a name, syllables joined (华信 → huaxin)."""
    return "".join(pinyin_syllables(text))


def draw_person_names(
    rng: np.random.Generator, n: int, common_share: float = 0.22
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw Chinese person names with realistic collisions.

    Args:
        rng: random generator.
        n: how many people.
        common_share: share of people carrying one of the most frequent full names.

    Returns:
        (full names, surnames, genders 'm'/'f') as object arrays.
    """
    surnames = np.array([s for s, _ in SURNAMES], dtype=object)
    weights = np.array([w for _, w in SURNAMES])
    sur = surnames[rng.choice(len(surnames), size=n, p=weights / weights.sum())]
    gender = np.where(rng.random(n) < 0.5, "m", "f").astype(object)
    male = np.array(GIVEN_CHARS_MALE, dtype=object)
    female = np.array(GIVEN_CHARS_FEMALE, dtype=object)
    given = np.where(
        gender == "m", male[rng.integers(0, len(male), n)], female[rng.integers(0, len(female), n)]
    )
    names = sur + given
    common = rng.random(n) < common_share
    picks = rng.integers(0, len(COMMON_FULL_NAMES), int(common.sum()))
    names[common] = np.array([COMMON_FULL_NAMES[i][0] for i in picks], dtype=object)
    gender[common] = np.array([COMMON_FULL_NAMES[i][1] for i in picks], dtype=object)
    sur[common] = np.array([COMMON_FULL_NAMES[i][0][0] for i in picks], dtype=object)
    return names, sur, gender


def draw_mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw n distinct 11-digit mainland mobile numbers as strings."""
    if n == 0:
        return np.empty(0, dtype=object)
    draw = int(n * 1.05) + 16
    numbers = _MOBILE_PREFIXES[rng.integers(0, len(_MOBILE_PREFIXES), draw)] * 10**8 + (
        rng.integers(0, 10**8, draw)
    )
    _, first = np.unique(numbers, return_index=True)
    kept = numbers[np.sort(first)][:n]  # keep draw order so results depend only on the seed
    if len(kept) < n:
        raise RuntimeError("mobile number pool exhausted; this should not happen")
    return kept.astype(str).astype(object)


def draw_landlines(rng: np.random.Generator, area_codes: np.ndarray) -> np.ndarray:
    """Draw distinct landline numbers 'AREA-LOCAL' (8-digit local part) for the given area codes."""
    n = len(area_codes)
    if n == 0:
        return np.empty(0, dtype=object)
    local = rng.integers(2, 9, n) * 10**7 + rng.integers(0, 10**7, n)
    numbers = np.char.add(np.char.add(area_codes.astype(str), "-"), local.astype(str))
    numbers = numbers.astype(object)
    _, first = np.unique(numbers, return_index=True)
    if len(first) < n:
        dup = np.setdiff1d(np.arange(n), first)
        numbers[dup] = draw_landlines(rng, area_codes[dup])
    return numbers


def personal_email(r: random.Random, name: str, taken: set[str]) -> str:
    """Make a free-mail address for a person (QQ number or pinyin plus digits), unique in taken."""
    while True:
        domain = r.choices(_FREE_DOMAINS, cum_weights=_FREE_CUM)[0]
        if domain == "qq.com" and r.random() < 0.8:
            local = str(between(r, 10**5, 3 * 10**9))
        else:
            syl = pinyin_syllables(name)
            style = between(r, 0, 4)
            if style == 0:
                local = "".join(syl) + str(between(r, 1, 999))
            elif style == 1:
                local = "".join(syl[1:]) + "." + syl[0] + str(between(r, 60, 100))
            elif style == 2:
                local = "".join(s[0] for s in syl) + str(between(r, 1000, 99999))
            else:
                local = "".join(syl) + "_" + str(between(r, 1970, 2005))
        email = f"{local}@{domain}"
        if email not in taken:
            taken.add(email)
            return email

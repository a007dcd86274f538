"""Industry (所属行业) to GB/T 4754-2017 sections A–T: synonyms plus rapidfuzz."""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from rapidfuzz import fuzz, process

from cleaning.text import normalize_text

_DATA = Path(__file__).parent / "resources"
_STRIP = re.compile(r"[\s,.;:、/()\-]|行业$|类$|领域$|产业$|industry$|sector$", re.IGNORECASE)
FUZZY_CUTOFF = 80.0  # rapidfuzz ratio below this is unmapped


class IndustryResult(NamedTuple):
    """A GB/T 4754-2017 section letter, its name and a 0–1 confidence (None when unmapped)."""

    section: str | None
    name: str | None
    confidence: float | None


@lru_cache(maxsize=1)
def industry_sections() -> dict[str, str]:
    """GB/T 4754-2017 sections (门类) A–T.

    Returns:
        Mapping of section letter to official Chinese name.
    """
    with (_DATA / "industry_sections.csv").open(encoding="utf-8") as fh:
        return {row["code"]: row["name"] for row in csv.DictReader(fh)}


def _key(text: str) -> str:
    """Comparison key: lowercase, no punctuation, without trailing 行业/类/industry."""
    prev = None
    key = text.lower()
    while prev != key:
        prev, key = key, _STRIP.sub("", key)
    return key


@lru_cache(maxsize=1)
def _synonyms() -> dict[str, str]:
    """Synonym key → section letter, including each section's own name and name parts."""
    table: dict[str, str] = {}
    for code, name in industry_sections().items():
        table[_key(name)] = code
        for part in re.split(r"[、和及]", name.removesuffix("业")):
            if len(part) >= 2:
                table.setdefault(_key(part), code)
    with (_DATA / "industry_synonyms.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table[_key(row["synonym"])] = row["code"]
    return table


@lru_cache(maxsize=100_000)
def map_industry(text: str | None) -> IndustryResult:
    """Map a free-text industry to its GB/T 4754-2017 section.

    Exact synonym or section name → confidence 1.0; a value containing synonyms of one
    section → 0.9, of several sections → the last one (head-final compounds) at 0.8;
    otherwise the best rapidfuzz ratio
    match against all synonyms when at least :data:`FUZZY_CUTOFF` → score × 0.9 / 100.
    A section letter alone (``I``) is accepted.

    Args:
        text: Raw industry text (IT, 信息技术, 软件开发, 制造业, Retail …).

    Returns:
        An :class:`IndustryResult`; unmapped values have all fields None.

    Example:
        >>> map_industry("软件开发")
        IndustryResult(section='I', name='信息传输、软件和信息技术服务业', confidence=1.0)
    """
    norm = normalize_text(text)
    if norm is None:
        return IndustryResult(None, None, None)
    sections = industry_sections()
    if len(norm) == 1 and norm.upper() in sections:
        return IndustryResult(norm.upper(), sections[norm.upper()], 1.0)
    key = _key(norm)
    table = _synonyms()
    if key in table:
        code = table[key]
        return IndustryResult(code, sections[code], 1.0)
    hits = [(key.rfind(syn) + len(syn), len(syn), code) for syn, code in table.items()
            if len(syn) >= 2 and syn in key]  # fmt: skip
    if hits:
        codes = {code for _, _, code in hits}
        if len(codes) == 1:
            return IndustryResult(hits[0][2], sections[hits[0][2]], 0.9)
        # Chinese compounds are head-final: 医疗器械制造 is manufacturing, 互联网金融 is finance
        code = max(hits)[2]
        return IndustryResult(code, sections[code], 0.8)
    if key:
        best = process.extractOne(key, list(table), scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
        if best is not None:
            code = table[best[0]]
            return IndustryResult(code, sections[code], round(best[1] * 0.9 / 100, 3))
    return IndustryResult(None, None, None)


def unmapped_industries(raw: pd.Series, section: pd.Series) -> pd.DataFrame:
    """List industry values that could not be mapped, most frequent first, for a data steward.

    Args:
        raw: Raw industry texts.
        section: Mapped section letters aligned with ``raw`` (null = unmapped).

    Returns:
        A frame ``industry_raw, count``.
    """
    mask = raw.notna() & section.isna()
    counts = raw[mask].value_counts()
    return pd.DataFrame(
        {"industry_raw": counts.index.astype("string"), "count": counts.to_numpy("int64")}
    )

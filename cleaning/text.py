"""Text normalization: NFKC, full-width, invisible characters, traditional to simplified."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc
import pandas as pd

from cleaning._distinct import column, map_distinct

_T2S = opencc.OpenCC("t2s")
# zero-width and formatting characters that survive NFKC and break equality
_INVISIBLE = re.compile(
    "[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\x00-\x08\x0b-\x1f\x7f]"
)
_SPACE = re.compile(r"\s+")
# punctuation variants NFKC leaves alone
_PUNCT = str.maketrans(
    {
        "【": "[",
        "】": "]",
        "〔": "(",
        "〕": ")",
        "〈": "<",
        "〉": ">",
        "「": '"',
        "」": '"',
        "『": '"',
        "』": '"',
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "—": "-",
        "–": "-",
        "―": "-",
        "‐": "-",
        "‑": "-",
        "−": "-",
        "。": ".",
        "、": ",",
    }
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=200_000)
def to_simplified(text: str) -> str:
    """Convert traditional Chinese characters to simplified ones with OpenCC (t2s).

    Args:
        text: Any text.

    Returns:
        The text with traditional characters replaced; latin text is unchanged.
    """
    return _T2S.convert(text) if _CJK.search(text) else text


def normalize_text(text: str | None) -> str | None:
    """Normalize one free-text value.

    NFKC (full-width → half-width, compatibility forms), invisible characters removed,
    punctuation variants unified (【】→[], “”→"), whitespace collapsed and trimmed,
    traditional → simplified.

    Args:
        text: Raw text or None.

    Returns:
        The normalized text, or None when nothing remains.

    Example:
        >>> normalize_text("  ＡＢＣ（北京）　有限公司\u200b ")
        'ABC(北京) 有限公司'
    """
    if text is None or text is pd.NA:
        return None
    text = str(text)
    if text.isascii() and text.isprintable():
        # fast path, same result: NFKC, the invisible/punctuation tables and t2s leave printable
        # ASCII alone, and its only whitespace is the space (pinned by tests against the full path)
        return " ".join(text.split()) or None
    return _normalize_full(text)


def _normalize_full(text: str) -> str | None:
    """The general route of :func:`normalize_text` (the reference its fast path is tested on)."""
    out = unicodedata.normalize("NFKC", text)
    out = _INVISIBLE.sub("", out).translate(_PUNCT)
    out = _SPACE.sub(" ", out).strip()
    if not out:
        return None
    return to_simplified(out)


def normalize_text_series(series: pd.Series) -> pd.Series:
    """Vectorized :func:`normalize_text` over a Series (computed once per distinct value).

    Args:
        series: Raw text values.

    Returns:
        A ``string`` Series of normalized values (null when blank).
    """
    results, codes = map_distinct(series, normalize_text)
    return column(results, codes, series.index)

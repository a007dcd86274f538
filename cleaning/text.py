"""Text normalization: NFKC, full-width, invisible characters, traditional to simplified."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import opencc
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleaning._distinct import column

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
_PUNCT_ANY = re.compile("[" + re.escape("".join(chr(c) for c in _PUNCT)) + "]")
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
    out = _before_t2s(text)
    return to_simplified(out) if out else None


def _before_t2s(text: str) -> str:
    """NFKC, invisible characters, punctuation variants and whitespace ("" when nothing is left)."""
    out = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    if _PUNCT_ANY.search(out):  # translate() is slow on CJK text; most values have none
        out = out.translate(_PUNCT)
    return _SPACE.sub(" ", out).strip()


_PRINTABLE_ASCII = r"^[\x20-\x7e]*$"  # str.isascii() and str.isprintable() (also of "")


def _ascii_fast_path(values: Sequence[str | None]) -> tuple[list[str | None], np.ndarray] | None:
    """The fast path of :func:`normalize_text` for every printable-ASCII value, in Arrow.

    ``" ".join(s.split())`` of a printable-ASCII text is its runs of spaces collapsed and the
    ends trimmed (its only whitespace is the space). Returns (texts, mask of the values taken),
    None when the values are not all ``str``/None (the per-value route then takes them all).
    """
    try:
        arr = pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):  # not all str: per value
        return None
    fast = pc.fill_null(pc.match_substring_regex(arr, _PRINTABLE_ASCII), False)
    collapsed = pc.utf8_trim(pc.replace_substring_regex(arr, " {2,}", " "), " ")
    texts = pc.if_else(pc.and_(fast, pc.not_equal(collapsed, "")), collapsed, None)
    return texts.to_pylist(), fast.to_numpy(zero_copy_only=False)


def normalize_texts(values: Sequence[str | None]) -> list[str | None]:
    """:func:`normalize_text` of many values, with one OpenCC call for all that need it.

    Printable-ASCII values (phones, e-mails, codes, Latin names) take the fast path of
    ``normalize_text`` in Arrow string kernels, all at once. Normalized texts hold no newline
    (whitespace is collapsed to spaces) and no OpenCC dictionary entry holds one, so
    converting the texts joined by newlines converts each exactly as alone (OpenCC segments
    greedily left to right by dictionary entries).

    Args:
        values: Raw texts (None for missing).

    Returns:
        The normalized texts, aligned with ``values``.
    """
    fast = _ascii_fast_path(values)
    if fast is None:
        out: list[str | None] = [None] * len(values)
        rest: Sequence[int] = range(len(values))
    else:
        out, taken = fast
        rest = np.flatnonzero(~taken).tolist()
    pending: list[int] = []
    for i in rest:
        text = values[i]
        if text is None or text is pd.NA:
            continue
        text = str(text)
        if text.isascii() and text.isprintable():
            out[i] = " ".join(text.split()) or None
            continue
        norm = _before_t2s(text)
        if norm:
            out[i] = norm
            if _CJK.search(norm):
                pending.append(i)
    if pending:
        converted = _T2S.convert("\n".join([out[i] for i in pending])).split("\n")  # type: ignore[misc]
        if len(converted) != len(pending):  # not expected; never guess: convert one by one
            converted = [to_simplified(out[i]) for i in pending]  # type: ignore[arg-type]
        for i, text in zip(pending, converted, strict=True):
            out[i] = text
    return out


def normalize_text_series(series: pd.Series) -> pd.Series:
    """Vectorized :func:`normalize_text` over a Series (computed once per distinct value).

    Args:
        series: Raw text values.

    Returns:
        A ``string`` Series of normalized values (null when blank).
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return column(normalize_texts(uniques.tolist()), codes, series.index)

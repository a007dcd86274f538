"""Bulk phone normalization: plain Chinese mobiles by number segment (号段), the rest per value.

libphonenumber decides an 11-digit Chinese number that starts with 1 by its leading digits
only: in the CN metadata every mobile pattern ends in ``\\d{6}`` or ``\\d{8}`` after at most
five specific digits (``1740[0-5]``, ``1610\\d``, ``13\\d``…), and no other number type
matches 11 digits starting with 1. So for a field that is nothing but such a number (optionally
with +86 / 0086 / 86 and separators) phonenumbers is asked once per distinct five-digit segment
— with three representatives that must agree, else the segment's numbers take the full route —
and the answer is broadcast with Arrow string kernels. Everything else goes through
:func:`cleaning.phone.normalize_phone`. ``tests/cleaning/test_phone_bulk.py`` pins the
equivalence against the library over every segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleaning._parallel import apply_values
from cleaning.phone import _parse_one, normalize_phone
from cleaning.text import normalize_texts

SEGMENT_DIGITS = 5  # leading digits of a CN mobile that decide validity and type (see above)
_REPRESENTATIVE_SUFFIXES = ("000000", "999999", "504172")  # must agree for the fast path
# a field made of digits, spaces, + and ( ) . - only: no label, no split mark, no 转/ext
_SIMPLE = r"^[0-9 ()+.\-]+$"
_SEPARATORS = r"[ ().\-]"
_MOBILE = r"^(?:\+86|0086|86)?(?P<nsn>1[0-9]{10})$"
_DASH_EXT = r"[0-9]{7}-[0-9]{1,5}$"  # 1391234-5678: normalize_phone reads a trailing extension


class PhoneColumns(NamedTuple):
    """Per-value phone results as Arrow arrays aligned with the input values."""

    e164: pa.Array
    type: pa.Array
    ext: pa.Array
    others: pa.Array  # comma-joined further valid numbers, null when none
    has_text: pa.Array  # the value is not blank after normalization


@lru_cache(maxsize=20_000)  # ≤ 10,000 segments (1xxxx): a chunked full clean decides each once
def _segment_result(segment: str) -> tuple[bool, str | None] | None:
    """(valid, type) of a five-digit CN mobile segment, or None when representatives disagree."""
    answers = set()
    for suffix in _REPRESENTATIVE_SUFFIXES:
        number = segment + suffix
        res = _parse_one(number, "CN")
        if res.ext is not None or res.others or (res.valid and res.e164 != "+86" + number):
            return None
        answers.add((res.valid, res.type))
    return answers.pop() if len(answers) == 1 else None


def _mobile_fast_path(norms: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Rows decided by their segment: (mask, e164, type) with nulls where invalid."""
    simple = pc.fill_null(pc.match_substring_regex(norms, _SIMPLE), False)
    dash_ext = pc.fill_null(pc.match_substring_regex(norms, _DASH_EXT), False)
    digits = pc.replace_substring_regex(norms, _SEPARATORS, "")
    nsn = pc.struct_field(pc.extract_regex(digits, _MOBILE), "nsn")
    candidate = pc.and_(pc.and_(simple, pc.invert(dash_ext)), pc.is_valid(nsn))
    segments = pc.utf8_slice_codeunits(nsn, 0, SEGMENT_DIGITS).dictionary_encode()
    decided = [_segment_result(str(s)) for s in segments.dictionary.to_pylist()]
    known = pa.array([d is not None for d in decided], pa.bool_())
    valid = pa.array([bool(d and d[0]) for d in decided], pa.bool_())
    kind = pa.array([d[1] if d else None for d in decided], pa.string())
    idx = segments.indices
    mask = pc.and_(candidate, pc.fill_null(pc.take(known, idx), False))
    ok = pc.fill_null(pc.take(valid, idx), False)
    e164 = pc.if_else(ok, pc.binary_join_element_wise("+86", nsn, ""), None)
    kinds = pc.if_else(ok, pc.take(kind, idx), None)
    return mask.to_numpy(zero_copy_only=False), e164, kinds


def normalize_phones(
    values: Sequence[str | None],
    region: str = "CN",
    norms: Sequence[str | None] | None = None,
) -> PhoneColumns:
    """Normalize many phone fields; the same results as :func:`normalize_phone` on each value.

    Args:
        values: Raw phone texts (typically the distinct values of a column).
        region: ISO region for numbers written without a country code.
        norms: ``normalize_texts(values)`` when the caller has it already (not computed again).

    Returns:
        A :class:`PhoneColumns` aligned with ``values``.

    Example:
        >>> normalize_phones(["139 1234 5678", "010-62751234转8001"]).e164.to_pylist()
        ['+8613912345678', '+861062751234']
    """
    norms = pa.array(normalize_texts(values) if norms is None else norms, pa.string())
    n = len(norms)
    if region == "CN" and n:
        fast, fast_e164, fast_type = _mobile_fast_path(norms)
        e164, kinds = fast_e164.to_pylist(), fast_type.to_pylist()
    else:
        fast = np.zeros(n, dtype=bool)
        e164, kinds = [None] * n, [None] * n
    ext: list[str | None] = [None] * n
    others: list[str | None] = [None] * n
    slow = np.flatnonzero(~fast).tolist()
    # the per-value route (labels, landlines, extensions …) runs in the cleaning worker pool
    # when one is open; segments above were decided once, here
    results = apply_values(partial(normalize_phone, region=region), [values[i] for i in slow])
    for i, res in zip(slow, results, strict=True):
        e164[i], kinds[i], ext[i] = res.e164, res.type, res.ext
        others[i] = ",".join(res.others) or None
    return PhoneColumns(
        e164=pa.array(e164, pa.string()),
        type=pa.array(kinds, pa.string()),
        ext=pa.array(ext, pa.string()),
        others=pa.array(others, pa.string()),
        has_text=pc.is_valid(norms),
    )

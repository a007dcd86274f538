"""Bulk phone normalization: CN mobiles by segment (号段), landlines by key, the rest per value.

libphonenumber decides an 11-digit Chinese number that starts with 1 by its leading digits
only: in the CN metadata every mobile pattern ends in ``\\d{6}`` or ``\\d{8}`` after at most
five specific digits (``1740[0-5]``, ``1610\\d``, ``13\\d``…), and no other number type
matches 11 digits starting with 1. So for a field that is nothing but such a number (optionally
with +86 / 0086 / 86 and separators) phonenumbers is asked once per distinct five-digit segment
— with three representatives that must agree, else the segment's numbers take the full route —
and the answer is broadcast with Arrow string kernels.

A plain CN landline (``0`` or ``+86`` before a national number starting 10 or 2–9) is decided
by a key: the national number's first digits and its length. The key is as short as a symbolic
check proves enough (:func:`_tail_free`: every CN pattern of the library's metadata matches all
or none of the numbers sharing the key), and phonenumbers answers once per key on a
representative. Everything else goes through :func:`cleaning.phone.normalize_phone`.
``tests/cleaning/test_phone_bulk.py`` pins the equivalence against the library over every
segment and over landlines of every area code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata

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
# a plain number and an extension as phone._EXT reads it: 转 / ext / ext. / # and 1-6 digits
# (the number ends in no space: _EXT's leading \s* takes it), or a dash and 1-5 digits right
# after seven digits; normalized texts hold single spaces only
_EXT_MARK = r"^(?P<body>[0-9 ()+.\-]*[0-9()+.\-]) ?(?:转|(?i:ext)\.?|#) ?:? ?(?P<ext>[0-9]{1,6})$"
_EXT_DASH = r"^(?P<body>[0-9 ()+.\-]*[0-9]{7})-(?P<ext>[0-9]{1,5})$"
_EXT_ANY = r"转|#|(?i:ext)|[0-9]{7}-[0-9]{1,5}$"  # every text the two above can split
# the digits _parse_one hands to phonenumbers for a CN landline: trunk 0 or +86, then a national
# number starting 10 or 2-9 (neither a carrier prefix 11/12/17… nor a trunk 0 that parse reads)
_LANDLINE = r"^(?P<form>0|\+86)(?P<nsn>(?:10|[2-9][0-9])[0-9]{5,9})$"
LANDLINE_KEY_DIGITS = range(3, 8)  # key lengths tried, shortest first; longer keys: per value
# the metadata descriptions _number_type_helper consults (validity and type come from these)
_DESCS = ("general_desc", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
          "pager", "uan", "voicemail", "fixed_line", "mobile")  # fmt: skip
_ANY = "X"  # stands for "any digit" in the symbolic check


class PhoneColumns(NamedTuple):
    """Per-value phone results as Arrow arrays aligned with the input values."""

    e164: pa.Array
    type: pa.Array
    ext: pa.Array
    others: pa.Array  # comma-joined further valid numbers, null when none
    has_text: pa.Array  # the value is not blank after normalization


@lru_cache(maxsize=20_000)  # ≤ 10,000 segments (1xxxx): a chunked full clean decides each once
def _segment_result(segment: str) -> tuple[bool, str | None] | None:
    """(valid, type) of a five-digit CN mobile segment, or None when representatives disagree.

    One representative is enough where the segment provably decides the answer: no national
    prefix or carrier code can be read from any of its numbers and every CN pattern matches
    all or none of them (:func:`_tail_free`); otherwise three must agree.
    """
    tail = 11 - SEGMENT_DIGITS
    proven = _no_national_prefix(segment, tail) and _tail_free(segment, tail)
    answers = set()
    for suffix in _REPRESENTATIVE_SUFFIXES[:1] if proven else _REPRESENTATIVE_SUFFIXES:
        number = segment + suffix
        res = _parse_one(number, "CN")
        if res.ext is not None or res.others or (res.valid and res.e164 != "+86" + number):
            return None
        answers.add((res.valid, res.type))
    return answers.pop() if len(answers) == 1 else None


def _widened(pattern: str, every_atom: bool) -> str:
    """A metadata pattern in which ``X`` is also accepted by ``\\d`` (or by every digit atom).

    With ``every_atom`` False a match of ``prefix + "XXX"`` uses ``\\d`` for the X's, so every
    digit string there matches the original too; with it True the pattern accepts X wherever the
    original accepts some digit, so no match means no digit string there matches. Only the
    syntax of phonenumbers' national number patterns is accepted (digits, ``\\d``, digit
    classes, groups, alternation, quantifiers); anything else raises.
    """
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("\\d", i):
            out.append(f"[0-9{_ANY}]")
            i += 2
        elif char == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            if not re.fullmatch(r"[0-9\-]+", body):
                raise ValueError(f"unexpected class {body!r} in a phone pattern")
            out.append(f"[{body}{_ANY}]" if every_atom else f"[{body}]")
            i = end + 1
        elif char == "{":
            end = pattern.index("}", i)
            out.append(pattern[i : end + 1])  # a quantifier: its digits are counts
            i = end + 1
        elif char in "0123456789":
            out.append(f"[{char}{_ANY}]" if every_atom else char)
            i += 1
        elif pattern.startswith("(?:", i):
            out.append("(?:")
            i += 3
        elif char in "()|?*+":
            out.append(char)
            i += 1
        else:
            raise ValueError(f"unexpected {char!r} in a phone pattern")
    return "".join(out)


@lru_cache(maxsize=1)
def _cn_patterns() -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
    """(all-tails, some-tail) widened forms of every CN pattern ``_number_type_helper`` reads."""
    metadata = PhoneMetadata.metadata_for_region("CN")
    pairs = []
    for name in _DESCS:
        desc = getattr(metadata, name)
        pattern = desc.national_number_pattern if desc is not None else None
        if pattern:
            every, some = _widened(pattern, False), _widened(pattern, True)
            pairs.append((re.compile(every), re.compile(some)))
    return tuple(pairs)


@lru_cache(maxsize=1)
def _cn_national_prefix() -> re.Pattern[str]:
    """The some-tail widened CN national prefix for parsing (trunk 0, carrier codes 1xxxx)."""
    metadata = PhoneMetadata.metadata_for_region("CN")
    return re.compile(_widened(metadata.national_prefix_for_parsing or "(?!)", True))


def _no_national_prefix(national: str, tail: int) -> bool:
    """phonenumbers reads no national prefix or carrier code from ``national`` + any digits."""
    return _cn_national_prefix().match(national + _ANY * tail) is None


def _tail_free(prefix: str, tail: int) -> bool:
    """Each CN pattern matches all or none of the numbers ``prefix`` + any ``tail`` digits.

    Type and validity (``_number_type_helper``) are then the same for all of them: they follow
    from which patterns the national number matches and from its length.
    """
    probe = prefix + _ANY * tail
    return all(
        every.fullmatch(probe) is not None or some.fullmatch(probe) is None
        for every, some in _cn_patterns()
    )


@lru_cache(maxsize=100_000)  # keys of a full clean's landlines (area code + a digit or more)
def _landline_key_result(form: str, prefix: str, length: int) -> tuple[bool, str | None] | None:
    """(valid, type) of every landline ``form + prefix + …`` of ``length`` national digits.

    phonenumbers reads such digits as country code 86 (``+86``, or the default region) and the
    national number after the trunk ``0`` (a text starting 0 never matches the CN general
    pattern, so parse always strips it; after ``+86`` a national number starting 10 or 2–9 has
    no national prefix). Validity and type then depend on the patterns the national number
    matches: when each one matches all or none of the key's numbers (:func:`_tail_free`), one
    representative answers for all. None when the key is not provably enough or the
    representative's answer is not the plain ``+86`` + national number.
    """
    tail = length - len(prefix)
    national = "0" + prefix if form == "0" else prefix  # what parse reads after a country code
    if tail <= 0 or not _tail_free(prefix, tail) or not _tail_free(national, tail):
        return None
    if form != "0" and not _no_national_prefix(prefix, tail):
        return None
    nsn = prefix + "0" * tail
    res = _parse_one(form + nsn, "CN")
    if res.ext is not None or res.others or (res.valid and res.e164 != "+86" + nsn):
        return None
    return res.valid, res.type


def _canonical_digits(norms: pa.Array) -> pa.Array:
    """The digits ``_parse_one`` hands to phonenumbers for a simple single-number text."""
    digits = pc.replace_substring_regex(norms, _SEPARATORS, "")
    intl = pc.replace_substring_regex(digits, "^00", "+")
    length = pc.utf8_length(digits)
    bare86 = pc.and_(
        pc.starts_with(digits, "86"), pc.or_(pc.equal(length, 12), pc.equal(length, 13))
    )
    return pc.if_else(bare86, pc.binary_join_element_wise("+", digits, ""), intl)


def _landline_fast_path(norms: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Rows (of ``rows``) decided by their landline key: (mask over all, e164, type lists)."""
    n = len(norms)
    mask = np.zeros(n, dtype=bool)
    e164: list[str | None] = [None] * n
    kinds: list[str | None] = [None] * n
    if not len(rows):
        return mask, e164, kinds
    part = norms.take(pa.array(rows, pa.int64()))
    simple = pc.fill_null(pc.match_substring_regex(part, _SIMPLE), False)
    dash_ext = pc.fill_null(pc.match_substring_regex(part, _DASH_EXT), False)
    found = pc.extract_regex(_canonical_digits(part), _LANDLINE)
    ok = pc.and_(pc.and_(simple, pc.invert(dash_ext)), pc.is_valid(found))
    ok_np = ok.to_numpy(zero_copy_only=False)
    forms = pc.struct_field(found, "form").to_pylist()
    nsns = pc.struct_field(found, "nsn").to_pylist()
    for j in np.flatnonzero(ok_np).tolist():
        form, nsn = forms[j], nsns[j]
        for k in LANDLINE_KEY_DIGITS:
            answer = _landline_key_result(form, nsn[:k], len(nsn))
            if answer is not None:
                i = rows[j]
                mask[i] = True
                if answer[0]:
                    e164[i], kinds[i] = "+86" + nsn, answer[1]
                break
    return mask, e164, kinds


def _split_extension(norms: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(number text, extension) of each text, the extension null where there is none.

    Only a plain number followed by one extension is split (see ``_EXT_MARK``/``_EXT_DASH``):
    there ``phone._EXT`` finds its leftmost match at the extension mark (nothing before it
    can be followed by only digits), so ``_parse_one`` reads the same number text and
    extension. Other texts are returned whole.
    """
    exts = pa.nulls(len(norms), pa.string())
    # the extractions (submatches) run only on texts that hold a mark: most hold none
    marked = pc.fill_null(pc.match_substring_regex(norms, _EXT_ANY), False)
    if not pc.any(marked).as_py():
        return norms, exts
    part = pc.filter(norms, marked)
    bodies, part_exts = part, pa.nulls(len(part), pa.string())
    for pattern in (_EXT_MARK, _EXT_DASH):
        found = pc.extract_regex(part, pattern)
        hit = pc.fill_null(pc.is_valid(found), False)
        bodies = pc.if_else(hit, pc.struct_field(found, "body"), bodies)
        part_exts = pc.if_else(hit, pc.struct_field(found, "ext"), part_exts)
    return (
        pc.replace_with_mask(norms, marked, bodies),
        pc.replace_with_mask(exts, marked, part_exts),
    )


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
        bodies, exts = _split_extension(norms)  # the number decides; the extension is kept
        fast, fast_e164, fast_type = _mobile_fast_path(bodies)
        e164, kinds = fast_e164.to_pylist(), fast_type.to_pylist()
        land, land_e164, land_type = _landline_fast_path(bodies, np.flatnonzero(~fast))
        for i in np.flatnonzero(land).tolist():
            e164[i], kinds[i] = land_e164[i], land_type[i]
        fast = fast | land
        ext: list[str | None] = exts.to_pylist()
    else:
        fast = np.zeros(n, dtype=bool)
        e164, kinds, ext = [None] * n, [None] * n, [None] * n
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

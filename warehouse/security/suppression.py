"""Suppression list of erased people (keyed hashes) so re-delivered exports stay erased."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable

import pandas as pd

SUPPRESSION_COLUMNS = ("kind", "hash", "customer_id", "created_at")
_NON_DIGIT = re.compile(r"\D")
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"[\s·•.]+")
NAME_COLUMNS = ("customer_name", "contact_name", "customer_name_raw", "contact_name_raw")
PHONE_COLUMNS = ("phone", "phone_raw")
EMAIL_COLUMNS = ("email", "email_raw")


@functools.cache
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def normalize_name(value: str) -> str:
    """Name match form: NFKC, simplified Chinese, no spaces or dots, case-folded."""
    text = unicodedata.normalize("NFKC", value)
    text = _t2s().convert(text)  # type: ignore[attr-defined]
    return _SPACE.sub("", text).casefold()


def normalize_phone(value: str) -> str:
    """Phone match form: digits of the national number (``+86 139-1234-5678`` → 13912345678)."""
    digits = _NON_DIGIT.sub("", value)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def normalize_email(value: str) -> str:
    """Email match form: trimmed and lowercased."""
    return value.strip().lower()


def suppression_hash(kind: str, value: str, secret: bytes) -> str:
    """HMAC-SHA256 of ``kind:value`` (the stored form; not reversible without the secret)."""
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _distinct_norm(values: Iterable[object], normalize: object) -> list[str]:
    out = {normalize(str(v)) for v in values if isinstance(v, str) and v.strip()}  # type: ignore[operator]
    return sorted(v for v in out if v)


def suppression_entries(
    customer_id: str,
    record_keys: Iterable[str],
    names: Iterable[object],
    phones: Iterable[object],
    emails: Iterable[object],
    secret: bytes,
    created_at: str,
) -> pd.DataFrame:
    """Suppression rows for one erased person: record keys, name+phone and name+email pairs.

    A name alone is never used (names are shared); a phone or email alone is not either
    (a switchboard or shared mailbox would suppress other people).

    Returns:
        A frame with ``kind, hash, customer_id, created_at``.
    """
    norm_names = _distinct_norm(names, normalize_name)
    norm_phones = [p for p in _distinct_norm(phones, normalize_phone) if len(p) >= 7]
    norm_emails = _distinct_norm(emails, normalize_email)
    rows = [
        ("record_key", suppression_hash("record_key", k, secret)) for k in sorted(set(record_keys))
    ]
    rows += [
        ("name_phone", suppression_hash("name_phone", f"{n}|{p}", secret))
        for n in norm_names
        for p in norm_phones
    ]
    rows += [
        ("name_email", suppression_hash("name_email", f"{n}|{e}", secret))
        for n in norm_names
        for e in norm_emails
    ]
    frame = pd.DataFrame(rows, columns=["kind", "hash"]).drop_duplicates()
    return frame.assign(customer_id=customer_id, created_at=created_at)[list(SUPPRESSION_COLUMNS)]


def _map_text(text: pd.Series, lookup: dict[object, str]) -> pd.Series:
    """Map a text column through ``lookup``, staying ``string`` typed even when all null.

    ``Series.map`` over an all-null Arrow-backed column infers a ``double`` result, which
    later fails against a set of strings (``ArrowTypeError … double vs string``); raw
    columns are text, so the mapped column is built as text explicitly.
    """
    values = [lookup.get(v) if isinstance(v, str) else None for v in text.tolist()]
    return pd.Series(pd.array(values, dtype="string"), index=text.index)


def _normalized(records: pd.DataFrame, column: str, normalize: object) -> pd.Series:
    text = records[column].astype("string")
    lookup = {v: normalize(str(v)) for v in text.dropna().unique()}  # type: ignore[operator]
    return _map_text(text, lookup).replace("", pd.NA)


def _hashes(kind: str, values: pd.Series, secret: bytes) -> pd.Series:
    values = values.astype("string")
    lookup = {v: suppression_hash(kind, str(v), secret) for v in values.dropna().unique()}
    return _map_text(values, lookup)


def is_suppressed(
    records: pd.DataFrame, suppression: pd.DataFrame | None, secret: bytes
) -> pd.Series:
    """Which records belong to an erased person (raw or clean rows; keys hashed per distinct value).

    A record is suppressed when its ``record_key`` was erased, or one of its names together
    with one of its phones or emails matches an erased person's. Drop these before storing
    them anywhere and quarantine them with reason ``erased`` and no raw content.

    Args:
        records: raw or clean records (any of ``record_key``, names, phones, emails).
        suppression: the suppression table (``security.suppression``); None or empty → none.
        secret: ``KeyRing.derive("suppression")``.

    Returns:
        A boolean Series aligned with ``records``.
    """
    result = pd.Series(False, index=records.index, dtype=bool)
    if suppression is None or suppression.empty or records.empty:
        return result
    wanted = set(suppression["hash"].astype(str))
    if "record_key" in records:
        result |= _hashes("record_key", records["record_key"].astype("string"), secret).isin(wanted)
    names = [_normalized(records, c, normalize_name) for c in NAME_COLUMNS if c in records]
    pairs = [("name_phone", c, normalize_phone) for c in PHONE_COLUMNS if c in records]
    pairs += [("name_email", c, normalize_email) for c in EMAIL_COLUMNS if c in records]
    for kind, column, normalize in pairs:
        other = _normalized(records, column, normalize)
        for name in names:
            combined = (name + "|" + other).astype("string")
            result |= _hashes(kind, combined, secret).isin(wanted).fillna(False).astype(bool)
    return result


def erased_quarantine_rows(records: pd.DataFrame, suppressed: pd.Series) -> pd.DataFrame:
    """Quarantine rows (contract shape) for suppressed records, without their content.

    Returns:
        ``source_system, source_file, source_row, raw_content (null), reason='erased'``.
    """
    rows = records.loc[suppressed]
    out = pd.DataFrame(index=rows.index)
    for column in ("source_system", "source_file"):
        out[column] = rows[column].astype("string") if column in rows else pd.NA
    out["source_row"] = (
        pd.to_numeric(rows["source_row"], errors="coerce").astype("Int64")
        if "source_row" in rows
        else pd.NA
    )
    out["raw_content"] = pd.Series(pd.NA, index=rows.index, dtype="string")
    out["reason"] = "erased"
    return out.reset_index(drop=True)


def drop_suppressed(
    rows: pd.DataFrame, suppression: pd.DataFrame, secrets: Iterable[bytes]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split re-delivered rows of erased people off a delivery.

    Args:
        rows: the delivery's raw rows.
        suppression: the suppression table (``security.suppression``).
        secrets: ``KeyRing.derive("suppression", kid)`` for every key of the ring (entries
            made before a key rotation keep working).

    Returns:
        The rows to keep (index reset) and the ``erased`` quarantine rows (no content).
    """
    flags = pd.Series(False, index=rows.index)
    for secret in secrets:
        flags |= is_suppressed(rows, suppression, secret)
    if not flags.any():
        return rows, erased_quarantine_rows(rows, flags)
    kept = rows.loc[~flags.to_numpy()].reset_index(drop=True)
    return kept, erased_quarantine_rows(rows, flags)


def _row_hashes(values: list[str], source_system: str, secret: bytes) -> set[str]:
    """Suppression hashes a quarantined row could match, from its cells (any header)."""
    out = {suppression_hash("record_key", f"{source_system}:{v.strip()}", secret) for v in values}
    names = {normalize_name(v) for v in values if len(v.strip()) <= 40 and not _DIGIT.search(v)}
    phones = {p for p in (normalize_phone(v) for v in values) if 7 <= len(p) <= 15}
    emails = {normalize_email(v) for v in values if "@" in v}
    for name in {n for n in names if n}:
        out |= {suppression_hash("name_phone", f"{name}|{p}", secret) for p in phones}
        out |= {suppression_hash("name_email", f"{name}|{e}", secret) for e in emails}
    return out


def scrub_quarantined(
    quarantined: pd.DataFrame, suppression: pd.DataFrame | None, secrets: Iterable[bytes]
) -> tuple[pd.DataFrame, int]:
    """Drop the content of quarantined rows that belong to an erased person.

    Rows are quarantined (bad structure, empty key, …) before the suppression check sees
    them, with their content as JSON (header → text, any header names): each row's cells are
    hashed the way :func:`suppression_entries` hashes an erased person (record key from any
    cell, name+phone, name+email) and a hit nulls ``raw_content``. The row itself stays, with
    its reason, so counts still reconcile.

    Returns:
        The rows (content nulled where matched) and how many were scrubbed.
    """
    if suppression is None or suppression.empty or quarantined.empty:
        return quarantined, 0
    if "raw_content" not in quarantined:
        return quarantined, 0
    wanted = set(suppression["hash"].astype(str))
    keys = list(secrets)
    hit = []
    for raw, source in zip(
        quarantined["raw_content"].tolist(),
        quarantined.get("source_system", pd.Series("", index=quarantined.index)).tolist(),
        strict=True,
    ):
        if not isinstance(raw, str) or not raw:
            hit.append(False)
            continue
        try:
            parsed = json.loads(raw)
            cells = parsed.values() if isinstance(parsed, dict) else parsed
            values = [str(v) for v in cells if v not in (None, "")]
        except (ValueError, TypeError, AttributeError):
            values = [v for v in re.split(r"[,\t;|]", raw) if v.strip()]
        hashes: set[str] = set()
        for secret in keys:
            hashes |= _row_hashes(values, str(source or ""), secret)
        hit.append(bool(hashes & wanted))
    mask = pd.Series(hit, index=quarantined.index, dtype=bool)
    if not mask.any():
        return quarantined, 0
    out = quarantined.copy()
    out["raw_content"] = out["raw_content"].astype("string").mask(mask, pd.NA)
    return out, int(mask.sum())

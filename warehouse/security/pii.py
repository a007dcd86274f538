"""PII classification of every canonical, clean and golden column (one place, used everywhere)."""

from __future__ import annotations

from typing import Literal

PiiClass = Literal["direct", "quasi", "business", "none"]

#: How the analyst mart treats a column: keep, mask by kind, pseudonymize, or drop.
Treatment = Literal["keep", "phone", "email", "person", "name_by_type", "pseudonym", "drop"]

# column → (class, treatment in the analyst mart)
_COLUMNS: dict[str, tuple[PiiClass, Treatment]] = {
    # identity and links (pseudonymized so analysts can still join and count)
    "customer_id": ("quasi", "pseudonym"),
    "other_customer_id": ("quasi", "pseudonym"),
    "record_key": ("quasi", "pseudonym"),
    "cluster_key": ("quasi", "pseudonym"),
    "left_key": ("quasi", "pseudonym"),
    "right_key": ("quasi", "pseudonym"),
    "source_record_id": ("quasi", "pseudonym"),
    "txn_id": ("quasi", "pseudonym"),
    "interaction_id": ("quasi", "pseudonym"),
    # direct identifiers of a person
    "customer_name": ("direct", "name_by_type"),  # business for enterprises, direct for people
    "customer_name_raw": ("direct", "drop"),
    "name_key": ("direct", "drop"),
    "contact_name": ("direct", "person"),
    "contact_name_raw": ("direct", "drop"),
    "phone": ("direct", "phone"),
    "phone_raw": ("direct", "drop"),
    "phone_ext": ("direct", "drop"),
    "email": ("direct", "email"),
    "email_raw": ("direct", "drop"),
    "address": ("direct", "drop"),
    "address_raw": ("direct", "drop"),
    "raw_content": ("direct", "drop"),
    "extra": ("direct", "drop"),  # unmapped source columns: unknown content
    "issues": ("direct", "drop"),  # cleaning details quote raw values
    "value": ("direct", "drop"),  # attribute_lineage values (any attribute)
    "subject": ("direct", "drop"),  # free text of tickets may name people
    "interaction_subject": ("direct", "drop"),
    # person identity fields (居民身份证号 and other documents, names in parts, identifiers)
    "id_number": ("direct", "drop"),
    "id_number_raw": ("direct", "drop"),
    "id_type_raw": ("direct", "drop"),
    "given_name": ("direct", "drop"),
    "given_name_raw": ("direct", "drop"),
    "family_name": ("direct", "drop"),
    "family_name_raw": ("direct", "drop"),
    "phone_masked": ("direct", "drop"),
    "attributes": ("direct", "drop"),  # declared identifiers: 微信号, 护照号, 会员号 …
    "birth_date": ("quasi", "drop"),  # with gender and region a classic re-identifier
    "birth_date_raw": ("direct", "drop"),
    "gender": ("quasi", "keep"),
    "gender_raw": ("direct", "drop"),
    "id_kind": ("none", "keep"),
    "id_number_valid": ("none", "keep"),
    # quasi-identifiers kept at a coarse level
    "province": ("quasi", "keep"),
    "city": ("quasi", "keep"),
    "district": ("quasi", "keep"),
    "division_code": ("quasi", "keep"),
    "name_region": ("quasi", "keep"),
    "registered_date": ("quasi", "keep"),
    "first_seen": ("quasi", "keep"),
    "last_seen": ("quasi", "keep"),
    "email_domain": ("quasi", "keep"),
    "contact_title": ("quasi", "keep"),
    # business attributes
    "customer_type": ("business", "keep"),
    "credit_code": ("business", "keep"),  # 统一社会信用代码 identifies an organisation
    "credit_code_valid": ("business", "keep"),
    "industry": ("business", "keep"),
    "industry_code": ("business", "keep"),
    "industry_confidence": ("business", "keep"),
    "tier": ("business", "keep"),
    "lifecycle": ("business", "keep"),
    "branch": ("business", "keep"),
    "txn_date": ("business", "keep"),
    "txn_amount": ("business", "keep"),
    "txn_type": ("business", "keep"),
    "interaction_date": ("business", "keep"),
    "interaction_channel": ("business", "keep"),
    "interaction_outcome": ("business", "keep"),
    "channel": ("business", "keep"),
    "outcome": ("business", "keep"),
    "satisfaction": ("business", "keep"),
    # lineage, counts and technical columns
    "source_system": ("none", "keep"),
    "source_file": ("none", "keep"),
    "source_row": ("none", "keep"),
    "source_sha256": ("none", "keep"),
    "ingested_at": ("none", "keep"),
    "updated_at": ("none", "keep"),
    "updated_run_id": ("none", "keep"),
    "run_id": ("none", "keep"),
    "run_date": ("none", "keep"),
    "event": ("none", "keep"),
    "attribute": ("none", "keep"),
    "rule": ("none", "keep"),
    "match_score": ("none", "keep"),
    "score": ("none", "keep"),
    "probability": ("none", "keep"),
    "decision": ("none", "keep"),
    "phone_type": ("none", "keep"),
    "email_is_free": ("none", "keep"),
    "source_count": ("none", "keep"),
    "record_count": ("none", "keep"),
    "valid_from": ("none", "keep"),
    "valid_to": ("none", "keep"),
    "is_current": ("none", "keep"),
    "reason": ("none", "keep"),
}

PII_CLASSES: dict[str, PiiClass] = {name: cls for name, (cls, _) in _COLUMNS.items()}
TREATMENTS: dict[str, Treatment] = {name: how for name, (_, how) in _COLUMNS.items()}

_PREFIXES = ("left_", "right_", "prev_", "previous_", "old_", "new_", "l_", "r_")
_SUFFIXES = ("_left", "_right", "_l", "_r", "_1", "_2")


def _base(column: str) -> str | None:
    """The known column a decorated name refers to (``left_phone`` → ``phone``), if any."""
    name = column.lower()
    if name in _COLUMNS:
        return name
    for prefix in _PREFIXES:
        if name.startswith(prefix) and name[len(prefix) :] in _COLUMNS:
            return name[len(prefix) :]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in _COLUMNS:
            return name[: -len(suffix)]
    return None


def classify(column: str, customer_type: str | None = None) -> PiiClass | None:
    """PII class of a column, or None when the column is unknown (treat unknown as sensitive).

    ``left_phone`` / ``phone_r`` and similar side-by-side names take their base column's class.
    ``customer_name`` is ``business`` for enterprises and ``direct`` for individuals or unknown.

    Args:
        column: the column name.
        customer_type: ``enterprise`` / ``individual`` when known for the row.

    Returns:
        ``"direct"``, ``"quasi"``, ``"business"``, ``"none"`` or None.

    Examples:
        >>> classify("phone"), classify("left_email"), classify("province")
        ('direct', 'direct', 'quasi')
        >>> classify("customer_name", "enterprise")
        'business'
    """
    base = _base(column)
    if base is None:
        return "none" if column.lower().endswith("_level") else None
    if base == "customer_name" and customer_type == "enterprise":
        return "business"
    return PII_CLASSES[base]


def treatment(column: str) -> Treatment:
    """How the analyst mart treats a column (unknown columns are dropped: deny by default)."""
    base = _base(column)
    if base is None:
        return "keep" if column.lower().endswith("_level") else "drop"
    return TREATMENTS[base]


def direct_columns(columns: list[str]) -> list[str]:
    """The columns of a table that hold direct identifiers (by :func:`classify`)."""
    return [c for c in columns if classify(c) == "direct"]

"""Per-record issue lists (JSON ``[{"field", "code", "detail"}]``) built column-wise with Arrow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cleaning._distinct import column

# issue codes, documented in docs/cleaning.md
ISSUE_CODES: dict[str, str] = {
    "normalized": "text changed by normalization (full-width, traditional, spaces, punctuation)",
    "phone_invalid": "phone present but not a valid number for its region",
    "phone_multiple": "several phone numbers in one field; the first valid one is kept",
    "phone_shared": "phone seen on many unrelated customers (switchboard)",
    "email_invalid": "email present but malformed",
    "date_unparsed": "date text in no known form",
    "date_ambiguous": "day/month order unknown for this source and both parts <= 12",
    "date_impossible": "no such calendar day (2024-02-30)",
    "date_out_of_range": "year before 1900 or after 2100",
    "date_incomplete": "year and month only",
    "credit_code_invalid": "统一社会信用代码 fails length, charset or GB 32100 check digit",
    "customer_type_inferred": "source gave no usable type; inferred from name and credit code",
    "customer_type_conflict": "source type contradicts the evidence (credit code on an individual)",
    "address_unresolved": "no province/city/district found in the address",
    "address_conflict": "address text contradicts the province/city/district columns",
    "industry_unmapped": "industry text matches no GB/T 4754 section",
    "industry_fuzzy": "industry mapped by a near match (confidence < 1)",
    "title_removed": "honorific/title moved from the contact name to contact_title",
    "amount_unparsed": "transaction amount not a number",
    "amount_foreign_currency": "amount in a foreign currency, not converted",
    "satisfaction_unparsed": "satisfaction not a number or a known rating word",
    "missing_name": "customer name missing (follow-up)",
    "name_from_contact": "individual without a customer name: the contact person's name is used",
    "placeholder_missing": "a placeholder such as NULL, 无, -, / or N/A read as missing",
    "missing_contact": "no usable phone or email (follow-up)",
    "phone_masked": "phone partly hidden (138****5678): kept in phone_masked as partial evidence",
    "name_composed": "no full name given: composed from family_name and given_name",
    "name_masked": "name partly hidden (张*): kept as written, compared as partial evidence",
    "id_number_invalid_length": "居民身份证号 not 17 digits and a check character (nor 15 digits)",
    "id_number_invalid_check": "居民身份证号 fails the GB 11643 (ISO 7064 MOD 11-2) check",
    "id_number_invalid_birth_date": "居民身份证号 carries no real birth date (1900 to today)",
    "id_number_invalid_region": "居民身份证号 starts with no GB/T 2260 province code",
    "id_number_converted_15": "15-digit 居民身份证号 converted to 18 digits",
    "id_number_masked": "居民身份证号 partly hidden: kept as written, neither valid nor invalid",
    "gender_unparsed": "gender not one of 男/女, M/F, male/female, 1/2",
    "gender_conflict": "gender differs from the one the 居民身份证号 encodes",
    "birth_date_conflict": "birth date differs from the one the 居民身份证号 encodes",
}


def fragment(field: str, code: str, detail: str | None = None) -> str:
    """One issue as a JSON object text.

    Args:
        field: Canonical field the issue is about.
        code: Issue code from :data:`ISSUE_CODES`.
        detail: Free text (the offending value, the reason).

    Returns:
        JSON text such as ``{"field": "phone", "code": "phone_invalid", "detail": "123"}``.
    """
    return json.dumps({"field": field, "code": code, "detail": detail}, ensure_ascii=False)


class IssueCollector:
    """Collects issues column by column and renders one JSON list per row.

    Each :meth:`add` stores, per row, the id of its issue fragment (-1 for none). Rows are then
    grouped by their combination of fragment ids, and the JSON text is built once per distinct
    combination — not once per row.
    """

    def __init__(self, index: pd.Index) -> None:
        self._index = index
        self._ids: list[np.ndarray] = []
        self._fragments: list[list[str]] = []

    def add(self, mask: pd.Series, field: str, code: str, detail: pd.Series | None = None) -> None:
        """Record an issue on every row where ``mask`` is True.

        Args:
            mask: Boolean Series aligned with the frame.
            field: Canonical field.
            code: Issue code.
            detail: Optional per-row detail (e.g. the raw value).
        """
        rows = mask.fillna(False).to_numpy(dtype=bool)
        if not rows.any():
            return
        ids = np.full(len(self._index), -1, dtype=np.int32)  # a fragment id per row
        if detail is None:
            ids[rows] = 0
            fragments = [fragment(field, code)]
        else:
            codes, uniques = pd.factorize(detail[rows], use_na_sentinel=True)
            fragments = [fragment(field, code, str(u)) for u in uniques]
            fragments.append(fragment(field, code))  # rows whose detail is null
            ids[rows] = np.where(codes < 0, len(uniques), codes)
        self._ids.append(ids)
        self._fragments.append(fragments)

    def to_series(self) -> pd.Series:
        """Render the collected issues as ``[...]`` JSON lists (``[]`` when none).

        Returns:
            A ``string`` Series aligned with the frame.
        """
        combo = np.zeros(len(self._index), dtype=np.int64)
        for ids, fragments in zip(self._ids, self._fragments, strict=True):
            combo = pd.factorize(combo * (len(fragments) + 1) + (ids + 1))[0].astype(np.int64)
        _, first = np.unique(combo, return_index=True)
        texts = []
        for row in first:
            parts = [f[ids[row]] for ids, f in zip(self._ids, self._fragments, strict=True)
                     if ids[row] >= 0]  # fmt: skip
            texts.append("[" + ",".join(parts) + "]")
        # np.unique sorts: combination value k is at position k because codes are 0..u-1
        return column(texts, combo, self._index)

"""Per-record issue lists (JSON ``[{"field", "code", "detail"}]``) built column-wise with Arrow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    "missing_contact": "no usable phone or email (follow-up)",
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
    """Collects issue fragments column by column and joins them into one JSON list per row."""

    def __init__(self, index: pd.Index) -> None:
        self._index = index
        self._columns: list[pa.Array] = []

    def add(self, mask: pd.Series, field: str, code: str, detail: pd.Series | None = None) -> None:
        """Record an issue on every row where ``mask`` is True.

        Args:
            mask: Boolean Series aligned with the frame.
            field: Canonical field.
            code: Issue code.
            detail: Optional per-row detail (e.g. the raw value).
        """
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        values = np.full(len(self._index), None, dtype=object)
        positions = np.flatnonzero(mask.to_numpy())
        if detail is None:
            values[positions] = fragment(field, code)
        else:
            det = detail.astype("string")[mask]
            # one JSON encoding per distinct detail value
            codes, uniques = pd.factorize(det, use_na_sentinel=True)
            lookup = np.array([*(fragment(field, code, str(u)) for u in uniques),
                               fragment(field, code)], dtype=object)  # fmt: skip
            values[positions] = lookup[codes]
        self._columns.append(pa.array(values, pa.string()))

    def to_series(self) -> pd.Series:
        """Join the collected fragments into ``[...]`` JSON lists (``[]`` when none).

        Returns:
            A ``string`` Series aligned with the frame.
        """
        acc = pa.nulls(len(self._index), pa.string())
        for col in self._columns:
            # pairwise join keeping nulls out (binary_join's null_handling="skip" drops rows
            # whose inputs are all null in pyarrow 26, so the join is done explicitly)
            both = pc.binary_join_element_wise(acc, col, ",")
            acc = pc.coalesce(both, acc, col)
        wrapped = pc.binary_join_element_wise("[", pc.coalesce(acc, ""), "]", "")
        return pd.Series(wrapped.to_pylist(), index=self._index, dtype="string")

"""Derived frames for cross-table golden checks, computed in pandas and then validated with GX."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from expectations.reference import valid_credit_code_mask

_NULL_CATEGORY = "∅"
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def record_coverage(crosswalk: pd.DataFrame, clean_records: pd.DataFrame) -> pd.DataFrame:
    """Compare crosswalk record keys with clean record keys.

    Args:
        crosswalk: golden.crosswalk with ``record_key``.
        clean_records: clean.records with ``record_key``.

    Returns:
        ``record_key, status`` with status ``covered``, ``missing_from_crosswalk`` or
        ``not_in_clean``; one row per distinct key.
    """
    return _set_comparison(
        crosswalk["record_key"], clean_records["record_key"], "record_key",
        ("covered", "missing_from_crosswalk", "not_in_clean"),
    )  # fmt: skip


def customer_links(customers: pd.DataFrame, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """Compare customer ids in golden.customers with those the crosswalk points to.

    Args:
        customers: golden.customers with ``customer_id``.
        crosswalk: golden.crosswalk with ``customer_id``.

    Returns:
        ``customer_id, status`` with status ``linked``, ``no_crosswalk_rows`` (a customer
        with no records) or ``missing_customer`` (crosswalk points to an unknown id).
    """
    return _set_comparison(
        crosswalk["customer_id"], customers["customer_id"], "customer_id",
        ("linked", "no_crosswalk_rows", "missing_customer"),
    )  # fmt: skip


def _set_comparison(
    left_values: pd.Series, right_values: pd.Series, key: str, labels: tuple[str, str, str]
) -> pd.DataFrame:
    """Status per distinct key of two columns: (in both, only on the right, only on the left).

    Keys come out sorted (as ``Index.union`` sorts them); membership is an Arrow hash lookup,
    so millions of keys cost well under a second.
    """
    left = _distinct_text(left_values)
    right = _distinct_text(right_values)
    keys = pc.unique(pa.chunked_array([left, right], type=pa.large_string()))
    keys = keys.take(pc.sort_indices(keys))
    in_left = pc.is_in(keys, value_set=left).to_numpy(zero_copy_only=False)
    in_right = pc.is_in(keys, value_set=right).to_numpy(zero_copy_only=False)
    status = np.select([~in_left, ~in_right], [labels[1], labels[2]], default=labels[0])
    return pd.DataFrame(
        {
            key: pd.Series(keys.to_pandas(types_mapper=lambda _: _TEXT), dtype="string"),
            "status": pd.array(status, dtype="string"),
        }
    )


def _distinct_text(values: pd.Series) -> pa.Array:
    """The distinct non-null values as Arrow text (other types are compared as their text)."""
    unique = pd.Series(values.dropna().unique()).astype("string[pyarrow]")
    return pa.array(unique).cast(pa.large_string())


def valid_credit_codes_per_customer(
    crosswalk: pd.DataFrame, clean_records: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Count the distinct valid credit codes among each customer's source records.

    Args:
        crosswalk: golden.crosswalk (``record_key, customer_id``).
        clean_records: clean.records (``record_key, credit_code``).

    Returns:
        ``(frame, conflicts)``: frame ``customer_id, distinct_valid_credit_codes`` for every
        linked customer, and up to five conflicting customers with their codes.
    """
    codes = clean_records[["record_key", "credit_code"]]
    codes = codes[valid_credit_code_mask(codes["credit_code"])]
    linked = crosswalk[["record_key", "customer_id"]].dropna()
    merged = linked.merge(codes, on="record_key", how="inner")
    per_customer = merged.groupby("customer_id")["credit_code"].nunique()
    ids = pd.Index(linked["customer_id"].unique())
    counts = per_customer.reindex(ids, fill_value=0).astype("int64")
    frame = pd.DataFrame(
        {"customer_id": ids.astype("string"), "distinct_valid_credit_codes": counts.to_numpy()}
    )
    bad = counts[counts > 1].index[:5]
    conflicts = {
        str(cid): sorted(merged.loc[merged["customer_id"] == cid, "credit_code"].unique().tolist())
        for cid in bad
    }
    return frame, conflicts


def duplicate_flags(customers: pd.DataFrame) -> pd.DataFrame:
    """Flag golden customers that look like another golden customer.

    A customer is a duplicate when another customer has the same valid credit code, or the
    same case- and space-insensitive name together with the same phone.

    Args:
        customers: golden.customers (``customer_id, customer_name, phone, credit_code``).

    Returns:
        ``customer_id, is_duplicate (int 0/1)`` in the input order.
    """
    ids = customers["customer_id"]
    valid = valid_credit_code_mask(customers["credit_code"])
    code = customers["credit_code"].where(valid)
    by_code = _shared_by_other(ids, code)
    name = customers["customer_name"].astype("string").str.replace(r"\s+", "", regex=True)
    name = name.str.casefold()
    pair = name + "\x1f" + customers["phone"].astype("string")
    by_name_phone = _shared_by_other(ids, pair)
    flags = (by_code | by_name_phone).astype("int64")
    return pd.DataFrame({"customer_id": ids.astype("string"), "is_duplicate": flags.to_numpy()})


def _shared_by_other(ids: pd.Series, key: pd.Series) -> pd.Series:
    """True where ``key`` is non-null and held by at least two distinct customer ids."""
    present = key.notna()
    frame = pd.DataFrame({"id": ids[present], "key": key[present]})
    holders = frame.drop_duplicates().groupby("key")["id"].nunique()
    shared = set(holders[holders > 1].index)
    return (present & key.isin(shared)).fillna(False).astype(bool)


def distribution_distances(
    current: pd.DataFrame, previous: pd.DataFrame, attributes: Sequence[str]
) -> pd.DataFrame:
    """Total-variation distance of each categorical attribute between two snapshots.

    Nulls count as their own category. Attributes missing from either frame are left out.

    Args:
        current: This run's golden.customers.
        previous: The previous snapshot's golden.customers.
        attributes: Columns to compare.

    Returns:
        ``attribute, distance`` with distance in [0, 1].
    """
    rows: list[tuple[str, float]] = []
    for attribute in attributes:
        if attribute not in current.columns or attribute not in previous.columns:
            continue
        now = _shares(current[attribute])
        before = _shares(previous[attribute])
        both = now.index.union(before.index)
        diff = now.reindex(both, fill_value=0.0) - before.reindex(both, fill_value=0.0)
        rows.append((attribute, round(float(diff.abs().sum()) / 2.0, 6)))
    return pd.DataFrame(rows, columns=["attribute", "distance"]).astype(
        {"attribute": "string", "distance": "float64"}
    )


def _shares(values: pd.Series) -> pd.Series:
    filled = values.astype("string").fillna(_NULL_CATEGORY)
    if filled.empty:
        return pd.Series(dtype="float64")
    return filled.value_counts(normalize=True)

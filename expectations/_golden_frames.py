"""Duplicate flags between golden customers (the rows SQL picked as candidates), in pandas."""

from __future__ import annotations

import pandas as pd

from expectations.reference import valid_credit_code_mask


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

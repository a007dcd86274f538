"""Incremental cleaning: clean only records new or changed since the last clean, same result.

Cleaning is row by row except for two whole-set inputs: each source's inferred day/month
order (stored in ``clean.date_orders``; a change means a full clean) and the shared
switchboard phones (a phone on records of ``shared_phone_min_names`` different names). The
nightly clean (``pipelines/stages/clean.py``) finds the changed records in DuckDB
(``warehouse.clean_delta``), cleans them here with the whole set's orders and switchboards,
and cleans again the kept records whose switchboard flag flips.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleaning.phone import flag_shared_phones
from cleaning.pipeline import (
    CleaningOptions,
    CleanResult,
    clean_records,
    date_orders,
    unmapped_from_records,
)

__all__ = [
    "clean_batch",
    "concat_results",
    "date_order_frame",
    "flag_disagrees",
    "isin_text",
    "switchboards",
    "without_keys",
]


def isin_text(values: pd.Series, keys: set[str] | pa.Array) -> np.ndarray:
    """``values.isin(keys)`` for text keys through Arrow's hash ``is_in`` (≈ 7× faster at 1 M)."""
    value_set = keys if isinstance(keys, pa.Array) else pa.array(list(keys), pa.large_string())
    column = pa.array(values.astype("string"), type=pa.large_string())
    return pc.is_in(column, value_set=value_set).to_numpy(zero_copy_only=False)


def switchboards(phone: pd.Series, name_key: pd.Series, min_names: int) -> frozenset[str]:
    """The shared switchboard phones (``flag_shared_phones``) of a set of records, as a set.

    Args:
        phone: E.164 phones of every record that can decide a flag (see
            ``warehouse.clean_delta.shared_phone_candidates``) plus the records cleaned now.
        name_key: Their name keys, aligned.
        min_names: ``CleaningOptions.shared_phone_min_names``.
    """
    phone = phone.reset_index(drop=True)
    shared = flag_shared_phones(phone, name_key.reset_index(drop=True), min_names)
    return frozenset(phone[shared.to_numpy()].dropna().astype(str))


def flag_disagrees(records: pd.DataFrame, shared: frozenset[str]) -> pd.Series:
    """Per clean record: its ``phone_shared`` flag is not what ``shared`` says (clean again)."""
    flag = records["phone_shared"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    now = isin_text(records["phone"], pa.array(sorted(shared), pa.large_string()))
    return pd.Series(flag != now, index=records.index)


def clean_batch(
    raw: pd.DataFrame, options: CleaningOptions, orders: Mapping[str, str], shared: frozenset[str]
) -> CleanResult:
    """Clean some current raw rows exactly as a full clean of every row would.

    The two whole-set inputs of ``clean_records`` come from the whole set: each source's
    day/month order (``orders``, from ``date_orders`` over every current row) and the
    switchboard phones (``shared``).
    """
    explicit = replace(options, date_order=dict(orders), shared_phones=frozenset(shared))
    return clean_records(raw, explicit)


def without_keys(result: CleanResult, keys: set[str]) -> CleanResult:
    """``result`` without the rows of ``keys`` (every table keyed by ``record_key``)."""
    if not keys:
        return result
    key_set = pa.array(sorted(keys), pa.large_string())

    def drop(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~isin_text(frame["record_key"], key_set)]

    return CleanResult(
        records=drop(result.records),
        transactions=drop(result.transactions),
        interactions=drop(result.interactions),
        follow_up=drop(result.follow_up),
        unmapped_industries=result.unmapped_industries,
    )


def concat_results(first: CleanResult, second: CleanResult) -> CleanResult:
    """Rows of two cleans of disjoint records, one after the other."""

    def both(name: str) -> pd.DataFrame:
        return pd.concat([getattr(first, name), getattr(second, name)], ignore_index=True)

    records = both("records")
    return CleanResult(
        records=records,
        transactions=both("transactions"),
        interactions=both("interactions"),
        follow_up=both("follow_up"),
        unmapped_industries=unmapped_from_records(records),
    )


def date_order_frame(raw: pd.DataFrame, options: CleaningOptions) -> pd.DataFrame:
    """Each source's inferred day/month order as the ``clean.date_orders`` table."""
    return pd.DataFrame(
        list(date_orders(raw, options).items()), columns=["source_system", "date_order"]
    )

"""Plan and apply the analyst mart's masking over all tables at once (one pass per kind)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.security.columns import (
    ColumnMasker,
    keep_enterprise_names,
    lookup_types,
    names_to_mask,
    text_column,
)
from warehouse.security.pii import treatment

LOG = logging.getLogger(__name__)
Frame = pd.DataFrame | pa.Table
Types = tuple[pa.ChunkedArray, pa.ChunkedArray]


@dataclass
class MaskedTable:
    """One mart table: kept columns as given, masked ones as Arrow ``string``, the dropped names."""

    columns: dict[str, Any] = field(default_factory=dict)
    masked: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def columns_of(frame: Frame) -> list[str]:
    """Column names of a DataFrame or Arrow table."""
    return [str(c) for c in (frame.column_names if isinstance(frame, pa.Table) else frame.columns)]


def _get(frame: Frame, column: str) -> pa.ChunkedArray | pd.Series:
    return frame.column(column) if isinstance(frame, pa.Table) else frame[column]


def customer_types(tables: Mapping[str, Frame]) -> Types | None:
    """``customer_id`` and ``customer_type`` of the customers table, if there is one."""
    for name, frame in tables.items():
        if name.endswith("customers") and {"customer_id", "customer_type"} <= set(
            columns_of(frame)
        ):
            return text_column(_get(frame, "customer_id")), text_column(
                _get(frame, "customer_type")
            )
    return None


def _enterprise_rows(frame: Frame, types: Types | None) -> pa.ChunkedArray:
    """Per row: the customer is an enterprise (null when the type is unknown)."""
    columns = columns_of(frame)
    if "customer_type" in columns:
        kind = text_column(_get(frame, "customer_type"))
    elif "customer_id" in columns and types is not None:
        kind = lookup_types(_get(frame, "customer_id"), *types)
    else:
        return pa.chunked_array([pa.nulls(len(frame), pa.bool_())])
    return pc.equal(kind, "enterprise")


def mask_tables(
    tables: Mapping[str, Frame],
    secret: bytes,
    targets: Mapping[str, str],
    masker: ColumnMasker | None = None,
    types: Types | None = None,
) -> dict[str, MaskedTable]:
    """Apply the PII treatments to every column of every table.

    Columns are gathered by masking kind first, so each distinct value (a ``customer_id``
    in nine tables, a phone in customers and contacts) is masked once.

    Args:
        tables: source name → table.
        secret: the pseudonym key.
        targets: source name → mart name.
        masker: the masker to use (one that remembers its values masks each distinct value
            once over several calls); a new one when None.
        types: ``customer_id`` and ``customer_type`` of every customer (:func:`customer_types`)
            when ``tables`` may lack the customers table; taken from ``tables`` when None.

    Returns:
        Mart name → :class:`MaskedTable`, in the order of ``tables``.
    """
    types = customer_types(tables) if types is None else types
    out: dict[str, MaskedTable] = {}
    requests: dict[str, list[tuple[str, str, Any]]] = {}
    names: dict[tuple[str, str], tuple[pa.ChunkedArray, pa.ChunkedArray]] = {}
    for name, frame in tables.items():
        target = targets[name]
        table = out[target] = MaskedTable()
        for column in columns_of(frame):
            how = treatment(column)
            if how == "drop":
                table.dropped.append(column)
                continue
            table.columns[column] = None  # keeps the column order
            if how == "keep":
                table.columns[column] = _get(frame, column)
                continue
            table.masked.append(column)
            values = _get(frame, column)
            if how == "name_by_type":
                text, keep, values = names_to_mask(values, _enterprise_rows(frame, types))
                names[(target, column)] = (text, keep)
                how = "person"
            requests.setdefault(how, []).append((target, column, values))
        if table.dropped:
            LOG.info("analyst mart %s: dropped columns %s", target, table.dropped)
    masker = ColumnMasker(secret) if masker is None else masker
    for kind, wanted in requests.items():
        results = masker.mask_many([values for _, _, values in wanted], kind)
        for (target, column, _), masked in zip(wanted, results, strict=True):
            if (target, column) in names:
                masked = keep_enterprise_names(*names[(target, column)], masked)
            out[target].columns[column] = masked
    return out

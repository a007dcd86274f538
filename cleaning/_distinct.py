"""Apply a per-value function once per distinct value of a Series (vectorization route)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from cleaning._parallel import apply_values

T = TypeVar("T")


def map_distinct(series: pd.Series, func: Callable[[str], T]) -> tuple[list[T], np.ndarray]:
    """Evaluate ``func`` on each distinct non-null value of ``series``.

    Args:
        series: Input values (nulls are skipped).
        func: Pure function of one string; module-level (picklable), as it may run in the
            cleaning worker pool (:func:`cleaning._parallel.worker_pool`).

    Returns:
        ``(results, codes)``: ``results[i]`` is ``func`` of the i-th distinct value and
        ``codes`` gives, per row, the index into ``results`` (-1 for null).
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # tolist() hands out Python str at once (iterating an Arrow-backed Index is far slower)
    results = apply_values(func, [u if type(u) is str else str(u) for u in uniques.tolist()])
    return results, codes


def column(
    results: list[Any] | pa.Array, codes: np.ndarray, index: pd.Index, dtype: str = "string"
) -> pd.Series:
    """Expand per-distinct results into a typed Series aligned on ``index``.

    The expansion is an Arrow ``take`` over the distinct results, so its cost per row is
    a few nanoseconds whatever the number of rows.

    Args:
        results: One value per distinct input value (None for missing), a list or an Arrow
            array of the output type.
        codes: Row codes from :func:`map_distinct`.
        index: Index of the output Series.
        dtype: pandas dtype of the output (``string``, ``boolean``, ``Float64``).

    Returns:
        A Series of the given dtype.
    """
    arrow_type = {"string": pa.string(), "boolean": pa.bool_(), "Float64": pa.float64()}[dtype]
    values = results if isinstance(results, pa.Array) else pa.array(results, arrow_type)
    indices = pa.array(codes, pa.int64(), mask=codes < 0)
    taken = values.take(indices) if len(results) else pa.nulls(len(codes), arrow_type)
    if dtype == "string":
        return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([taken])), index=index)
    return pd.Series(taken.to_pandas(types_mapper=pd.ArrowDtype), index=index).astype(dtype)

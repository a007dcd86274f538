"""Row signatures: one hash per row over its text form, to tell unchanged rows from changed ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["as_text", "frame_hash", "row_signatures"]


def as_text(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The columns as pandas text (missing as NUL) for row signatures.

    Arrow ``date32`` columns are cast by Arrow first (same ``YYYY-MM-DD`` text as pandas'
    ``astype("string")``, ≈ 40× faster on millions of rows).
    """
    out = {}
    for c in columns:
        col = frame[c]
        if isinstance(col.dtype, pd.ArrowDtype) and pa.types.is_date(col.dtype.pyarrow_dtype):
            col = col.astype(pd.ArrowDtype(pa.string()))
        out[c] = col.astype("string").fillna("\x00")
    return pd.DataFrame(out, index=frame.index)


def row_signatures(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """One ``uint64`` hash per row of ``frame[columns]`` (all columns by default), by position."""
    cols = list(frame.columns) if columns is None else list(columns)
    return pd.util.hash_pandas_object(as_text(frame, cols), index=False).to_numpy()


def frame_hash(frame: pd.DataFrame | None) -> str:
    """An order-independent hash of a whole frame (``"empty"`` for none), e.g. of settings."""
    if frame is None or frame.empty:
        return "empty"
    rows = row_signatures(frame)
    return f"{int(rows.astype('uint64').sum() % (1 << 63)):x}-{len(frame)}"

"""Small vectorized helpers shared by the golden-layer modules."""

from __future__ import annotations

import numpy as np
import pandas as pd


def member(values: pd.Series, pool: pd.Series | pd.Index) -> np.ndarray:
    """Boolean mask: which ``values`` occur in ``pool`` (hash lookup, fast on Arrow strings)."""
    index = pd.Index(pd.Series(pool).astype(object).unique())
    return index.get_indexer(values.astype(object)) >= 0

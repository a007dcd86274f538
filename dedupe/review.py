"""The steward review queue (人工复核): review-band pairs side by side with per-field evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.comparisons import Comparison
from dedupe.model import ModelParams

REVIEW_FIELDS: tuple[str, ...] = (
    "customer_name",
    "name_key",
    "branch",
    "customer_type",
    "contact_name",
    "phone",
    "email",
    "province",
    "city",
    "district",
    "address",
    "credit_code",
)


def build_review_queue(
    prepared: pd.DataFrame,
    pairs: pd.DataFrame,
    mask: np.ndarray,
    reason: np.ndarray,
    comparisons: list[Comparison],
    params: ModelParams,
) -> pd.DataFrame:
    """Pairs selected by `mask`, with both records' fields and per-comparison level and weight.

    Args:
        prepared: the prepared records (sorted by record_key).
        pairs: scored pairs (left_key, right_key, score, probability, <comparison>_level …).
        mask: which pairs go to review.
        reason: why each selected pair is in review ('review_band',
            'weak_link_between_clusters', …), one per True in `mask`, in pair order.
        comparisons: the comparisons used.
        params: model parameters (for the weights).

    Returns:
        One row per pair to review, highest probability first: left_key, right_key,
        probability, score, reason, left_<field>/right_<field>, <comparison>_level (label),
        <comparison>_weight (bits).
    """
    chosen = pairs.loc[mask]
    if len(reason) != len(chosen):
        raise ValueError(f"{len(reason)} review reasons for {len(chosen)} selected pairs")
    out = pd.DataFrame(
        {
            "left_key": chosen["left_key"].to_numpy(dtype=object),
            "right_key": chosen["right_key"].to_numpy(dtype=object),
            "probability": chosen["probability"].to_numpy(dtype=np.float64),
            "score": chosen["score"].to_numpy(dtype=np.float64),
            "reason": np.asarray(reason, dtype=object),
        }
    )
    keys = pd.Index(prepared["record_key"])
    lpos = keys.get_indexer(out["left_key"])
    rpos = keys.get_indexer(out["right_key"])
    for name in REVIEW_FIELDS:
        values = prepared[name].to_numpy(dtype=object)
        out[f"left_{name}"] = pd.array(values[lpos], dtype="string")
        out[f"right_{name}"] = pd.array(values[rpos], dtype="string")
    for comp in comparisons:
        codes = chosen[f"{comp.name}_level"].to_numpy(dtype=np.int64)
        out[f"{comp.name}_level"] = np.asarray(comp.labels, dtype=object)[codes]
        out[f"{comp.name}_weight"] = params.comparisons[comp.name].weights()[codes]
    return out.sort_values(
        ["probability", "left_key", "right_key"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)

"""Accuracy metrics against truth: pairwise and B-cubed precision/recall/F1, blocking recall."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1."""

    precision: float
    recall: float
    f1: float

    def __str__(self) -> str:
        return f"P={self.precision:.4f} R={self.recall:.4f} F1={self.f1:.4f}"


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _joined(pred: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    frame = pred[["record_key", "cluster_key"]].merge(
        truth[["record_key", "entity_id"]], on="record_key", how="inner"
    )
    if frame.empty:
        raise ValueError("no record_key is shared between the prediction and the truth")
    return frame


def _pairs(sizes: pd.Series) -> float:
    s = sizes.to_numpy(dtype=np.float64)
    return float((s * (s - 1) / 2).sum())


def pairwise_scores(pred: pd.DataFrame, truth: pd.DataFrame) -> Scores:
    """Pairwise precision/recall/F1 over records present in both frames.

    Args:
        pred: record_key, cluster_key.
        truth: record_key, entity_id.

    Returns:
        Scores (a precision with no predicted pairs counts as 1.0, likewise recall).
    """
    frame = _joined(pred, truth)
    tp = _pairs(frame.groupby(["cluster_key", "entity_id"]).size())
    predicted = _pairs(frame.groupby("cluster_key").size())
    actual = _pairs(frame.groupby("entity_id").size())
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    return Scores(precision, recall, _f1(precision, recall))


def bcubed_scores(pred: pd.DataFrame, truth: pd.DataFrame) -> Scores:
    """B-cubed precision/recall/F1 (per-record averages) over records in both frames.

    Args:
        pred: record_key, cluster_key.
        truth: record_key, entity_id.

    Returns:
        Scores.
    """
    frame = _joined(pred, truth)
    both = frame.groupby(["cluster_key", "entity_id"])["record_key"].transform("size")
    csize = frame.groupby("cluster_key")["record_key"].transform("size")
    esize = frame.groupby("entity_id")["record_key"].transform("size")
    precision = float((both / csize).mean())
    recall = float((both / esize).mean())
    return Scores(precision, recall, _f1(precision, recall))


def blocking_recall(candidate_pairs: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Share of true matching pairs present among the candidate pairs.

    Args:
        candidate_pairs: left_key, right_key (either order).
        truth: record_key, entity_id.

    Returns:
        Recall in [0, 1] (1.0 when the truth has no matching pairs).
    """
    ent = truth.set_index("record_key")["entity_id"]
    left = candidate_pairs["left_key"].map(ent)
    right = candidate_pairs["right_key"].map(ent)
    lk = candidate_pairs["left_key"].astype(str).to_numpy(dtype=object)
    rk = candidate_pairs["right_key"].astype(str).to_numpy(dtype=object)
    swap = lk > rk
    found = pd.DataFrame({"k": np.where(swap, rk, lk), "o": np.where(swap, lk, rk)})
    hit = (left == right) & left.notna()
    found_pairs = len(found[hit.to_numpy()].drop_duplicates())
    actual = _pairs(truth.groupby("entity_id").size())
    return found_pairs / actual if actual else 1.0


def accuracy_against_truth(crosswalk: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """Pairwise and B-cubed precision/recall/F1 of a published crosswalk against a truth file.

    Args:
        crosswalk: ``golden.crosswalk`` (``record_key, source_system, source_record_id,
            customer_id``).
        truth: ``source_system, source_record_id, entity_id`` (the demo generator writes it),
            or ``record_key, entity_id``.

    Returns:
        ``records_evaluated``, ``records_without_truth``, and ``pairwise`` / ``bcubed`` each
        with ``precision``, ``recall``, ``f1``.
    """
    on = ["record_key"] if "record_key" in truth.columns else ["source_system", "source_record_id"]
    joined = crosswalk.merge(truth[[*on, "entity_id"]], on=on, how="inner")
    pred = joined[["record_key", "customer_id"]].rename(columns={"customer_id": "cluster_key"})
    tru = joined[["record_key", "entity_id"]]
    pw = pairwise_scores(pred, tru)
    b3 = bcubed_scores(pred, tru)
    return {
        "records_evaluated": len(joined),
        "records_without_truth": len(crosswalk) - len(joined),
        "pairwise": {"precision": pw.precision, "recall": pw.recall, "f1": pw.f1},
        "bcubed": {"precision": b3.precision, "recall": b3.recall, "f1": b3.f1},
    }

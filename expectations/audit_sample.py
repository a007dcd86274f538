"""The quarterly audit sample (季度审核: 抽查10%-20%的客户档案), stratified and reproducible."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import pandas as pd

GOLDEN_SHOWN = (
    "customer_id",
    "customer_name",
    "customer_type",
    "contact_name",
    "phone",
    "email",
    "province",
    "city",
    "district",
    "industry",
    "tier",
    "lifecycle",
)
RECORD_SHOWN = (
    "source_system",
    "source_record_id",
    "source_file",
    "source_row",
    "customer_name_raw",
    "contact_name_raw",
    "phone_raw",
    "email_raw",
    "address_raw",
)
CHECKER_COLUMNS = ("check_result", "checker", "checked_on", "notes")


@dataclass(frozen=True)
class AuditSample:
    """A drawn sample: the chosen customers and the worksheet rows (one per source record)."""

    customers: pd.DataFrame
    worksheet: pd.DataFrame
    strata: pd.DataFrame


def _rank(ids: pd.Series, seed: str) -> pd.Series:
    """A stable pseudo-random order: sha256(seed + id); same seed, same sample."""
    return ids.map(lambda cid: hashlib.sha256(f"{seed}|{cid}".encode()).hexdigest())


def draw_audit_sample(
    customers: pd.DataFrame,
    crosswalk: pd.DataFrame,
    records: pd.DataFrame,
    fraction: float,
    seed: str = "audit",
    strata: tuple[str, ...] = ("tier", "province"),
) -> AuditSample:
    """Draw ``fraction`` of golden customers in every stratum (at least one per stratum).

    Args:
        customers: ``golden.customers``.
        crosswalk: ``golden.crosswalk``.
        records: ``clean.records`` (raw values shown beside the golden ones).
        fraction: share to draw, 0 < fraction ≤ 1 (the seed asks for 0.1–0.2).
        seed: makes the draw reproducible (e.g. the quarter, ``2026Q4``).
        strata: columns to stratify by; missing values form their own stratum.

    Returns:
        The sample, its worksheet and the per-stratum counts.

    Raises:
        ValueError: fraction outside (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    frame = customers.copy()
    keys = [c for c in strata if c in frame.columns]
    for c in keys:
        frame[c] = frame[c].astype("string").fillna("(none)")
    frame["_rank"] = _rank(frame["customer_id"].astype(str), seed)
    frame = frame.sort_values([*keys, "_rank"])
    if keys:
        frame["_pos"] = frame.groupby(keys).cumcount()
        sizes = frame.groupby(keys)["customer_id"].transform("size")
    else:
        frame["_pos"] = range(len(frame))
        sizes = pd.Series(len(frame), index=frame.index)
    wanted = sizes.map(lambda n: max(1, math.ceil(n * fraction)))
    chosen = frame[frame["_pos"] < wanted].drop(columns=["_rank", "_pos"])
    if keys:
        strata_counts = (
            frame.groupby(keys)
            .size()
            .rename("customers")
            .to_frame()
            .join(chosen.groupby(keys).size().rename("sampled"))
            .reset_index()
        )
    else:
        strata_counts = pd.DataFrame({"customers": [len(frame)], "sampled": [len(chosen)]})
    shown = [c for c in GOLDEN_SHOWN if c in chosen.columns]
    golden = (
        chosen[shown].add_prefix("golden_").rename(columns={"golden_customer_id": "customer_id"})
    )
    links = crosswalk[crosswalk["customer_id"].isin(chosen["customer_id"])][
        ["customer_id", "record_key", "match_score"]
    ]
    rec_cols = ["record_key", *[c for c in RECORD_SHOWN if c in records.columns]]
    sheet = golden.merge(links, on="customer_id").merge(
        records[rec_cols], on="record_key", how="left"
    )
    for c in CHECKER_COLUMNS:
        sheet[c] = ""
    sheet = sheet.sort_values(["customer_id", "record_key"]).reset_index(drop=True)
    return AuditSample(chosen.reset_index(drop=True), sheet, strata_counts)

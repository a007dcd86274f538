"""Quarterly audit sample (季度抽检): a reproducible stratified sample of golden customers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

UNKNOWN_STRATUM = "未知"
CHECKER_COLUMNS: tuple[str, ...] = ("check_result", "checker", "checked_at", "remarks")
"""Blank columns the checker fills in (结果 / 检查人 / 日期 / 备注)."""

_GOLDEN_FIELDS = ("customer_id", "customer_name", "customer_type", "tier", "province",
                  "phone", "email", "credit_code")  # fmt: skip
_RECORD_FIELDS = ("record_key", "source_system", "source_record_id", "source_file", "source_row",
                  "customer_name", "phone", "email", "address", "credit_code")  # fmt: skip


@dataclass(frozen=True)
class AuditSample:
    """A drawn audit sample.

    Attributes:
        customers: The sampled golden customers with their ``stratum_tier, stratum_region``.
        worksheet: One row per source record of the sampled customers: golden fields
            (``golden_*``), source fields (``source_*``/``record_*``) and blank checker columns.
        strata: ``tier, region, customers, sampled`` per stratum.
    """

    customers: pd.DataFrame
    worksheet: pd.DataFrame
    strata: pd.DataFrame


def draw_audit_sample(
    customers: pd.DataFrame,
    crosswalk: pd.DataFrame,
    records: pd.DataFrame,
    fraction: float,
    seed: int | str,
) -> AuditSample:
    """Draw ``fraction`` of golden customers in every (tier, region) stratum, reproducibly.

    Each non-empty stratum contributes ``ceil(fraction × size)`` customers, so small strata are
    never skipped. The same data and seed always give the same sample (ids are ordered before
    drawing, the generator is seeded from the seed's SHA-256).

    Args:
        customers: golden.customers (``customer_id``; ``tier``, ``province`` when present).
        crosswalk: golden.crosswalk (``record_key, customer_id``).
        records: clean.records (``record_key`` and source fields).
        fraction: Share to sample, in (0, 1].
        seed: Audit seed, e.g. the quarter ``"2024Q1"``.

    Returns:
        The sample, its worksheet and per-stratum counts.

    Raises:
        ValueError: ``fraction`` is outside (0, 1] or a required column is missing.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    for label, frame, needed in (
        ("customers", customers, ("customer_id",)),
        ("crosswalk", crosswalk, ("record_key", "customer_id")),
        ("records", records, ("record_key",)),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} lacks column(s) {missing}")
    pool = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    pool["stratum_tier"] = _stratum(pool, "tier")
    pool["stratum_region"] = _stratum(pool, "province")
    digest = hashlib.sha256(str(seed).encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    pool["_draw"] = rng.random(len(pool))
    keys = ["stratum_tier", "stratum_region"]
    sizes = pool.groupby(keys)["customer_id"].transform("size")
    # the epsilon keeps 0.1 × 30 = 3.0000000000000004 at a quota of 3
    quota = np.ceil(sizes * fraction - 1e-9).astype("int64")
    rank = pool.groupby(keys)["_draw"].rank(method="first").astype("int64")
    sampled = pool[rank <= quota].drop(columns="_draw").reset_index(drop=True)
    strata = (
        pool.groupby(keys)
        .agg(customers=("customer_id", "size"))
        .join(sampled.groupby(keys).agg(sampled=("customer_id", "size")))
        .reset_index()
        .rename(columns={"stratum_tier": "tier", "stratum_region": "region"})
    )
    strata["sampled"] = strata["sampled"].fillna(0).astype("int64")
    return AuditSample(sampled, _worksheet(sampled, crosswalk, records), strata)


def _stratum(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(UNKNOWN_STRATUM, index=frame.index, dtype="string")
    return frame[column].astype("string").fillna(UNKNOWN_STRATUM)


def _worksheet(
    sampled: pd.DataFrame, crosswalk: pd.DataFrame, records: pd.DataFrame
) -> pd.DataFrame:
    golden_cols = [c for c in _GOLDEN_FIELDS if c in sampled.columns]
    golden = sampled[[*golden_cols, "stratum_tier", "stratum_region"]].rename(
        columns={c: f"golden_{c}" for c in golden_cols if c != "customer_id"}
    )
    links = crosswalk[["record_key", "customer_id"]]
    record_cols = [c for c in _RECORD_FIELDS if c in records.columns]
    source = records[record_cols].rename(
        columns={c: f"record_{c}" for c in record_cols
                 if c not in ("record_key", "source_system", "source_record_id",
                              "source_file", "source_row")}
    )  # fmt: skip
    sheet = golden.merge(links, on="customer_id", how="left").merge(
        source, on="record_key", how="left"
    )
    sheet = sheet.sort_values(["customer_id", "record_key"], kind="stable").reset_index(drop=True)
    for column in CHECKER_COLUMNS:
        sheet[column] = pd.Series(pd.NA, index=sheet.index, dtype="string")
    return sheet

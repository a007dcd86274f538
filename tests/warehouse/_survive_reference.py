"""The survivorship code before vectorization: the slow reference for equivalence tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from warehouse.settings import SURVIVING_ATTRIBUTES, GoldenSettings, SurvivorshipRule

LINEAGE_COLUMNS = [
    "customer_id",
    "attribute",
    "value",
    "source_system",
    "source_record_id",
    "record_key",
    "record_date",
    "rule",
    "candidates",
]
_NO_DATE = np.int64(-(2**62))
_WORK_COLUMNS = [
    "customer_id",
    "record_key",
    "source_system",
    "source_record_id",
    "_record_date",
    "_date_key",
    "_cust",
    "_record_order",
    "_completeness",
]


def _present(values: pd.Series) -> np.ndarray:
    """Mask of usable values: not null and not blank text."""
    mask = values.notna().to_numpy().copy()
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        text = values.astype("string").str.strip()
        mask &= (text.fillna("") != "").to_numpy()
    return mask


def record_dates(records: pd.DataFrame) -> pd.Series:
    """The date a record speaks for: ``updated_at``, else ``registered_date``, else ingestion."""
    out = pd.Series(pd.NaT, index=records.index, dtype="datetime64[s]")
    for col in ("ingested_at", "registered_date", "updated_at"):
        if col in records.columns:
            text = records[col].astype("string").str.slice(0, 10)
            parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype(
                "datetime64[s]"
            )
            out = parsed.where(parsed.notna(), out)
    return out


def _rank(sources: pd.Series, order: list[str]) -> np.ndarray:
    position = {s: i for i, s in enumerate(order)}
    return sources.map(position).fillna(len(order)).to_numpy(dtype=np.int64)


def _date_key(dates: pd.Series) -> np.ndarray:
    """Day numbers with missing dates as the smallest value (so they lose "most recent")."""
    days = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return np.where(dates.isna().to_numpy(), _NO_DATE, days)


def _sort_keys(cand: pd.DataFrame, rule: SurvivorshipRule, order: list[str]) -> list[np.ndarray]:
    """Keys from most to least significant, all ascending (negated for 'larger wins')."""
    value = cand[rule.attribute]
    rank = _rank(cand["source_system"], rule.source_priority or order)
    recent = -cand["_date_key"].to_numpy()
    keys: list[np.ndarray]
    if rule.strategy == "source_priority":
        keys = [rank, recent]
    elif rule.strategy == "most_recent":
        keys = [recent, rank]
    elif rule.strategy == "most_frequent":
        freq = cand.groupby(["_cust", rule.attribute], dropna=False)["_cust"].transform("size")
        keys = [-freq.to_numpy(dtype=np.int64), recent, rank]
    elif rule.strategy == "most_complete":
        keys = [-cand["_completeness"].to_numpy(dtype=np.int64), recent, rank]
    elif rule.strategy == "longest":
        length = value.astype("string").str.len().fillna(0).to_numpy(dtype=np.int64)
        keys = [-length, rank, recent]
    elif rule.strategy == "earliest":
        text = value.astype("string").fillna("\uffff")
        keys = [pd.factorize(text, sort=True)[0].astype(np.int64), rank, recent]
    else:  # pragma: no cover - the settings Literal forbids it
        raise ValueError(f"unknown survivorship strategy {rule.strategy!r}")
    return [
        cand["_cust"].to_numpy(),
        -cand["_has_primary"].to_numpy(dtype=np.int64),
        *keys,
        cand["_record_order"].to_numpy(),
    ]


def _apply_rule(
    base: pd.DataFrame, rule: SurvivorshipRule, order: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = [rule.attribute, *rule.companions]
    present = {c: _present(base[c]) for c in cols}
    any_present = np.logical_or.reduce(list(present.values()))
    cand = base.loc[any_present, [*_WORK_COLUMNS, *cols]].copy()
    cand["_has_primary"] = present[rule.attribute][any_present]
    for c in cols:
        cand[c] = cand[c].where(present[c][any_present])
    keys = _sort_keys(cand, rule, order)
    ordered = cand.iloc[np.lexsort(keys[::-1])]
    cust = ordered["_cust"].to_numpy()
    first = np.r_[True, cust[1:] != cust[:-1]] if len(cust) else np.zeros(0, dtype=bool)
    winners = ordered.loc[first]
    distinct = (
        cand.loc[cand["_has_primary"]]
        .groupby("customer_id")[rule.attribute]
        .nunique()
        .rename("candidates")
    )
    values = winners[["customer_id", *cols]]
    lineage_parts = []
    for c in cols:
        rows = winners.loc[winners[c].notna()]
        part = pd.DataFrame(
            {
                "customer_id": rows["customer_id"],
                "attribute": c,
                "value": rows[c].astype("string"),
                "source_system": rows["source_system"],
                "source_record_id": rows["source_record_id"],
                "record_key": rows["record_key"],
                "record_date": rows["_record_date"],
                "rule": rule.strategy
                if c == rule.attribute
                else f"{rule.strategy} (with {rule.attribute})",
            }
        )
        part = part.merge(distinct, left_on="customer_id", right_index=True, how="left")
        part["candidates"] = part["candidates"].fillna(1).astype("int64")
        lineage_parts.append(part)
    return values, pd.concat(lineage_parts, ignore_index=True)


def survive(records: pd.DataFrame, settings: GoldenSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Choose every golden attribute per customer by its configured rule.

    Args:
        records: clean records with a ``customer_id`` column (one row per source record).
        settings: survivorship rules; attributes without a rule use ``most_recent``.

    Returns:
        ``(values, lineage)``: one row per customer with the surviving attributes, and one
        lineage row per non-null golden attribute (source system, record, record date, rule,
        number of distinct candidate values).
    """
    base = records.copy()
    for col in SURVIVING_ATTRIBUTES:
        if col not in base.columns:
            base[col] = pd.Series(pd.NA, index=base.index, dtype="string")
    base["_record_date"] = record_dates(base)
    base["_date_key"] = _date_key(base["_record_date"])
    base["_cust"] = pd.factorize(base["customer_id"], sort=True)[0]
    base["_record_order"] = pd.factorize(base["record_key"], sort=True)[0]
    base["_completeness"] = np.sum([_present(base[c]) for c in SURVIVING_ATTRIBUTES], axis=0)
    customers = pd.DataFrame({"customer_id": pd.unique(base["customer_id"])})
    lineage = []
    for rule in settings.all_rules():
        values, rows = _apply_rule(base, rule, settings.default_source_priority)
        customers = customers.merge(values, on="customer_id", how="left")
        lineage.append(rows)
    customers = customers.sort_values("customer_id", ignore_index=True)
    all_lineage = pd.concat(lineage, ignore_index=True) if lineage else pd.DataFrame()
    all_lineage = all_lineage.sort_values(["customer_id", "attribute"], ignore_index=True)
    return customers, all_lineage[LINEAGE_COLUMNS]

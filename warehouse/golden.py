"""Build the golden layer (黄金客户档案): customers, crosswalk, lineage and linked tables."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from warehouse._vector import member
from warehouse.classification import classify, customer_type
from warehouse.related import attach_facts, build_addresses, build_contacts
from warehouse.settings import SURVIVING_ATTRIBUTES, GoldenSettings
from warehouse.survivorship import record_dates, survive

CLASSIFICATION_COLUMNS = ("tier", "lifecycle", "is_returning")
CUSTOMER_COLUMNS = [
    "customer_id",
    *SURVIVING_ATTRIBUTES,
    *CLASSIFICATION_COLUMNS,
    "source_count",
    "record_count",
    "first_seen",
    "last_seen",
    "last_business_date",
    "revenue_12m",
    "updated_run_id",
]
CROSSWALK_COLUMNS = [
    "source_system",
    "source_record_id",
    "record_key",
    "customer_id",
    "match_score",
]
_DATE = pd.ArrowDtype(pa.date32())
# The clean.records columns build_golden reads (a caller may leave the others unread).
RECORD_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            "record_key",
            "source_system",
            "source_record_id",
            "ingested_at",
            "updated_at",
            *SURVIVING_ATTRIBUTES,
            "contact_title",
            "phone_type",
            "division_code",
            "deleted_at_source",
        ]
    )
)


@dataclass
class GoldenTables:
    """The golden state of one run, one DataFrame per ``golden.<name>`` table."""

    customers: pd.DataFrame
    crosswalk: pd.DataFrame
    attribute_lineage: pd.DataFrame
    contacts: pd.DataFrame
    addresses: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame

    def as_dict(self) -> dict[str, pd.DataFrame]:
        """The tables keyed ``golden.<name>`` (ready for ``replace_tables``)."""
        return {f"golden.{f.name}": getattr(self, f.name) for f in fields(self)}


def as_date(values: pd.Series) -> pd.Series:
    """Datetime or ISO text as an Arrow ``date32`` column (a DuckDB ``DATE``)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(
            values.astype("string").str.slice(0, 10), format="%Y-%m-%d", errors="coerce"
        )
    return values.astype("datetime64[s]").astype(_DATE)


def _check_assignments(records: pd.DataFrame, assignments: pd.DataFrame) -> None:
    missing_cols = {"record_key", "customer_id"} - set(assignments.columns)
    if missing_cols:
        raise ValueError(f"assignments lack columns {sorted(missing_cols)}")
    if records["record_key"].duplicated().any():
        dup = records.loc[records["record_key"].duplicated(), "record_key"].head(5).tolist()
        raise ValueError(f"clean records repeat record_key: {dup}")
    if assignments["record_key"].duplicated().any():
        dup = assignments.loc[assignments["record_key"].duplicated(), "record_key"].head(5)
        raise ValueError(f"a record is assigned to two customers: {dup.tolist()}")
    unassigned = pd.Series(
        ~member(records["record_key"], assignments["record_key"]), index=records.index
    )
    if unassigned.any():
        sample = records.loc[unassigned, "record_key"].head(5).tolist()
        raise ValueError(f"{int(unassigned.sum())} clean records have no customer_id: {sample}")
    if assignments["customer_id"].isna().any():
        raise ValueError("assignments contain a null customer_id")


def _crosswalk(base: pd.DataFrame, match_scores: pd.DataFrame | None) -> pd.DataFrame:
    cw = base[["source_system", "source_record_id", "record_key", "customer_id"]].copy()
    size = cw.groupby("customer_id")["record_key"].transform("size")
    if match_scores is not None and len(match_scores):
        best = match_scores.drop_duplicates("record_key").set_index("record_key")["match_score"]
        cw["match_score"] = cw["record_key"].map(best).astype("float64")
    else:
        cw["match_score"] = float("nan")
    cw["match_score"] = cw["match_score"].mask(size.eq(1) & cw["match_score"].isna(), 1.0)
    return cw[CROSSWALK_COLUMNS].sort_values(["customer_id", "record_key"], ignore_index=True)


def _seen(base: pd.DataFrame, facts: list[tuple[pd.DataFrame, str]]) -> pd.DataFrame:
    """First and last date any source shows the customer (records, transactions, interactions)."""
    parts = [base[["customer_id"]].assign(d=base["_record_date"])]
    if "registered_date" in base.columns:
        parts.append(base[["customer_id"]].assign(d=record_dates(base[["registered_date"]])))
    for frame, col in facts:
        if len(frame):
            parts.append(frame[["customer_id"]].assign(d=frame[col]))
    seen = pd.concat(parts, ignore_index=True)
    return seen.groupby("customer_id")["d"].agg(first_seen="min", last_seen="max")


def build_golden(
    records: pd.DataFrame,
    assignments: pd.DataFrame,
    match_scores: pd.DataFrame | None,
    transactions: pd.DataFrame | None,
    interactions: pd.DataFrame | None,
    settings: GoldenSettings,
    run_id: str,
    as_of: date,
    inputs_checked: bool = False,
) -> GoldenTables:
    """Assemble the golden customer archive from clean records and their customer IDs.

    Args:
        records: ``clean.records`` (docs/contracts.md), one row per source record.
        assignments: ``record_key, customer_id`` for every clean record.
        match_scores: ``record_key, match_score`` best link probability per record (None: 1.0
            for single-record customers, unknown otherwise).
        transactions: ``clean.transactions`` (may be None).
        interactions: ``clean.interactions`` (may be None).
        settings: survivorship and classification settings.
        run_id: the run writing this state (``updated_run_id``).
        as_of: the run date; classification is computed as of this date.
        inputs_checked: what the records and assignments are checked for here (one customer
            per record, no record key twice, no null customer) was checked over the whole set
            already (``golden_chunks.check_golden_inputs``, in SQL, before a chunked build):
            not checked again per chunk.

    Returns:
        The golden tables; every clean record is in the crosswalk exactly once.

    Raises:
        ValueError: a record has no or two customer IDs, or a fact has no record.
    """
    if not inputs_checked:
        _check_assignments(records, assignments)
    base = records.merge(assignments[["record_key", "customer_id"]], on="record_key", how="left")
    base["_record_date"] = record_dates(base)
    crosswalk = _crosswalk(base, match_scores)
    surviving, gone = _live_records(base)
    values, lineage = survive(surviving, settings, dates=surviving["_record_date"])
    values["customer_type"] = customer_type(values["customer_type"], values["credit_code"])
    typed = np.flatnonzero(lineage["attribute"].eq("customer_type").to_numpy())
    rows = lineage.iloc[typed]
    enterprises = values.loc[values["customer_type"].eq("enterprise"), "customer_id"]
    derived = typed[
        member(rows["customer_id"], enterprises)
        & rows["value"].ne("enterprise").to_numpy(dtype=bool, na_value=True)
    ]
    lineage.loc[derived, ["value", "rule"]] = ["enterprise", "derived: credit_code present"]
    txns = attach_facts(transactions, crosswalk, "transactions")
    touches = attach_facts(interactions, crosswalk, "interactions")
    classes = classify(
        values, txns, base[["customer_id", "source_system"]], settings.classification, as_of
    )
    counts = base.groupby("customer_id").agg(
        source_count=("source_system", "nunique"), record_count=("record_key", "size")
    )
    seen = _seen(base, [(txns, "txn_date"), (touches, "interaction_date")])
    customers = (
        values.merge(classes, on="customer_id", how="left")
        .merge(counts, left_on="customer_id", right_index=True, how="left")
        .merge(seen, left_on="customer_id", right_index=True, how="left")
    )
    if len(gone):
        # every record of these customers is deleted at source: kept, but not current
        customers["lifecycle"] = customers["lifecycle"].mask(
            member(customers["customer_id"], gone), "deleted_at_source"
        )
    customers["updated_run_id"] = run_id
    for col in ("source_count", "record_count"):
        customers[col] = customers[col].astype("int64")
    for col in ("registered_date", "first_seen", "last_seen", "last_business_date"):
        customers[col] = as_date(customers[col])
    lineage["record_date"] = as_date(lineage["record_date"])
    customers = customers[CUSTOMER_COLUMNS].sort_values("customer_id", ignore_index=True)
    return GoldenTables(
        customers=customers,
        crosswalk=crosswalk,
        attribute_lineage=lineage.assign(run_id=run_id),
        contacts=_dates(build_contacts(base, customers), ["valid_from", "valid_to"]),
        addresses=_dates(build_addresses(base, customers), ["first_seen", "last_seen"]),
        transactions=_dates(txns, ["txn_date"]),
        interactions=_dates(touches, ["interaction_date"]),
    )


def _live_records(base: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """The records survivorship chooses from, and the customers deleted at every source.

    A record deleted at source (``deleted_at_source`` set) gives its values only to a
    customer with no live record left (so the archive keeps what was last known of it);
    otherwise the live records decide.
    """
    if "deleted_at_source" not in base.columns:
        return base, pd.Index([])
    deleted = base["deleted_at_source"].notna().to_numpy()
    if not deleted.any():
        return base, pd.Index([])
    live_ids = pd.Index(pd.unique(base.loc[~deleted, "customer_id"]))
    has_live = member(base["customer_id"], live_ids)
    gone = pd.Index(pd.unique(base.loc[deleted & ~has_live, "customer_id"]))
    return base.loc[~(deleted & has_live)].reset_index(drop=True), gone


def _dates(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    for col in cols:
        frame[col] = as_date(frame[col])
    return frame

"""``clean_records``: the raw layer to clean.records / transactions / interactions / follow_up."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from cleaning import _identity, _steps, facts
from cleaning.industry import unmapped_industries
from cleaning.issues import IssueCollector
from cleaning.phone import flag_shared_phones

LINEAGE = ("record_key", "source_system", "source_record_id", "source_file", "source_row",
           "source_sha256", "ingested_at")  # fmt: skip
CUSTOMER_FIELDS = ("customer_name", "customer_type", "contact_name", "phone", "email", "address",
                   "province", "city", "district", "industry", "credit_code", "registered_date",
                   "updated_at", "id_number", "id_type", "birth_date", "gender", "given_name",
                   "family_name")  # fmt: skip
RECORD_COLUMNS = (
    *LINEAGE, "customer_name", "name_key", "name_region", "branch", "customer_type",
    "contact_name", "contact_title", "phone", "phone_type", "phone_ext", "phone_shared", "email",
    "email_domain", "email_is_free", "address", "province", "city", "district", "division_code",
    "industry_code", "industry", "industry_confidence", "credit_code", "credit_code_valid",
    "registered_date", "updated_at", "given_name", "family_name", "id_number", "id_kind",
    "id_number_valid", "birth_date", "gender", "phone_masked", "attributes",
    *(f"{f}_raw" for f in CUSTOMER_FIELDS), "issues",
)  # fmt: skip


@dataclass(frozen=True)
class CleaningOptions:
    """Per-run cleaning settings."""

    default_region: str = "CN"
    date_order: dict[str, str] = field(default_factory=dict)  # source_system -> ymd|dmy|mdy|auto
    departments: dict[str, str] = field(default_factory=dict)  # source_system -> department
    shared_phone_min_names: int = 3  # phone on >= this many distinct name_keys is a switchboard
    # Switchboards known from a larger set (incremental cleaning): None = count within this batch
    shared_phones: frozenset[str] | None = None


@dataclass(frozen=True)
class CleanResult:
    """The clean layer."""

    records: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    follow_up: pd.DataFrame
    unmapped_industries: pd.DataFrame


def _prepare(raw: pd.DataFrame) -> pd.DataFrame:
    """The canonical/lineage columns with a fresh index, each as ``string`` (absent = null).

    Only these columns are taken (no whole-frame copy: extra columns are never read).
    """
    index = pd.RangeIndex(len(raw))
    needed = (*LINEAGE, *CUSTOMER_FIELDS, *facts.TXN_FIELDS, *facts.INTERACTION_FIELDS,
              "attributes")  # fmt: skip
    columns: dict[str, pd.Series] = {}
    for name in dict.fromkeys(needed):
        if name not in raw:
            columns[name] = pd.Series(pd.NA, index=index, dtype="string")
            continue
        col = raw[name].reset_index(drop=True)
        columns[name] = col if name == "source_row" else col.astype("string")
    return pd.DataFrame(columns, index=index, copy=False)


def date_orders(raw: pd.DataFrame, options: CleaningOptions | None = None) -> dict[str, str]:
    """The day/month order ``clean_records`` uses for each source of ``raw`` (after placeholders).

    Incremental cleaning passes these explicitly when cleaning only new rows, so a date parses
    exactly as it would in a full clean.
    """
    options = options or CleaningOptions()
    wanted = ["source_system", *_steps.DATE_FIELDS]
    src = raw[[c for c in wanted if c in raw]].reset_index(drop=True)  # only what orders need
    for name in wanted:
        src[name] = (
            src[name].astype("string")
            if name in src
            else pd.Series(pd.NA, index=src.index, dtype="string")
        )
    _steps.blank_placeholders(src, _steps.DATE_FIELDS, IssueCollector(src.index))
    return _steps.infer_source_date_orders(src, options.date_order)


def clean_records(raw: pd.DataFrame, options: CleaningOptions | None = None) -> CleanResult:
    """Standardize the raw layer into the clean layer (see docs/contracts.md and docs/cleaning.md).

    Every input row appears in ``records`` exactly once; problems are listed in ``issues`` and
    raw values are kept in ``<field>_raw`` columns. Per-value work runs once per distinct value.

    Args:
        raw: Concatenated raw frames (all-text canonical columns plus lineage).
        options: Cleaning settings; defaults when None.

    Returns:
        A :class:`CleanResult`.
    """
    with collector_paused():
        return _clean(raw, options or CleaningOptions())


@contextmanager
def collector_paused() -> Iterator[None]:
    """CPython's cyclic garbage collector off inside the block (as it was after it).

    A clean allocates millions of tracked objects (per-value result tuples, lists of texts)
    and frees them by reference counting: it makes no reference cycles to collect, yet every
    700 net allocations started a collection of the young objects, every tenth of those of
    the older ones, and now and then of the whole heap (py-spy: ≈ 7 % of a full clean's
    samples; BENCHMARKS.md, issue #22, branch ``fullclean2``). Results cannot change: the
    collector only ever frees unreachable objects, which it still does once enabled again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _clean(raw: pd.DataFrame, options: CleaningOptions) -> CleanResult:
    """:func:`clean_records` with the collector paused."""
    src = _prepare(raw)
    issues = IssueCollector(src.index)
    # blank_placeholders replaces columns (never edits them in place): no copies needed
    originals = {name: src[name] for name in CUSTOMER_FIELDS}
    # normalized texts of these columns are kept for the name, contact and address steps
    normalized: _steps.Normalized = dict.fromkeys(
        ("customer_name", "contact_name", "address", "phone", "email")
    )
    _steps.blank_placeholders(
        src, (*CUSTOMER_FIELDS, *facts.TXN_FIELDS, *facts.INTERACTION_FIELDS), issues, normalized
    )
    out = pd.DataFrame(index=src.index)
    for name in LINEAGE:
        out[name] = src[name]
    out["source_row"] = pd.to_numeric(src["source_row"], errors="coerce").astype("Int64")
    _identity.compose_customer_name(src, issues)
    _steps.clean_names(src, out, issues, normalized)
    _steps.clean_contacts(src, out, issues, options.default_region, normalized)
    if options.shared_phones is None:
        out["phone_shared"] = flag_shared_phones(out["phone"], out["name_key"],
                                                 options.shared_phone_min_names)  # fmt: skip
    else:
        out["phone_shared"] = out["phone"].isin(options.shared_phones).fillna(False).astype(bool)
    issues.add(out["phone_shared"], "phone", "phone_shared", out["phone"])
    _steps.clean_address(src, out, issues, normalized)
    del normalized
    _steps.clean_industry_and_codes(src, out, issues)
    orders = _steps.source_date_orders(src, options.date_order)
    dates = {f: _steps.clean_date(src[f], orders, f, issues) for f in _steps.DATE_FIELDS}
    out["registered_date"], out["updated_at"] = dates["registered_date"], dates["updated_at"]
    _identity.clean_identity(src, out, issues, dates["birth_date"])
    txns = facts.transactions(src, dates["txn_date"], issues)
    inter = facts.interactions(src, dates["interaction_date"], issues)
    issues.add(out["phone"].isna() & out["email"].isna(), "contact", "missing_contact")
    for name in CUSTOMER_FIELDS:
        out[f"{name}_raw"] = originals[name]
    out["issues"] = issues.to_series()
    records = out[list(RECORD_COLUMNS)]
    return CleanResult(
        records=records,
        transactions=txns,
        interactions=inter,
        follow_up=facts.follow_up(records, src, options.departments),
        unmapped_industries=unmapped_from_records(records),
    )


def unmapped_from_records(records: pd.DataFrame) -> pd.DataFrame:
    """Industry texts no GB/T 4754 section matched, counted over clean records (for a steward).

    Works from ``industry_raw`` and ``industry_code``, so it can be recounted over a clean
    layer assembled from several runs (incremental cleaning) exactly as a full clean counts.
    """
    frame = pd.DataFrame({"industry": records["industry_raw"].astype("string")})
    _steps.blank_placeholders(frame, ("industry",), IssueCollector(frame.index))
    return unmapped_industries(frame["industry"], records["industry_code"])

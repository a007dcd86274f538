"""Tables linked to a golden customer by ``customer_id``: contacts, addresses and business facts."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SOURCE_ROLES = {
    "sales": "business",
    "finance": "billing",
    "service": "service",
    "marketing": "marketing",
}
CONTACT_COLUMNS = [
    "customer_id",
    "contact_name",
    "contact_title",
    "phone",
    "phone_type",
    "email",
    "role",
    "is_primary",
    "valid_from",
    "valid_to",
    "is_current",
    "source_systems",
    "record_count",
]
ADDRESS_COLUMNS = [
    "customer_id",
    "address",
    "province",
    "city",
    "district",
    "division_code",
    "is_primary",
    "first_seen",
    "last_seen",
    "source_systems",
    "record_count",
]
TRANSACTION_COLUMNS = [
    "customer_id",
    "record_key",
    "source_system",
    "txn_id",
    "txn_date",
    "txn_year",
    "txn_amount",
    "txn_type",
]
INTERACTION_COLUMNS = [
    "customer_id",
    "record_key",
    "source_system",
    "interaction_id",
    "interaction_date",
    "interaction_year",
    "channel",
    "subject",
    "outcome",
    "satisfaction",
]


def _text(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    s = frame[col].astype("string").str.strip()
    return s.where(s != "")


def _sources(
    frame: pd.DataFrame, groups: np.ndarray, count: int
) -> pd.api.extensions.ExtensionArray:
    """Comma-joined sorted distinct source systems per group (``groups``: each row's group).

    Vectorized: each system is one bit, set per group with one scatter per system (a handful),
    and the few distinct bit masks are turned into text once each.
    """
    names = sorted(frame["source_system"].dropna().unique())
    systems = frame["source_system"].to_numpy(dtype=object)
    masks = np.zeros(count, dtype=np.int64)
    for i, name in enumerate(names):
        seen = np.zeros(count, dtype=bool)
        seen[groups[systems == name]] = True
        masks |= seen.astype(np.int64) << i
    text = {m: ",".join(n for i, n in enumerate(names) if m >> i & 1) for m in np.unique(masks)}
    return pd.Series(masks).map(text).astype("string").array


def _golden_values(out: pd.DataFrame, golden: pd.DataFrame, cols: list[str]) -> list[pd.Series]:
    """The golden customer's ``cols`` beside each row of ``out`` (one hash lookup for all)."""
    pos = pd.Index(golden["customer_id"]).get_indexer(out["customer_id"])
    found = pos >= 0
    safe = np.where(found, pos, 0)
    if not len(golden):
        return [pd.Series(pd.NA, index=out.index, dtype=golden[c].dtype) for c in cols]
    return [golden[c].take(safe).set_axis(out.index).where(found) for c in cols]


_RECORD_ORDER = ["date", "source_system", "record_key"]
"""The order a customer's records are folded in (oldest first; ties by source, then key)."""


def build_contacts(base: pd.DataFrame, golden: pd.DataFrame) -> pd.DataFrame:
    """Every distinct contact (person + phone + email) of each customer with role and validity.

    A contact is primary when it carries the golden phone (or, without a golden phone, the golden
    contact name and email). A non-primary contact is superseded (``valid_to`` = the last day it
    was seen) when its source system reports a more recent contact for the customer.

    Args:
        base: clean records with ``customer_id`` and ``_record_date``.
        golden: golden customers (``customer_id, contact_name, phone, email``).

    Returns:
        One row per distinct contact, columns ``CONTACT_COLUMNS``.
    """
    c = pd.DataFrame(
        {
            "customer_id": base["customer_id"],
            "contact_name": _text(base, "contact_name"),
            "contact_title": _text(base, "contact_title"),
            "phone": _text(base, "phone"),
            "phone_type": _text(base, "phone_type"),
            "email": _text(base, "email"),
            "source_system": base["source_system"],
            "date": base["_record_date"],
            "record_key": base["record_key"],
        }
    )
    c = c[c[["contact_name", "phone", "email"]].notna().any(axis=1)]
    keys = ["customer_id", "contact_name", "phone", "email"]
    # the record key breaks ties (one source, one day: 小姐 or 女士?), so the title kept does
    # not depend on the order the records were read in
    c = c.sort_values(_RECORD_ORDER, na_position="first")
    grouped = c.groupby(keys, dropna=False, sort=False)
    out = grouped.agg(
        contact_title=("contact_title", "last"),
        phone_type=("phone_type", "last"),
        latest_source=("source_system", "last"),
        valid_from=("date", "min"),
        last_seen=("date", "max"),
        record_count=("source_system", "size"),
    )
    # sort=False: group numbers follow first appearance, the order of ``out``'s rows
    out["source_systems"] = _sources(c, grouped.ngroup().to_numpy(), len(out))
    out = out.reset_index()
    g_phone, g_name, g_email = _golden_values(out, golden, ["phone", "contact_name", "email"])
    by_phone = g_phone.notna() & (out["phone"] == g_phone)
    by_name = (
        g_phone.isna()
        & (out["contact_name"].fillna("") == g_name.fillna(""))
        & (out["email"].fillna("") == g_email.fillna(""))
    )
    out["is_primary"] = (by_phone | by_name).fillna(False).astype(bool)
    newest = out.groupby(["customer_id", "latest_source"])["last_seen"].transform("max")
    superseded = ~out["is_primary"] & (out["last_seen"] < newest).fillna(False)
    out["valid_to"] = out["last_seen"].where(superseded)
    out["is_current"] = ~superseded
    role = out["latest_source"].map(SOURCE_ROLES).fillna("other")
    out["role"] = role.where(~out["is_primary"], "primary").astype("string")
    out = out.sort_values(
        ["customer_id", "is_primary", "valid_from"], ascending=[True, False, True]
    )
    return out[CONTACT_COLUMNS].reset_index(drop=True)


def build_addresses(base: pd.DataFrame, golden: pd.DataFrame) -> pd.DataFrame:
    """Every distinct address of each customer, the golden one marked primary.

    Args:
        base: clean records with ``customer_id`` and ``_record_date``.
        golden: golden customers (``customer_id, address, province, city, district``).

    Returns:
        One row per distinct address, columns ``ADDRESS_COLUMNS``.
    """
    parts = ["address", "province", "city", "district"]
    a = pd.DataFrame({"customer_id": base["customer_id"]})
    for col in [*parts, "division_code"]:
        a[col] = _text(base, col)
    a["source_system"] = base["source_system"]
    a["date"] = base["_record_date"]
    a["record_key"] = base["record_key"]
    a = a[a[parts].notna().any(axis=1)].sort_values(_RECORD_ORDER, na_position="first")
    keys = ["customer_id", *parts]
    grouped = a.groupby(keys, dropna=False, sort=False)
    out = grouped.agg(
        division_code=("division_code", "first"),
        first_seen=("date", "min"),
        last_seen=("date", "max"),
        record_count=("source_system", "size"),
    )
    out["source_systems"] = _sources(a, grouped.ngroup().to_numpy(), len(out))
    out = out.reset_index()
    same = pd.Series(True, index=out.index)
    for col, g_value in zip(parts, _golden_values(out, golden, parts), strict=True):
        same &= out[col].fillna("") == g_value.fillna("")
    out["is_primary"] = same.astype(bool)
    out = out.sort_values(["customer_id", "is_primary"], ascending=[True, False])
    return out[ADDRESS_COLUMNS].reset_index(drop=True)


def _dated(frame: pd.DataFrame, col: str, what: str) -> tuple[pd.Series, pd.Series]:
    text = _text(frame, col).str.slice(0, 10)
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[s]")
    bad = int((text.notna() & parsed.isna()).sum())
    if bad:
        log.warning("%d %s rows have an unreadable %s; kept with a null date", bad, what, col)
    return parsed, parsed.dt.year.astype("Int64")


_FACT_DTYPES = {
    "txn_date": "datetime64[s]",
    "interaction_date": "datetime64[s]",
    "txn_year": "Int64",
    "interaction_year": "Int64",
    "txn_amount": "float64",
    "satisfaction": "float64",
}


def _empty_facts(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_FACT_DTYPES.get(c, "string")) for c in columns})


def attach_facts(facts: pd.DataFrame | None, crosswalk: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Link clean transactions or interactions to customers through their source record.

    Transactions repeated in one source (same ``txn_id`` on two rows of one customer) are kept
    once so revenue is not double counted; every other row is kept.

    Args:
        facts: ``clean.transactions`` or ``clean.interactions`` (may be None or empty).
        crosswalk: ``record_key, customer_id``.
        kind: ``"transactions"`` or ``"interactions"``.

    Returns:
        The facts with ``customer_id`` first, typed dates and a year column for partitioning.

    Raises:
        ValueError: a fact refers to a record that is not in the crosswalk.
    """
    columns = TRANSACTION_COLUMNS if kind == "transactions" else INTERACTION_COLUMNS
    if facts is None or facts.empty:
        return _empty_facts(columns)
    out = facts.merge(crosswalk[["record_key", "customer_id"]], on="record_key", how="left")
    orphans = out["customer_id"].isna()
    if orphans.any():
        sample = ", ".join(out.loc[orphans, "record_key"].astype(str).head(5))
        raise ValueError(f"{int(orphans.sum())} {kind} rows refer to unknown records: {sample}")
    if kind == "transactions":
        out["txn_date"], out["txn_year"] = _dated(out, "txn_date", kind)
        out["txn_amount"] = pd.to_numeric(out["txn_amount"], errors="coerce").astype("float64")
        has_id = out["txn_id"].notna()
        dup = has_id & out.sort_values("record_key").duplicated(
            ["customer_id", "source_system", "txn_id"]
        ).reindex(out.index)
        if dup.any():
            log.info("%d repeated transactions (same source and txn_id) kept once", int(dup.sum()))
        out = out[~dup]
    else:
        out["interaction_date"], out["interaction_year"] = _dated(out, "interaction_date", kind)
        out["satisfaction"] = pd.to_numeric(out["satisfaction"], errors="coerce").astype("float64")
    for col in columns:
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="string")
    return out[columns].sort_values(["customer_id", columns[4]]).reset_index(drop=True)

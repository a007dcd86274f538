"""Customer history as a slowly changing dimension type 2 (变更记录: old value, date, reason)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa

from warehouse._vector import member
from warehouse.golden import CLASSIFICATION_COLUMNS
from warehouse.settings import SURVIVING_ATTRIBUTES

TRACKED_ATTRIBUTES = [*SURVIVING_ATTRIBUTES, *CLASSIFICATION_COLUMNS]
HISTORY_COLUMNS = [
    "customer_id",
    *TRACKED_ATTRIBUTES,
    "valid_from",
    "valid_to",
    "is_current",
    "change_type",
    "change_reason",
    "changed_attributes",
    "closed_reason",
    "run_id",
    "closed_run_id",
]
_DATE = pd.ArrowDtype(pa.date32())
_MISSING = "\x00"


def _comparable(values: pd.Series) -> pd.Series:
    """Text form of a value that survives a DuckDB round trip (dates as ISO, NA as a marker)."""
    if isinstance(values.dtype, pd.ArrowDtype) or pd.api.types.is_datetime64_any_dtype(values):
        try:
            text = pd.to_datetime(values.astype("string"), errors="raise").dt.strftime("%Y-%m-%d")
            return text.astype("string").fillna(_MISSING)
        except (ValueError, TypeError):
            pass
    return values.astype("string").fillna(_MISSING)


def _events(id_events: pd.DataFrame | None) -> pd.DataFrame:
    """One ID event per customer: ``event`` and ``other_customer_id`` (e.g. merged_into C…)."""
    if id_events is None or id_events.empty:
        return pd.DataFrame(columns=["event", "other_customer_id"]).rename_axis("customer_id")
    ev = id_events.drop_duplicates("customer_id", keep="last").set_index("customer_id")
    other = ev["other_customer_id"] if "other_customer_id" in ev else pd.Series(pd.NA, ev.index)
    return pd.DataFrame({"event": ev["event"].astype("string"), "other_customer_id": other})


def _event_text(ids: pd.Series, events: pd.DataFrame, default: str) -> pd.Series:
    event = ids.map(events["event"]).astype("string")
    other = ids.map(events["other_customer_id"]).astype("string")
    words = event.str.replace("_", " ", regex=False)
    text = (words + " " + other).where(other.notna(), words)
    return text.where(event.notna() & (event != "created"), default)


def _opened(
    rows: pd.DataFrame, as_of: date, run_id: str, change_type: str, reason: pd.Series, changed: str
) -> pd.DataFrame:
    out = rows[["customer_id", *TRACKED_ATTRIBUTES]].copy()
    out["valid_from"] = pd.Timestamp(as_of)
    out["valid_to"] = pd.NaT
    out["is_current"] = True
    out["change_type"] = change_type
    out["change_reason"] = reason.to_numpy()
    out["changed_attributes"] = changed
    out["closed_reason"] = pd.NA
    out["run_id"] = run_id
    out["closed_run_id"] = pd.NA
    return out


def _close(rows: pd.DataFrame, as_of: date, run_id: str, reason: pd.Series) -> pd.DataFrame:
    out = rows.copy()
    out["valid_to"] = pd.Timestamp(as_of)
    out["is_current"] = False
    out["closed_reason"] = reason.to_numpy()
    out["closed_run_id"] = run_id
    return out


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("valid_from", "valid_to", "registered_date"):
        values = frame[col]
        if not isinstance(values.dtype, pd.ArrowDtype):
            text = values.astype("string").str.slice(0, 10)  # dates, timestamps or ISO text
            values = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
            frame[col] = values.astype("datetime64[s]").astype(_DATE)
    for col in ["customer_id", *TRACKED_ATTRIBUTES]:
        if col not in ("registered_date", "is_returning"):
            frame[col] = frame[col].astype("string")
    frame["is_current"] = frame["is_current"].astype(bool)
    frame["is_returning"] = frame["is_returning"].astype("boolean")
    for col in ("change_type", "change_reason", "changed_attributes", "closed_reason", "run_id",
                "closed_run_id"):  # fmt: skip
        frame[col] = frame[col].astype("string")
    return frame[HISTORY_COLUMNS].sort_values(["customer_id", "valid_from", "is_current"])


def update_history(
    previous: pd.DataFrame | None,
    customers: pd.DataFrame,
    run_id: str,
    as_of: date,
    id_events: pd.DataFrame | None = None,
    delivery_reasons: pd.Series | None = None,
) -> pd.DataFrame:
    """Fold this run's golden customers into ``golden.customers_history`` (SCD type 2).

    A customer whose tracked attributes (``TRACKED_ATTRIBUTES``: identity, contact, address,
    industry, tier, lifecycle …) changed gets its open row closed (``valid_to`` = run date) and
    a new row opened with the changed attributes as the reason; a new customer gets a first
    row; a customer gone from the golden layer has its row closed with the ID event (``merged
    into C…``) or ``no longer in any source`` as the reason. Closed rows are never changed.

    Args:
        previous: the current history table, or None on the first run.
        customers: this run's ``golden.customers``.
        run_id: the run writing the history.
        as_of: the run date (``valid_from`` of new rows, ``valid_to`` of closed ones).
        id_events: ``customer_id, event, other_customer_id`` from the ID assignment.
        delivery_reasons: per ``customer_id``, the delivery behind the change (``delivery
            sales/2026-11-24/crm_customers.csv``); appended to the reason of changed rows.

    Returns:
        The whole new history table; rows are valid on ``valid_from <= d < valid_to``.
    """
    events = _events(id_events)
    current = customers[["customer_id", *TRACKED_ATTRIBUTES]].reset_index(drop=True)
    if previous is None or previous.empty:
        reason = _event_text(current["customer_id"], events, "new customer")
        return _typed(_opened(current, as_of, run_id, "created", reason, ""))
    previous = previous[HISTORY_COLUMNS].reset_index(drop=True)
    is_open = previous["valid_to"].isna()
    closed_before, open_rows = previous[~is_open], previous[is_open]
    ids = pd.Index(current["customer_id"])
    kept = member(open_rows["customer_id"], ids)
    still, gone = open_rows[kept], open_rows[~kept]
    new = current[~member(current["customer_id"], open_rows["customer_id"])]
    now = current.set_index("customer_id").loc[still["customer_id"]].reset_index()
    diff = pd.DataFrame(
        {
            a: (_comparable(still[a]).to_numpy() != _comparable(now[a]).to_numpy())
            for a in TRACKED_ATTRIBUTES
        },
        index=still.index,
    )
    changed = diff.any(axis=1)
    names = diff.loc[changed].dot(pd.Index(TRACKED_ATTRIBUTES) + ",").str.rstrip(",")
    parts = [closed_before, still.loc[~changed]]
    if changed.any():
        reason = "changed: " + names.str.replace(",", ", ", regex=False)
        if delivery_reasons is not None and len(delivery_reasons):
            # a delivery explains changed source values, not a tier/lifecycle moving with time
            by_data = diff.loc[changed, list(SURVIVING_ATTRIBUTES)].any(axis=1)
            why = still.loc[changed, "customer_id"].map(delivery_reasons).astype("string")
            why = why.where(by_data.to_numpy(), pd.NA)
            text = reason.astype("string") + " (" + why.fillna("") + ")"
            reason = text.where(why.notna(), reason.astype("string"))
        parts.append(_close(still.loc[changed], as_of, run_id, reason))
        opened = _opened(now.loc[changed.to_numpy()], as_of, run_id, "updated", reason, "")
        opened["changed_attributes"] = names.to_numpy()
        parts.append(opened)
    if len(gone):
        reason = _event_text(gone["customer_id"], events, "no longer in any source")
        parts.append(_close(gone, as_of, run_id, reason))
    if len(new):
        reason = _event_text(new["customer_id"], events, "new customer")
        parts.append(_opened(new, as_of, run_id, "created", reason, ""))
    parts = [p.astype(object) for p in parts if len(p)]
    return _typed(pd.concat(parts, ignore_index=True))

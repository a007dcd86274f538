"""The yearly re-verification list (每年回访): key contact data no source confirmed for a year.

Seed 004: 每年至少开展1次客户信息回访，主动核实关键信息（如联系人、地址）. A key attribute
(联系人, 联系电话, 电子邮箱, 地址) counts as confirmed on the record date of the source record it
survived from (``golden.attribute_lineage.record_date``: the record's ``updated_at``); a
customer whose key attribute was last confirmed more than ``months`` ago, or never, is listed
for the department that owns that source (one sheet per department).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from warehouse.registers import contact_text, region_text
from warehouse.security.excel import neutralize_formulas

KEY_ATTRIBUTES = {
    "contact_name": "联系人",
    "phone": "联系电话",
    "email": "电子邮箱",
    "address": "地址",
}
HEADERS = {
    "department": "所属部门",
    "customer_id": "客户编号",
    "customer_name": "客户名称",
    "contact_name": "联系人",
    "contact": "联系方式",
    "region": "地址(省市区)",
    "stale": "待核实项",
    "last_confirmed": "最近确认日期",
    "sources": "确认来源",
}
SKIPPED_LIFECYCLES = ("dormant", "deleted_at_source")


def reverification_list(
    customers: pd.DataFrame,
    lineage: pd.DataFrame,
    as_of: date,
    *,
    months: int = 12,
    departments: Mapping[str, str] | None = None,
    exclude: set[str] | None = None,
) -> pd.DataFrame:
    """Customers whose key contact data was not confirmed by any source within ``months``.

    Args:
        customers: ``golden.customers``.
        lineage: ``golden.attribute_lineage``.
        as_of: the reference date.
        months: the confirmation window (12: once a year).
        departments: source system → owning department (default: the source system).
        exclude: customers left out (the dormant archive); dormant and deleted-at-source
            customers are never listed.

    Returns:
        One row per customer (columns: keys of :data:`HEADERS`), by department and customer id;
        ``stale`` names the attributes to verify, ``last_confirmed`` their oldest date.
    """
    departments = departments or {}
    cutoff = pd.Timestamp(as_of) - pd.DateOffset(months=months)
    live = customers[
        ~customers["lifecycle"].astype("string").isin(SKIPPED_LIFECYCLES).fillna(False)
        & ~customers["customer_id"].isin(exclude or set())
    ]
    key = lineage[lineage["attribute"].isin(list(KEY_ATTRIBUTES))].copy()
    key["_d"] = pd.to_datetime(key["record_date"].astype("string"), errors="coerce")
    rows = []
    by_customer = {str(k): g for k, g in key.groupby("customer_id", sort=False)}
    for c in live.to_dict("records"):
        cid = str(c["customer_id"])
        seen = by_customer.get(cid)
        stale: list[tuple[str, pd.Timestamp | None, str]] = []
        for attribute, label in KEY_ATTRIBUTES.items():
            value = c.get(attribute)
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                continue  # nothing to verify for an attribute the customer does not have
            hit = None if seen is None else seen[seen["attribute"] == attribute]
            if hit is None or hit.empty or hit["_d"].isna().all():
                stale.append((label, None, ""))
                continue
            newest = hit.sort_values("_d").iloc[-1]
            if newest["_d"] < cutoff:
                stale.append((label, newest["_d"], str(newest["source_system"])))
        if not stale:
            continue
        dated = [s for s in stale if s[1] is not None]
        oldest = min(dated, key=lambda s: pd.Timestamp(s[1])) if dated else stale[0]
        sources = sorted({s[2] for s in stale if s[2]})
        owner = oldest[2] or (sources[0] if sources else "")
        rows.append(
            {
                "department": departments.get(owner, owner) or "(未知)",
                "customer_id": cid,
                "customer_name": c.get("customer_name"),
                "contact_name": c.get("contact_name"),
                "contact": contact_text(c.get("phone"), c.get("email")),
                "region": region_text(c.get("province"), c.get("city"), c.get("district")),
                "stale": "、".join(s[0] for s in stale),
                "last_confirmed": oldest[1].strftime("%Y-%m-%d") if oldest[1] is not None else "",
                "sources": ", ".join(departments.get(s, s) for s in sources),
            }
        )
    out = pd.DataFrame(rows, columns=list(HEADERS))
    return out.sort_values(["department", "customer_id"], kind="stable").reset_index(drop=True)


def write_reverification_xlsx(listing: pd.DataFrame, path: Path) -> Path:
    """One sheet per department (seed headers in Chinese), formulas neutralized."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    frame = neutralize_formulas(listing.rename(columns=HEADERS))
    with pd.ExcelWriter(
        temp,
        engine="xlsxwriter",
        engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False}},
    ) as xl:
        if frame.empty:
            frame.to_excel(xl, sheet_name="回访清单", index=False)
        for department, rows in frame.groupby(HEADERS["department"], sort=True):
            name = str(department)[:31].translate(str.maketrans("[]:*?/\\", "_______"))
            rows.to_excel(xl, sheet_name=name, index=False)
            xl.sheets[name].set_column(0, len(rows.columns) - 1, 18)
    temp.replace(path)
    return path

"""The seed's registers (seed 004 核心信息模板表格): 表1, 表2 and 表3 as XLSX.

表1 客户基础信息表, 表2 客户动态信息记录表, 表3 客户资料归档记录表.

Each builder takes golden frames and returns a frame with *canonical* column names (so the
role's masking of :mod:`warehouse.security.pii` applies unchanged); :func:`format_register`
renames them to the seed's exact Chinese headers and formats the values (YYYY-MM-DD, A类).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import pandas as pd

from warehouse.security.excel import neutralize_formulas
from warehouse.security.mart import build_analyst_mart

RegisterName = Literal["表1", "表2", "表3"]

#: 表1 客户基础信息表: canonical column → the seed's header.
REGISTER_1: dict[str, str] = {
    "customer_id": "客户编号",
    "customer_name": "客户名称",
    "customer_type": "客户类型",
    "contact_name": "联系人",
    "phone": "联系方式",
    "industry": "所属行业",
    "tier": "客户等级",
    "region": "地址(省市区)",
    "registered_date": "开户日期",
}
#: 表2 客户动态信息记录表 (the seed's header names the allowed interaction types).
REGISTER_2: dict[str, str] = {
    "customer_id": "客户编号",
    "record_date": "记录日期",
    "interaction_kind": "交互类型(拜访/沟通/需求变更)",
    "participants": "参与人员",
    "subject": "内容概述",
    "outcome": "结果跟进",
    "attachment": "附件名称",
}
#: 表3 客户资料归档记录表.
REGISTER_3: dict[str, str] = {
    "archive_no": "归档编号",
    "customer_id": "客户编号",
    "archived_on": "归档日期",
    "doc_type": "资料类型(合同/资质/记录)",
    "copies": "归档份数",
    "storage": "存储位置(电子/纸质)",
    "handled_by": "经办人",
    "reviewed_by": "审核人",
}
HEADERS: dict[RegisterName, dict[str, str]] = {
    "表1": REGISTER_1,
    "表2": REGISTER_2,
    "表3": REGISTER_3,
}
TITLES: dict[RegisterName, str] = {
    "表1": "客户基础信息表",
    "表2": "客户动态信息记录表",
    "表3": "客户资料归档记录表",
}
CUSTOMER_TYPES = {"enterprise": "企业", "individual": "个人"}
VISIT_WORDS = ("拜访", "上门", "现场", "走访", "面谈", "visit", "onsite", "on-site", "meeting")
"""Channel words that make an interaction a 拜访; every other channel is 沟通."""
ROLES_IN_CLEAR = frozenset({"admin", "steward"})
# derived register column → the golden column whose PII treatment it shares (pii.py)
_TREATED_AS = {
    "record_date": "interaction_date",
    "interaction_kind": "channel",
    "participants": "source_system",
    "attachment": "value",  # names carry the 客户编号: dropped for analysts
    "archive_no": "run_id",
    "archived_on": "valid_from",
    "doc_type": "txn_type",
    "copies": "record_count",
    "storage": "rule",
    "handled_by": "contact_name",
    "reviewed_by": "new_contact_name",
}
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    """A calendar month ``YYYY-MM`` (the registers' and the monthly package's period)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"2026-11"`` → ``Period(2026, 11)``.

        Raises:
            ValueError: not ``YYYY-MM``.
        """
        m = _PERIOD.match(text.strip())
        if not m:
            raise ValueError(f"period must be YYYY-MM (e.g. 2026-11), got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def start(self) -> date:
        """First day of the month."""
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """Last day of the month."""
        nxt = date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1)

    @property
    def quarter(self) -> int:
        """The quarter (1–4)."""
        return (self.month - 1) // 3 + 1

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class DateSpan:
    """Any span of days (a year for the yearly package); ``label`` names its files."""

    start: date
    end: date
    label: str

    @classmethod
    def year(cls, year: int) -> DateSpan:
        """The calendar year ``year`` (label ``2026``)."""
        return cls(date(year, 1, 1), date(year, 12, 31), str(year))

    def __str__(self) -> str:
        return self.label


Span = Period | DateSpan


def region_text(province: object, city: object, district: object) -> str | None:
    """地址(省市区): ``北京市`` + ``海淀区`` (a municipality's city is not repeated)."""
    parts: list[str] = []
    for part in (province, city, district):
        if isinstance(part, str) and part.strip() and part.strip() not in parts:
            parts.append(part.strip())
    return "".join(parts) or None


def contact_text(phone: object, email: object) -> str | None:
    """联系方式: a mainland number as dialled at home, other phones E.164, else the email.

    Mobiles keep their 11 digits (``+8613900000003`` → ``13900000003``); fixed lines get the
    trunk prefix back (``+862121058196`` → ``02121058196``).
    """
    if isinstance(phone, str) and phone.strip():
        text = phone.strip()
        if not text.startswith("+86"):
            return text
        national = text[3:]
        return national if national.startswith(("1", "400", "800")) else f"0{national}"
    if isinstance(email, str) and email.strip():
        return email.strip()
    return None


def interaction_kind(channel: object) -> str:
    """交互类型 of an interaction: 拜访 when the channel is a visit, else 沟通."""
    text = str(channel).lower() if isinstance(channel, str) else ""
    return "拜访" if any(word in text for word in VISIT_WORDS) else "沟通"


def _dates(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values.astype("string").str.slice(0, 10), errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").astype("string")


def customers_as_of(
    customers: pd.DataFrame, history: pd.DataFrame | None, day: date
) -> pd.DataFrame:
    """The customers as they stood at the end of ``day`` (``golden.customers_history``, SCD2).

    A version is valid on ``valid_from <= day < valid_to``; customers not yet created, or
    merged away / no longer in any source by then, are absent. Without a history (an old
    warehouse) the current ``customers`` are returned.
    """
    if history is None or history.empty:
        return customers
    start = pd.to_datetime(history["valid_from"].astype("string"), errors="coerce")
    end = pd.to_datetime(history["valid_to"].astype("string"), errors="coerce")
    cutoff = pd.Timestamp(day)
    valid = (start <= cutoff) & (end.isna() | (end > cutoff))
    return history[valid].drop_duplicates("customer_id", keep="last")


def register_1(customers: pd.DataFrame, exclude: set[str] | None = None) -> pd.DataFrame:
    """表1: one row per customer, canonical columns (联系方式 and 省市区 joined on formatting).

    Args:
        customers: ``golden.customers``, or :func:`customers_as_of` a period's end.
        exclude: customer ids left out (the dormant archive).

    Returns:
        The rows ordered by customer id (``phone``, ``email``, ``province``, ``city``,
        ``district`` in place of 联系方式 and 地址(省市区)).
    """
    c = customers
    if exclude:
        c = c[~c["customer_id"].isin(exclude)]
    c = c.sort_values("customer_id", kind="stable")
    out = pd.DataFrame(
        {
            "customer_id": c["customer_id"].astype("string"),
            "customer_name": c["customer_name"].astype("string"),
            "customer_type": c["customer_type"].astype("string"),
            "contact_name": c["contact_name"].astype("string"),
            "phone": c["phone"].astype("string"),
            "email": c["email"].astype("string"),
            "industry": c["industry"].astype("string"),
            "tier": c["tier"].astype("string"),
            "province": c["province"].astype("string"),
            "city": c["city"].astype("string"),
            "district": c["district"].astype("string"),
            "registered_date": _dates(c["registered_date"]),
        }
    )
    return out.reset_index(drop=True)


def register_2(
    interactions: pd.DataFrame | None,
    history: pd.DataFrame | None,
    period: Span,
    departments: Mapping[str, str] | None = None,
    exclude: set[str] | None = None,
) -> pd.DataFrame:
    """表2: one row per interaction in the period, and one 需求变更 row per recorded change.

    Interactions (tickets, visits) become 拜访/沟通 with their subject and outcome; every
    ``updated`` version of ``golden.customers_history`` opened in the period becomes a
    需求变更 row whose 内容概述 is the change reason (变更日期及原因). 参与人员 is the
    department that reported it (``departments``: source system → department).

    Args:
        interactions: ``golden.interactions``.
        history: ``golden.customers_history``.
        period: the month (or any :class:`DateSpan`).
        departments: source system → owning department (default: the source system).
        exclude: customer ids left out (the dormant archive).

    Returns:
        Rows ordered by customer id and date; columns are the keys of :data:`REGISTER_2`.
    """
    departments = departments or {}
    frames = []
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    if interactions is not None and len(interactions):
        i = interactions.copy()
        i["_d"] = pd.to_datetime(i["interaction_date"].astype("string"), errors="coerce")
        i = i[(i["_d"] >= start) & (i["_d"] <= end)]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": i["customer_id"].astype("string"),
                    "record_date": i["_d"],
                    "interaction_kind": [interaction_kind(v) for v in i["channel"]],
                    "participants": [departments.get(str(s), str(s)) for s in i["source_system"]],
                    "subject": i["subject"].astype("string"),
                    "outcome": i["outcome"].astype("string"),
                    "attachment": pd.Series(pd.NA, index=i.index, dtype="string"),
                    "_order": i["interaction_id"].astype("string"),
                }
            )
        )
    if history is not None and len(history):
        h = history[history["change_type"].astype("string") == "updated"].copy()
        h["_d"] = pd.to_datetime(h["valid_from"].astype("string"), errors="coerce")
        h = h[(h["_d"] >= start) & (h["_d"] <= end)]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": h["customer_id"].astype("string"),
                    "record_date": h["_d"],
                    "interaction_kind": "需求变更",
                    "participants": "数据管理",
                    "subject": h["change_reason"].astype("string"),
                    "outcome": "已更新: " + h["changed_attributes"].astype("string").fillna(""),
                    "attachment": pd.Series(pd.NA, index=h.index, dtype="string"),
                    "_order": "~",
                }
            )
        )
    columns = list(REGISTER_2)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    out = pd.concat(frames, ignore_index=True)
    if exclude:
        out = out[~out["customer_id"].isin(exclude)]
    out = out.sort_values(["customer_id", "record_date", "_order"], kind="stable")
    out["record_date"] = out["record_date"].dt.strftime("%Y-%m-%d").astype("string")
    for c in columns:
        out[c] = out[c].astype("string")
    return out[columns].reset_index(drop=True)


def register_3(documents: pd.DataFrame | None, period: Span | None = None) -> pd.DataFrame:
    """表3: one row per archived document (``filing.documents``), in the period when given."""
    columns = list(REGISTER_3)
    if documents is None or documents.empty:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    d = documents.copy()
    d["_d"] = pd.to_datetime(d["archived_on"].astype("string"), errors="coerce")
    if period is not None:
        d = d[(d["_d"] >= pd.Timestamp(period.start)) & (d["_d"] <= pd.Timestamp(period.end))]
    d = d.sort_values("archive_no", kind="stable")
    out = d[columns].copy()
    out["archived_on"] = d["_d"].dt.strftime("%Y-%m-%d")
    out["copies"] = d["copies"].astype("Int64")
    for c in columns:
        if c != "copies":
            out[c] = out[c].astype("string")
    return out.reset_index(drop=True)


def mask_for_role(frame: pd.DataFrame, role: str, secret: bytes | None = None) -> pd.DataFrame:
    """Apply the role's masking: admin/steward see the register in clear; analysts masked.

    Analysts get exactly the analyst mart's treatment (``warehouse.security.pii``): phones
    ``139****5678``, individuals' names ``张*``, ``customer_id`` pseudonymized, free text
    (``subject``) dropped — dropped columns stay as empty cells so the headers are the seed's.

    Args:
        frame: a register with canonical columns.
        role: ``admin``, ``steward`` or ``analyst``.
        secret: the pseudonym key (required for ``analyst``).

    Raises:
        PermissionError: the ``ops`` role (no customer data) or an unknown role.
        ValueError: ``analyst`` without a pseudonym key.
    """
    if role in ROLES_IN_CLEAR:
        return frame
    if role != "analyst":
        raise PermissionError(f"role {role!r} may not export customer registers")
    if not secret:
        raise ValueError("analyst registers need the pseudonym key (pseudonym_secret)")
    # the registers' derived columns take the treatment of the golden column they come from
    renamed = frame.rename(columns=_TREATED_AS).reset_index(drop=True)
    masked = build_analyst_mart({"registers.frame": renamed}, secret)["mart.frame"]
    back = {v: k for k, v in _TREATED_AS.items()}
    masked = masked.rename(columns=back)
    out = pd.DataFrame(index=renamed.index)
    for column in frame.columns:
        out[column] = masked[column] if column in masked else pd.Series(pd.NA, dtype="string")
    return out


def format_register(frame: pd.DataFrame, name: RegisterName) -> pd.DataFrame:
    """Rename a canonical register to the seed's headers and format its codes (企业, A类)."""
    out = frame.copy()
    if "phone" in out:
        out["phone"] = pd.Series(
            [contact_text(p, e) for p, e in zip(out["phone"], out["email"], strict=True)],
            index=out.index,
            dtype="string",
        )
    if "province" in out:
        out["region"] = pd.Series(
            [
                region_text(*t)
                for t in zip(out["province"], out["city"], out["district"], strict=True)
            ],
            index=out.index,
            dtype="string",
        )
    if "customer_type" in out:
        out["customer_type"] = out["customer_type"].map(
            lambda v: CUSTOMER_TYPES.get(v, v) if isinstance(v, str) else v
        )
    if "tier" in out:
        out["tier"] = out["tier"].map(lambda v: f"{v}类" if isinstance(v, str) and v else v)
    return out.rename(columns=HEADERS[name])[list(HEADERS[name].values())]


def register_file_name(name: RegisterName, period: Span) -> str:
    """``表1_客户基础信息表_2026-11.xlsx``."""
    return f"{name}_{TITLES[name]}_{period}.xlsx"


def write_register_xlsx(frame: pd.DataFrame, name: RegisterName, path: Path) -> Path:
    """Write one register (seed headers) as XLSX, formulas neutralized, via a temp file.

    Args:
        frame: the formatted register (:func:`format_register`).
        name: 表1, 表2 or 表3 (the sheet name carries the title).
        path: the target ``.xlsx``.

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    sheet = neutralize_formulas(frame)
    with pd.ExcelWriter(
        temp,
        engine="xlsxwriter",
        engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False}},
    ) as xl:
        sheet.to_excel(xl, sheet_name=f"{name}{TITLES[name]}", index=False)
        ws = xl.sheets[f"{name}{TITLES[name]}"]
        for i, column in enumerate(sheet.columns):
            width = max([len(str(column)) * 2, *(len(str(v)) for v in sheet[column].dropna())])
            ws.set_column(i, i, min(60, max(10, width + 2)))
    temp.replace(path)
    return path

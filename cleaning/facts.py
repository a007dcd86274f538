"""Transactions, interactions and the follow_up list derived from cleaned rows."""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from cleaning._distinct import column, map_distinct
from cleaning.amount import parse_amount
from cleaning.issues import IssueCollector
from cleaning.text import normalize_text, normalize_text_series

TXN_FIELDS = ("txn_id", "txn_date", "txn_amount", "txn_type")
INTERACTION_FIELDS = ("interaction_id", "interaction_date", "interaction_channel",
                      "interaction_subject", "interaction_outcome", "satisfaction")  # fmt: skip
_RATING_WORDS = {"非常满意": 5.0, "很满意": 5.0, "满意": 4.0, "比较满意": 4.0, "一般": 3.0,
                 "不满意": 2.0, "很不满意": 1.0, "非常不满意": 1.0}  # fmt: skip
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:分|星|stars?|/\s*\d+)?$", re.IGNORECASE)


@lru_cache(maxsize=10_000)
def parse_satisfaction(text: str | None) -> float | None:
    """Parse a satisfaction score: numbers (4, 4.5, 5分, 4/5) or rating words (满意 = 4).

    Args:
        text: Raw satisfaction text.

    Returns:
        The score as written on its scale, or None when absent or not understood.
    """
    s = normalize_text(text)
    if s is None:
        return None
    if s in _RATING_WORDS:
        return _RATING_WORDS[s]
    m = _NUMBER.match(s)
    return float(m.group(1)) if m else None


def _any_present(raw: pd.DataFrame, fields: tuple[str, ...]) -> pd.Series:
    """Rows where any of ``fields`` holds a non-blank value."""
    present = [raw[f].notna() & (raw[f].str.strip() != "") for f in fields]
    return pd.concat(present, axis=1).any(axis=1)


def transactions(raw: pd.DataFrame, dates: pd.Series, issues: IssueCollector) -> pd.DataFrame:
    """One transaction per row carrying any txn_* value (clean.transactions).

    Args:
        raw: Raw rows with all canonical columns.
        dates: Parsed ISO txn_date aligned with ``raw``.
        issues: Collector for amount problems.

    Returns:
        ``record_key, source_system, txn_id, txn_date, txn_amount, txn_type``.
    """
    res, cod = map_distinct(raw["txn_amount"], parse_amount)
    amount = column([r[0] for r in res], cod, raw.index, "Float64")
    problem = column([r[1] for r in res], cod, raw.index)
    for code in problem.dropna().unique():
        issues.add(problem == code, "txn_amount", str(code), raw["txn_amount"])
    mask = _any_present(raw, TXN_FIELDS)
    frame = pd.DataFrame({
        "record_key": raw["record_key"], "source_system": raw["source_system"],
        "txn_id": normalize_text_series(raw["txn_id"]), "txn_date": dates,
        "txn_amount": amount.astype("float64"), "txn_type": normalize_text_series(raw["txn_type"]),
    })  # fmt: skip
    return frame[mask].reset_index(drop=True)


def interactions(raw: pd.DataFrame, dates: pd.Series, issues: IssueCollector) -> pd.DataFrame:
    """One interaction per row carrying any interaction_* value (clean.interactions).

    Args:
        raw: Raw rows with all canonical columns.
        dates: Parsed ISO interaction_date aligned with ``raw``.
        issues: Collector for satisfaction problems.

    Returns:
        ``record_key, source_system, interaction_id, interaction_date, channel, subject,
        outcome, satisfaction``.
    """
    res, cod = map_distinct(raw["satisfaction"], parse_satisfaction)
    score = column(res, cod, raw.index, "Float64")
    issues.add(raw["satisfaction"].notna() & score.isna(), "satisfaction",
               "satisfaction_unparsed", raw["satisfaction"])  # fmt: skip
    mask = _any_present(raw, INTERACTION_FIELDS)
    frame = pd.DataFrame({
        "record_key": raw["record_key"], "source_system": raw["source_system"],
        "interaction_id": normalize_text_series(raw["interaction_id"]),
        "interaction_date": dates,
        "channel": normalize_text_series(raw["interaction_channel"]),
        "subject": normalize_text_series(raw["interaction_subject"]),
        "outcome": normalize_text_series(raw["interaction_outcome"]),
        "satisfaction": score.astype("float64"),
    })  # fmt: skip
    return frame[mask].reset_index(drop=True)


def follow_up(
    records: pd.DataFrame, raw: pd.DataFrame, departments: dict[str, str]
) -> pd.DataFrame:
    """Records missing a required field (客户名称, or every contact way), one row per gap.

    Args:
        records: Cleaned records.
        raw: Raw rows aligned with ``records``.
        departments: source_system → owner department.

    Returns:
        ``record_key, source_system, department, missing, detail``.
    """
    no_name = records["customer_name"].isna()
    no_contact = records["phone"].isna() & records["email"].isna()
    detail = "phone=" + raw["phone"].fillna("-") + "; email=" + raw["email"].fillna("-")
    keys = records[["record_key", "source_system"]]
    parts = [
        keys[no_name].assign(missing="customer_name", detail="customer name is empty"),
        keys[no_contact].assign(missing="contact", detail=detail[no_contact]),
    ]
    frame = pd.concat(parts, ignore_index=True)
    dept = frame["source_system"].astype("string")
    frame["department"] = dept.map(departments).astype("string").fillna(dept)
    cols = ["record_key", "source_system", "department", "missing", "detail"]
    return (
        frame[cols].astype("string").sort_values(["record_key", "missing"]).reset_index(drop=True)
    )

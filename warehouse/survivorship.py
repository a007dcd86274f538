"""Survivorship: choose each golden attribute among a customer's source records, with lineage.

Every rule is applied to all customers at once on numpy arrays: candidate rows are ordered with
one ``numpy.lexsort`` over integer keys and the first row per customer wins; text is only
factorized (once per distinct value), so the cost is a few sorts per attribute whatever the
number of customers (no Python loop per customer or per row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

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
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default ``str`` dtype
_LAST_TEXT = "\uffff"  # sorts after every value: a missing value never wins "earliest"


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


def _date_key(dates: pd.Series) -> np.ndarray:
    """Day numbers with missing dates as the smallest value (so they lose "most recent")."""
    days = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return np.where(dates.isna().to_numpy(), _NO_DATE, days)


@dataclass
class _Work:
    """Per-record integer keys shared by every rule (computed once)."""

    columns: dict[str, pd.Series]
    present: dict[str, np.ndarray]
    cust: np.ndarray  # customer code, in customer_id order
    record_order: np.ndarray  # record_key rank
    date_key: np.ndarray
    completeness: np.ndarray
    source_codes: np.ndarray
    sources: np.ndarray  # distinct source systems (by code)
    codes: dict[str, tuple[np.ndarray, pd.Index]] = field(default_factory=dict)


def _rank(work: _Work, order: list[str]) -> np.ndarray:
    """Position of each record's source system in ``order`` (unlisted or null: last)."""
    position = {s: i for i, s in enumerate(order)}
    by_code = np.array([position.get(s, len(order)) for s in work.sources], dtype=np.int64)
    if not len(by_code):
        return np.full(len(work.source_codes), len(order), dtype=np.int64)
    codes = work.source_codes
    return np.where(codes >= 0, by_code[np.maximum(codes, 0)], len(order))


def _value_codes(work: _Work, attribute: str) -> tuple[np.ndarray, pd.Index]:
    """Factorized values, -1 where the value is not usable (computed once per attribute)."""
    if attribute not in work.codes:
        codes, uniques = pd.factorize(work.columns[attribute])
        work.codes[attribute] = (np.where(work.present[attribute], codes, -1), pd.Index(uniques))
    return work.codes[attribute]


def _strategy_keys(work: _Work, rule: SurvivorshipRule, idx: np.ndarray, order: list[str]) -> list:
    rank = _rank(work, rule.source_priority or order)[idx]
    recent = -work.date_key[idx]
    if rule.strategy == "source_priority":
        return [rank, recent]
    if rule.strategy == "most_recent":
        return [recent, rank]
    if rule.strategy == "most_frequent":
        codes, uniques = _value_codes(work, rule.attribute)
        key = work.cust[idx].astype(np.int64) * (len(uniques) + 1) + (codes[idx] + 1)
        groups = pd.factorize(key)[0]  # hash, no sort: (customer, value) group per row
        return [-np.bincount(groups)[groups].astype(np.int64), recent, rank]
    if rule.strategy == "most_complete":
        return [-work.completeness[idx], recent, rank]
    codes, uniques = _value_codes(work, rule.attribute)
    text = pd.Series(uniques, dtype=object).astype("string")
    if rule.strategy == "longest":
        lengths = np.append(text.str.len().fillna(0).to_numpy(dtype=np.int64), 0)
        return [-lengths[codes[idx]], rank, recent]  # code -1: the appended 0
    if rule.strategy == "earliest":
        ranks = pd.factorize(pd.concat([text, pd.Series([_LAST_TEXT], dtype="string")]), sort=True)
        return [ranks[0].astype(np.int64)[codes[idx]], rank, recent]  # -1: _LAST_TEXT
    raise ValueError(f"unknown survivorship strategy {rule.strategy!r}")  # pragma: no cover


@dataclass
class _Winners:
    """One rule's result: the winning record per customer and the attributes it supplies."""

    values: dict[str, pd.Series]  # attribute -> value per customer code (NaN: none)
    lineage: list[tuple[str, str, np.ndarray, pd.Series, np.ndarray]]
    # (attribute, rule text, winning record positions, values, candidates)


def _candidates(work: _Work, attribute: str, customers: int) -> np.ndarray:
    """Distinct usable values of ``attribute`` per customer code (1 when it has none)."""
    codes, uniques = _value_codes(work, attribute)
    usable = codes >= 0
    width = np.int64(len(uniques) + 1)
    pairs = pd.unique(work.cust[usable].astype(np.int64) * width + codes[usable])
    distinct = np.bincount(pairs // width, minlength=customers)
    return np.where(distinct == 0, 1, distinct).astype(np.int64)


def _apply_rule(work: _Work, rule: SurvivorshipRule, order: list[str], customers: int) -> _Winners:
    cols = [rule.attribute, *rule.companions]
    primary = work.present[rule.attribute]
    idx = np.flatnonzero(np.logical_or.reduce([work.present[c] for c in cols]))
    keys = [
        work.cust[idx],
        -primary[idx].astype(np.int64),
        *_strategy_keys(work, rule, idx, order),
        work.record_order[idx],
    ]
    ordered = idx[np.lexsort(keys[::-1])]
    cust = work.cust[ordered]
    first = np.r_[True, cust[1:] != cust[:-1]] if len(cust) else np.zeros(0, dtype=bool)
    win = ordered[first]
    win_cust = work.cust[win]
    candidates = _candidates(work, rule.attribute, customers)
    out = _Winners(values={}, lineage=[])
    for c in cols:
        chosen = work.columns[c].iloc[win].where(work.present[c][win])
        out.values[c] = pd.Series(chosen.to_numpy(), index=win_cust, dtype=chosen.dtype).reindex(
            np.arange(customers)
        )
        kept = chosen.notna().to_numpy()
        text = rule.strategy if c == rule.attribute else f"{rule.strategy} (with {rule.attribute})"
        out.lineage.append(
            (c, text, win[kept], chosen[kept].astype("string"), candidates[win_cust[kept]])
        )
    return out


def _work(records: pd.DataFrame, dates: pd.Series) -> _Work:
    columns = {
        c: records[c].reset_index(drop=True)
        if c in records.columns
        else pd.Series(pd.NA, index=range(len(records)), dtype="string")
        for c in SURVIVING_ATTRIBUTES
    }
    present = {c: _present(s) for c, s in columns.items()}
    source_codes, sources = pd.factorize(records["source_system"])
    return _Work(
        columns=columns,
        present=present,
        cust=pd.factorize(records["customer_id"], sort=True)[0],
        record_order=pd.factorize(records["record_key"], sort=True)[0],
        date_key=_date_key(dates),
        completeness=np.sum(list(present.values()), axis=0).astype(np.int64),
        source_codes=source_codes,
        sources=np.asarray(sources, dtype=object),
    )


def survive(
    records: pd.DataFrame, settings: GoldenSettings, dates: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Choose every golden attribute per customer by its configured rule.

    Args:
        records: clean records with a ``customer_id`` column (one row per source record).
        settings: survivorship rules; attributes without a rule use ``most_recent``.
        dates: ``record_dates(records)`` when the caller has it already (computed when None).

    Returns:
        ``(values, lineage)``: one row per customer with the surviving attributes, and one
        lineage row per non-null golden attribute (source system, record, record date, rule,
        number of distinct candidate values).
    """
    dates = (record_dates(records) if dates is None else dates).reset_index(drop=True)
    work = _work(records, dates)
    ids = pd.Series(pd.unique(records["customer_id"])).sort_values(ignore_index=True)
    customers = pd.DataFrame({"customer_id": ids})
    parts = []
    for rule in settings.all_rules():
        result = _apply_rule(work, rule, settings.default_source_priority, len(ids))
        for c, values in result.values.items():
            customers[c] = values.reset_index(drop=True)
        parts.extend(result.lineage)
    return customers, _lineage(records, dates, work, parts)


def _lineage(
    records: pd.DataFrame,
    dates: pd.Series,
    work: _Work,
    parts: list[tuple[str, str, np.ndarray, pd.Series, np.ndarray]],
) -> pd.DataFrame:
    """All rules' lineage rows ordered by customer and attribute name."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in LINEAGE_COLUMNS})
    names = sorted({p[0] for p in parts})
    attr_rank = {n: i for i, n in enumerate(names)}
    pos = np.concatenate([p[2] for p in parts])
    attr = np.concatenate([np.full(len(p[2]), attr_rank[p[0]], dtype=np.int64) for p in parts])
    order = np.lexsort((attr, work.cust[pos]))
    pos = pos[order]
    rule_of = {p[0]: p[1] for p in parts}
    attr = attr[order]
    values = pd.concat([p[3] for p in parts], ignore_index=True)

    def take(column: pd.Series) -> pd.Series:
        return column.iloc[pos].reset_index(drop=True)

    def label(texts: list[str]) -> pd.Series:
        """One text per attribute code, decoded in Arrow (no Python string per row)."""
        coded = pa.DictionaryArray.from_arrays(pa.array(attr), pa.array(texts, pa.string()))
        return coded.dictionary_decode().to_pandas(types_mapper=lambda _: _TEXT)

    return pd.DataFrame(
        {
            "customer_id": take(records["customer_id"]),
            "attribute": label(names),
            "value": values.iloc[order].reset_index(drop=True),
            "source_system": take(records["source_system"]),
            "source_record_id": take(records["source_record_id"]),
            "record_key": take(records["record_key"]),
            "record_date": take(dates),
            "rule": label([rule_of[n] for n in names]),
            "candidates": np.concatenate([p[4] for p in parts])[order],
        }
    )

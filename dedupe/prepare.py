"""Normalize `clean.records` into the typed frame the matcher works on (derived keys included)."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd

from dedupe.settings import MatchSettings
from dedupe.specs import flag_fields, parse_key

PINYIN_COLUMNS: dict[str, str] = {"name_key": "name_pinyin", "contact_name": "contact_pinyin"}

TEXT_FIELDS: tuple[str, ...] = (
    "name_key",
    "customer_name",
    "customer_type",
    "branch",
    "name_region",
    "contact_name",
    "phone",
    "email",
    "email_domain",
    "province",
    "city",
    "district",
    "address",
    "credit_code",
    "industry_code",
    "registered_date",
    "given_name",
    "family_name",
    "birth_date",
    "gender",
    "id_number",
    "id_kind",
    "phone_masked",
)
BOOL_FIELDS: tuple[str, ...] = (
    "phone_shared", "email_is_free", "credit_code_valid", "id_number_valid"
)  # fmt: skip
DERIVED_FIELDS: tuple[str, ...] = (
    "name_pinyin",
    "contact_pinyin",
    "name_key_masked",
    "contact_name_masked",
)
"""Columns `prepare_records` derives; blocking key expressions add one column per rule."""


# Values that mean "unknown" in real exports; they must never count as an agreement.
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "null", "none", "nil", "nan", "n/a", "na", "#n/a", "unknown", "test",
        "-", "--", "---", "—", "/", "\\", "?", "？", ".", "0", "x", "xx", "xxx",
        "无", "空", "暂无", "不详", "未知", "没有", "待定", "待补充", "测试",
    }
)
# Names that say what kind of customer it is rather than who (个人 = "an individual").
NAME_PLACEHOLDERS: frozenset[str] = frozenset(
    {"个人", "个人客户", "客户", "散客", "先生", "女士", "小姐", "公司", "企业", "匿名"}
)


class RecordsError(ValueError):
    """The records handed to the matcher are unusable (missing or duplicate `record_key`)."""


@lru_cache(maxsize=65536)
def _char_pinyin(char: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(char)) if "\u3400" <= char <= "\u9fff" else char.lower()


def pinyin(text: str) -> str:
    """Toneless pinyin of the CJK characters of `text`, other characters lower-cased."""
    return "".join(_char_pinyin(c) for c in text if not c.isspace())


def _map_distinct(values: pd.Series, func: object) -> pd.Series:
    """Apply `func` once per distinct non-null value and broadcast the results back."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques], dtype=object)  # type: ignore[operator]
    out = np.full(len(values), None, dtype=object)
    ok = codes >= 0
    out[ok] = mapped[codes[ok]]
    return pd.Series(out, index=values.index, dtype=object)


def _clean_text(value: object, names: bool) -> str | None:
    text = str(value).strip()
    if not text or text.lower() in PLACEHOLDERS or (names and text in NAME_PLACEHOLDERS):
        return None
    return text


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    names = column in ("name_key", "customer_name", "contact_name")
    return _map_distinct(frame[column], lambda v: _clean_text(v, names))


def _bool(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    raw = frame[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    text = raw.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "yes", "y", "t"]).fillna(False).to_numpy(dtype=bool)


def prepare_records(records: pd.DataFrame, settings: MatchSettings | None = None) -> pd.DataFrame:
    """Return the matcher's view of `records`: sorted by `record_key`, nulls as None, keys derived.

    Masked names (张*) move to `name_key_masked` / `contact_name_masked`: comparable with full
    names, never an exact agreement. Fields the settings' comparisons and blocking rules read
    that are not clean columns come from the `attributes` JSON (declared in sources.yml),
    case-folded; each blocking rule with a key expression gets its key column.

    Args:
        records: `clean.records` rows (any of the compared fields may be absent or null).
        settings: the matching settings whose fields and keys are needed; None = defaults.

    Returns:
        A frame with `record_key`, every text field (object dtype, None for null), the boolean
        flags and the derived blocking keys, sorted by `record_key` with a fresh RangeIndex.

    Raises:
        RecordsError: when `record_key` is missing, null or duplicated.
    """
    if "record_key" not in records.columns:
        raise RecordsError("records need a 'record_key' column")
    keys = records["record_key"].astype("string")
    if keys.isna().any():
        raise RecordsError(f"{int(keys.isna().sum())} record(s) have a null record_key")
    dup = keys[keys.duplicated()]
    if len(dup):
        raise RecordsError(f"duplicate record_key values, e.g. {list(dup.unique()[:5])}")
    out = pd.DataFrame({"record_key": keys.astype(object).to_numpy()}, index=records.index)
    for column in TEXT_FIELDS:
        out[column] = _text(records, column)
    for column in BOOL_FIELDS:
        out[column] = _bool(records, column)
    out["customer_type"] = _map_distinct(out["customer_type"], str.lower)
    out["email"] = _map_distinct(out["email"], str.lower)
    domain = out["email"].map(lambda e: e.rpartition("@")[2] if e else None)
    out["email_domain"] = out["email_domain"].where(out["email_domain"].notna(), domain)
    out["credit_code"] = _map_distinct(out["credit_code"], str.upper)
    # Masked names (张*) are partial evidence: kept apart from the exact-comparable columns.
    _move_masked(out, "contact_name")
    masked_name = _has_mask(out["customer_name"])
    out["name_key_masked"] = out["customer_name"].where(masked_name, None)
    if masked_name.any():
        out["name_key"] = out["name_key"].where(~masked_name, None)
    # An individual recorded under a placeholder name (个人) is known by the contact's name.
    person = (out["customer_type"] == "individual") & out["name_key"].isna() & ~masked_name
    person &= out["contact_name"].map(lambda c: c is not None and len(c) >= 2).astype(bool)
    out.loc[person, "name_key"] = out.loc[person, "contact_name"]
    # A contact who is the customer (individuals) adds no evidence beyond the name: comparing
    # both would count one agreement twice.
    out["contact_name"] = out["contact_name"].where(out["contact_name"] != out["name_key"], None)
    out["name_pinyin"] = _map_distinct(out["name_key"], pinyin)
    out["contact_pinyin"] = _map_distinct(out["contact_name"], pinyin)
    for column in ("given_name", "family_name", "gender", "id_kind"):
        out[column] = _map_distinct(out[column], str.lower)
    settings = settings or MatchSettings()
    _add_requested_fields(out, records, settings)
    for rule in settings.blocking_specs():
        column = rule.key_column()
        if column not in out:
            out[column] = _key_values(out, rule.keys)
    out = out.sort_values("record_key", kind="stable").reset_index(drop=True)
    return out


def _has_mask(values: pd.Series) -> pd.Series:
    return values.astype("string").str.contains("*", regex=False).fillna(False).astype(bool)


def _move_masked(out: pd.DataFrame, column: str) -> None:
    """Values hiding characters (张*) leave `column` for `<column>_masked`."""
    masked = _has_mask(out[column])
    out[f"{column}_masked"] = out[column].where(masked, None)
    if masked.any():
        out[column] = out[column].where(~masked, None)


def _add_requested_fields(
    out: pd.DataFrame, records: pd.DataFrame, settings: MatchSettings
) -> None:
    """Columns the declared comparisons / keys read that are not prepared yet."""
    wanted: set[str] = set()
    flags: set[str] = set()
    for spec in settings.comparison_specs():
        wanted |= spec.referenced_fields()
        flags |= flag_fields(spec.levels)
    for rule in settings.blocking_specs():
        for key in rule.keys:
            wanted.update(parse_key(key)[1])
    missing = sorted(f for f in wanted if f not in out.columns)
    if not missing:
        return
    attributes = None
    if "attributes" in records.columns:
        attributes = _map_distinct(records["attributes"], _parse_attributes)
    for field in missing:
        if field in flags:
            out[field] = _bool(records, field)
        elif field in records.columns:
            out[field] = _text(records, field)
        elif attributes is not None:
            values = [a.get(field) if a else None for a in attributes.tolist()]
            out[field] = pd.Series(values, index=out.index, dtype=object)
        else:
            out[field] = pd.Series([None] * len(out), index=out.index, dtype=object)


def _parse_attributes(text: object) -> dict[str, str]:
    try:
        data = json.loads(str(text))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    parsed = {str(k): _clean_text(v, False) for k, v in data.items() if v is not None}
    return {k: v.casefold() for k, v in parsed.items() if v is not None}


def _key_part(out: pd.DataFrame, expression: str) -> pd.Series:
    func, fields, n = parse_key(expression)
    if func is None:
        return out[fields[0]]
    if func == "pinyin":
        column = PINYIN_COLUMNS.get(fields[0])
        return out[column] if column else _map_distinct(out[fields[0]], pinyin)
    if func == "first":
        return _map_distinct(out[fields[0]], lambda s: s[:n])
    if func == "last":
        return _map_distinct(out[fields[0]], lambda s: s[-n:] if n else "")
    if func == "year":
        return _map_distinct(out[fields[0]], lambda s: s[:4])
    # sorted: the values in sorted order (given and family names swapped block together)
    parts = [out[f] for f in fields]
    both = np.logical_and.reduce([p.notna().to_numpy() for p in parts])
    rows = zip(*(p.tolist() for p in parts), strict=True)
    joined = ["|".join(sorted(r)) if ok else None for r, ok in zip(rows, both, strict=True)]
    return pd.Series(joined, index=out.index, dtype=object)


def _key_values(out: pd.DataFrame, keys: list[str]) -> pd.Series:
    """One blocking key per record: the key parts joined with '|', None when a part is."""
    result = _key_part(out, keys[0])
    for key in keys[1:]:
        result = _join(result, _key_part(out, key))
    return result.astype(object).where(result.notna(), None)


def _join(left: pd.Series, right: pd.Series) -> pd.Series:
    both = left.notna() & right.notna()
    joined = left.astype("string") + "|" + right.astype("string")
    return joined.astype(object).where(both, None)

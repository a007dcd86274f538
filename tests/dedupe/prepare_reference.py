"""`dedupe.prepare` as it was before its per-row Python moved to distinct values (`b4e0c62`).

Frozen as the oracle of `test_prepare_reference.py`: `prepare_records` must return the very
same frame (columns, dtypes, None/NaN, values). When its output is *meant* to change, change
this copy the same way (or retire the test) in the same commit. Not in `PREPARED_CODE`.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    "division_code",
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
DERIVED_FLAGS: tuple[str, ...] = (
    "branch_soft",
    "is_org",
    "is_person",
    "phone_mobile",
    "name_in_places",
    "email_shared",
    "name_one_holder",
)
DERIVED_FIELDS: tuple[str, ...] = (
    "name_pinyin",
    "contact_pinyin",
    "place_city",
    "place_province",
    "name_brand",
    "brand_province",
    "branch_key",
    "record_kind",
    "name_reversed",
    "brand_pinyin",
    "person_name",
    "phone_kind",
    "phone_reversed",
    "name_key_masked",
    "contact_name_masked",
)
"""Columns `prepare_records` derives; blocking key expressions add one column per rule."""


# Values that mean "unknown" in real exports; they must never count as an agreement.
PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "null",
        "none",
        "nil",
        "nan",
        "n/a",
        "na",
        "#n/a",
        "unknown",
        "test",
        "-",
        "--",
        "---",
        "—",
        "/",
        "\\",
        "?",
        "？",
        ".",
        "0",
        "x",
        "xx",
        "xxx",
        "无",
        "空",
        "暂无",
        "不详",
        "未知",
        "没有",
        "待定",
        "待补充",
        "测试",
    }
)
# Names that say what kind of customer it is rather than who (个人 = "an individual").
NAME_PLACEHOLDERS: frozenset[str] = frozenset(
    {"个人", "个人客户", "客户", "散客", "先生", "女士", "小姐", "公司", "企业", "匿名"}
)


_PLACEHOLDER_SET = pa.array(sorted(PLACEHOLDERS))
_NAME_PLACEHOLDER_SET = pa.array(sorted(NAME_PLACEHOLDERS))


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
    # a plain list: iterating an Arrow-backed array value by value costs more than `func`
    distinct = np.asarray(uniques, dtype=object).tolist()
    mapped = np.array([func(u) for u in distinct], dtype=object)  # type: ignore[operator]
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
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    # `_clean_text` over the distinct values, vectorized (Arrow string kernels)
    try:
        text = pc.utf8_trim_whitespace(pa.array(np.asarray(uniques, dtype=object).astype(str)))
    except UnicodeError:  # a lone surrogate (broken export) has no UTF-8: value by value
        return _map_distinct(frame[column], lambda v: _clean_text(v, names))
    unknown = pc.or_(pc.equal(text, ""), pc.is_in(pc.utf8_lower(text), _PLACEHOLDER_SET))
    if names:
        unknown = pc.or_(unknown, pc.is_in(text, _NAME_PLACEHOLDER_SET))
    cleaned = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    cleaned[np.asarray(unknown.to_numpy(zero_copy_only=False), dtype=bool)] = None
    out = np.full(len(codes), None, dtype=object)
    ok = codes >= 0
    out[ok] = cleaned[codes[ok]]
    return pd.Series(out, index=frame.index, dtype=object)


def _bool(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    raw = frame[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    text = raw.astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "yes", "y", "t"]).fillna(False).to_numpy(dtype=bool)


def record_columns(settings: MatchSettings | None = None) -> frozenset[str]:
    """The `clean.records` columns `prepare_records` reads under `settings` (a superset).

    A full match reads only these from the warehouse: the lineage, raw values and issues of
    the clean layer (half its columns) never reach the matcher, so they need not be loaded.

    Args:
        settings: the matching settings; None = defaults.

    Returns:
        `record_key`, the text and boolean fields, every field the declared comparisons and
        blocking rules reference, and `attributes` when one of those is not a clean column.
    """
    settings = settings or MatchSettings()
    wanted: set[str] = set()
    for spec in settings.comparison_specs():
        wanted |= spec.referenced_fields() | flag_fields(spec.levels)
        if spec.tf_without:
            wanted.add(spec.tf_without)
    for rule in settings.blocking_specs():
        wanted |= rule.referenced_fields()
    known = {"record_key", *TEXT_FIELDS, *BOOL_FIELDS}
    # a field neither clean nor derived may come from the `attributes` JSON
    extra = {"attributes"} if wanted - known - set(DERIVED_FIELDS) - set(DERIVED_FLAGS) else set()
    return frozenset(known | wanted | extra)


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
    # the person a record names: an individual's own name, else the contact person
    individual = out["customer_type"].eq("individual").fillna(False).to_numpy(dtype=bool)
    out["person_name"] = out["contact_name"].where(
        ~individual | out["name_key"].isna(), out["name_key"]
    )
    # A contact who is the customer (individuals) adds no evidence beyond the name: comparing
    # both would count one agreement twice.
    out["contact_name"] = out["contact_name"].where(out["contact_name"] != out["name_key"], None)
    out["name_pinyin"] = _map_distinct(out["name_key"], pinyin)
    out["contact_pinyin"] = _map_distinct(out["contact_name"], pinyin)
    prefix = out["name_key"].map(lambda s: s[:2] if s else None)
    _add_branch(out)
    _add_place(out)
    # 字号 (trade name): the first two characters of an organisation's key, the part a short
    # form keeps (青岛金飞 → 金飞 vs 金飞电子); blocked within a province to stay selective.
    enterprise = out["customer_type"].ne("individual").to_numpy(dtype=bool)
    cjk = prefix.str.fullmatch(r"[\u4e00-\u9fff]{2}").fillna(False).to_numpy(dtype=bool)
    out["name_brand"] = prefix.where(enterprise & cjk)
    out["brand_province"] = _join(out["name_brand"], out["place_province"])
    out["brand_pinyin"] = _map_distinct(out["name_brand"], pinyin)
    # one block per kind of customer: windowed in name order it is a sorted neighbourhood
    out["is_org"] = enterprise & out["customer_type"].notna().to_numpy(dtype=bool)
    individual = out["customer_type"].eq("individual").fillna(False).to_numpy(dtype=bool)
    # a mailbox many customers give (their bookkeeping agent's, 代账公司) is no one's identity
    from cleaning.phone import flag_shared_phones

    out["email_shared"] = flag_shared_phones(out["email"], out["name_key"], 3).to_numpy(bool)
    out["phone_mobile"] = _map_distinct(out["phone"], _is_mobile).fillna(False).to_numpy(bool)
    out["is_person"] = individual & out["name_key"].str.len().ge(2).fillna(False).to_numpy(bool)
    out["name_in_places"] = _in_several_places(out)
    out["name_one_holder"] = sole_name_holders(out)
    out["record_kind"] = out["customer_type"].fillna("unknown").where(out["name_key"].notna())
    out["name_reversed"] = _reversed(out["name_key"])
    out["phone_kind"] = out["phone"].str[:3].where(out["phone"].notna())  # +86 / other
    out["phone_reversed"] = _reversed(out["phone"])
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


def _is_mobile(e164: str) -> bool:
    """A mainland mobile number (+86 1[3-9]…, 11 digits)."""
    return len(e164) == 14 and e164.startswith("+861") and e164[4] in "3456789"


def _add_place(out: pd.DataFrame) -> None:
    """`place_city` (4-digit division code) and `place_province` (2-digit) of each record.

    Where the customer is, from the most specific of: a branch office's place (某某公司西安分公司
    → 西安), the region in a company's registered name (深圳某某科技 → 深圳), the address
    (division code, else the city/province names), the area code of a fixed-line phone
    (0571 → 杭州). The first source that knows the city wins; a province alone is used only
    when no source knows the city.
    """
    from cleaning.divisions import place_of_code, place_of_name
    from cleaning.phone import landline_place

    def region(text: str) -> str | None:
        places = [place_of_name(p) for p in text.split("/")]
        known = [p for p in places if p]
        return max(known, key=len) if known else None

    office = out["branch_key"].where(out["branch_key"].str.fullmatch(r"\d{2}|\d{4}").fillna(False))
    registered = _map_distinct(out["name_region"], region).where(out["branch_key"].isna())
    sources = [
        # a branch is where its branch part says (武汉某某公司西安分公司: 西安), a company
        # where its registered name says (佛山某某 with an office address in 深圳: 佛山)
        office,
        registered,
        _map_distinct(out["division_code"], place_of_code),
        _map_distinct(out["city"], place_of_name),
        _map_distinct(out["province"], place_of_name),
        # only fixed lines carry a place: mobiles (+861…) are not looked up
        _map_distinct(
            out["phone"].where(
                ~out["phone"].str.startswith("+861").fillna(True)
                | out["phone"].str.startswith("+8610").fillna(False)
            ),
            landline_place,
        ),
    ]
    city = np.full(len(out), None, dtype=object)
    province = np.full(len(out), None, dtype=object)
    has_city = np.zeros(len(out), dtype=bool)
    has_province = np.zeros(len(out), dtype=bool)
    for place in sources:
        values = place.to_numpy(dtype=object)
        text = pa.array(values, type=pa.string(), from_pandas=True)
        known = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        length = pc.utf8_length(text).fill_null(0).to_numpy(zero_copy_only=False)
        take = known & (length == 4) & ~has_city
        city[take] = values[take]
        has_city |= take
        take = known & ~has_province
        if take.any():
            head = pc.utf8_slice_codeunits(text, 0, 2).to_numpy(zero_copy_only=False)
            province[take] = np.asarray(head, dtype=object)[take]
            has_province |= take
    out["place_city"] = pd.Series(city, index=out.index, dtype=object)
    out["place_province"] = pd.Series(province, index=out.index, dtype=object)


def _in_several_places(out: pd.DataFrame) -> np.ndarray:
    """Whether an organisation's name key is carried by records in two or more places.

    Two cities, or two provinces, among the records of one name: firms of that name exist in
    several places (a brand in 杭州 and in 长沙), so a record without a city is ambiguous.
    """
    org = out["customer_type"].ne("individual").to_numpy(dtype=bool) & out["name_key"].notna()
    org &= out["branch_key"].isna()  # offices of one group are told apart by the branch rule
    frame = pd.DataFrame(
        {
            "name": out["name_key"].where(org),
            "city": out["place_city"],
            "province": out["place_province"],
        }
    ).dropna(subset=["name"])
    cities = frame.dropna(subset=["city"]).groupby("name")["city"].nunique()
    provinces = frame.dropna(subset=["province"]).groupby("name")["province"].nunique()
    many = set(cities.index[cities > 1]) | set(provinces.index[provinces > 1])
    return out["name_key"].isin(many).to_numpy(dtype=bool) & org


_HOLDER_FIELDS: tuple[str, ...] = ("phone", "email", "place_city", "id_number")
"""Fields on which the records of one person's name must never disagree (`sole_name_holders`)."""


def sole_name_holders(out: pd.DataFrame) -> np.ndarray:
    """Whether a person's full name is carried, in these records, by one holder only.

    Two or more individuals' records of one name that never disagree (at most one phone, one
    mailbox, one city and one id number among all of them) look like one person exported by
    several departments; a name that two phones, two mailboxes or two cities carry is held by
    several people (张伟 in 北京 and in 成都), and a record of it with nothing but the name
    could be any of them. Counted over the whole data set, like `name_in_places`.
    """
    person = out["is_person"].to_numpy(dtype=bool)
    frame = out.loc[person, ["name_key", *[c for c in _HOLDER_FIELDS if c in out]]]
    if "phone" in frame and "phone_mobile" in out:
        # one mobile and one landline (home, office) are one person's: two of a kind are not
        mobile = out.loc[person, "phone_mobile"].astype(bool)
        phone = frame["phone"]
        frame = frame.assign(phone=phone.where(mobile), landline=phone.where(~mobile))
    if frame.empty:
        return np.zeros(len(out), dtype=bool)
    groups = frame.groupby("name_key", sort=False)
    size = groups.size()
    spread = groups.nunique(dropna=True).max(axis=1) if frame.shape[1] > 1 else size * 0
    one = set(size.index[(size >= 2) & (spread.reindex(size.index).fillna(0) <= 1)])
    return out["name_key"].isin(one).to_numpy(dtype=bool) & person


def _add_branch(out: pd.DataFrame) -> None:
    """`branch_key`: the office a record names (place of its branch part; None = head office).

    A bracketed region after the legal form only qualifies the name (see
    `cleaning.company.branch_place`): `branch_soft` marks it, compatible with the head office.
    """
    from cleaning.company import branch_place

    # only names with a branch part or ending in a bracket can name an office
    maybe = out["branch"].notna() | out["customer_name"].str.endswith(")").fillna(False)
    names = _join(out["customer_name"], out["branch"].fillna("")).where(maybe)

    def parse(text: str) -> str:
        display, _, branch = text.partition("|")
        place, soft = branch_place(display, branch or None)
        return "" if place is None else ("~" if soft else "=") + place

    parsed = _map_distinct(names, parse).fillna("")
    key = parsed.str[1:].where(parsed.str.len() > 0)
    soft = parsed.str.startswith("~").to_numpy(dtype=bool)
    enterprise = out["customer_type"].ne("individual").to_numpy(dtype=bool)
    out["branch_key"] = key.where(enterprise)
    out["branch_soft"] = soft & enterprise


def _reversed(values: pd.Series) -> pd.Series:
    """Each string reversed (Arrow `utf8_reverse`), None kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    out = pc.utf8_reverse(arr).to_numpy(zero_copy_only=False)
    return pd.Series(out, index=values.index, dtype=object)


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
        if spec.tf_without:
            flags.add(spec.tf_without)
    for rule in settings.blocking_specs():
        wanted |= rule.referenced_fields()
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

"""Normalize `clean.records` into the typed frame the matcher works on (derived keys included)."""

from __future__ import annotations

import json
import re
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dedupe.settings import MatchSettings
from dedupe.specs import BlockingRuleSpec, flag_fields, parse_key

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


def _char_pinyin(char: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(char)) if "\u3400" <= char <= "\u9fff" else char.lower()


class _PinyinTable(dict[int, "str | None"]):
    """`str.translate` table of the characters met so far, each filled on first sight: a CJK
    character's toneless pinyin, whitespace dropped, any other character lower-cased."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        value = None if char.isspace() else _char_pinyin(char)
        self[code] = value
        return value


_PINYIN = _PinyinTable()


def pinyin(text: str) -> str:
    """Toneless pinyin of the CJK characters of `text`, other characters lower-cased."""
    return text.translate(_PINYIN)


def _distinct(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's code (-1 = null) and the distinct non-null values (an object array)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _spread(codes: np.ndarray, mapped: np.ndarray | list, missing: object = None) -> np.ndarray:
    """Per row, the mapped value of its code (`_distinct`), `missing` for a null (code -1).

    Booleans stay booleans (then `missing` must be a boolean too); anything else is an object
    array, so equal values of many rows are one Python object.
    """
    mapped = np.asarray(mapped, dtype=bool if isinstance(missing, bool) else object)
    table = np.empty(len(mapped) + 1, dtype=mapped.dtype)
    table[:-1] = mapped
    table[-1] = missing
    return table[codes]


def _map_distinct(values: pd.Series, func: object) -> pd.Series:
    """Apply `func` once per distinct non-null value and broadcast the results back."""
    codes, distinct = _distinct(values)
    # a plain list: iterating an Arrow-backed array value by value costs more than `func`
    mapped = np.array([func(u) for u in distinct.tolist()], dtype=object)  # type: ignore[operator]
    return pd.Series(_spread(codes, mapped), index=values.index, dtype=object)


def _clean_text(value: object, names: bool) -> str | None:
    text = str(value).strip()
    if not text or text.lower() in PLACEHOLDERS or (names and text in NAME_PLACEHOLDERS):
        return None
    return text


_NAME_FIELDS = frozenset({"name_key", "customer_name", "contact_name"})
_NUL_ON = "\\x00[\\s\\S]*"  # a NUL character and all after it (RE2)


def _arrow_text(uniques: object) -> pa.Array | None:
    """Distinct values as one Arrow string array (zero-copy: pandas' Arrow-backed text), None
    when they are held otherwise."""
    array = getattr(uniques, "array", uniques)
    dtype = getattr(array, "dtype", None)
    arrow = isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    arrow |= isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)
    arrow |= isinstance(dtype, pd.ArrowDtype) and pa.types.is_large_string(dtype.pyarrow_dtype)
    return pa.array(array) if arrow else None


def _clean_distinct(
    frame: pd.DataFrame, column: str, fold: object = None
) -> tuple[np.ndarray, np.ndarray]:
    """`column`'s codes per row (`_distinct`) and its cleaned distinct values: trimmed, None
    for a placeholder (`PLACEHOLDERS`; names also `NAME_PLACEHOLDERS`), then `fold` (e.g.
    ``str.lower``) applied to the rest. An absent column is all null."""
    if column not in frame.columns:
        return np.full(len(frame), -1, dtype=np.intp), np.empty(0, dtype=object)
    names = column in _NAME_FIELDS
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    text = _arrow_text(uniques)
    if text is not None:
        # as the text went through numpy's fixed-width strings before (a value ends at its
        # first NUL character): the same values
        if pc.any(pc.match_substring(text, "\x00")).as_py():
            text = pc.replace_substring_regex(text, _NUL_ON, "")
    else:
        try:  # `_clean_text` over the distinct values, vectorized (Arrow string kernels)
            text = pa.array(np.asarray(uniques, dtype=object).astype(str))
        except UnicodeError:  # a lone surrogate (broken export) has no UTF-8: value by value
            distinct = np.asarray(uniques, dtype=object).tolist()
            cleaned = [_clean_text(v, names) for v in distinct]
            return codes, _folded(np.array(cleaned, dtype=object), fold)
    text = pc.utf8_trim_whitespace(text)
    unknown = pc.or_(pc.equal(text, ""), pc.is_in(pc.utf8_lower(text), _PLACEHOLDER_SET))
    if names:
        unknown = pc.or_(unknown, pc.is_in(text, _NAME_PLACEHOLDER_SET))
    cleaned = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    cleaned[np.asarray(unknown.to_numpy(zero_copy_only=False), dtype=bool)] = None
    return codes, _folded(cleaned, fold)


def _reordered(
    distinct: tuple[np.ndarray, np.ndarray], order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values (`_distinct`) with the codes put in `order`."""
    codes, values = distinct
    return codes[order], values


def _folded(values: np.ndarray, fold: object) -> np.ndarray:
    """`fold` of every non-None value of `values` (an object array, changed in place)."""
    if fold is not None:
        known = np.flatnonzero(values != None)  # noqa: E711 (element-wise)
        values[known] = [fold(v) for v in values[known].tolist()]  # type: ignore[operator]
    return values


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    codes, cleaned = _clean_distinct(frame, column)
    return pd.Series(_spread(codes, cleaned), index=frame.index, dtype=object)


def _bool(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    raw = frame[column]
    if raw.dtype == bool:
        return raw.to_numpy()
    if isinstance(raw.dtype, pd.BooleanDtype):  # nullable flags: null is False
        return raw.to_numpy(dtype=bool, na_value=False)
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


PREPARE_CHUNK_RECORDS = 100_000
"""Records a chunk holds when `prepare_records` hands chunks to helper processes and no chunk
size is given (the whole-set flags are counted afterwards over every record, so the frame is
the same for any chunk size)."""

WHOLE_SET_FLAGS: tuple[str, ...] = ("email_shared", "name_in_places", "name_one_holder")
"""The prepared flags counted over the whole record set, not per record (`add_whole_set_flags`)."""


def prepare_records(
    records: pd.DataFrame,
    settings: MatchSettings | None = None,
    chunk_records: int | None = None,
    helpers: int = 0,
) -> pd.DataFrame:
    """Return the matcher's view of `records`: sorted by `record_key`, nulls as None, keys derived.

    Masked names (张*) move to `name_key_masked` / `contact_name_masked`: comparable with full
    names, never an exact agreement. Fields the settings' comparisons and blocking rules read
    that are not clean columns come from the `attributes` JSON (declared in sources.yml),
    case-folded; each blocking rule with a key expression gets its key column.

    Args:
        records: `clean.records` rows (any of the compared fields may be absent or null).
        settings: the matching settings whose fields and keys are needed; None = defaults.
        chunk_records: records prepared at a time, in `record_key` order (`prepare_chunk`);
            the whole-set flags (`WHOLE_SET_FLAGS`) and the blocking keys that read them are
            then computed over every record (`add_whole_set_flags`), so the frame is the same
            for any chunk size. None = all at once, or `PREPARE_CHUNK_RECORDS` with helpers.
            Chunks cost CPU in one process (a value carried in several chunks, as one
            customer's records of several sources are, is worked on in each: +12–22 % at 200 k
            in 100 k chunks, BENCHMARKS.md, issue #22, `cprep`), so one process prepares
            every record at once by default.
        helpers: helper processes preparing chunks beside this one (`cleaning._slices`: plain
            child interpreters, chunks shared out as they come free, results taken in chunk
            order); 0 = every chunk here. A chunk's frame does not depend on the process
            that prepared it.

    Returns:
        A frame with `record_key`, every text field (object dtype, None for null), the boolean
        flags and the derived blocking keys, sorted by `record_key` with a fresh RangeIndex.

    Raises:
        RecordsError: when `record_key` is missing, null or duplicated.
    """
    settings = settings or MatchSettings()
    order = sorted_order(records)
    step = chunk_records or (PREPARE_CHUNK_RECORDS if helpers > 0 else len(order))
    if step >= len(order):
        out = prepare_chunk(records, settings, order)
    elif helpers > 0:
        from cleaning._slices import clean_slices

        bounds = [(start, min(start + step, len(order))) for start in range(0, len(order), step)]
        chunks = clean_slices(
            lambda start, stop: records.take(order[start:stop]),
            bounds,
            partial(prepare_chunk, settings=settings),
            helpers=helpers,
            warm="dedupe.prepare",
        )
        out = concat_prepared([part for _, part in chunks])
    else:
        parts = [
            prepare_chunk(records.take(order[start : start + step]), settings)
            for start in range(0, len(order), step)
        ]
        out = concat_prepared(parts)
    return add_whole_set_flags(out, settings)


def sorted_order(records: pd.DataFrame) -> np.ndarray:
    """The positions of `records` in `record_key` order (code point order, as Python compares
    strings), after checking the keys.

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
    return pc.sort_indices(pa.array(keys)).to_numpy()


def prepare_chunk(
    records: pd.DataFrame, settings: MatchSettings, order: np.ndarray | None = None
) -> pd.DataFrame:
    """`prepare_records` of `records` taken in `order` (None: as they are, already in
    `record_key` order; keys checked by `sorted_order`), but for the whole-set flags.

    Every column is computed from the chunk's own records alone; the whole-set flags
    (`WHOLE_SET_FLAGS`) are False and the key columns of the blocking rules that read them
    None (placeholders keeping the columns' order), for `add_whole_set_flags` to fill in over
    every record.
    """
    keys = records["record_key"].astype("string")
    if order is None:
        order = np.arange(len(records))
    # in record_key order from the start: every column below is built in its final order,
    # none is reordered at the end
    out = pd.DataFrame({"record_key": keys.take(order).astype(object).to_numpy()})
    # every text field once per distinct value: its codes (in key order), kept for the keys
    # derived from it
    text = {
        column: _reordered(_clean_distinct(records, column, _FOLDS.get(column)), order)
        for column in TEXT_FIELDS
    }
    for column, (codes, cleaned) in text.items():
        out[column] = pd.Series(_spread(codes, cleaned), index=out.index, dtype=object)
    for column in BOOL_FIELDS:
        out[column] = _bool(records, column)[order]
    codes, emails = text["email"]
    domain = [None if e is None else e.rpartition("@")[2] for e in emails.tolist()]
    out["email_domain"] = out["email_domain"].where(
        out["email_domain"].notna(), pd.Series(_spread(codes, domain), index=out.index)
    )
    # Masked names (张*) are partial evidence: kept apart from the exact-comparable columns.
    _move_masked(out, "contact_name", _has_mask(*text["contact_name"]))
    masked_name = _has_mask(*text["customer_name"])
    out["name_key_masked"] = out["customer_name"].where(masked_name, None)
    if masked_name.any():
        out["name_key"] = out["name_key"].where(~masked_name, None)
    codes, types = text["customer_type"]
    individual = _spread(codes, types == "individual", False)
    # An individual recorded under a placeholder name (个人) is known by the contact's name.
    codes, contacts = _distinct(out["contact_name"])
    person = individual & out["name_key"].isna().to_numpy(dtype=bool) & ~masked_name
    person &= _spread(codes, [len(c) >= 2 for c in contacts.tolist()], False)
    out.loc[person, "name_key"] = out.loc[person, "contact_name"]
    # the person a record names: an individual's own name, else the contact person
    out["person_name"] = out["contact_name"].where(
        ~individual | out["name_key"].isna(), out["name_key"]
    )
    # A contact who is the customer (individuals) adds no evidence beyond the name: comparing
    # both would count one agreement twice.
    out["contact_name"] = out["contact_name"].where(out["contact_name"] != out["name_key"], None)
    # what is derived from the name key, once per distinct key
    name_codes, names = _distinct(out["name_key"])
    name_list = names.tolist()
    out["name_pinyin"] = pd.Series(
        _spread(name_codes, [pinyin(n) for n in name_list]), index=out.index, dtype=object
    )
    out["contact_pinyin"] = _map_distinct(out["contact_name"], pinyin)
    prefix = _text_series(name_codes, [n[:2] for n in name_list], out.index)
    cjk = _spread(name_codes, [_CJK_PAIR.fullmatch(n[:2]) is not None for n in name_list], False)
    phones = _phone_parts(text["phone"])
    _add_branch(out, text["customer_name"])
    _add_place(out, phones["landline_place"])
    # 字号 (trade name): the first two characters of an organisation's key, the part a short
    # form keeps (青岛金飞 → 金飞 vs 金飞电子); blocked within a province to stay selective.
    enterprise = out["customer_type"].ne("individual").to_numpy(dtype=bool)
    out["name_brand"] = prefix.where(enterprise & cjk)
    out["brand_province"] = _join(out["name_brand"], out["place_province"])
    out["brand_pinyin"] = _map_distinct(out["name_brand"], pinyin)
    # one block per kind of customer: windowed in name order it is a sorted neighbourhood
    out["is_org"] = enterprise & out["customer_type"].notna().to_numpy(dtype=bool)
    # counted over every record by `add_whole_set_flags`: placeholders keep the column order
    out["email_shared"] = np.zeros(len(out), dtype=bool)
    out["phone_mobile"] = phones["phone_mobile"]
    out["is_person"] = individual & _spread(name_codes, [len(n) >= 2 for n in name_list], False)
    out["name_in_places"] = np.zeros(len(out), dtype=bool)
    out["name_one_holder"] = np.zeros(len(out), dtype=bool)
    out["record_kind"] = out["customer_type"].fillna("unknown").where(out["name_key"].notna())
    out["name_reversed"] = pd.Series(
        _spread(name_codes, [n[::-1] for n in name_list]), index=out.index, dtype=object
    )
    out["phone_kind"] = pd.Series(phones["phone_kind"], index=out.index, dtype=object)
    out["phone_reversed"] = pd.Series(phones["phone_reversed"], index=out.index, dtype=object)
    _add_requested_fields(out, records, settings, order)
    for rule in settings.blocking_specs():
        column = rule.key_column()
        if column not in out:
            out[column] = None if _reads_whole_set_flags(rule) else _key_values(out, rule.keys)
    return out


def _reads_whole_set_flags(rule: BlockingRuleSpec) -> bool:
    """Whether `rule`'s key is an expression (a column of its own) over a whole-set flag."""
    fields = {f for key in rule.keys for f in parse_key(key)[1]}
    expression = len(rule.keys) > 1 or parse_key(rule.keys[0])[0] is not None
    return expression and bool(fields & set(WHOLE_SET_FLAGS))


def concat_prepared(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The prepared chunks (`prepare_chunk`, consecutive in `record_key` order) as one frame,
    a column at a time (each chunk's column let go of once joined; `parts` is emptied).

    A column a chunk holds as pandas' Arrow text while another chunk (with no value in it)
    holds it as objects is Arrow text, and a missing `email_domain` is NaN once any chunk has
    a mailbox, as preparing every record at once would type them.
    """
    if len(parts) == 1:
        return parts.pop()
    columns = list(parts[0].columns)
    out = pd.DataFrame(index=pd.RangeIndex(sum(len(p) for p in parts)))
    for column in columns:
        pieces = [part.pop(column) for part in parts]
        if any(p.dtype == _STR for p in pieces):
            pieces = [p if p.dtype == _STR else p.astype(_STR) for p in pieces]
        out[column] = pd.concat(pieces, ignore_index=True)
        del pieces
    parts.clear()
    if out["email"].notna().any():
        # a missing domain (no mailbox either) is NaN once any record of the set has a mailbox,
        # as pandas' `where` types it over every record (a chunk without mailboxes has None)
        domain = out["email_domain"]
        out["email_domain"] = domain.where(domain.notna(), np.nan)
    return out


def add_whole_set_flags(out: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """`out` (prepared chunks of every record, `prepare_chunk`) with the whole-set flags
    counted over all its records and the blocking keys that read them (in place).

    `email_shared`: a mailbox many customers give (their bookkeeping agent's, 代账公司) is no
    one's identity; `name_in_places` (`_in_several_places`) and `name_one_holder`
    (`sole_name_holders`) read only per-record columns of `out`.
    """
    from cleaning.phone import flag_shared_phones

    out["email_shared"] = flag_shared_phones(out["email"], out["name_key"], 3).to_numpy(bool)
    out["name_in_places"] = _in_several_places(out)
    out["name_one_holder"] = sole_name_holders(out)
    for rule in settings.blocking_specs():
        if _reads_whole_set_flags(rule):
            out[rule.key_column()] = _key_values(out, rule.keys)
    return out


_FOLDS: dict[str, object] = {
    "customer_type": str.lower,
    "email": str.lower,
    "credit_code": str.upper,
    "given_name": str.lower,
    "family_name": str.lower,
    "gender": str.lower,
    "id_kind": str.lower,
}
"""Text fields kept case-folded (`_clean_distinct`'s `fold`)."""

_CJK_PAIR = re.compile(r"[\u4e00-\u9fff]{2}")
_OFFICE = re.compile(r"\d{2}|\d{4}")


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _text_series(codes: np.ndarray, distinct: list[str], index: pd.Index) -> pd.Series:
    """Per row the distinct text of its code (-1: null) as `Series.map` would type it:
    pandas' text dtype (NaN for null) when a value is known, else object."""
    if not distinct:
        return pd.Series(np.full(len(codes), None, dtype=object), index=index)
    taken = pa.array(distinct, type=pa.large_string()).take(pa.array(codes, mask=codes < 0))
    return pd.Series(taken.to_pandas(types_mapper=lambda _: _STR), index=index)


def _phone_parts(phone: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """What is derived from the phone (codes and distinct values, `_clean_distinct`), per row:
    `phone_mobile`, `phone_kind` (its first 3 characters: +86 / other; NaN for none),
    `phone_reversed` and a fixed line's `landline_place`."""
    from cleaning.phone import landline_place

    codes, phones = phone
    known = [p for p in phones.tolist() if p is not None]
    at = np.flatnonzero(phones != None)  # noqa: E711 (element-wise)

    def spread(values: list, missing: object = None) -> np.ndarray:
        full = np.full(len(phones), missing, dtype=bool if isinstance(missing, bool) else object)
        full[at] = values
        return _spread(codes, full, missing)

    return {
        "phone_mobile": spread([_is_mobile(p) for p in known], False),
        "phone_kind": spread([p[:3] for p in known], np.nan),
        "phone_reversed": spread([p[::-1] for p in known]),
        # only fixed lines carry a place: mobiles (+861…) are not looked up
        "landline_place": spread(
            [
                landline_place(p) if not p.startswith("+861") or p.startswith("+8610") else None
                for p in known
            ]
        ),
    }


def _is_mobile(e164: str) -> bool:
    """A mainland mobile number (+86 1[3-9]…, 11 digits)."""
    return len(e164) == 14 and e164.startswith("+861") and e164[4] in "3456789"


def _add_place(out: pd.DataFrame, landline: np.ndarray) -> None:
    """`place_city` (4-digit division code) and `place_province` (2-digit) of each record.

    Where the customer is, from the most specific of: a branch office's place (某某公司西安分公司
    → 西安), the region in a company's registered name (深圳某某科技 → 深圳), the address
    (division code, else the city/province names), the area code of a fixed-line phone
    (`landline`: 0571 → 杭州). The first source that knows the city wins; a province alone is
    used only when no source knows the city.
    """
    from cleaning.divisions import place_of_code, place_of_name

    def region(text: str) -> str | None:
        places = [place_of_name(p) for p in text.split("/")]
        known = [p for p in places if p]
        return max(known, key=len) if known else None

    office = _map_distinct(out["branch_key"], lambda k: k if _OFFICE.fullmatch(k) else None)
    registered = _map_distinct(out["name_region"], region).where(out["branch_key"].isna())
    sources = [
        # a branch is where its branch part says (武汉某某公司西安分公司: 西安), a company
        # where its registered name says (佛山某某 with an office address in 深圳: 佛山)
        office.to_numpy(dtype=object),
        registered.to_numpy(dtype=object),
        _map_distinct(out["division_code"], place_of_code).to_numpy(dtype=object),
        _map_distinct(out["city"], place_of_name).to_numpy(dtype=object),
        _map_distinct(out["province"], place_of_name).to_numpy(dtype=object),
        landline,
    ]
    city = np.full(len(out), None, dtype=object)
    province = np.full(len(out), None, dtype=object)
    has_city = np.zeros(len(out), dtype=bool)
    has_province = np.zeros(len(out), dtype=bool)
    for values in sources:
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


def _in_several_places(out: pd.DataFrame, name_codes: np.ndarray | None = None) -> np.ndarray:
    """Whether an organisation's name key is carried by records in two or more places.

    Two cities, or two provinces, among the records of one name: firms of that name exist in
    several places (a brand in 杭州 and in 长沙), so a record without a city is ambiguous.

    Args:
        out: prepared records (`name_key`, `customer_type`, `branch_key`, `place_city`,
            `place_province`).
        name_codes: `name_key`'s codes (`_distinct`) when the caller has them.
    """
    org = out["customer_type"].ne("individual").to_numpy(dtype=bool) & out["name_key"].notna()
    org &= out["branch_key"].isna()  # offices of one group are told apart by the branch rule
    org = np.asarray(org, dtype=bool)
    names = _distinct(out["name_key"])[0] if name_codes is None else name_codes
    many = np.zeros(names.max(initial=-1) + 1, dtype=bool)
    for column in ("place_city", "place_province"):
        many |= _distinct_per_group(names, _distinct(out[column])[0], org, len(many)) > 1
    return org & _spread(names, many, False)


def _distinct_per_group(
    groups: np.ndarray, values: np.ndarray, rows: np.ndarray, count: int
) -> np.ndarray:
    """Per group code (0 … `count` − 1): how many distinct value codes its `rows` carry
    (null values, code -1, not counted; as pandas' ``groupby(…).nunique()``)."""
    keep = rows & (groups >= 0) & (values >= 0)
    pairs = np.unique(groups[keep].astype(np.int64) * (values.max(initial=0) + 1) + values[keep])
    return np.bincount(pairs // (values.max(initial=0) + 1), minlength=count)


_HOLDER_FIELDS: tuple[str, ...] = ("phone", "email", "place_city", "id_number")
"""Fields on which the records of one person's name must never disagree (`sole_name_holders`)."""


def sole_name_holders(out: pd.DataFrame) -> np.ndarray:
    """Whether a person's full name is carried, in these records, by one holder only.

    Two or more individuals' records of one name that never disagree (at most one mobile, one
    landline, one mailbox, one city and one id number among all of them) look like one person
    exported by several departments (a lead with a home phone, a ticket with the mobile); a
    name that two mobiles, two landlines, two mailboxes or two cities carry is held by several
    people (张伟 in 北京 and in 成都), and a record of it with nothing but the name could be any
    of them. Counted over the whole data set, like `name_in_places`.
    """
    person = out["is_person"].to_numpy(dtype=bool)
    names = _distinct(out["name_key"])[0]
    names = np.where(person, names, -1)
    count = names.max(initial=-1) + 1
    size = np.bincount(names[names >= 0], minlength=count)
    spread = np.zeros(count, dtype=np.int64)
    for column in (c for c in _HOLDER_FIELDS if c in out):
        values = _distinct(out[column])[0]
        if column == "phone" and "phone_mobile" in out:
            # one mobile and one landline (home, office) are one person's: two of a kind are not
            mobile = out["phone_mobile"].to_numpy(dtype=bool)
            for kind in (mobile, ~mobile):
                kept = np.where(kind, values, -1)
                spread = np.maximum(spread, _distinct_per_group(names, kept, person, count))
            continue
        spread = np.maximum(spread, _distinct_per_group(names, values, person, count))
    one = (size >= 2) & (spread <= 1)
    return person & _spread(names, one, False)


def _add_branch(out: pd.DataFrame, customer_names: tuple[np.ndarray, np.ndarray]) -> None:
    """`branch_key`: the office a record names (place of its branch part; None = head office).

    A bracketed region after the legal form only qualifies the name (see
    `cleaning.company.branch_place`): `branch_soft` marks it, compatible with the head office.
    `customer_names`: `customer_name`'s codes and distinct values (`_clean_distinct`).
    """
    from cleaning.company import branch_place

    # only names with a branch part or ending in a bracket can name an office
    codes, distinct = customer_names
    bracket = [v is not None and v.endswith(")") for v in distinct.tolist()]
    maybe = out["branch"].notna().to_numpy(dtype=bool) | _spread(codes, bracket, False)
    names = _join(out["customer_name"], out["branch"].fillna("")).where(maybe)

    def parse(text: str) -> str:
        display, _, branch = text.partition("|")
        place, soft = branch_place(display, branch or None)
        return "" if place is None else ("~" if soft else "=") + place

    codes, distinct = _distinct(names)
    parsed = [parse(text) for text in distinct.tolist()]
    # a name that names no office: no key (NaN, as pandas' `where` leaves it), not soft
    key = _spread(codes, [p[1:] if p else np.nan for p in parsed], np.nan)
    soft = _spread(codes, [p.startswith("~") for p in parsed], False)
    enterprise = out["customer_type"].ne("individual").to_numpy(dtype=bool)
    out["branch_key"] = pd.Series(key, index=out.index, dtype=object).where(enterprise)
    out["branch_soft"] = soft & enterprise


def _has_mask(codes: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """Per row: whether its value (codes and distinct values: `_distinct`) hides characters
    (张*)."""
    return _spread(codes, [v is not None and "*" in v for v in distinct.tolist()], False)


def _move_masked(out: pd.DataFrame, column: str, masked: np.ndarray) -> None:
    """Values hiding characters (张*, `masked`) leave `column` for `<column>_masked`."""
    out[f"{column}_masked"] = out[column].where(masked, None)
    if masked.any():
        out[column] = out[column].where(~masked, None)


def _add_requested_fields(
    out: pd.DataFrame, records: pd.DataFrame, settings: MatchSettings, order: np.ndarray
) -> None:
    """Columns the declared comparisons / keys read that are not prepared yet (from `records`
    taken in `order`: the prepared rows')."""
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
    read = [c for c in records.columns if c in missing or c == "attributes"]
    records = records[read].take(order)
    records.index = out.index
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
    """`left` + "|" + `right` per row (Arrow), None when either is null."""
    joined = pc.binary_join_element_wise(_arrow_strings(left), _arrow_strings(right), "|")
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=left.index, dtype=object)


def _arrow_strings(values: pd.Series) -> pa.Array:
    """`values` as an Arrow string array (null for None/NaN); other than text (a flag field
    named in a key) as pandas' string dtype writes it ("True")."""
    try:
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array(values.astype("string"), type=pa.string())

"""Column-wise cleaning steps used by ``clean_records``, one per field family."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cleaning._distinct import column, map_distinct
from cleaning._parallel import apply_bulk, apply_values
from cleaning.address import parse_normalized_address
from cleaning.codes import customer_type_from_source, infer_customer_types, validate_credit_code
from cleaning.company import looks_like_organisation, parse_normalized_company_name
from cleaning.dates import DateOrder, infer_date_order, parse_date
from cleaning.email import email_from_normalized
from cleaning.identity import masked_phone
from cleaning.industry import map_industry
from cleaning.issues import IssueCollector
from cleaning.person import person_key, split_normalized_person_name
from cleaning.phone_bulk import normalize_phones
from cleaning.text import normalize_text, normalize_texts

T = TypeVar("T")
DATE_FIELDS = ("registered_date", "updated_at", "txn_date", "interaction_date", "birth_date")


def _changed(raw: pd.Series, clean: pd.Series) -> pd.Series:
    """Rows where normalization changed more than surrounding spaces."""
    return raw.notna() & clean.notna() & (raw.str.strip() != clean)


Normalized = dict[str, tuple[pd.Index, list[str | None]] | None]
"""column -> (its distinct raw texts, their normalize_text), filled by blank_placeholders."""


def _normalize_then(func: Callable[[str | None], T], texts: list[str]) -> list[T]:
    return [func(n) for n in normalize_texts(texts)]


def _map_normalized(
    series: pd.Series, func: Callable[[str | None], T] | None, normalized: Normalized | None
) -> tuple[list[T], np.ndarray]:
    """Like ``map_distinct(series, lambda s: func(normalize_text(s)))``, reusing kept texts.

    ``func`` None returns the normalized texts themselves.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = [str(u) for u in uniques.tolist()]
    entry = (normalized or {}).get(str(series.name))
    if entry is None:
        if func is None:
            return apply_bulk(normalize_texts, texts), codes  # type: ignore[return-value]
        return apply_bulk(partial(_normalize_then, func), texts), codes
    values = _kept_norms(texts, entry)
    if func is None:
        return values, codes  # type: ignore[return-value]
    return apply_values(func, values), codes


def _kept_norms(
    texts: list[str], entry: tuple[pd.Index, list[str | None]] | None
) -> list[str | None]:
    """``normalize_texts(texts)``, taking the texts ``blank_placeholders`` kept from ``entry``."""
    if entry is None:
        return apply_bulk(normalize_texts, texts)
    index, norms = entry
    pos = index.get_indexer(texts)
    missing = [t for p, t in zip(pos, texts, strict=True) if p < 0]
    extra = iter(apply_bulk(normalize_texts, missing))
    return [norms[p] if p >= 0 else next(extra) for p in pos]


@lru_cache(maxsize=500_000)  # a full clean's slices share names (cleaning.memos clears it)
def _individual_name_key(name: str | None) -> str | None:
    """The person key of an individual customer's normalized name."""
    return person_key(split_normalized_person_name(name)[0])


def _parse_address_row(row: tuple[str | None, str | None, str | None, str | None]) -> Any:
    """``parse_normalized_address`` of one (text, province, city, district) combination."""
    text, province, city, district = row
    return parse_normalized_address(text, province or None, city or None, district or None)


def clean_names(
    raw: pd.DataFrame, out: pd.DataFrame, issues: IssueCollector, normalized: Normalized | None
) -> None:
    """customer_name, name_key, name_region, branch, customer_type, contact_name/title."""
    name, idx = raw["customer_name"], raw.index
    results, codes = _map_normalized(name, parse_normalized_company_name, normalized)
    parts = {f: column([r[i] for r in results], codes, idx) for i, f in enumerate(
        ("customer_name", "name_key", "name_region", "branch", "legal_form"))}  # fmt: skip
    org = map_distinct(parts["customer_name"], looks_like_organisation)
    looks_org = column(*org, idx, dtype="boolean").fillna(False)
    has_code = raw["credit_code"].notna() & (raw["credit_code"].str.strip() != "")
    # a leading region before a trade name (南京航德, 青岛金飞: a short form of a company name)
    # never starts a person's name
    regional = parts["name_region"].notna() & parts["name_key"].str.len().ge(2).fillna(False)
    src = column(*map_distinct(raw["customer_type"], customer_type_from_source), idx)
    inferred = infer_customer_types(
        has_code, parts["legal_form"], parts["branch"], looks_org, regional
    )
    ctype = src.fillna(inferred)
    issues.add(src.isna() & name.notna(), "customer_type", "customer_type_inferred",
               raw["customer_type"])  # fmt: skip
    issues.add((src == "individual") & (has_code | parts["legal_form"].notna()), "customer_type",
               "customer_type_conflict", raw["customer_type"])  # fmt: skip
    individual = ctype == "individual"
    # a person's key is only used for individuals: parse just their names
    person = _map_normalized(
        name.where(individual),
        _individual_name_key,
        normalized,
    )
    person_keys = column(*person, idx)
    out["customer_name"] = parts["customer_name"]
    out["name_key"] = parts["name_key"].where(~individual, person_keys.fillna(parts["name_key"]))
    for f in ("name_region", "branch"):
        out[f] = parts[f].where(~individual)
    out["customer_type"] = ctype
    issues.add(_changed(name, parts["customer_name"]), "customer_name", "normalized", name)

    contact = raw["contact_name"]
    res, cod = _map_normalized(contact, split_normalized_person_name, normalized)
    out["contact_name"] = column([r[0] for r in res], cod, idx)
    out["contact_title"] = column([r[1] for r in res], cod, idx)
    issues.add(out["contact_title"].notna(), "contact_name", "title_removed", out["contact_title"])

    # An individual's customer name IS the person's name: leads often fill only the contact.
    from_contact = out["customer_name"].isna() & out["contact_name"].notna() & individual
    if from_contact.any():
        out.loc[from_contact, "customer_name"] = out.loc[from_contact, "contact_name"]
        keys = column(*map_distinct(out["contact_name"], person_key), idx)
        out.loc[from_contact, "name_key"] = keys[from_contact]
    issues.add(from_contact, "customer_name", "name_from_contact", out["contact_name"])
    issues.add(out["customer_name"].isna(), "customer_name", "missing_name")


PLACEHOLDERS = frozenset(
    {"null", "none", "nil", "nan", "n/a", "na", "#n/a", "-", "--", "---", "/", "\\", "—", "——",
     "无", "暂无", "空", "未知", "不详", "没有", "?", "？", "0", "(空)", "（空）"}
)  # fmt: skip
"""Values departments type for 'nothing here'; read as missing (compared after NFKC, lowercase)."""


def blank_placeholders(
    raw: pd.DataFrame,
    columns: tuple[str, ...],
    issues: IssueCollector,
    normalized: Normalized | None = None,
) -> None:
    """Replace placeholder values (NULL, 无, -, / …) by missing, in place, recording an issue.

    ``0`` counts as a placeholder only in text fields, never in amounts or satisfaction.
    The normalized text of each distinct value of the columns named in ``normalized`` (its
    keys) is kept there, so later steps do not normalize those values again.
    """
    for name in columns:
        values = raw[name]
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        texts = [str(u) for u in uniques.tolist()]
        norms = apply_bulk(normalize_texts, texts)
        placeholder = [(n or "").lower() in PLACEHOLDERS for n in norms]
        placeholder.append(False)  # code -1 (null) takes the last entry
        flags = pd.Series(np.array(placeholder, dtype=bool)[codes], index=raw.index)
        if normalized is not None and name in normalized:
            normalized[name] = (pd.Index(texts, dtype=object), norms)
        if name in ("txn_amount", "satisfaction"):
            flags &= (values.str.strip() != "0").fillna(True)
        if flags.any():
            issues.add(flags, name, "placeholder_missing", values)
            raw[name] = values.mask(flags)


def clean_contacts(
    raw: pd.DataFrame,
    out: pd.DataFrame,
    issues: IssueCollector,
    region: str,
    normalized: Normalized | None = None,
) -> None:
    """phone (E.164, type, ext) and email (lowercase, domain, free-mail)."""
    idx, phone = raw.index, raw["phone"]
    kept = normalized or {}
    cod, uniques = pd.factorize(phone, use_na_sentinel=True)
    texts = [str(u) for u in uniques.tolist()]
    # masked phones (138****5678) are partial evidence: kept apart, never invalid
    masks = [masked_phone(t) if "*" in t or "＊" in t else None for t in texts]
    norms = _kept_norms(texts, kept.get("phone"))
    res = normalize_phones(
        [t if m is None else "" for t, m in zip(texts, masks, strict=True)],
        region,
        [n if m is None else None for n, m in zip(norms, masks, strict=True)],  # "" → None
    )
    out["phone_masked"] = column(masks, cod, idx)
    issues.add(out["phone_masked"].notna(), "phone", "phone_masked", phone)
    out["phone"] = column(res.e164, cod, idx)
    out["phone_type"] = column(res.type, cod, idx)
    out["phone_ext"] = column(res.ext, cod, idx)
    has_text = column(res.has_text, cod, idx, "boolean")
    issues.add(has_text.fillna(False) & out["phone"].isna(), "phone", "phone_invalid", phone)
    others = column(res.others, cod, idx)
    issues.add(others.notna(), "phone", "phone_multiple", others)

    email = raw["email"]
    cod, uniques = pd.factorize(email, use_na_sentinel=True)
    norms = _kept_norms([str(u) for u in uniques.tolist()], kept.get("email"))
    mails = [email_from_normalized(n) for n in norms]
    out["email"] = column([r.email for r in mails], cod, idx)
    out["email_domain"] = column([r.domain for r in mails], cod, idx)
    out["email_is_free"] = column([r.is_free for r in mails], cod, idx, "boolean")
    has_text = column([n is not None for n in norms], cod, idx, "boolean")
    issues.add(has_text.fillna(False) & out["email"].isna(), "email", "email_invalid", email)


def _uniques(series: pd.Series) -> list[str]:
    """Distinct non-null values in factorize order (matches :func:`map_distinct`)."""
    return [str(u) for u in pd.factorize(series, use_na_sentinel=True)[1].tolist()]


def _combined_codes(columns: list[pd.Series]) -> tuple[np.ndarray, np.ndarray, list[list]]:
    """Factorize several columns jointly: (row codes, first row of each combination, uniques)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    uniques = []
    for col in columns:
        codes, values = pd.factorize(col, use_na_sentinel=True)
        key = key * (len(values) + 1) + (codes + 1)
        key = pd.factorize(key)[0].astype(np.int64)  # keep the key small: no overflow
        uniques.append((codes, [str(v) for v in values.tolist()]))
    combo, first = np.unique(key, return_index=True)
    del combo  # keys are 0..k-1 in order, so position = key
    per_column = [[vals[c] if c >= 0 else None for c in codes[first]] for codes, vals in uniques]
    return key, first, per_column


def clean_address(
    raw: pd.DataFrame,
    out: pd.DataFrame,
    issues: IssueCollector,
    normalized: Normalized | None = None,
) -> None:
    """address text, province, city, district and division_code.

    The address text is normalized once per distinct value and parsed once per distinct
    combination of (address, province, city, district).
    """
    idx = raw.index
    cols = [raw[c] for c in ("address", "province", "city", "district")]
    present = pd.concat([c.notna() for c in cols], axis=1).any(axis=1).to_numpy()
    a_codes, a_values = pd.factorize(cols[0], use_na_sentinel=True)
    a_norms, _ = _map_normalized(cols[0], None, normalized)
    a_values = [str(v) for v in a_values.tolist()]
    out["address"] = column(a_norms, a_codes, idx)
    # the parser's text: normalized ("" when nothing remains), None for no or empty text
    a_text = [(n or "") if v else None for v, n in zip(a_values, a_norms, strict=True)]
    a_text.append(None)  # code -1 (null address) indexes the last entry
    key, first, (_, prov, city, dist) = _combined_codes(cols)
    texts = [a_text[c] for c in a_codes[first]]
    res = apply_values(_parse_address_row, list(zip(texts, prov, city, dist, strict=True)))
    cod = np.where(present, key, -1)
    for i, f in enumerate(("province", "city", "district", "division_code")):
        out[f] = column([r[i] for r in res], cod, idx)
    conflict = column([r.conflict for r in res], cod, idx, "boolean").fillna(False)
    issues.add(
        pd.Series(present, index=idx) & out["division_code"].isna(), "address",
        "address_unresolved", raw["address"],
    )  # fmt: skip
    issues.add(conflict, "address", "address_conflict", raw["address"])


def clean_industry_and_codes(raw: pd.DataFrame, out: pd.DataFrame, issues: IssueCollector) -> None:
    """industry_code / industry / industry_confidence and credit_code / credit_code_valid."""
    idx, ind = raw.index, raw["industry"]
    res, cod = map_distinct(ind, map_industry)
    out["industry_code"] = column([r.section for r in res], cod, idx)
    out["industry"] = column([r.name for r in res], cod, idx)
    out["industry_confidence"] = column([r.confidence for r in res], cod, idx, "Float64")
    has_text = column([normalize_text(u) is not None for u in _uniques(ind)], cod, idx, "boolean")
    issues.add(has_text.fillna(False) & out["industry_code"].isna(), "industry",
               "industry_unmapped", ind)  # fmt: skip
    issues.add(out["industry_confidence"] < 1, "industry", "industry_fuzzy", out["industry"])

    code = raw["credit_code"]
    checks, cod = map_distinct(code, validate_credit_code)
    out["credit_code"] = column([r.code for r in checks], cod, idx)
    valid = column([r.valid if r.code else None for r in checks], cod, idx, "boolean")
    out["credit_code_valid"] = valid
    reason = column([r.reason for r in checks], cod, idx)
    issues.add(valid == False, "credit_code", "credit_code_invalid", reason)  # noqa: E712


def infer_source_date_orders(raw: pd.DataFrame, declared: dict[str, str]) -> dict[str, str]:
    """Day/month order per source: the declared one, else inferred from all its dates."""
    orders: dict[str, str] = {}
    for src, group in raw.groupby("source_system", dropna=False, sort=False):
        order = declared.get(str(src), "auto")
        if order == "auto":
            values = pd.concat([group[f] for f in DATE_FIELDS if f in group]).dropna()
            order = infer_date_order(values.unique())
        orders[str(src)] = order
    return orders


def source_date_orders(raw: pd.DataFrame, declared: dict[str, str]) -> pd.Series:
    """Day/month order per row: declared for its source, else inferred from the source's dates."""
    orders = infer_source_date_orders(raw, declared)
    return raw["source_system"].astype("string").fillna("<NA>").map(orders).fillna("auto")


def clean_date(values: pd.Series, orders: pd.Series, field: str,
               issues: IssueCollector) -> pd.Series:  # fmt: skip
    """Parse one date column with each row's source order; record issues."""
    iso = pd.Series(pd.NA, index=values.index, dtype="string")
    problem = pd.Series(pd.NA, index=values.index, dtype="string")
    for order in orders.unique():
        mask = orders == order
        order_typed: DateOrder = order  # type: ignore[assignment]
        res, cod = map_distinct(values[mask], partial(parse_date, order=order_typed))
        iso[mask] = column([r[0] for r in res], cod, values[mask].index)
        problem[mask] = column([r[1] for r in res], cod, values[mask].index)
    for code in problem.dropna().unique():
        issues.add(problem == code, field, str(code), values)
    return iso

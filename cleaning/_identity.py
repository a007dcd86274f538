"""Column-wise identity steps of ``clean_records``: composed names, id numbers, birth, gender."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cleaning._distinct import column, map_distinct
from cleaning.identity import compose_name, is_masked, normalize_gender, validate_id_number
from cleaning.issues import IssueCollector
from cleaning.person import split_person_name


def compose_customer_name(raw: pd.DataFrame, issues: IssueCollector) -> None:
    """Fill a missing customer_name from family_name + given_name (姓 + 名), in place."""
    given, family = raw["given_name"], raw["family_name"]
    missing = raw["customer_name"].isna() & (given.notna() | family.notna())
    if not missing.any():
        return
    pairs = pd.Series(
        list(zip(given[missing].tolist(), family[missing].tolist(), strict=True)),
        index=missing[missing].index,
    )
    composed = pairs.map(lambda p: compose_name(_text(p[0]), _text(p[1]))).astype("string")
    name = raw["customer_name"].copy()
    name[missing] = composed
    raw["customer_name"] = name
    issues.add(missing & name.notna(), "customer_name", "name_composed", name)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _person_part(text: str) -> str | None:
    if is_masked(text):
        return text.strip()
    return split_person_name(text)[0]


def _validate_keyed_id(keyed: str) -> Any:
    """``validate_id_number`` of an ``"<number>\\x1f<id_type>"`` key (module-level: picklable)."""
    number, id_type = keyed.split("\x1f")[:2]
    return validate_id_number(number, _type(id_type))


def clean_identity(
    raw: pd.DataFrame, out: pd.DataFrame, issues: IssueCollector, birth: pd.Series
) -> None:
    """given_name / family_name, id_number / id_kind / id_number_valid, birth_date, gender.

    A valid 居民身份证号 supplies the birth date and gender a source leaves blank; when the
    source gives others, they are kept and the disagreement is an issue.
    """
    idx = raw.index
    for name in ("given_name", "family_name"):
        out[name] = column(*map_distinct(raw[name], _person_part), idx)

    id_raw, id_type = raw["id_number"], raw["id_type"]
    if id_raw.notna().any():
        typed = id_type.fillna("\x00")
        keyed = id_raw + "\x1f" + typed
        results, codes = map_distinct(keyed, _validate_keyed_id)
    else:
        results, codes = [], pd.factorize(id_raw, use_na_sentinel=True)[0]
    out["id_number"] = column([r.number for r in results], codes, idx)
    out["id_kind"] = column([r.kind for r in results], codes, idx)
    out["id_number_valid"] = column([r.valid for r in results], codes, idx, "boolean")
    reason = column([r.reason for r in results], codes, idx)
    id_birth = column([r.birth_date for r in results], codes, idx)
    id_gender = column([r.gender for r in results], codes, idx)
    for code in reason.dropna().unique():
        issues.add(reason == code, "id_number", str(code), id_raw)

    gender = column(*map_distinct(raw["gender"], normalize_gender), idx)
    issues.add(raw["gender"].notna() & gender.isna(), "gender", "gender_unparsed", raw["gender"])
    issues.add(gender.notna() & id_gender.notna() & (gender != id_gender), "gender",
               "gender_conflict", id_gender)  # fmt: skip
    out["gender"] = gender.fillna(id_gender)
    issues.add(birth.notna() & id_birth.notna() & (birth != id_birth), "birth_date",
               "birth_date_conflict", id_birth)  # fmt: skip
    out["birth_date"] = birth.fillna(id_birth)
    out["attributes"] = raw["attributes"].fillna("{}")
    for name in ("customer_name", "contact_name"):  # 张* : partial evidence, never invalid
        masked = raw[name].str.contains("*", regex=False).fillna(False)
        issues.add(masked, name, "name_masked", raw[name])


def _type(text: str) -> str | None:
    return None if text == "\x00" else text

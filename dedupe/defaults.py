"""The built-in Chinese customer comparisons and blocking rules, declared like a user's own.

These are what `matching.comparisons` / `matching.blocking_rules` default to, and what a name
such as `phone` refers to inside a user's list; they compile through the same code as an
`archive.yml` declaration (`dedupe.levels`).
"""

from __future__ import annotations

from typing import Any

from dedupe.specs import BlockingRuleSpec, ComparisonSpec

# fmt: off
_NEEDS = {"needs_corroboration": True}
_ALONE = {"stands_alone": True}
_ALIKE_NAMES = {"field": "name_key", "scorer": "jaro_winkler", "threshold": 0.8}
"""Neighbours in name order are candidates only when their names are this alike."""
_ONE_DIGIT = {"field": "phone", "scorer": "ratio", "threshold": 0.92}
"""Neighbours in phone order are candidates only when one digit apart (or equal)."""

_COMPARISONS: list[dict[str, Any]] = [
    {
        "name": "name_key",
        "field": "name_key",
        "tf_adjustment": True,
        # organisations' exact names have their own level: term frequencies are the persons'
        "tf_without": "is_org",
        "levels": [
            # a person's name (张伟) is shared by strangers far more often than an
            # organisation's: its own level (and the term-frequency bonus of level 1)
            {"type": "exact", "unless_both": ["is_org", "name_one_holder"], "m": 0.4,
             "label": "exact"},
            # a person's name whose records never disagree on phone, mailbox, city or id
            # number anywhere in the data: one person exported by several departments
            {"type": "exact", "if_both": ["name_one_holder"], "m": 0.3,
             "label": "exact_sole_holder", **_ALONE},
            # the name of firms in several cities (city twins), one record's city unknown:
            # which of them it is needs more than the name
            {"type": "exact", "if_both": ["is_org"], "if_either": ["name_in_places"],
             "if_null": ["place_city"], "m": 0.1, "label": "exact_org_elsewhere_too", **_NEEDS},
            {"type": "exact", "m": 0.35, "label": "exact_org"},
            {"type": "pinyin", "m": 0.05, "label": "same_pinyin", **_NEEDS},
            # the trade name (字号) sounds the same: 成星投资 / 诚星, 汇化贸易 / 汇华
            {"type": "exact", "field": "brand_pinyin", "m": 0.02, "label": "brand_sound",
             **_NEEDS},
            {"type": "jaro_winkler", "threshold": 0.92, "m": 0.05, "label": "jw>=0.92", **_NEEDS},
            {"type": "jaro_winkler", "threshold": 0.80, "m": 0.03, "label": "jw>=0.80", **_NEEDS},
            {"type": "pinyin_reordered", "m": 0.01, "label": "pinyin_reordered", **_NEEDS},
            # a short form keeps the trade name: 金飞 (青岛金飞) vs 金飞电子
            {"type": "prefix", "m": 0.02, "label": "prefix", **_NEEDS},
            # a person's record names the contact of a company's record (lead vs contract)
            {"type": "exact", "field": "person_name", "unless_both": ["is_org", "is_person"],
             "m": 0.02, "label": "person_is_contact"},
            {"type": "masked", "m": 0.01, "label": "masked_compatible"},
        ],
    },
    {
        "name": "phone",
        "field": "phone",
        "corroborates": True,
        "levels": [
            # a mobile is one person's; a landline rings for a family, an office floor
            {"type": "exact", "if_both": ["phone_mobile"], "unless_flag": "phone_shared",
             "m": 0.5, "label": "exact_mobile", **_ALONE},
            {"type": "exact", "unless_flag": "phone_shared", "m": 0.2, "label": "exact"},
            {"type": "exact", "m": 0.05, "label": "exact_shared"},
            {"type": "masked", "m": 0.05, "label": "masked_compatible"},
            # a mobile against a landline: one person's mobile and home phone, a contact's
            # mobile and the office line — different numbers, but not a contradiction
            {"type": "flags", "if_either": ["phone_mobile"], "unless_both": ["phone_mobile"],
             "m": 0.1, "label": "mobile_vs_landline"},
            # one digit mistyped (a 14-character +86 number: ratio 1 − 2/28)
            {"type": "ratio", "threshold": 0.92, "unless_flag": "phone_shared", "m": 0.02,
             "label": "one_digit_off"},
        ],
    },
    {
        "name": "email",
        "field": "email",
        "corroborates": True,
        "levels": [
            {"type": "exact", "unless_flag": "email_shared", "m": 0.65, "label": "exact",
             **_ALONE},
            # a mailbox three or more customers give (a bookkeeping agent's) is shared
            {"type": "exact", "m": 0.05, "label": "exact_shared"},
            {"type": "exact", "field": "email_domain", "unless_flag": "email_is_free", "m": 0.1,
             "label": "same_company_domain"},
        ],
    },
    {
        "name": "credit_code",
        "field": "credit_code",
        "corroborates": True,
        "levels": [
            {"type": "exact", "m": 0.9, "label": "exact", **_ALONE},
            {"type": "both_flags", "flag": "credit_code_valid", "m": 0.001,
             "label": "both_valid_differ"},
            {"type": "ratio", "threshold": 0.88, "m": 0.05, "label": "ratio>=0.88"},
        ],
    },
    {
        "name": "contact_name",
        "field": "contact_name",
        "tf_adjustment": True,
        "corroborates": True,
        "levels": [
            {"type": "exact", "m": 0.7, "label": "exact"},
            {"type": "any", "any": ["pinyin", {"type": "jaro_winkler", "threshold": 0.9}],
             "m": 0.1, "label": "close"},
            {"type": "prefix", "m": 0.1, "label": "surname_only"},
            {"type": "masked", "m": 0.01, "label": "masked_compatible"},
        ],
    },
    {
        # kept for configurations that name it; `place` replaces it by default
        "name": "location",
        "field": "city",
        "levels": [
            {"type": "exact", "fields": ["city", "district"], "m": 0.6, "label": "city_district"},
            {"type": "exact", "m": 0.25, "label": "city"},
            {"type": "exact", "field": "province", "m": 0.05, "label": "province"},
        ],
    },
    {
        # where the customer is, from branch part, registered name, address or landline area
        # code (`dedupe.prepare`): a province-only place is compatible with its cities
        "name": "place",
        "field": "place_city",
        "null_fields": ["place_province"],
        "levels": [
            {"type": "exact", "fields": ["place_city", "district"], "m": 0.4,
             "label": "city_district"},
            {"type": "exact", "m": 0.4, "label": "city"},
            {"type": "exact", "field": "place_province", "if_null": ["place_city"], "m": 0.15,
             "label": "province_city_unknown"},
            {"type": "exact", "field": "place_province", "m": 0.02, "label": "province"},
        ],
    },
    {
        "name": "address",
        "field": "address",
        "corroborates": True,
        "levels": [
            {"type": "ratio", "threshold": 0.90, "m": 0.6, "label": "ratio>=0.90"},
            {"type": "ratio", "threshold": 0.70, "m": 0.2, "label": "ratio>=0.70"},
            {"type": "contains", "threshold": 0.95, "m": 0.1, "label": "contained"},
        ],
    },
    {
        "name": "customer_type",
        "field": "customer_type",
        "levels": [{"type": "exact", "m": 0.95, "label": "exact"}],
    },
    {
        "name": "id_number",
        "field": "id_number",
        "corroborates": True,
        "levels": [
            {"type": "id_number", "mode": "exact", "m": 0.9, "label": "exact"},
            {"type": "id_number", "mode": "typo", "m": 0.05, "label": "one_typo"},
        ],
    },
]

_BLOCKING_RULES: list[dict[str, Any]] = [
    {"name": "phone", "keys": ["phone"], "determines": ["phone"]},
    {"name": "email", "keys": ["email"], "determines": ["email"]},
    {"name": "credit_code", "keys": ["credit_code"], "determines": ["credit_code"]},
    {"name": "id_number", "keys": ["id_number"], "determines": ["id_number"]},
    {"name": "name_key", "keys": ["name_key"], "determines": ["name_key"]},
    {"name": "name_prefix_city", "keys": ["first(name_key, 2)", "city"],
     "determines": ["name_key", "location"]},
    {"name": "name_pinyin", "keys": ["pinyin(name_key)"], "determines": ["name_key"]},
    {"name": "contact_city", "keys": ["contact_name", "city"],
     "determines": ["contact_name", "location"]},
    # 字号 within a province: short forms (青岛金飞) and other legal forms of one trade name
    {"name": "brand_province", "keys": ["brand_province"], "max_block_size": 30, "window": 4,
     "determines": []},
    # sorted neighbourhood over all names of a kind, forwards and backwards: a typo in the
    # trade name (飞兴 / 飞馨) with no phone or e-mail in common still meets its twin
    {"name": "name_neighbours", "keys": ["record_kind"], "max_block_size": 2, "window": 3,
     "trains": False, "min_similarity": _ALIKE_NAMES, "determines": []},
    {"name": "name_neighbours_reversed", "keys": ["record_kind"], "max_block_size": 2,
     "window": 3, "order": "name_reversed", "trains": False, "min_similarity": _ALIKE_NAMES,
     "determines": []},
    # the same over phone numbers: one mistyped digit (late, or early in reversed order)
    {"name": "phone_neighbours", "keys": ["phone_kind"], "max_block_size": 2, "window": 2,
     "order": "phone", "trains": False, "min_similarity": _ONE_DIGIT, "determines": []},
    {"name": "phone_neighbours_reversed", "keys": ["phone_kind"], "max_block_size": 2,
     "window": 2, "order": "phone_reversed", "trains": False, "min_similarity": _ONE_DIGIT,
     "determines": []},
]
# fmt: on

BUILTIN_COMPARISONS: dict[str, ComparisonSpec] = {
    c["name"]: ComparisonSpec.model_validate(c) for c in _COMPARISONS
}
"""Built-in comparisons by name (what a bare name in `matching.comparisons` refers to)."""
BUILTIN_BLOCKING_RULES: dict[str, BlockingRuleSpec] = {
    r["name"]: BlockingRuleSpec.model_validate(r) for r in _BLOCKING_RULES
}
"""Built-in blocking rules by name (what a bare name in `matching.blocking_rules` refers to)."""
DEFAULT_COMPARISONS: tuple[str, ...] = tuple(c for c in BUILTIN_COMPARISONS if c != "location")
"""The default comparisons: every built-in but `location` (`place` replaces it)."""
DEFAULT_BLOCKING_RULES: tuple[str, ...] = tuple(BUILTIN_BLOCKING_RULES)

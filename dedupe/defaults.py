"""The built-in Chinese customer comparisons and blocking rules, declared like a user's own.

These are what `matching.comparisons` / `matching.blocking_rules` default to, and what a name
such as `phone` refers to inside a user's list; they compile through the same code as an
`archive.yml` declaration (`dedupe.levels`).
"""

from __future__ import annotations

from typing import Any

from dedupe.specs import BlockingRuleSpec, ComparisonSpec

# fmt: off
_COMPARISONS: list[dict[str, Any]] = [
    {
        "name": "name_key",
        "field": "name_key",
        "tf_adjustment": True,
        "levels": [
            {"type": "exact", "m": 0.85, "label": "exact"},
            {"type": "pinyin", "m": 0.05, "label": "same_pinyin"},
            {"type": "jaro_winkler", "threshold": 0.92, "m": 0.05, "label": "jw>=0.92"},
            {"type": "jaro_winkler", "threshold": 0.80, "m": 0.03, "label": "jw>=0.80"},
            {"type": "pinyin_reordered", "m": 0.01, "label": "pinyin_reordered"},
            {"type": "masked", "m": 0.01, "label": "masked_compatible"},
        ],
    },
    {
        "name": "phone",
        "field": "phone",
        "levels": [
            {"type": "exact", "unless_flag": "phone_shared", "m": 0.7, "label": "exact"},
            {"type": "exact", "m": 0.05, "label": "exact_shared"},
            {"type": "masked", "m": 0.05, "label": "masked_compatible"},
        ],
    },
    {
        "name": "email",
        "field": "email",
        "levels": [
            {"type": "exact", "m": 0.7, "label": "exact"},
            {"type": "exact", "field": "email_domain", "unless_flag": "email_is_free", "m": 0.1,
             "label": "same_company_domain"},
        ],
    },
    {
        "name": "credit_code",
        "field": "credit_code",
        "levels": [
            {"type": "exact", "m": 0.9, "label": "exact"},
            {"type": "both_flags", "flag": "credit_code_valid", "m": 0.001,
             "label": "both_valid_differ"},
            {"type": "ratio", "threshold": 0.88, "m": 0.05, "label": "ratio>=0.88"},
        ],
    },
    {
        "name": "contact_name",
        "field": "contact_name",
        "tf_adjustment": True,
        "levels": [
            {"type": "exact", "m": 0.7, "label": "exact"},
            {"type": "any", "any": ["pinyin", {"type": "jaro_winkler", "threshold": 0.9}],
             "m": 0.1, "label": "close"},
            {"type": "prefix", "m": 0.1, "label": "surname_only"},
            {"type": "masked", "m": 0.01, "label": "masked_compatible"},
        ],
    },
    {
        "name": "location",
        "field": "city",
        "levels": [
            {"type": "exact", "fields": ["city", "district"], "m": 0.6, "label": "city_district"},
            {"type": "exact", "m": 0.25, "label": "city"},
            {"type": "exact", "field": "province", "m": 0.05, "label": "province"},
        ],
    },
    {
        "name": "address",
        "field": "address",
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
DEFAULT_COMPARISONS: tuple[str, ...] = tuple(BUILTIN_COMPARISONS)
DEFAULT_BLOCKING_RULES: tuple[str, ...] = tuple(BUILTIN_BLOCKING_RULES)

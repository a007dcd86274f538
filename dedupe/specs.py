"""Declared comparisons and blocking rules (`matching.comparisons`, `matching.blocking_rules`).

Splink-like, for our engine: a comparison names a field and a list of levels taken from a small
library; a blocking rule names keys or key expressions with a cap. The built-in Chinese customer
set (`dedupe.defaults`) is written in exactly this form and compiled by the same code.

    comparisons:
      - name_key                                   # a built-in comparison, by name
      - name: given_name
        field: given_name
        tf_adjustment: true
        levels:
          - exact
          - {type: jaro_winkler, threshold: 0.92}
          - {type: levenshtein, max_distance: 2}
    blocking_rules:
      - phone                                      # a built-in rule, by name
      - {name: surname_postcode, keys: [family_name, postcode], max_block_size: 100}
      - {name: swapped_names, keys: ["sorted(given_name, family_name)"]}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LevelType = Literal[
    "exact",
    "jaro_winkler",
    "jaro",
    "ratio",
    "levenshtein",
    "damerau_levenshtein",
    "contains",
    "prefix",
    "rotation",
    "pinyin",
    "pinyin_reordered",
    "date_distance",
    "numeric_distance",
    "id_number",
    "masked",
    "both_flags",
    "flags",
    "any",
]
"""The level library (docs/dedupe.md, "Declared comparisons")."""

_THRESHOLD_TYPES = {"jaro_winkler", "jaro", "ratio", "contains"}
_DISTANCE_TYPES = {"levenshtein", "damerau_levenshtein"}
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
KEY_EXPRESSION = re.compile(
    r"^\s*(?:(?P<func>first|last|pinyin|year|sorted)\s*\(\s*(?P<args>[^()]*)\)|(?P<field>[a-z][a-z0-9_]*))\s*$"
)
"""``field``, ``first(field, n)``, ``last(field, n)``, ``pinyin(field)``, ``year(field)``,
``sorted(field, field, …)`` (the values in sorted order: swapped names block together)."""


class LevelSpec(BaseModel):
    """One comparison level: the first level whose test holds wins (else the `else` level).

    Attributes:
        type: the level test (see `LevelType`).
        field: column tested; defaults to the comparison's field.
        fields: for `exact`, several columns that must all agree (city and district).
        threshold: similarity in [0, 1] for jaro_winkler / jaro / ratio / contains.
        max_distance: character edits for levenshtein / damerau_levenshtein (characters, not
            bytes: 张伟 vs 张玮 is 1).
        max_days: for date_distance (ISO dates).
        max_abs, max_rel: for numeric_distance (|a − b| ≤ max_abs or ≤ max_rel · max(|a|, |b|)).
        mode: for id_number, `exact` or `typo` (one substituted or transposed character when
            not both numbers are valid).
        unless_flag: a boolean column; the level does not hold when the flag is set on either
            side (a switchboard phone, a free-mail domain).
        unless_both: boolean columns; the level does not hold when one is set on both sides.
        if_both, if_either: boolean columns that must be set on both sides / on either side.
        if_null: columns that must be missing on either side (a place known to province only).
        flag: for both_flags, the boolean column set on both sides.
        any: for `any`, sub-levels of which one must hold.
        m: starting m probability for EM (defaults by type).
        label: level label in pairs and reports (defaults from type and parameters).
        needs_corroboration: the level cannot make a match by itself: the pair also needs an
            agreeing level of a comparison that `corroborates` (a look-alike name may be
            another firm one character away), else it goes to review at most.
        stands_alone: the level identifies the customer on its own (one person's mobile, one
            mailbox, one credit code): the pair matches unless a hard rule forbids it or a
            corroborating comparison disagrees (its `else`).

    Type `flags` holds whenever its conditions hold (`if_either: [phone_mobile]` with
    `unless_both: [phone_mobile]`: a mobile against a landline).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: LevelType
    field: str | None = None
    fields: list[str] | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    max_distance: int | None = Field(default=None, ge=0)
    max_days: int | None = Field(default=None, ge=0)
    max_abs: float | None = Field(default=None, ge=0.0)
    max_rel: float | None = Field(default=None, ge=0.0)
    mode: Literal["exact", "typo"] = "exact"
    unless_flag: str | None = None
    unless_both: list[str] = Field(default_factory=list)
    if_both: list[str] = Field(default_factory=list)
    if_either: list[str] = Field(default_factory=list)
    if_null: list[str] = Field(default_factory=list)
    flag: str | None = None
    any: list[LevelSpec] | None = None
    m: float | None = Field(default=None, gt=0.0, le=1.0)
    label: str | None = None
    needs_corroboration: bool = False
    stands_alone: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _parameters(self) -> LevelSpec:
        if self.type in _THRESHOLD_TYPES and self.threshold is None:
            raise ValueError(f"level {self.type!r} needs a threshold in [0, 1]")
        if self.type in _DISTANCE_TYPES and self.max_distance is None:
            raise ValueError(f"level {self.type!r} needs max_distance (characters)")
        if self.type == "date_distance" and self.max_days is None:
            raise ValueError("level 'date_distance' needs max_days")
        if self.type == "numeric_distance" and self.max_abs is None and self.max_rel is None:
            raise ValueError("level 'numeric_distance' needs max_abs or max_rel")
        if self.type == "both_flags" and not self.flag:
            raise ValueError("level 'both_flags' needs flag (a boolean column)")
        if self.type == "any" and not self.any:
            raise ValueError("level 'any' needs a list of sub-levels under 'any'")
        conditions = [*self.unless_both, *self.if_both, *self.if_either, *self.if_null]
        if self.type == "flags" and not (conditions or self.unless_flag):
            raise ValueError("level 'flags' needs a condition (if_both, if_either, unless_both …)")
        if self.needs_corroboration and self.stands_alone:
            raise ValueError("a level cannot both need corroboration and stand alone")
        for name in (self.field, self.unless_flag, self.flag, *(self.fields or []), *conditions):
            if name is not None and not FIELD_NAME.match(name):
                raise ValueError(f"field name {name!r}: lowercase letters, digits and _")
        return self

    def default_label(self) -> str:
        """The label used when none is given (exact, jw>=0.92, lev<=2, days<=31 …)."""
        if self.label:
            return self.label
        short = {"jaro_winkler": "jw", "jaro": "jaro", "ratio": "ratio", "contains": "contained"}
        if self.type in _THRESHOLD_TYPES:
            return f"{short[self.type]}>={self.threshold:g}"
        if self.type in _DISTANCE_TYPES:
            return f"{'lev' if self.type == 'levenshtein' else 'dl'}<={self.max_distance}"
        if self.type == "date_distance":
            return f"days<={self.max_days}"
        if self.type == "numeric_distance":
            if self.max_abs is not None:
                return f"abs<={self.max_abs:g}"
            return f"rel<={self.max_rel:g}"
        if self.type == "id_number":
            return "id_exact" if self.mode == "exact" else "id_typo"
        if self.type == "masked":
            return "masked_compatible"
        if self.type == "any":
            return "|".join(s.default_label() for s in self.any or [])
        return self.type


_DEFAULT_M = {"exact": 0.8, "id_number": 0.8, "masked": 0.05, "both_flags": 0.001}


class ComparisonSpec(BaseModel):
    """A declared comparison: a field, levels in order, null when the field is missing.

    Attributes:
        name: comparison name (a column `<name>_level` in match.pairs).
        field: the field compared: a canonical/clean column (given_name, birth_date, phone …)
            or an attribute mapped in sources.yml (`attributes:` — wechat_id, soc_sec_id).
        levels: the levels, strongest first.
        null_fields: the comparison is null (no evidence) when any of these is missing on
            either side; defaults to [field].
        tf_adjustment: adjust exact agreements on `field` by its term frequency (a rare
            surname is stronger evidence than 王).
        tf_without: a boolean column: records with it set are left out of the term
            frequencies (organisations, whose exact names have their own level).
        corroborates: its agreeing levels identify a customer (phone, e-mail, contact,
            address, credit code): they back a level that `needs_corroboration`, and its
            `else` speaks against a level that `stands_alone`.
        else_m: starting m of the `else` level.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    field: str
    levels: list[LevelSpec] = Field(min_length=1)
    null_fields: list[str] | None = None
    tf_adjustment: bool = False
    tf_without: str | None = None
    corroborates: bool = False
    else_m: float = Field(default=0.05, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _fields(self) -> ComparisonSpec:
        for name in (self.field, *(self.null_fields or []), self.tf_without):
            if name is None:
                continue
            if not FIELD_NAME.match(name):
                raise ValueError(f"field name {name!r}: lowercase letters, digits and _")
        return self

    def referenced_fields(self) -> set[str]:
        """Every column the comparison reads (for `prepare_records`)."""
        out = {self.field, *(self.null_fields or [])}
        if self.tf_without:
            out.add(self.tf_without)

        def walk(levels: list[LevelSpec]) -> None:
            for lv in levels:
                out.update(f for f in (lv.field, lv.unless_flag, lv.flag) if f)
                out.update(lv.fields or [])
                out.update([*lv.unless_both, *lv.if_both, *lv.if_either, *lv.if_null])
                walk(lv.any or [])

        walk(self.levels)
        return out


def flag_fields(levels: list[LevelSpec]) -> set[str]:
    """The boolean columns the levels test (prepared as booleans, not text)."""
    out: set[str] = set()
    for lv in levels:
        out.update(f for f in (lv.unless_flag, lv.flag) if f)
        out.update([*lv.unless_both, *lv.if_both, *lv.if_either])
        out |= flag_fields(lv.any or [])
    return out


def level_m(spec: LevelSpec, position: int) -> float:
    """Starting m of a level: declared, else by type, weaker for later levels."""
    if spec.m is not None:
        return spec.m
    if spec.type in _DEFAULT_M:
        return _DEFAULT_M[spec.type]
    return max(0.1 / (position + 1), 0.01)


SimilarityScorer = Literal[
    "jaro_winkler", "jaro", "ratio", "levenshtein", "damerau_levenshtein", "one_slip"
]


class SimilarityFilter(BaseModel):
    """Only a blocking rule's pairs this alike are candidates (`min_similarity`).

    Attributes:
        field: the column compared (`name_key`, `phone`).
        scorer: the similarity (rapidfuzz, in [0, 1]; edit distances as 1 / (1 + distance)).
        threshold: the least similarity kept.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    scorer: SimilarityScorer = "jaro_winkler"
    threshold: float = Field(ge=0.0, le=1.0)


class BlockingRuleSpec(BaseModel):
    """A declared blocking rule: records sharing every key become candidate pairs.

    Attributes:
        name: rule name (`pairs.rule`, blocking stats).
        keys: fields or key expressions (`first(name_key, 2)`, `pinyin(family_name)`,
            `year(birth_date)`, `sorted(given_name, family_name)`), joined into one key; a
            record missing any part is not blocked by this rule.
        max_block_size: blocks larger than this are windowed (None = matching.max_block_size).
        determines: comparisons the key fixes (not trained on this rule's pairs); default:
            the comparisons on fields used as plain keys.
        window: neighbours per record in an oversize block (None = matching.block_window).
        order: the field whose sort order windows oversize blocks: with `max_block_size: 2`
            over a key every record shares (`record_kind`), a sorted neighbourhood;
            `name_reversed` / `phone_reversed` bring together values that differ early.
        trains: whether EM estimates m on this rule's pairs (false for a sorted
            neighbourhood, whose pairs are nearly all non-matches).
        min_similarity: only pairs this alike are candidates (a `SimilarityFilter`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    keys: list[str] = Field(min_length=1)
    max_block_size: int | None = Field(default=None, ge=2)
    determines: list[str] | None = None
    window: int | None = Field(default=None, ge=1)
    order: str = Field(default="name_key", pattern=r"^[a-z][a-z0-9_]*$")
    trains: bool = True
    min_similarity: SimilarityFilter | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_key(cls, value: Any) -> Any:
        if isinstance(value, dict) and "key" in value and "keys" not in value:
            value = {**value, "keys": [value["key"]]}
            del value["key"]
        return value

    @model_validator(mode="after")
    def _expressions(self) -> BlockingRuleSpec:
        for key in self.keys:
            parse_key(key)
        return self

    def referenced_fields(self) -> set[str]:
        """Every column the rule reads: its keys' fields, its order, its filter's field."""
        out = {f for key in self.keys for f in parse_key(key)[1]} | {self.order}
        if self.min_similarity is not None:
            out.add(self.min_similarity.field)
        return out

    def key_column(self) -> str:
        """The prepared column the rule blocks on: the field itself for one plain key, else
        the expression text (``first(name_key,2)|city``) computed by `prepare_records`."""
        if len(self.keys) == 1 and parse_key(self.keys[0])[0] is None:
            return self.keys[0].strip()
        return "|".join(re.sub(r"\s+", "", k) for k in self.keys)


def parse_key(expression: str) -> tuple[str | None, list[str], int | None]:
    """(function or None, fields, integer argument) of a key expression.

    Raises:
        ValueError: for an expression outside the small grammar.
    """
    m = KEY_EXPRESSION.match(expression)
    if m is None:
        raise ValueError(
            f"key {expression!r}: use a field or first(f, n), last(f, n), pinyin(f), year(f), "
            "sorted(f, g, …)"
        )
    if m.group("field"):
        return None, [m.group("field")], None
    func = m.group("func")
    args = [a.strip() for a in m.group("args").split(",") if a.strip()]
    if func in ("first", "last"):
        if len(args) != 2 or not FIELD_NAME.match(args[0]) or not args[1].isdigit():
            raise ValueError(f"key {expression!r}: {func}(field, n) with n a positive integer")
        return func, [args[0]], int(args[1])
    if func == "sorted":
        if len(args) < 2 or not all(FIELD_NAME.match(a) for a in args):
            raise ValueError(f"key {expression!r}: sorted(field, field, …) with two fields or more")
        return func, args, None
    if len(args) != 1 or not FIELD_NAME.match(args[0]):
        raise ValueError(f"key {expression!r}: {func}(field)")
    return func, args, None

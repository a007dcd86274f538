"""Matching settings (the `matching:` section of the project YAML), validated with pydantic."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dedupe.defaults import (
    BUILTIN_BLOCKING_RULES,
    BUILTIN_COMPARISONS,
    DEFAULT_BLOCKING_RULES,
    DEFAULT_COMPARISONS,
)
from dedupe.specs import BlockingRuleSpec, ComparisonSpec

HardRule = Literal[
    "branch_conflict",
    "place_conflict",
    "name_conflict",
    "credit_code_conflict",
    "id_number_conflict",
]
HARD_RULES_DEFAULT: tuple[str, ...] = (
    "branch_conflict",
    "place_conflict",
    "name_conflict",
    "credit_code_conflict",
    "id_number_conflict",
)
"""The hard rules, in the order `dedupe.rules.hard_rule_reasons` applies them."""

__all__ = ["DEFAULT_BLOCKING_RULES", "DEFAULT_COMPARISONS", "MatchSettings"]


def _default_rules() -> list[str | BlockingRuleSpec]:
    return list(DEFAULT_BLOCKING_RULES)


def _default_comparisons() -> list[str | ComparisonSpec]:
    return list(DEFAULT_COMPARISONS)


class MatchSettings(BaseModel):
    """How records are blocked, scored, clustered and sent to review (客户匹配设置).

    Attributes:
        match_threshold: posterior match probability at or above which a pair auto-merges.
        review_threshold: lower bound of the review band (pairs below it are non-matches).
        max_block_size: blocks larger than this (a switchboard phone, 张伟) are windowed.
        block_window: in an oversize block, each record is paired with this many neighbours
            in name order instead of with every member.
        merge_branches: when False, headquarters and branch offices never merge.
        blocking_rules: blocking rules in priority order: a built-in rule by name
            (`dedupe.defaults`) or a declared `BlockingRuleSpec` (keys or key expressions).
        comparisons: field comparisons: a built-in comparison by name or a declared
            `ComparisonSpec` (a field and levels from the level library, docs/dedupe.md).
        id_number_match: two records with the same valid 居民身份证号 and compatible names
            always match (as different valid numbers never do).
        hard_rules: the hard rules that keep pairs apart whatever their score:
            `branch_conflict` (offices in different places, unless merge_branches),
            `place_conflict` (two organisations or two people in different cities, by the
            `place` comparison), `name_conflict` (names agreeing at no `name_key` level and
            not one slip apart), `credit_code_conflict`, `id_number_conflict` (two valid
            numbers that differ). Default: all. place_conflict and name_conflict apply only
            when `place` / `name_key` are among the comparisons.
        em_max_iterations: cap on EM iterations when estimating m/u.
        em_tolerance: EM stops when no parameter moves more than this.
        prior: probability that a candidate pair is a match (λ); None = estimate by EM.
        tf_adjustment: apply term-frequency adjustment to exact `name_key` matches.
        tf_max_bonus: cap (in bits) on the term-frequency bonus for a rare exact name.
        u_sample_pairs: random pairs used to estimate u probabilities.
        min_cross_support: to join two multi-record clusters, at least this fraction of the
            smaller cluster's size must be supported by strong cross edges (anti-chaining).
        seed: random seed for the u sample (results are deterministic).
    """

    model_config = ConfigDict(extra="forbid")

    match_threshold: float = Field(default=0.95, gt=0.0, lt=1.0)
    review_threshold: float = Field(default=0.60, gt=0.0, lt=1.0)
    max_block_size: int = Field(default=60, ge=2)
    block_window: int = Field(default=6, ge=1)
    merge_branches: bool = False
    blocking_rules: list[str | BlockingRuleSpec] = Field(default_factory=_default_rules)
    comparisons: list[str | ComparisonSpec] = Field(default_factory=_default_comparisons)
    id_number_match: bool = True
    hard_rules: list[HardRule] = Field(default_factory=lambda: list(HARD_RULES_DEFAULT))
    em_max_iterations: int = Field(default=30, ge=1)
    em_tolerance: float = Field(default=1e-4, gt=0.0)
    prior: float | None = Field(default=None, gt=0.0, lt=1.0)
    tf_adjustment: bool = True
    tf_max_bonus: float = Field(default=6.0, ge=0.0)
    u_sample_pairs: int = Field(default=200_000, ge=1000)
    min_cross_support: float = Field(default=0.5, ge=0.0, le=1.0)
    seed: int = 20240315

    @model_validator(mode="before")
    @classmethod
    def _declared(cls, data: Any) -> Any:
        """Validate declared entries one by one, so an error names the entry and its key."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, spec_type in (
            ("comparisons", ComparisonSpec),
            ("blocking_rules", BlockingRuleSpec),
        ):
            entries = data.get(key)
            if not isinstance(entries, list):
                continue
            out: list[Any] = []
            for i, entry in enumerate(entries):
                if isinstance(entry, dict):
                    try:
                        entry = spec_type.model_validate(entry)
                    except ValidationError as exc:
                        err = exc.errors()[0]
                        where = ".".join(str(x) for x in err["loc"] if "[" not in str(x))
                        label = entry.get("name", "?")
                        msg = err["msg"].removeprefix("Value error, ")
                        raise ValueError(
                            f"matching.{key}.{i} ({label}){'.' + where if where else ''}: {msg}"
                        ) from None
                elif not isinstance(entry, (str, spec_type)):
                    raise ValueError(
                        f"matching.{key}.{i}: a built-in name or a mapping, not {entry!r}"
                    )
                out.append(entry)
            data[key] = out
        return data

    @model_validator(mode="after")
    def _check(self) -> MatchSettings:
        if self.review_threshold > self.match_threshold:
            raise ValueError(
                f"matching.review_threshold ({self.review_threshold}) must not exceed "
                f"matching.match_threshold ({self.match_threshold})"
            )
        unknown = [r for r in self.blocking_rules
                   if isinstance(r, str) and r not in BUILTIN_BLOCKING_RULES]  # fmt: skip
        if unknown:
            raise ValueError(
                f"matching.blocking_rules: unknown rule(s) {unknown}; "
                f"known: {sorted(BUILTIN_BLOCKING_RULES)} or declare one with keys"
            )
        unknown = [c for c in self.comparisons
                   if isinstance(c, str) and c not in BUILTIN_COMPARISONS]  # fmt: skip
        if unknown:
            raise ValueError(
                f"matching.comparisons: unknown comparison(s) {unknown}; "
                f"known: {sorted(BUILTIN_COMPARISONS)} or declare one with field and levels"
            )
        if not self.blocking_rules:
            raise ValueError("matching.blocking_rules must name at least one rule")
        if not self.comparisons:
            raise ValueError("matching.comparisons must name at least one comparison")
        for key, names in (
            ("comparisons", [c.name for c in self.comparison_specs()]),
            ("blocking_rules", [r.name for r in self.blocking_specs()]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"matching.{key}: name(s) used twice: {repeated}")
        # Declared comparisons are compiled here, so a bad one fails on load; the built-in ones
        # are tested with the package (and compiling pulls in pandas: the CLI's `sql` stays fast).
        declared = [c for c in self.comparisons if not isinstance(c, str)]
        if declared:
            from dedupe.levels import compile_comparison
        for spec in declared:
            try:
                compile_comparison(spec)
            except ValueError as exc:
                raise ValueError(f"matching.comparisons.{spec.name}: {exc}") from exc
        known = {c.name for c in self.comparison_specs()}
        for rule in self.blocking_rules:  # declared ones (built-ins name built-ins)
            if isinstance(rule, str):
                continue
            # a built-in comparison not in use is allowed (it determines nothing then): the
            # built-in rules, written out in full, stay valid declarations
            stray = [d for d in rule.determines or []
                     if d not in known and d not in BUILTIN_COMPARISONS]  # fmt: skip
            if stray:
                raise ValueError(
                    f"matching.blocking_rules.{rule.name}.determines: {stray} are not "
                    f"comparisons in use ({sorted(known)}) nor built-in ones"
                )
        return self

    def comparison_specs(self) -> list[ComparisonSpec]:
        """The comparisons in use as specs (built-in names resolved), in order."""
        return [BUILTIN_COMPARISONS[c] if isinstance(c, str) else c for c in self.comparisons]

    def blocking_specs(self) -> list[BlockingRuleSpec]:
        """The blocking rules in use as specs (built-in names resolved), in priority order."""
        return [BUILTIN_BLOCKING_RULES[r] if isinstance(r, str) else r for r in self.blocking_rules]


MATCHER_VERSION = 6
"""Bumped when the matcher's behaviour changes beyond what its declared specs show
(2: place, offices, name/place conflicts, evidence declarations, anchor m — issue #16;
3: declared comparisons / blocking rules, masked values, id numbers — issue #17;
4: a nightly whose match delta held ≥ 122,880 pair rows stored too few ``match.pairs``
(DuckDB 2.0.0's empty-CTAS row loss, docs/warehouse.md): the next run rebuilds in full,
which repairs such a warehouse;
5: u of the rare levels counted among the candidate pairs (`training.scored_u`), so a
model trained on a seed-dependent random sample is retrained once;
6: a person's name carried by one mobile and one landline has one holder (`name_one_holder`),
so the sole-holder level's population and its trained weights change)."""


def matcher_signature(settings: MatchSettings) -> str:
    """The settings plus the comparisons and blocking rules they use, as resolved specs.

    A stored run's parameters and pairs can be reused (incremental runs, sharded rebuilds)
    only under the same signature: after an upgrade that changes the levels or the rules, the
    next run rebuilds in full instead of mixing old level codes with new ones.

    Args:
        settings: the matching settings.

    Returns:
        A JSON string (hash it to compare).
    """
    import json

    comparisons = {
        spec.name: spec.model_dump(mode="json", exclude_defaults=False)
        for spec in settings.comparison_specs()
    }
    rules = {
        spec.name: spec.model_dump(mode="json", exclude_defaults=False)
        for spec in settings.blocking_specs()
    }
    return json.dumps(
        {
            "version": MATCHER_VERSION,
            "settings": settings.model_dump(mode="json"),
            "comparisons": comparisons,
            "blocking_rules": rules,
        },
        ensure_ascii=False,
        sort_keys=True,
    )

"""Matching settings (the `matching:` section of the project YAML), validated with pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_BLOCKING_RULES: tuple[str, ...] = (
    "phone",
    "email",
    "credit_code",
    "name_key",
    "name_prefix_city",
    "name_pinyin",
    "contact_city",
    "brand_province",
    "name_neighbours",
    "name_neighbours_reversed",
    "phone_neighbours",
    "phone_neighbours_reversed",
)
DEFAULT_COMPARISONS: tuple[str, ...] = (
    "name_key",
    "phone",
    "email",
    "credit_code",
    "contact_name",
    "place",
    "address",
    "customer_type",
)


class MatchSettings(BaseModel):
    """How records are blocked, scored, clustered and sent to review (客户匹配设置).

    Attributes:
        match_threshold: posterior match probability at or above which a pair auto-merges.
        review_threshold: lower bound of the review band (pairs below it are non-matches).
        max_block_size: blocks larger than this (a switchboard phone, 张伟) are windowed.
        block_window: in an oversize block, each record is paired with this many neighbours
            in name order instead of with every member.
        merge_branches: when False, headquarters and branch offices never merge.
        blocking_rules: names of the blocking rules to use (see `dedupe.blocking.BLOCKING_RULES`).
        comparisons: names of the field comparisons to use (see `dedupe.comparisons.COMPARISONS`).
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
    blocking_rules: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKING_RULES))
    comparisons: list[str] = Field(default_factory=lambda: list(DEFAULT_COMPARISONS))
    em_max_iterations: int = Field(default=30, ge=1)
    em_tolerance: float = Field(default=1e-4, gt=0.0)
    prior: float | None = Field(default=None, gt=0.0, lt=1.0)
    tf_adjustment: bool = True
    tf_max_bonus: float = Field(default=6.0, ge=0.0)
    u_sample_pairs: int = Field(default=200_000, ge=1000)
    min_cross_support: float = Field(default=0.5, ge=0.0, le=1.0)
    seed: int = 20240315

    @model_validator(mode="after")
    def _check(self) -> MatchSettings:
        from dedupe.blocking import BLOCKING_RULES
        from dedupe.comparisons import COMPARISONS

        if self.review_threshold > self.match_threshold:
            raise ValueError(
                f"matching.review_threshold ({self.review_threshold}) must not exceed "
                f"matching.match_threshold ({self.match_threshold})"
            )
        unknown = [r for r in self.blocking_rules if r not in BLOCKING_RULES]
        if unknown:
            raise ValueError(
                f"matching.blocking_rules: unknown rule(s) {unknown}; "
                f"known: {sorted(BLOCKING_RULES)}"
            )
        unknown = [c for c in self.comparisons if c not in COMPARISONS]
        if unknown:
            raise ValueError(
                f"matching.comparisons: unknown comparison(s) {unknown}; "
                f"known: {sorted(COMPARISONS)}"
            )
        if not self.blocking_rules:
            raise ValueError("matching.blocking_rules must name at least one rule")
        if not self.comparisons:
            raise ValueError("matching.comparisons must name at least one comparison")
        return self


MATCHER_VERSION = 2
"""Bumped when the matcher's behaviour changes beyond what its level labels and rules show
(2: place, offices, name/place conflicts, evidence declarations, anchor m — issue #16)."""


def matcher_signature(settings: MatchSettings) -> str:
    """The settings plus what the code makes of them: comparison levels and blocking rules.

    A stored run's parameters and pairs can be reused (incremental runs, sharded rebuilds)
    only under the same signature: after an upgrade that changes the levels or the rules, the
    next run rebuilds in full instead of mixing old level codes with new ones.

    Args:
        settings: the matching settings.

    Returns:
        A JSON string (hash it to compare).
    """
    import json

    from dedupe.blocking import BLOCKING_RULES
    from dedupe.comparisons import COMPARISONS

    comparisons = {
        name: [
            [lv.label, lv.alone, lv.sufficient] for lv in COMPARISONS[name].levels
        ] + [COMPARISONS[name].identity, COMPARISONS[name].tf_column]
        for name in settings.comparisons
    }
    rules = {name: repr(BLOCKING_RULES[name]) for name in settings.blocking_rules}
    return json.dumps(
        {"version": MATCHER_VERSION, "settings": settings.model_dump(mode="json"),
         "comparisons": comparisons, "blocking_rules": rules},
        ensure_ascii=False, sort_keys=True,
    )

"""Typed settings of the golden layer: survivorship rules per attribute, classification bounds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strategy = Literal[
    "source_priority", "most_recent", "most_frequent", "most_complete", "longest", "earliest"
]

# Attributes of golden.customers chosen by survivorship (the rest are derived).
SURVIVING_ATTRIBUTES: tuple[str, ...] = (
    "customer_name",
    "customer_type",
    "contact_name",
    "phone",
    "email",
    "address",
    "province",
    "city",
    "district",
    "industry_code",
    "industry",
    "credit_code",
    "registered_date",
)


class SurvivorshipRule(BaseModel):
    """How one golden attribute is chosen among a customer's source records.

    ``companions`` are taken from the same winning record (an address with its province, city
    and district; an industry with its code), so a golden record never mixes two addresses.
    Ties are broken by ``source_priority`` (or the settings' default order), then the most
    recent record date, then the smallest ``record_key``.
    """

    model_config = ConfigDict(extra="forbid")
    attribute: str
    strategy: Strategy
    source_priority: list[str] = []
    companions: list[str] = []


class TierThreshold(BaseModel):
    """The minimum 12-month revenue and maximum days since the last business for a tier."""

    model_config = ConfigDict(extra="forbid")
    min_revenue_12m: float = Field(ge=0)
    max_days_since_business: int = Field(ge=0)
    min_transactions_12m: int = Field(default=1, ge=0)


class ClassificationSettings(BaseModel):
    """Bounds of tier (A/B/C, RFM-style) and lifecycle (potential/new/active/churned/dormant)."""

    model_config = ConfigDict(extra="forbid")
    tier_a: TierThreshold = TierThreshold(min_revenue_12m=1_000_000, max_days_since_business=180)
    tier_b: TierThreshold = TierThreshold(min_revenue_12m=100_000, max_days_since_business=365)
    dormant_after_years: int = Field(default=3, ge=1)
    churned_after_days: int = Field(default=365, ge=1)
    new_within_days: int = Field(default=90, ge=0)
    lead_sources: list[str] = ["marketing"]

    @model_validator(mode="after")
    def _check_order(self) -> ClassificationSettings:
        if self.tier_a.min_revenue_12m < self.tier_b.min_revenue_12m:
            raise ValueError("tier_a.min_revenue_12m must be >= tier_b.min_revenue_12m")
        if self.churned_after_days >= 365 * self.dormant_after_years:
            raise ValueError("churned_after_days must be shorter than dormant_after_years")
        return self


_ADDRESS_PARTS = ["province", "city", "district"]


def _default_rules() -> list[SurvivorshipRule]:
    sales_first = ["sales", "finance", "service", "marketing"]
    service_first = ["service", "sales", "finance", "marketing"]
    return [
        SurvivorshipRule(
            attribute="customer_name", strategy="source_priority", source_priority=sales_first
        ),
        SurvivorshipRule(attribute="customer_type", strategy="most_frequent"),
        SurvivorshipRule(
            attribute="credit_code", strategy="source_priority", source_priority=sales_first
        ),
        SurvivorshipRule(
            attribute="industry",
            strategy="source_priority",
            source_priority=sales_first,
            companions=["industry_code"],
        ),
        SurvivorshipRule(attribute="contact_name", strategy="most_recent"),
        SurvivorshipRule(attribute="phone", strategy="most_recent", source_priority=service_first),
        SurvivorshipRule(attribute="email", strategy="most_recent"),
        SurvivorshipRule(attribute="address", strategy="most_recent", companions=_ADDRESS_PARTS),
        SurvivorshipRule(attribute="registered_date", strategy="earliest"),
    ]


class GoldenSettings(BaseModel):
    """Settings of the golden layer (the ``golden:`` key of the project YAML)."""

    model_config = ConfigDict(extra="forbid")
    survivorship: list[SurvivorshipRule] = Field(default_factory=_default_rules)
    default_source_priority: list[str] = ["sales", "finance", "service", "marketing"]
    classification: ClassificationSettings = ClassificationSettings()

    @model_validator(mode="after")
    def _check_rules(self) -> GoldenSettings:
        seen: dict[str, str] = {}
        for rule in self.survivorship:
            for attr in [rule.attribute, *rule.companions]:
                if attr not in SURVIVING_ATTRIBUTES:
                    raise ValueError(
                        f"survivorship: unknown attribute {attr!r}; "
                        f"expected one of {', '.join(SURVIVING_ATTRIBUTES)}"
                    )
                if attr in seen:
                    raise ValueError(f"survivorship: {attr!r} is chosen by two rules")
                seen[attr] = rule.attribute
        return self

    def rule_for(self, attribute: str) -> SurvivorshipRule | None:
        """The rule whose primary attribute is ``attribute`` (None when it is a companion)."""
        return next((r for r in self.survivorship if r.attribute == attribute), None)

    def all_rules(self) -> list[SurvivorshipRule]:
        """Configured rules plus a ``most_recent`` rule for every attribute left unconfigured."""
        covered = {a for r in self.survivorship for a in [r.attribute, *r.companions]}
        extra = [
            SurvivorshipRule(attribute=a, strategy="most_recent")
            for a in SURVIVING_ATTRIBUTES
            if a not in covered
        ]
        return [*self.survivorship, *extra]

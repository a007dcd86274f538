"""Thresholds and severity overrides for the quality gates (QualitySettings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from expectations.catalog import CHECKS


class QualitySettings(BaseModel):
    """Tunable bounds for the quality checks.

    Attributes:
        max_duplicate_rate: Highest share of golden customers that may share a valid credit
            code or an exact (name, phone) with another customer.
        row_count_drift_tolerance: Allowed relative change of the customer count vs the
            previous snapshot (0.2 = ±20 %).
        distribution_drift_tolerance: Highest total-variation distance (0–1) of a categorical
            distribution vs the previous snapshot.
        drift_attributes: Golden columns whose distributions are compared.
        raw_min_fill_rate: Share of a run's new raw rows in which each required field must
            be filled.
        raw_row_count_band: Allowed relative change of each delivery's rows (the files of
            one delivery date) vs the source's previous delivery, its newest from an earlier
            run (0.5 = ±50 %; a warning). Two whole exports in one night are two deliveries.
        clean_min_name_fill_rate: Share of clean records that must carry a customer name.
        golden_min_name_fill_rate: Share of golden customers that must have a name, or
            publishing is blocked (``golden_customer_name_not_null``). A rate that signals a
            broken delivery (a lost name column), not every missing value: callers known only
            by phone and nameless leads are normal and go to the owner department's follow-up
            list (``clean.follow_up``, seed 004). Default 0.8: block when more than 20 % of
            the customers have no name.
        max_future_days: Days past today a date (registered, updated, first/last seen) may
            lie before ``clean_dates_not_future`` / ``golden_dates_not_future`` fail.
        extra_known_provinces: Province values accepted beyond China's 34 provincial-level
            divisions (for archives that keep foreign regions).
        critical: Per-check severity overrides, ``{check name: True (critical) | False}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_duplicate_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    row_count_drift_tolerance: float = Field(default=0.2, ge=0.0)
    distribution_drift_tolerance: float = Field(default=0.1, ge=0.0, le=1.0)
    drift_attributes: tuple[str, ...] = ("customer_type", "tier", "lifecycle", "province")
    raw_min_fill_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    raw_row_count_band: float = Field(default=0.5, ge=0.0)
    clean_min_name_fill_rate: float = Field(default=0.95, ge=0.0, le=1.0)
    golden_min_name_fill_rate: float = Field(default=0.8, ge=0.0, le=1.0)
    max_future_days: int = Field(default=1, ge=0)
    extra_known_provinces: frozenset[str] = frozenset()
    critical: dict[str, bool] = Field(default_factory=dict)

    @field_validator("critical")
    @classmethod
    def _known_check_names(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown check name(s) in critical overrides: {unknown}")
        return value

    def is_critical(self, name: str) -> bool:
        """Return whether check ``name`` blocks publishing under these settings.

        Args:
            name: A check name from ``expectations.catalog.CHECKS``.

        Returns:
            The override when one is set, else the catalog default.

        Raises:
            KeyError: ``name`` is not in the catalog.
        """
        if name in self.critical:
            return self.critical[name]
        return CHECKS[name].critical

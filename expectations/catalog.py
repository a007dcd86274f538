"""The one table of every quality check: its layer, whether it is critical by default, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layer = Literal["raw", "clean", "golden"]


@dataclass(frozen=True)
class CheckSpec:
    """Catalog entry for one named check.

    Attributes:
        name: Unique check name: its row in ``ops.check_results`` and the report, and its
            metadata entry in the result of its Dagster check (``<layer>_critical`` or
            ``<layer>_warnings``, `pipelines.checks`).
        layer: Layer the check validates.
        critical: Default severity; True blocks publishing. Overridable per name in settings.
        description: What the check guards and why it matters, in one sentence.
    """

    name: str
    layer: Layer
    critical: bool
    description: str


_CRITICAL = True
_WARNING = False

_SPECS: tuple[CheckSpec, ...] = (
    # --- raw: the current raw layer of one source and this run's deliveries of it ------
    CheckSpec(
        "raw_required_columns",
        "raw",
        _CRITICAL,
        "raw.<source> has the lineage columns and every required mapped field.",
    ),
    CheckSpec(
        "raw_lineage_not_null",
        "raw",
        _CRITICAL,
        "Every active raw row carries its lineage (record_key, source_system, source_file, "
        "source_row, source_sha256, ingested_at, run_id), so it can be traced to its delivery.",
    ),
    CheckSpec(
        "raw_rows_reconciled",
        "raw",
        _CRITICAL,
        "For each file delivered in this run, rows read = rows ingested + rows quarantined "
        "(nothing is lost on the way in).",
    ),
    CheckSpec(
        "raw_record_key_format",
        "raw",
        _CRITICAL,
        "Every active raw row's record_key is <source>:<source_record_id> of its own source.",
    ),
    CheckSpec(
        "raw_record_key_unique",
        "raw",
        _CRITICAL,
        "record_key is unique within each delivered file among active rows (a record seen "
        "again in a later delivery is a new version, not a duplicate).",
    ),
    CheckSpec(
        "raw_delivery_not_empty",
        "raw",
        _WARNING,
        "Each file delivered in this run has at least one data row (an empty export is "
        "usually a failed export); a source with no new delivery passes.",
    ),
    CheckSpec(
        "raw_row_count_band",
        "raw",
        _WARNING,
        "Rows delivered in this run are within the band of the source's previous delivery "
        "(a truncated or doubled export) for sources delivering full exports; a source with "
        "no new delivery, or one delivering deltas, passes.",
    ),
    CheckSpec(
        "raw_required_fields_filled",
        "raw",
        _WARNING,
        "Each required field is filled in most of this run's new rows; a mostly empty column "
        "hints at a changed export layout.",
    ),
    # --- clean: clean.records ---------------------------------------------------------
    CheckSpec(
        "clean_required_columns",
        "clean",
        _CRITICAL,
        "clean.records has the contract's lineage and identity columns.",
    ),
    CheckSpec(
        "clean_record_key_not_null", "clean", _CRITICAL, "Every clean record has a record_key."
    ),
    CheckSpec(
        "clean_record_key_unique",
        "clean",
        _CRITICAL,
        "record_key is unique across clean.records (the warehouse-wide key).",
    ),
    CheckSpec(
        "clean_customer_name_filled",
        "clean",
        _WARNING,
        "Most records carry a customer name; the rest go to the follow-up list.",
    ),
    CheckSpec(
        "clean_customer_type_in_set",
        "clean",
        _CRITICAL,
        "customer_type is enterprise or individual.",
    ),
    CheckSpec(
        "clean_phone_e164", "clean", _CRITICAL, "phone, where present, is E.164 (+8613912345678)."
    ),
    CheckSpec(
        "clean_email_format",
        "clean",
        _CRITICAL,
        "email, where present, is a lowercased well-formed address.",
    ),
    CheckSpec(
        "clean_dates_iso",
        "clean",
        _CRITICAL,
        "registered_date and updated_at, where present, are real ISO YYYY-MM-DD dates.",
    ),
    CheckSpec(
        "clean_dates_not_future",
        "clean",
        _WARNING,
        "registered_date and updated_at are not in the future (quality.max_future_days of "
        "slack): a date typed wrongly at the source, reported with its records.",
    ),
    CheckSpec(
        "clean_province_known",
        "clean",
        _CRITICAL,
        "province, where present, is a full official provincial-level name.",
    ),
    CheckSpec(
        "clean_industry_code_known",
        "clean",
        _CRITICAL,
        "industry_code, where present, is a GB/T 4754-2017 section letter.",
    ),
    CheckSpec(
        "clean_credit_code_format",
        "clean",
        _WARNING,
        "credit_code, where present, has the 18-character 统一社会信用代码 shape.",
    ),
    CheckSpec(
        "clean_credit_code_flag_consistent",
        "clean",
        _WARNING,
        "credit_code_valid agrees with the GB 32100 check digit.",
    ),
    CheckSpec(
        "clean_issues_json",
        "clean",
        _WARNING,
        "issues is parseable JSON, so cleaning findings can be reported.",
    ),
    # --- golden: golden.customers / golden.crosswalk --------------------------------------
    CheckSpec(
        "golden_not_empty",
        "golden",
        _CRITICAL,
        "golden.customers has rows; publishing an empty archive is never intended. Skipped "
        "(recorded) on a night with no clean records when nothing was published before.",
    ),
    CheckSpec(
        "golden_required_columns",
        "golden",
        _CRITICAL,
        "golden.customers has every contract column.",
    ),
    CheckSpec(
        "golden_customer_id_not_null",
        "golden",
        _CRITICAL,
        "Every golden customer has a customer_id.",
    ),
    CheckSpec(
        "golden_customer_id_unique",
        "golden",
        _CRITICAL,
        "customer_id is unique: one golden row per customer.",
    ),
    CheckSpec(
        "golden_customer_id_format",
        "golden",
        _CRITICAL,
        "customer_id is C + YYYYMMDD + a 3+ digit sequence.",
    ),
    CheckSpec(
        "golden_customer_name_not_null",
        "golden",
        _CRITICAL,
        "At least golden_min_name_fill_rate (default 80 %) of the golden customers have a "
        "name: a higher missing-name rate signals a broken delivery. Nameless records (callers "
        "known by phone, leads) are normal and on the owner department's follow-up list.",
    ),
    CheckSpec(
        "golden_customer_type_in_set",
        "golden",
        _CRITICAL,
        "customer_type is enterprise or individual.",
    ),
    CheckSpec("golden_tier_in_set", "golden", _CRITICAL, "tier, where set, is A, B or C."),
    CheckSpec(
        "golden_lifecycle_in_set",
        "golden",
        _CRITICAL,
        "lifecycle, where set, is potential, new, active, churned or dormant.",
    ),
    CheckSpec(
        "golden_dates_not_future",
        "golden",
        _WARNING,
        "registered_date, first_seen and last_seen are not in the future (a last_seen in 2028 "
        "would make a customer look active for years).",
    ),
    CheckSpec("golden_phone_e164", "golden", _CRITICAL, "phone, where present, is E.164."),
    CheckSpec("golden_email_format", "golden", _CRITICAL, "email, where present, is well-formed."),
    CheckSpec(
        "golden_province_known",
        "golden",
        _CRITICAL,
        "province, where present, is a full official provincial-level name.",
    ),
    CheckSpec(
        "golden_credit_code_format",
        "golden",
        _WARNING,
        "credit_code, where present, has the 18-character 统一社会信用代码 shape.",
    ),
    CheckSpec(
        "crosswalk_record_key_unique",
        "golden",
        _CRITICAL,
        "Each clean record appears at most once in golden.crosswalk.",
    ),
    CheckSpec(
        "crosswalk_covers_clean_records",
        "golden",
        _CRITICAL,
        "Every clean record is in golden.crosswalk (nothing is lost).",
    ),
    CheckSpec(
        "crosswalk_records_in_clean",
        "golden",
        _CRITICAL,
        "Every crosswalk record_key is a clean record of this run.",
    ),
    CheckSpec(
        "crosswalk_customer_exists",
        "golden",
        _CRITICAL,
        "Every crosswalk customer_id exists in golden.customers.",
    ),
    CheckSpec(
        "customer_has_records",
        "golden",
        _CRITICAL,
        "Every golden customer has at least one crosswalk row (one golden row per cluster).",
    ),
    CheckSpec(
        "customer_single_credit_code",
        "golden",
        _CRITICAL,
        "No golden customer holds two distinct valid credit codes (an over-merge).",
    ),
    CheckSpec(
        "golden_duplicate_rate",
        "golden",
        _CRITICAL,
        "Share of golden customers sharing a valid credit code or (name, phone) with "
        "another customer is below the bound (an under-merge).",
    ),
    CheckSpec(
        "golden_row_count_drift",
        "golden",
        _WARNING,
        "Customer count is within the tolerance of the previous snapshot.",
    ),
    CheckSpec(
        "golden_distribution_drift",
        "golden",
        _WARNING,
        "Distributions of type, tier, lifecycle and province moved less than the "
        "tolerance since the previous snapshot.",
    ),
)

CHECKS: dict[str, CheckSpec] = {spec.name: spec for spec in _SPECS}
"""Every check by name; the single place severities are declared."""

if len(CHECKS) != len(_SPECS):  # pragma: no cover - guards editing mistakes at import
    raise RuntimeError("duplicate check name in expectations.catalog")


def checks_for_layer(layer: Layer) -> list[CheckSpec]:
    """Return the catalog entries of one layer, in catalog order.

    Args:
        layer: ``raw``, ``clean`` or ``golden``.

    Returns:
        The layer's check specs.
    """
    return [spec for spec in _SPECS if spec.layer == layer]

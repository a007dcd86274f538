"""The golden-layer suite: golden.customers, golden.crosswalk and their cross-table properties."""

from __future__ import annotations

import math

import pandas as pd

from expectations import _golden_frames as frames
from expectations import reference as ref
from expectations._common import Results, columns_present, skipped, to_outcomes
from expectations._dates import future_date_results
from expectations._gx_runner import MAX_EXAMPLES, GxCheck, run_checks
from expectations.outcome import CheckOutcome
from expectations.settings import QualitySettings

GOLDEN_COLUMNS: tuple[str, ...] = (
    "customer_id", "customer_name", "customer_type", "contact_name", "phone", "email",
    "address", "province", "city", "district", "industry_code", "industry", "credit_code",
    "registered_date", "tier", "lifecycle", "source_count", "record_count", "first_seen",
    "last_seen", "updated_run_id",
)  # fmt: skip
CROSSWALK_COLUMNS: tuple[str, ...] = ("record_key", "customer_id")
# The clean.records columns validate_golden reads (a caller may leave the others unread).
GOLDEN_SUITE_RECORD_COLUMNS: tuple[str, ...] = ("record_key", "credit_code")


def validate_golden(
    customers: pd.DataFrame,
    crosswalk: pd.DataFrame,
    clean_records: pd.DataFrame,
    previous_customers: pd.DataFrame | None = None,
    settings: QualitySettings | None = None,
) -> list[CheckOutcome]:
    """Validate the golden layer before it is published.

    Runs the suites ``golden.customers``, ``golden.crosswalk`` and suites over derived
    frames for cross-table properties (``golden.record_coverage``, ``golden.customer_links``,
    ``golden.customer_credit_codes``, ``golden.duplicates``, ``golden.drift``).

    Args:
        customers: golden.customers of this run.
        crosswalk: golden.crosswalk of this run.
        clean_records: clean.records the crosswalk must cover.
        previous_customers: golden.customers of the previous snapshot, for drift checks.
        settings: Thresholds and severity overrides; defaults when None.

    Returns:
        One outcome per golden check, in catalog order.

    Raises:
        ValueError: ``crosswalk`` or ``clean_records`` lacks the columns needed to link them.
    """
    settings = settings or QualitySettings()
    for label, frame, needed in (
        ("crosswalk", crosswalk, CROSSWALK_COLUMNS),
        ("clean_records", clean_records, ("record_key",)),
        ("customers", customers, ("customer_id",)),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} lacks column(s) {missing}; cannot validate the golden layer")
    results: Results = {}
    results.update(
        run_checks(
            "golden.customers", customers, _customer_checks(customers, previous_customers, settings)
        )
    )
    if previous_customers is None:
        results["golden_row_count_drift"] = skipped("no previous snapshot")
    if clean_records.empty and (previous_customers is None or previous_customers.empty):
        # a first night on which every delivered row was quarantined: nothing to publish yet,
        # which is not a broken delivery wiping a published archive (that stays critical)
        results["golden_not_empty"] = skipped("no clean records and nothing published before")
    results.update(
        future_date_results(
            "golden_dates_not_future",
            "golden.dates",
            customers,
            "customer_id",
            ("registered_date", "first_seen", "last_seen"),
            settings,
        )
    )
    results.update(_crosswalk_results(customers, crosswalk, clean_records))
    results.update(_duplicate_results(customers, settings))
    results.update(_drift_results(customers, previous_customers, settings))
    return to_outcomes("golden", results, settings)


def _customer_checks(
    customers: pd.DataFrame, previous: pd.DataFrame | None, settings: QualitySettings
) -> list[GxCheck]:
    import great_expectations.expectations as gxe

    key = "customer_id"
    provinces = sorted(ref.PROVINCES | settings.extra_known_provinces)

    def check(name: str, expectation: object) -> GxCheck:
        return GxCheck(name, [expectation], key_column=key)  # type: ignore[list-item]

    checks = [
        GxCheck("golden_not_empty", [gxe.ExpectTableRowCountToBeBetween(min_value=1)]),
        columns_present("golden_required_columns", customers, GOLDEN_COLUMNS),
        check("golden_customer_id_not_null", gxe.ExpectColumnValuesToNotBeNull(column=key)),
        check("golden_customer_id_unique", gxe.ExpectColumnValuesToBeUnique(column=key)),
        check(
            "golden_customer_id_format",
            gxe.ExpectColumnValuesToMatchRegex(column=key, regex=ref.CUSTOMER_ID_REGEX),
        ),
        check(
            "golden_customer_name_not_null",
            gxe.ExpectColumnValuesToNotBeNull(
                column="customer_name", mostly=settings.golden_min_name_fill_rate
            ),
        ),
        check(
            "golden_customer_type_in_set",
            gxe.ExpectColumnValuesToBeInSet(
                column="customer_type", value_set=list(ref.CUSTOMER_TYPES)
            ),
        ),
        check(
            "golden_tier_in_set",
            gxe.ExpectColumnValuesToBeInSet(column="tier", value_set=list(ref.TIERS)),
        ),
        check(
            "golden_lifecycle_in_set",
            gxe.ExpectColumnValuesToBeInSet(column="lifecycle", value_set=list(ref.LIFECYCLES)),
        ),
        check(
            "golden_phone_e164",
            gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=ref.E164_REGEX),
        ),
        check(
            "golden_email_format",
            gxe.ExpectColumnValuesToMatchRegex(column="email", regex=ref.EMAIL_REGEX),
        ),
        check(
            "golden_province_known",
            gxe.ExpectColumnValuesToBeInSet(column="province", value_set=provinces),
        ),
        check(
            "golden_credit_code_format",
            gxe.ExpectColumnValuesToMatchRegex(column="credit_code", regex=ref.CREDIT_CODE_REGEX),
        ),
    ]
    if previous is not None:
        before = len(previous)
        tolerance = settings.row_count_drift_tolerance
        low = max(math.floor(before * (1 - tolerance)), 0)
        high = math.ceil(before * (1 + tolerance))
        checks.append(
            GxCheck(
                "golden_row_count_drift",
                [gxe.ExpectTableRowCountToBeBetween(min_value=low, max_value=high)],
                thresholds={
                    "previous_row_count": before,
                    "tolerance": tolerance,
                    "min": low,
                    "max": high,
                },
            )
        )
    return checks


def _crosswalk_results(
    customers: pd.DataFrame, crosswalk: pd.DataFrame, clean_records: pd.DataFrame
) -> Results:
    import great_expectations.expectations as gxe

    results: Results = {}
    results.update(
        run_checks(
            "golden.crosswalk",
            crosswalk,
            [
                GxCheck(
                    "crosswalk_record_key_unique",
                    [gxe.ExpectColumnValuesToBeUnique(column="record_key")],
                    key_column="record_key",
                ),
            ],
        )
    )
    coverage = frames.record_coverage(crosswalk, clean_records)
    counts = coverage["status"].value_counts().to_dict()
    results.update(
        run_checks(
            "golden.record_coverage",
            coverage,
            [
                GxCheck(
                    "crosswalk_covers_clean_records",
                    [
                        gxe.ExpectColumnValuesToNotBeInSet(
                            column="status", value_set=["missing_from_crosswalk"]
                        )
                    ],
                    key_column="record_key",
                    extra={"status_counts": counts},
                ),
                GxCheck(
                    "crosswalk_records_in_clean",
                    [
                        gxe.ExpectColumnValuesToNotBeInSet(
                            column="status", value_set=["not_in_clean"]
                        )
                    ],
                    key_column="record_key",
                    extra={"status_counts": counts},
                ),
            ],
        )
    )
    links = frames.customer_links(customers, crosswalk)
    link_counts = links["status"].value_counts().to_dict()
    results.update(
        run_checks(
            "golden.customer_links",
            links,
            [
                GxCheck(
                    "crosswalk_customer_exists",
                    [
                        gxe.ExpectColumnValuesToNotBeInSet(
                            column="status", value_set=["missing_customer"]
                        )
                    ],
                    key_column="customer_id",
                    extra={"status_counts": link_counts},
                ),
                GxCheck(
                    "customer_has_records",
                    [
                        gxe.ExpectColumnValuesToNotBeInSet(
                            column="status", value_set=["no_crosswalk_rows"]
                        )
                    ],
                    key_column="customer_id",
                    extra={"status_counts": link_counts},
                ),
            ],
        )
    )
    if "credit_code" not in clean_records.columns:
        results["customer_single_credit_code"] = skipped("clean_records has no credit_code")
        return results
    per_customer, conflicts = frames.valid_credit_codes_per_customer(crosswalk, clean_records)
    results.update(
        run_checks(
            "golden.customer_credit_codes",
            per_customer,
            [
                GxCheck(
                    "customer_single_credit_code",
                    [
                        gxe.ExpectColumnValuesToBeBetween(
                            column="distinct_valid_credit_codes", min_value=0, max_value=1
                        )
                    ],
                    key_column="customer_id",
                    extra={"conflicting_codes": conflicts},
                ),
            ],
        )
    )
    return results


def _duplicate_results(customers: pd.DataFrame, settings: QualitySettings) -> Results:
    import great_expectations.expectations as gxe

    name = "golden_duplicate_rate"
    needed = {"customer_id", "customer_name", "phone", "credit_code"}
    if not needed <= set(customers.columns) or customers.empty:
        return {name: skipped("golden.customers is empty or lacks name/phone/credit_code")}
    flags = frames.duplicate_flags(customers)
    duplicates = flags.loc[flags["is_duplicate"] == 1, "customer_id"]
    rate = float(flags["is_duplicate"].mean())
    return run_checks(
        "golden.duplicates",
        flags,
        [
            GxCheck(
                name,
                [
                    gxe.ExpectColumnMeanToBeBetween(
                        column="is_duplicate", min_value=0, max_value=settings.max_duplicate_rate
                    )
                ],
                thresholds={"max_duplicate_rate": settings.max_duplicate_rate},
                extra={
                    "duplicate_customers": len(duplicates),
                    "duplicate_rate": round(rate, 6),
                    "unexpected_keys": duplicates.head(MAX_EXAMPLES).tolist(),
                },
            )
        ],
    )


def _drift_results(
    customers: pd.DataFrame, previous: pd.DataFrame | None, settings: QualitySettings
) -> Results:
    import great_expectations.expectations as gxe

    name = "golden_distribution_drift"
    if previous is None:
        return {name: skipped("no previous snapshot")}
    distances = frames.distribution_distances(customers, previous, settings.drift_attributes)
    if distances.empty:
        return {name: skipped("no drift attribute present in both snapshots")}
    tolerance = settings.distribution_drift_tolerance
    return run_checks(
        "golden.drift",
        distances,
        [
            GxCheck(
                name,
                [
                    gxe.ExpectColumnValuesToBeBetween(
                        column="distance", min_value=0, max_value=tolerance
                    )
                ],
                key_column="attribute",
                thresholds={"max_total_variation_distance": tolerance},
                extra={"distances": distances.set_index("attribute")["distance"].to_dict()},
            )
        ],
    )

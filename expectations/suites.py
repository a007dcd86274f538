"""Great Expectations suites for the clean and golden layers, built in code (raw: ``raw_layer``)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from expectations import reference as ref
from expectations._common import Results, columns_present, skipped, to_outcomes
from expectations._dates import future_date_results
from expectations._golden_suite import GOLDEN_SUITE_RECORD_COLUMNS, validate_golden
from expectations._gx_runner import GxCheck, build_docs_site, run_checks
from expectations._offline_docs import make_offline
from expectations.outcome import CheckOutcome
from expectations.raw_layer import validate_raw
from expectations.settings import QualitySettings

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

__all__ = [
    "CLEAN_SUITE_COLUMNS",
    "GOLDEN_SUITE_RECORD_COLUMNS",
    "build_data_docs",
    "validate_clean",
    "validate_golden",
    "validate_raw",
]

CLEAN_REQUIRED_COLUMNS: tuple[str, ...] = (
    "record_key",
    "source_system",
    "source_record_id",
    "customer_name",
    "customer_type",
)
CLEAN_SUITE_COLUMNS: tuple[str, ...] = (
    *CLEAN_REQUIRED_COLUMNS,
    "source_row",
    "phone",
    "email",
    "province",
    "industry_code",
    "credit_code",
    "credit_code_valid",
    "issues",
    "registered_date",
    "updated_at",
)
"""The columns of clean.records ``validate_clean`` reads (the rest is never loaded)."""


def validate_clean(
    records: pd.DataFrame,
    known_industry_codes: Collection[str] | None = None,
    *,
    settings: QualitySettings | None = None,
) -> list[CheckOutcome]:
    """Validate clean.records: formats, value sets and required fields (suite ``clean.records``).

    Optional contract columns that are absent are recorded as skipped checks.

    Args:
        records: ``CleanResult.records``.
        known_industry_codes: Accepted ``industry_code`` values; GB/T 4754-2017 sections A–T
            when None.
        settings: Thresholds and severity overrides; defaults when None.

    Returns:
        One outcome per clean check, in catalog order.
    """
    import great_expectations.expectations as gxe

    settings = settings or QualitySettings()
    industries = sorted(known_industry_codes or ref.INDUSTRY_SECTIONS)
    provinces = sorted(ref.PROVINCES | settings.extra_known_provinces)
    results: Results = {}
    key = "record_key"
    checks = [
        columns_present("clean_required_columns", records, CLEAN_REQUIRED_COLUMNS),
        GxCheck(
            "clean_record_key_not_null",
            [gxe.ExpectColumnValuesToNotBeNull(column=key)],
            key_column="source_row",
        ),
        GxCheck(
            "clean_record_key_unique",
            [gxe.ExpectColumnValuesToBeUnique(column=key)],
            key_column=key,
        ),
        GxCheck(
            "clean_customer_name_filled",
            [
                gxe.ExpectColumnValuesToNotBeNull(
                    column="customer_name", mostly=settings.clean_min_name_fill_rate
                )
            ],
            key_column=key,
            thresholds={"mostly": settings.clean_min_name_fill_rate},
        ),
        GxCheck(
            "clean_customer_type_in_set",
            [
                gxe.ExpectColumnValuesToBeInSet(
                    column="customer_type", value_set=list(ref.CUSTOMER_TYPES)
                )
            ],
            key_column=key,
        ),
    ]
    optional: list[tuple[str, str, list[Expectation]]] = [
        (
            "clean_phone_e164",
            "phone",
            [gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=ref.E164_REGEX)],
        ),
        (
            "clean_email_format",
            "email",
            [gxe.ExpectColumnValuesToMatchRegex(column="email", regex=ref.EMAIL_REGEX)],
        ),
        (
            "clean_province_known",
            "province",
            [gxe.ExpectColumnValuesToBeInSet(column="province", value_set=provinces)],
        ),
        (
            "clean_industry_code_known",
            "industry_code",
            [gxe.ExpectColumnValuesToBeInSet(column="industry_code", value_set=industries)],
        ),
        (
            "clean_credit_code_format",
            "credit_code",
            [gxe.ExpectColumnValuesToMatchRegex(column="credit_code", regex=ref.CREDIT_CODE_REGEX)],
        ),
        ("clean_issues_json", "issues", [gxe.ExpectColumnValuesToBeJsonParseable(column="issues")]),
    ]
    for name, column, expectations in optional:
        if column in records.columns:
            checks.append(GxCheck(name, expectations, key_column=key))
        else:
            results[name] = skipped(f"column {column!r} absent")
    date_columns = [c for c in ("registered_date", "updated_at") if c in records.columns]
    if date_columns:
        checks.append(
            GxCheck(
                "clean_dates_iso",
                [
                    gxe.ExpectColumnValuesToMatchStrftimeFormat(
                        column=c, strftime_format=ref.ISO_DATE_FORMAT
                    )
                    for c in date_columns
                ],
                key_column=key,
            )
        )
    else:
        results["clean_dates_iso"] = skipped("no date column present")
    results.update(run_checks("clean.records", records, checks))
    results.update(
        future_date_results(
            "clean_dates_not_future",
            "clean.dates",
            records,
            key,
            ("registered_date", "updated_at"),
            settings or QualitySettings(),
        )
    )
    results.update(_credit_code_flags(records))
    return to_outcomes("clean", results, settings)


def build_data_docs(folder: Path) -> Path:
    """Write GX Data Docs for the suites and validations run in this process.

    The site is self-contained: the CSS/JS that GX loads from CDNs are copied in from the
    vendored ``expectations/data_docs_vendor`` and the links rewritten, so the docs render on
    an offline machine.

    Args:
        folder: Folder for the static site (created when missing).

    Returns:
        Path of the site's ``index.html``.
    """
    index = build_docs_site(folder)
    left = make_offline(index.parent)
    if left:
        log.warning("Data Docs still load %d remote asset(s): %s", len(left), ", ".join(left))
    return index


def _credit_code_flags(records: pd.DataFrame) -> Results:
    """Check ``credit_code_valid`` against the GB 32100 check digit (``clean.credit_codes``)."""
    import great_expectations.expectations as gxe

    name = "clean_credit_code_flag_consistent"
    if not {"credit_code", "credit_code_valid", "record_key"} <= set(records.columns):
        return {name: skipped("credit_code, credit_code_valid or record_key absent")}
    present = records.loc[records["credit_code"].notna(), ["record_key", "credit_code"]]
    flag = records.loc[present.index, "credit_code_valid"].astype("boolean")
    computed = ref.valid_credit_code_mask(present["credit_code"])
    agree = flag.fillna(~computed) == computed  # a missing flag disagrees with any verdict
    frame = pd.DataFrame(
        {
            "record_key": present["record_key"].astype("string"),
            "status": agree.map({True: "agree", False: "disagree"}).astype("string"),
        }
    )
    check = GxCheck(
        name,
        [gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["agree"])],
        key_column="record_key",
    )
    return run_checks("clean.credit_codes", frame, [check])

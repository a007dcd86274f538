"""Great Expectations suites for the raw, clean and golden layers, built in code."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from expectations import reference as ref
from expectations._common import Results, blank_to_null, columns_present, skipped, to_outcomes
from expectations._golden_suite import GOLDEN_SUITE_RECORD_COLUMNS, validate_golden
from expectations._gx_runner import GxCheck, build_docs_site, run_checks
from expectations.outcome import CheckOutcome
from expectations.settings import QualitySettings

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

__all__ = [
    "GOLDEN_SUITE_RECORD_COLUMNS",
    "build_data_docs",
    "validate_clean",
    "validate_golden",
    "validate_raw",
]

RAW_LINEAGE_COLUMNS: tuple[str, ...] = ("record_key", "source_system", "source_file", "source_row")
CLEAN_REQUIRED_COLUMNS: tuple[str, ...] = (
    "record_key",
    "source_system",
    "source_record_id",
    "customer_name",
    "customer_type",
)


def validate_raw(
    rows: pd.DataFrame,
    source_system: str,
    required_fields: Sequence[str],
    previous_row_count: int | None,
    band: float = 0.5,
    *,
    settings: QualitySettings | None = None,
) -> list[CheckOutcome]:
    """Validate one source's raw delivery (suite ``raw.<source_system>``).

    Args:
        rows: ``IngestResult.rows`` of one source (all text plus lineage).
        source_system: Source system name, used in the suite name and in ``observed``.
        required_fields: Canonical fields the source mapping declares required.
        previous_row_count: Row count of the last accepted delivery, or None for the first.
        band: Allowed relative change of the row count vs the last delivery (0.5 = ±50 %).
        settings: Thresholds and severity overrides; defaults when None.

    Returns:
        One outcome per raw check, in catalog order.

    Raises:
        ValueError: ``band`` is negative.
    """
    import great_expectations.expectations as gxe

    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    settings = settings or QualitySettings()
    frame = blank_to_null(rows, required_fields)
    results: Results = {}
    checks = [
        GxCheck("raw_not_empty", [gxe.ExpectTableRowCountToBeBetween(min_value=1)]),
        columns_present("raw_required_columns", frame, [*required_fields, *RAW_LINEAGE_COLUMNS]),
        GxCheck(
            "raw_record_key_not_null",
            [gxe.ExpectColumnValuesToNotBeNull(column="record_key")],
            key_column="source_row",
        ),
        GxCheck(
            "raw_record_key_unique",
            [gxe.ExpectColumnValuesToBeUnique(column="record_key")],
            key_column="source_row",
        ),
    ]
    if previous_row_count is None:
        results["raw_row_count_band"] = skipped("no previous delivery to compare with")
    else:
        low = math.floor(previous_row_count * (1 - band))
        high = math.ceil(previous_row_count * (1 + band))
        checks.append(
            GxCheck(
                "raw_row_count_band",
                [gxe.ExpectTableRowCountToBeBetween(min_value=max(low, 0), max_value=high)],
                thresholds={
                    "previous_row_count": previous_row_count,
                    "band": band,
                    "min": max(low, 0),
                    "max": high,
                },
            )
        )
    present = [f for f in dict.fromkeys(required_fields) if f in frame.columns]
    if present:
        checks.append(
            GxCheck(
                "raw_required_fields_filled",
                [
                    gxe.ExpectColumnValuesToNotBeNull(column=f, mostly=settings.raw_min_fill_rate)
                    for f in present
                ],
                thresholds={"mostly": settings.raw_min_fill_rate},
            )
        )
    else:
        results["raw_required_fields_filled"] = skipped("no required field present")
    results.update(run_checks(f"raw.{source_system}", frame, checks))
    return to_outcomes("raw", results, settings, {"source_system": source_system})


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
    results.update(_credit_code_flags(records))
    return to_outcomes("clean", results, settings)


def build_data_docs(folder: Path) -> Path:
    """Write GX Data Docs for the suites and validations run in this process.

    Args:
        folder: Folder for the static site (created when missing).

    Returns:
        Path of the site's ``index.html``.
    """
    return build_docs_site(folder)


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

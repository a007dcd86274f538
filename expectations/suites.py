"""Great Expectations suites for the clean and golden layers, built in code (raw: ``raw_layer``)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from expectations import reference as ref
from expectations._common import Results, skipped, to_outcomes
from expectations._dates import future_date_part
from expectations._golden_suite import (
    GOLDEN_ROW_CHECKS,
    GOLDEN_ROW_COLUMNS,
    GOLDEN_SUITE_RECORD_COLUMNS,
    GoldenSuiteTables,
    golden_table_results,
    validate_golden,
    validate_golden_tables,
)
from expectations._gx_import import import_gx
from expectations._gx_runner import (
    CheckPart,
    GxCheck,
    build_docs_site,
    run_check_parts,
    run_in_chunks,
)
from expectations._offline_docs import make_offline
from expectations._sql_checks import (
    ISO_DATE,
    JSON_TEXT,
    Result,
    RowFormat,
    columns_result,
    format_part,
    is_text,
    null_result,
    table_columns,
    unique_result,
)
from expectations.outcome import CheckOutcome
from expectations.raw_layer import validate_raw
from expectations.settings import QualitySettings

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

log = logging.getLogger(__name__)

__all__ = [
    "CLEAN_SUITE_COLUMNS",
    "GOLDEN_ROW_CHECKS",
    "GOLDEN_ROW_COLUMNS",
    "GOLDEN_SUITE_RECORD_COLUMNS",
    "ROW_CHECKS",
    "TABLE_CHECKS",
    "GoldenSuiteTables",
    "build_data_docs",
    "clean_table_results",
    "golden_table_results",
    "validate_clean",
    "validate_golden",
    "validate_golden_tables",
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


TABLE_CHECKS: tuple[str, ...] = (
    "clean_required_columns",
    "clean_record_key_not_null",
    "clean_record_key_unique",
    "clean_customer_name_filled",
)
"""Clean checks over the whole table (counts, uniqueness, a fill rate): DuckDB SQL."""
ROW_CHECKS: tuple[str, ...] = (
    "clean_customer_type_in_set",
    "clean_phone_e164",
    "clean_email_format",
    "clean_province_known",
    "clean_industry_code_known",
    "clean_credit_code_format",
    "clean_issues_json",
    "clean_dates_iso",
    "clean_dates_not_future",
    "clean_credit_code_flag_consistent",
)
"""Clean checks of one record at a time (GX; ``clean_dates_iso`` and ``clean_issues_json`` as
DuckDB SQL with GX's verdicts, ``_sql_checks.format_result``): a nightly run validates only the
records it cleaned plus those that failed before (``pipelines/stages/quality.py``)."""


def validate_clean(
    records: pd.DataFrame | Iterable[pd.DataFrame],
    known_industry_codes: Collection[str] | None = None,
    *,
    settings: QualitySettings | None = None,
    table: tuple[duckdb.DuckDBPyConnection, str] | None = None,
    all_failing: bool = False,
) -> list[CheckOutcome]:
    """Validate clean.records: formats, value sets and required fields (suite ``clean.records``).

    The whole-table checks (``TABLE_CHECKS``) run in DuckDB SQL over ``table`` (or over
    ``records`` when None); the per-record checks (``ROW_CHECKS``) run over ``records``, which
    may then be a subset of the table (the records cleaned this run): as Great Expectations
    suites, except the ISO-date and issues-JSON checks (SQL, same verdicts and figures).
    ``records`` may come as chunks of rows (``read_table_chunks``): the per-record checks run
    per chunk (a GX validation each) and their figures are merged in row order
    (``_gx_runner.merge_parts``), the same outcomes as over all rows at once with the memory
    of one chunk. Optional contract columns that are absent are recorded as skipped checks.

    Args:
        records: ``CleanResult.records`` (the rows the per-record checks see), or those rows
            as consecutive chunks with the same columns (then ``table`` is required).
        known_industry_codes: Accepted ``industry_code`` values; GB/T 4754-2017 sections A–T
            when None.
        settings: Thresholds and severity overrides; defaults when None.
        table: ``(connection, table name)`` of the whole clean layer for the table checks.
            The table checks run before the first chunk is read.
        all_failing: List every failing ``record_key`` of a per-record check under
            ``observed["failing_keys"]`` (the caller stores and removes them).

    Returns:
        One outcome per clean check, in catalog order.
    """
    settings = settings or QualitySettings()
    if table is None:
        if not isinstance(records, pd.DataFrame):
            raise ValueError("validate_clean: records in chunks need the table (table=…)")
        con = duckdb.connect()
        present = [c for c in CLEAN_SUITE_COLUMNS if c in records.columns]
        con.register("records", records[present].reset_index(drop=True))
        results = clean_table_results(con, "records", settings)
        con.close()
    else:
        results = clean_table_results(*table, settings)
    today = date.today()  # one reference day for every chunk
    results.update(
        run_in_chunks(
            records,
            lambda chunk: _row_parts(chunk, known_industry_codes, settings, all_failing, today),
        )
    )
    return to_outcomes("clean", results, settings)


def clean_table_results(
    con: duckdb.DuckDBPyConnection, table: str, settings: QualitySettings
) -> Results:
    """The whole-table clean checks (``TABLE_CHECKS``) as DuckDB SQL over ``table``.

    ``observed`` has the figures a GX result would have (``expectation``, ``column``,
    ``element_count``, ``unexpected_count``, examples as ``unexpected_keys``).
    """
    columns = table_columns(con, table)
    results: Results = {
        "clean_required_columns": columns_result(columns, CLEAN_REQUIRED_COLUMNS),
    }
    (total,) = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
    absent = "column {!r} absent"
    if "record_key" not in columns:
        for name in ("clean_record_key_not_null", "clean_record_key_unique"):
            results[name] = (False, {"error": absent.format("record_key")})
    else:
        row = "source_row" if "source_row" in columns else None
        results["clean_record_key_not_null"] = null_result(con, table, "record_key", total, row)
        results["clean_record_key_unique"] = unique_result(con, table, "record_key", total)
    if "customer_name" not in columns:
        results["clean_customer_name_filled"] = (False, {"error": absent.format("customer_name")})
    else:
        key = "record_key" if "record_key" in columns else None
        results["clean_customer_name_filled"] = null_result(
            con, table, "customer_name", total, key, mostly=settings.clean_min_name_fill_rate
        )
    return results


def _row_parts(
    records: pd.DataFrame,
    known_industry_codes: Collection[str] | None,
    settings: QualitySettings,
    all_failing: bool,
    today: date,
) -> dict[str, CheckPart | Result]:
    """The per-record clean checks (``ROW_CHECKS``) over ``records`` (GX, two in SQL), as parts
    (results only for the checks decided without the rows: skipped, a column absent)."""
    gxe = import_gx("great_expectations.expectations")

    industries = sorted(known_industry_codes or ref.INDUSTRY_SECTIONS)
    provinces = sorted(ref.PROVINCES | settings.extra_known_provinces)
    results: dict[str, CheckPart | Result] = {}
    key = "record_key"
    checks = []
    if "customer_type" in records.columns:
        checks.append(
            GxCheck(
                "clean_customer_type_in_set",
                [
                    gxe.ExpectColumnValuesToBeInSet(
                        column="customer_type", value_set=list(ref.CUSTOMER_TYPES)
                    )
                ],
                key_column=key,
            )
        )
    else:
        results["clean_customer_type_in_set"] = (False, {"error": "column 'customer_type' absent"})
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
    ]
    for name, column, expectations in optional:
        if column in records.columns:
            checks.append(GxCheck(name, expectations, key_column=key))
        else:
            results[name] = skipped(f"column {column!r} absent")
    formats: list[tuple[str, list[str], RowFormat, list[Expectation]]] = [
        (
            "clean_issues_json",
            [c for c in ("issues",) if c in records.columns],
            JSON_TEXT,
            [gxe.ExpectColumnValuesToBeJsonParseable(column="issues")],
        ),
        (
            "clean_dates_iso",
            [c for c in ("registered_date", "updated_at") if c in records.columns],
            ISO_DATE,
            [
                gxe.ExpectColumnValuesToMatchStrftimeFormat(
                    column=c, strftime_format=ref.ISO_DATE_FORMAT
                )
                for c in ("registered_date", "updated_at")
                if c in records.columns
            ],
        ),
    ]
    for name, columns, rule, expectations in formats:
        if not columns:
            what = "column 'issues' absent" if rule is JSON_TEXT else "no date column present"
            results[name] = skipped(what)
        elif all(is_text(records[c]) for c in columns):
            # DuckDB SQL decides the values that surely pass, Python's parser the rest: the
            # verdicts of GX's per-row strptime / json.loads at a fraction of the CPU
            results[name] = format_part(name, records, columns, rule, key, all_failing)
        else:  # dates held as dates, numbers …: GX's own result (its type error included)
            checks.append(GxCheck(name, expectations, key_column=key))
    results.update(run_check_parts("clean.records", records, checks, all_failing=all_failing))
    results["clean_dates_not_future"] = future_date_part(
        "clean_dates_not_future",
        "clean.dates",
        records,
        key,
        ("registered_date", "updated_at"),
        settings,
        today,
        all_failing=all_failing,
    )
    results["clean_credit_code_flag_consistent"] = _credit_code_flags(records, all_failing)
    return results


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


def _credit_code_flags(records: pd.DataFrame, all_failing: bool = False) -> CheckPart | Result:
    """Check ``credit_code_valid`` against the GB 32100 check digit (``clean.credit_codes``)."""
    gxe = import_gx("great_expectations.expectations")

    name = "clean_credit_code_flag_consistent"
    if not {"credit_code", "credit_code_valid", "record_key"} <= set(records.columns):
        return skipped("credit_code, credit_code_valid or record_key absent")
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
    return run_check_parts("clean.credit_codes", frame, [check], all_failing=all_failing)[name]

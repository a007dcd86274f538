"""The golden-layer suite: golden.customers, golden.crosswalk and their cross-table properties.

Whole-table checks (counts, uniqueness, fill rates, set comparisons between tables, credit
codes per customer, duplicates between customers, drift against the published state) run as
DuckDB SQL over the tables, so they cost a scan whatever a run changed. Per-customer checks
(value sets, formats, dates) run as Great Expectations suites over the rows handed in: every
customer after a full build, only the customers a nightly build staged (plus earlier failures)
after an incremental one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from expectations import reference as ref
from expectations._common import Results, skipped, to_outcomes
from expectations._dates import future_date_part
from expectations._golden_frames import duplicate_flags
from expectations._gx_import import import_gx
from expectations._gx_runner import (
    MAX_EXAMPLES,
    CheckPart,
    GxCheck,
    run_check_parts,
    run_in_chunks,
)
from expectations._sql_checks import (
    columns_result,
    null_result,
    quote,
    table_columns,
    unique_result,
)
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
GOLDEN_ROW_COLUMNS: tuple[str, ...] = (
    "customer_id", "customer_type", "tier", "lifecycle", "phone", "email", "province",
    "credit_code", "registered_date", "first_seen", "last_seen",
)  # fmt: skip
"""The golden.customers columns the per-customer checks read (the rows a caller hands in)."""
GOLDEN_ROW_CHECKS: tuple[str, ...] = (
    "golden_customer_id_format",
    "golden_customer_type_in_set",
    "golden_tier_in_set",
    "golden_lifecycle_in_set",
    "golden_dates_not_future",
    "golden_phone_e164",
    "golden_email_format",
    "golden_province_known",
    "golden_credit_code_format",
)
"""Golden checks of one customer at a time (GX): a nightly run validates only the customers it
staged plus those that failed before (``pipelines/stages/quality.py``)."""
_DATE_COLUMNS = ("registered_date", "first_seen", "last_seen")
_NULL_CATEGORY = "∅"  # nulls count as their own category in the drift shares


@dataclass(frozen=True)
class GoldenSuiteTables:
    """Where the whole-table golden checks read: relations of one DuckDB connection.

    Attributes:
        customers: the golden customers to publish (``staging.customers``).
        crosswalk: their crosswalk (``staging.crosswalk``).
        records: the clean records the crosswalk must cover (``clean.records``).
        previous: the published customers, for drift (None: nothing published yet).
    """

    customers: str = "staging.customers"
    crosswalk: str = "staging.crosswalk"
    records: str = "clean.records"
    previous: str | None = "golden.customers"


def validate_golden(
    customers: pd.DataFrame,
    crosswalk: pd.DataFrame,
    clean_records: pd.DataFrame,
    previous_customers: pd.DataFrame | None = None,
    settings: QualitySettings | None = None,
) -> list[CheckOutcome]:
    """Validate the golden layer before it is published (frames in memory).

    The frames are registered in an in-memory DuckDB for the whole-table checks; every
    customer is validated by the per-customer checks (``validate_golden_tables``).

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
    for label, frame, needed in (
        ("crosswalk", crosswalk, CROSSWALK_COLUMNS),
        ("clean_records", clean_records, ("record_key",)),
        ("customers", customers, ("customer_id",)),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} lacks column(s) {missing}; cannot validate the golden layer")
    named = {
        "_golden_customers": customers,
        "_golden_crosswalk": crosswalk,
        "_golden_records": clean_records,
    }
    if previous_customers is not None:
        named["_golden_previous"] = previous_customers
    with duckdb.connect() as con:
        for name, frame in named.items():
            con.register(name, frame.reset_index(drop=True))
        tables = GoldenSuiteTables(
            "_golden_customers",
            "_golden_crosswalk",
            "_golden_records",
            "_golden_previous" if previous_customers is not None else None,
        )
        return validate_golden_tables(con, customers, settings, tables)


def validate_golden_tables(
    con: duckdb.DuckDBPyConnection,
    rows: pd.DataFrame | Iterable[pd.DataFrame],
    settings: QualitySettings | None = None,
    tables: GoldenSuiteTables | None = None,
    *,
    all_failing: bool = False,
    today: date | None = None,
) -> list[CheckOutcome]:
    """Validate the golden layer: whole-table checks in SQL, per-customer checks over ``rows``.

    Args:
        con: the connection holding ``tables``.
        rows: the golden customers the per-customer checks (``GOLDEN_ROW_CHECKS``) see: all of
            them, or those a nightly build staged plus earlier failures; one frame or
            consecutive chunks (read after the whole-table checks ran; a GX validation per
            chunk, the figures merged in row order: the outcomes of one frame).
        settings: Thresholds and severity overrides; defaults when None.
        tables: the relations the whole-table checks read (default: the staged state).
        all_failing: List every failing ``customer_id`` of a per-customer check under
            ``observed["failing_keys"]`` (the caller stores and removes them).
        today: the reference date of the future-date check (default: today).

    Returns:
        One outcome per golden check, in catalog order.
    """
    settings = settings or QualitySettings()
    tables = tables or GoldenSuiteTables()
    results = golden_table_results(con, tables, settings)
    today = today or date.today()  # one reference day for every chunk
    results.update(
        run_in_chunks(rows, lambda chunk: golden_row_parts(chunk, settings, all_failing, today))
    )
    return to_outcomes("golden", results, settings)


def golden_row_results(
    rows: pd.DataFrame,
    settings: QualitySettings,
    *,
    all_failing: bool = False,
    today: date | None = None,
) -> Results:
    """The per-customer golden checks (``GOLDEN_ROW_CHECKS``) as GX suites over ``rows``."""
    today = today or date.today()
    return run_in_chunks(rows, lambda chunk: golden_row_parts(chunk, settings, all_failing, today))


def golden_row_parts(
    rows: pd.DataFrame, settings: QualitySettings, all_failing: bool, today: date
) -> dict[str, CheckPart | tuple[bool, dict[str, Any]]]:
    """``golden_row_results`` over one chunk of customers, as parts (``run_in_chunks``)."""
    parts: dict[str, CheckPart | tuple[bool, dict[str, Any]]] = dict(
        run_check_parts(
            "golden.customers", rows, _customer_checks(rows, settings), all_failing=all_failing
        )
    )
    parts["golden_dates_not_future"] = future_date_part(
        "golden_dates_not_future",
        "golden.dates",
        rows,
        "customer_id",
        _DATE_COLUMNS,
        settings,
        today=today,
        all_failing=all_failing,
    )
    return parts


def golden_table_results(
    con: duckdb.DuckDBPyConnection, tables: GoldenSuiteTables, settings: QualitySettings
) -> Results:
    """The whole-table golden checks as DuckDB SQL over ``tables``."""
    customers, crosswalk, records = tables.customers, tables.crosswalk, tables.records
    columns = table_columns(con, customers)
    (total,) = con.execute(f"SELECT count(*) FROM {customers}").fetchall()[0]
    (n_records,) = con.execute(f"SELECT count(*) FROM {records}").fetchall()[0]
    before = None
    if tables.previous is not None:
        (before,) = con.execute(f"SELECT count(*) FROM {tables.previous}").fetchall()[0]
    results: Results = {}
    if n_records == 0 and not before:
        # a first night on which every delivered row was quarantined: nothing to publish yet,
        # which is not a broken delivery wiping a published archive (that stays critical)
        results["golden_not_empty"] = skipped("no clean records and nothing published before")
    else:
        results["golden_not_empty"] = (
            total >= 1,
            {"expectation": "expect_table_row_count_to_be_between", "observed_value": int(total)},
        )
    results["golden_required_columns"] = columns_result(columns, GOLDEN_COLUMNS)
    key = "customer_id"
    results["golden_customer_id_not_null"] = null_result(con, customers, key, total, None)
    results["golden_customer_id_unique"] = unique_result(con, customers, key, total)
    results["golden_customer_name_not_null"] = (
        null_result(
            con, customers, "customer_name", total, key, mostly=settings.golden_min_name_fill_rate
        )
        if "customer_name" in columns
        else (False, {"error": "column 'customer_name' absent"})
    )
    results["golden_row_count_drift"] = _row_count_drift(total, before, settings)
    results["crosswalk_record_key_unique"] = unique_result(
        con, crosswalk, "record_key", _count(con, crosswalk)
    )
    results.update(
        _set_results(
            con, (crosswalk, "record_key"), (records, "record_key"),
            ("crosswalk_covers_clean_records", "crosswalk_records_in_clean"),
            ("covered", "missing_from_crosswalk", "not_in_clean"),
        )
    )  # fmt: skip
    results.update(
        _set_results(
            con, (crosswalk, "customer_id"), (customers, "customer_id"),
            ("customer_has_records", "crosswalk_customer_exists"),
            ("linked", "no_crosswalk_rows", "missing_customer"),
        )
    )  # fmt: skip
    results["customer_single_credit_code"] = _credit_codes_result(con, crosswalk, records)
    results["golden_duplicate_rate"] = _duplicate_result(con, customers, columns, total, settings)
    results["golden_distribution_drift"] = _drift_result(con, tables, settings)
    return results


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    (n,) = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
    return int(n)


def _row_count_drift(
    total: int, before: int | None, settings: QualitySettings
) -> tuple[bool, dict[str, Any]]:
    if before is None:
        return skipped("no previous snapshot")
    tolerance = settings.row_count_drift_tolerance
    low = max(math.floor(before * (1 - tolerance)), 0)
    high = math.ceil(before * (1 + tolerance))
    return low <= total <= high, {
        "expectation": "expect_table_row_count_to_be_between",
        "observed_value": int(total),
        "thresholds": {
            "previous_row_count": int(before),
            "tolerance": tolerance,
            "min": low,
            "max": high,
        },
    }


def _set_results(
    con: duckdb.DuckDBPyConnection,
    left: tuple[str, str],
    right: tuple[str, str],
    names: tuple[str, str],
    labels: tuple[str, str, str],
) -> Results:
    """Compare the distinct values of two columns (as text) in SQL.

    ``names[0]`` fails for values only on the right (``labels[1]``), ``names[1]`` for values
    only on the left (``labels[2]``); ``labels[0]`` counts values on both sides.
    """
    (ltable, lcol), (rtable, rcol) = left, right
    sides = (
        f"SELECT DISTINCT {quote(lcol)}::VARCHAR AS k FROM {ltable} WHERE {quote(lcol)} IS NOT NULL"
    )
    rside = (
        f"SELECT DISTINCT {quote(rcol)}::VARCHAR AS k FROM {rtable} WHERE {quote(rcol)} IS NOT NULL"
    )
    both, right_only, left_only, right_keys, left_keys = con.execute(
        f"SELECT count(*) FILTER (l.k IS NOT NULL AND r.k IS NOT NULL),"
        f" count(*) FILTER (l.k IS NULL), count(*) FILTER (r.k IS NULL),"
        f" list(r.k ORDER BY r.k) FILTER (l.k IS NULL)[1:{MAX_EXAMPLES}],"
        f" list(l.k ORDER BY l.k) FILTER (r.k IS NULL)[1:{MAX_EXAMPLES}]"
        f" FROM ({sides}) AS l FULL JOIN ({rside}) AS r ON l.k = r.k"
    ).fetchall()[0]
    counts = {labels[0]: both, labels[1]: right_only, labels[2]: left_only}
    status_counts = {k: int(v) for k, v in counts.items() if v}
    total = int(both + right_only + left_only)
    out: Results = {}
    for name, label, n, keys in (
        (names[0], labels[1], right_only, right_keys),
        (names[1], labels[2], left_only, left_keys),
    ):
        observed: dict[str, Any] = {
            "expectation": "expect_column_values_to_not_be_in_set",
            "column": "status",
            "element_count": total,
            "unexpected_count": int(n),
        }
        if n:
            observed.update({"unexpected_examples": [label], "unexpected_keys": keys})
        observed["status_counts"] = status_counts
        out[name] = (n == 0, observed)
    return out


def _credit_codes_result(
    con: duckdb.DuckDBPyConnection, crosswalk: str, records: str
) -> tuple[bool, dict[str, Any]]:
    """No customer holds two distinct valid credit codes among its records.

    SQL finds the customers with two distinct codes at all (valid or not, few); only their
    codes are checked for validity (GB 32100 check digit) in Python.
    """
    if "credit_code" not in table_columns(con, records):
        return skipped("clean_records has no credit_code")
    linked = (
        f"SELECT DISTINCT x.customer_id::VARCHAR AS customer_id, r.credit_code::VARCHAR AS code"
        f" FROM {crosswalk} AS x JOIN {records} AS r ON x.record_key = r.record_key"
        " WHERE x.customer_id IS NOT NULL AND r.credit_code IS NOT NULL"
    )
    (customers,) = con.execute(
        f"SELECT count(DISTINCT customer_id) FROM {crosswalk}"
        " WHERE customer_id IS NOT NULL AND record_key IS NOT NULL"
    ).fetchall()[0]
    codes = con.execute(
        f"WITH l AS ({linked}) SELECT customer_id, code FROM l WHERE customer_id IN"
        " (SELECT customer_id FROM l GROUP BY customer_id HAVING count(*) > 1)"
    ).df()
    codes = codes[ref.valid_credit_code_mask(codes["code"])]
    per_customer = codes.groupby("customer_id")["code"].nunique()
    bad = per_customer[per_customer > 1].sort_index()
    observed: dict[str, Any] = {
        "expectation": "expect_column_values_to_be_between",
        "column": "distinct_valid_credit_codes",
        "element_count": int(customers),
        "unexpected_count": len(bad),
    }
    if len(bad):
        observed["unexpected_examples"] = sorted({int(v) for v in bad.head(MAX_EXAMPLES)})
        observed["unexpected_keys"] = bad.index[:MAX_EXAMPLES].tolist()
    observed["conflicting_codes"] = {
        str(cid): sorted(codes.loc[codes["customer_id"] == cid, "code"].unique().tolist())
        for cid in bad.index[:5]
    }
    return bad.empty, observed


def _duplicate_result(
    con: duckdb.DuckDBPyConnection,
    customers: str,
    columns: Sequence[str],
    total: int,
    settings: QualitySettings,
) -> tuple[bool, dict[str, Any]]:
    """The share of customers sharing a valid credit code or (name, phone) with another.

    SQL picks the customers whose raw credit code or phone another customer also holds (every
    holder of a shared key, few); ``duplicate_flags`` decides exactly among them.
    """
    needed = ("customer_id", "customer_name", "phone", "credit_code")
    if not set(needed) <= set(columns) or total == 0:
        return skipped("golden.customers is empty or lacks name/phone/credit_code")

    def shared(col: str) -> str:
        return (
            f"{col} IN (SELECT {col} FROM {customers} WHERE {col} IS NOT NULL"
            f" GROUP BY {col} HAVING count(DISTINCT customer_id) > 1)"
        )

    candidates = con.execute(
        f"SELECT customer_id, customer_name, phone, credit_code FROM {customers}"
        f" WHERE {shared('credit_code')} OR {shared('phone')} ORDER BY customer_id"
    ).df()
    flags = duplicate_flags(candidates)
    duplicates = flags.loc[flags["is_duplicate"] == 1, "customer_id"]
    rate = len(duplicates) / total
    limit = settings.max_duplicate_rate
    return 0 <= rate <= limit, {
        "expectation": "expect_column_mean_to_be_between",
        "column": "is_duplicate",
        "observed_value": rate,
        "thresholds": {"max_duplicate_rate": limit},
        "duplicate_customers": len(duplicates),
        "duplicate_rate": round(rate, 6),
        "unexpected_keys": duplicates.head(MAX_EXAMPLES).tolist(),
    }


def _drift_result(
    con: duckdb.DuckDBPyConnection, tables: GoldenSuiteTables, settings: QualitySettings
) -> tuple[bool, dict[str, Any]]:
    """Total-variation distance of each drift attribute between the new and published state."""
    if tables.previous is None:
        return skipped("no previous snapshot")
    now_cols = set(table_columns(con, tables.customers))
    before_cols = set(table_columns(con, tables.previous))
    rows = []
    for attribute in settings.drift_attributes:
        if attribute not in now_cols or attribute not in before_cols:
            continue
        now = _shares(con, tables.customers, attribute)
        before = _shares(con, tables.previous, attribute)
        distance = sum(abs(now.get(k, 0.0) - before.get(k, 0.0)) for k in now.keys() | before)
        rows.append((attribute, round(distance / 2.0, 6)))
    if not rows:
        return skipped("no drift attribute present in both snapshots")
    tolerance = settings.distribution_drift_tolerance
    over = [(a, d) for a, d in rows if d > tolerance]
    observed: dict[str, Any] = {
        "expectation": "expect_column_values_to_be_between",
        "column": "distance",
        "element_count": len(rows),
        "unexpected_count": len(over),
    }
    if over:
        observed["unexpected_examples"] = [d for _, d in over][:MAX_EXAMPLES]
        observed["unexpected_keys"] = [a for a, _ in over][:MAX_EXAMPLES]
    observed["thresholds"] = {"max_total_variation_distance": tolerance}
    observed["distances"] = dict(rows)
    return not over, observed


def _shares(con: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[str, float]:
    """Each value's share of ``table`` (nulls as their own category)."""
    pairs = con.execute(
        f"SELECT coalesce({quote(column)}::VARCHAR, ?), count(*) FROM {table} GROUP BY ALL",
        [_NULL_CATEGORY],
    ).fetchall()
    n = sum(c for _, c in pairs)
    return {str(v): c / n for v, c in pairs} if n else {}


def _customer_checks(rows: pd.DataFrame, settings: QualitySettings) -> list[GxCheck]:
    """The per-customer GX checks of ``golden.customers`` (``GOLDEN_ROW_CHECKS`` but dates)."""
    gxe = import_gx("great_expectations.expectations")

    key = "customer_id"
    provinces = sorted(ref.PROVINCES | settings.extra_known_provinces)

    def check(name: str, expectation: object) -> GxCheck:
        return GxCheck(name, [expectation], key_column=key)  # type: ignore[list-item]

    return [
        check(
            "golden_customer_id_format",
            gxe.ExpectColumnValuesToMatchRegex(column=key, regex=ref.CUSTOMER_ID_REGEX),
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

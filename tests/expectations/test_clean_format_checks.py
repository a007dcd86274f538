"""clean_dates_iso and clean_issues_json: bad dates and bad JSON give the verdicts, counts,
examples and gating the Great Expectations path (strptime / json.loads per row) gave."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations import blocking_failures, validate_clean

pytestmark = pytest.mark.usefixtures("gx")

# (registered_date, updated_at, issues) of records bad-1 … bad-9, appended to the good ones
BAD_ROWS = [
    ("2026-02-30", "2024-03-01", "[]"),  # not a real day
    ("2026-1-5", None, "[{broken"),  # one-digit month and day: strptime accepts them
    ("20261105", "2024-03-01", ""),  # no dashes; empty text is not JSON
    ("", "2025-02-29", "[1,]"),  # empty; not a leap year; trailing comma
    (None, "2024-13-01", "nan"),  # NULL is not checked; month 13; not Python's NaN
    ("2024-02-29", "2024-3-01 ", "NaN"),  # leap day; trailing space; NaN is Python JSON
    ("0000-01-01", "2024-01- 5", None),  # year 0; space-padded day passes strptime
    ("2026-02-30", "２０２４-０３-０１", '{"a": 1}'),  # repeated bad value; full-width digits
    ("9999-12-31", "2024-03-01T00:00", '"\\ud800"'),  # time part left over; lone surrogate
]


@pytest.fixture()
def bad_records(clean_records: pd.DataFrame) -> pd.DataFrame:
    extra = pd.concat([clean_records.iloc[[0]]] * len(BAD_ROWS), ignore_index=True)
    extra["record_key"] = [f"bad-{i}" for i in range(1, len(BAD_ROWS) + 1)]
    extra["source_row"] = range(101, 101 + len(BAD_ROWS))
    for column, values in zip(
        ("registered_date", "updated_at", "issues"), zip(*BAD_ROWS, strict=True), strict=True
    ):
        extra[column] = pd.array(values, dtype="string")
    return pd.concat([clean_records, extra], ignore_index=True)


def test_bad_dates_fail_as_strptime_decides(bad_records: pd.DataFrame) -> None:
    outcomes = {o.name: o for o in validate_clean(bad_records, all_failing=True)}
    dates = outcomes["clean_dates_iso"]
    assert not dates.success and dates.critical
    assert dates in blocking_failures([dates])
    assert dates.observed == EXPECTED_DATES


def test_bad_json_fails_as_json_loads_decides(bad_records: pd.DataFrame) -> None:
    outcomes = {o.name: o for o in validate_clean(bad_records, all_failing=True)}
    issues = outcomes["clean_issues_json"]
    assert not issues.success and not issues.critical
    assert issues.observed == EXPECTED_JSON
    assert "clean_issues_json" not in {o.name for o in blocking_failures(list(outcomes.values()))}


def test_good_dates_and_json_pass_with_counts(clean_records: pd.DataFrame) -> None:
    outcomes = {o.name: o for o in validate_clean(clean_records, all_failing=True)}
    assert outcomes["clean_dates_iso"].success and outcomes["clean_issues_json"].success
    assert outcomes["clean_issues_json"].observed == GOOD_JSON
    assert outcomes["clean_dates_iso"].observed == GOOD_DATES


def test_one_date_column_reports_flat(clean_records: pd.DataFrame) -> None:
    frame = clean_records.drop(columns=["updated_at"])
    frame.loc[frame.index[1], "registered_date"] = "2021-3-4x"
    outcome = {o.name: o for o in validate_clean(frame)}["clean_dates_iso"]
    assert not outcome.success
    assert outcome.observed == ONE_COLUMN


# figures the Great Expectations path (strptime / json.loads per row) reported
EXPECTED_DATES = {
    "expectations": [
        {
            "expectation": "expect_column_values_to_match_strftime_format",
            "column": "registered_date",
            "success": False,
            "element_count": 15,
            "unexpected_count": 5,
            "missing_count": 4,
        },
        {
            "expectation": "expect_column_values_to_match_strftime_format",
            "column": "updated_at",
            "success": False,
            "element_count": 15,
            "unexpected_count": 5,
            "missing_count": 4,
        },
    ],
    "unexpected_count": 10,
    "unexpected_examples": ["2026-02-30", "20261105", "", "0000-01-01", "2025-02-29"],
    "unexpected_keys": ["bad-1", "bad-3", "bad-4", "bad-7", "bad-8"],
    "failing_keys": ["bad-1", "bad-3", "bad-4", "bad-5", "bad-6", "bad-7", "bad-8", "bad-9"],
}
EXPECTED_JSON = {
    "expectation": "expect_column_values_to_be_json_parseable",
    "column": "issues",
    "element_count": 15,
    "unexpected_count": 4,
    "missing_count": 1,
    "unexpected_examples": ["[{broken", "", "[1,]", "nan"],
    "unexpected_keys": ["bad-2", "bad-3", "bad-4", "bad-5"],
    "failing_keys": ["bad-2", "bad-3", "bad-4", "bad-5"],
}
GOOD_JSON = {
    "expectation": "expect_column_values_to_be_json_parseable",
    "column": "issues",
    "element_count": 6,
    "unexpected_count": 0,
    "missing_count": 0,
    "failing_keys": [],
}
GOOD_DATES = {
    "expectations": [
        {
            "expectation": "expect_column_values_to_match_strftime_format",
            "column": "registered_date",
            "success": True,
            "element_count": 6,
            "unexpected_count": 0,
            "missing_count": 3,
        },
        {
            "expectation": "expect_column_values_to_match_strftime_format",
            "column": "updated_at",
            "success": True,
            "element_count": 6,
            "unexpected_count": 0,
            "missing_count": 3,
        },
    ],
    "unexpected_count": 0,
    "failing_keys": [],
}
ONE_COLUMN = {
    "expectation": "expect_column_values_to_match_strftime_format",
    "column": "registered_date",
    "element_count": 6,
    "unexpected_count": 1,
    "missing_count": 2,
    "unexpected_examples": ["2021-3-4x"],
    "unexpected_keys": ["sales:S-9"],
}


TRICKY_DATES = [
    "2024-02-29", "2023-02-29", "2024-1-5", "2024-01- 5", "2024-1-05", " 2024-01-05",
    "2024-01-05 ", "0001-01-01", "0000-12-31", "99999-01-01", "2024-00-10", "2024-12-00",
    "2024-04-31", "2024-12-31x", "2024/12/31", "", "２０２４-０１-０５", "٢٠٢٤-01-05",
]  # fmt: skip
TRICKY_JSON = [
    "[]", "[1,]", '{"a":1,}', '["a,]"]', "NaN", "nan", "-Infinity", "inf", "[1e999]",
    '"\\ud800"', "[] []", "", " [] ", "\ufeff[]", '{"a":1,"a":2}', "[" * 1200 + "]" * 1200,
    '[{"code": "info"}]', "01", "'a'", '"a\\tb"', "null",
    # nan/inf inside strings (SQL decides) and as bare literals after each separator
    '[{"field": "customer_type", "code": "customer_type_inferred", "detail": null}]',
    '["nan"]', '{"inf": 1}', '["a,inf"]', '["x:NaN"]', "[inf]", "[ inf]", "[\tNaN]", "[\ninf]",
    '{"a":nan}', '{"a": -inf}', "[+inf]", "[-nan]", "[1,inf]", "[1, Infinity]", "[Infinity]",
    "[NaN]", "  NaN", "-Infinity ", "[/*c*/inf]", "[1]//c", "[0x10]", "{a:1}", "[.5]", "[5.]",
    "\f[]", "[1\f]", "[true,false,null]", "[-0]", '["\\u0000"]', "[1,\n]",
]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "expectation"),
    [
        (TRICKY_DATES, "date"),
        (TRICKY_JSON, "json"),
    ],
)
def test_sql_formats_agree_with_great_expectations(values: list[str], expectation: str) -> None:
    """Value by value, the SQL path and GX's own expectation fail the same rows."""
    import great_expectations.expectations as gxe

    from expectations._gx_runner import GxCheck, run_checks
    from expectations._sql_checks import ISO_DATE, JSON_TEXT, format_result

    frame = pd.DataFrame(
        {"k": [f"k{i}" for i in range(len(values))], "v": pd.array(values, dtype="string")}
    )
    if expectation == "date":
        rule, gx = (
            ISO_DATE,
            gxe.ExpectColumnValuesToMatchStrftimeFormat(column="v", strftime_format="%Y-%m-%d"),
        )
    else:
        rule, gx = JSON_TEXT, gxe.ExpectColumnValuesToBeJsonParseable(column="v")
    sql = format_result(frame, ["v"], rule, "k", all_failing=True)
    want = run_checks("test.formats", frame, [GxCheck("c", [gx], key_column="k")], True)["c"]
    assert sql == want
    assert 0 < sql[1]["unexpected_count"] < len(values)


def test_dates_held_as_dates_keep_the_great_expectations_error(clean_records) -> None:
    frame = clean_records.copy()
    frame["registered_date"] = pd.to_datetime(frame["registered_date"])
    outcome = {o.name: o for o in validate_clean(frame)}["clean_dates_iso"]
    assert not outcome.success and "string" in outcome.observed["error"]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"k": pd.Series([], dtype="str"), "v": pd.Series([], dtype="str")}),
        pd.DataFrame({"k": ["a", "b"], "v": pd.Series([None, None], dtype=object)}),
        pd.DataFrame(
            {"k": ["a", "b", None], "v": pd.Series([float("nan"), "2024-1-32", "x"], dtype=object)}
        ),
    ],
    ids=["no rows", "all null", "object column, NaN and a null key"],
)
def test_sql_formats_agree_on_empty_and_null(frame: pd.DataFrame) -> None:
    import great_expectations.expectations as gxe

    from expectations._gx_runner import GxCheck, run_checks
    from expectations._sql_checks import ISO_DATE, JSON_TEXT, format_result

    for rule, gx in (
        (
            ISO_DATE,
            gxe.ExpectColumnValuesToMatchStrftimeFormat(column="v", strftime_format="%Y-%m-%d"),
        ),
        (JSON_TEXT, gxe.ExpectColumnValuesToBeJsonParseable(column="v")),
    ):
        want = run_checks("test.formats", frame, [GxCheck("c", [gx], key_column="k")], True)["c"]
        assert format_result(frame, ["v"], rule, "k", all_failing=True) == want


@pytest.mark.parametrize("rule_name", ["ISO_DATE", "JSON_TEXT"])
def test_what_sql_passes_python_passes_too(rule_name: str) -> None:
    """The SQL condition only ever passes values Python's parser passes (the rest it leaves to
    Python), and the issues lists the cleaner writes are decided in SQL."""
    import duckdb

    from expectations import _sql_checks

    rule = getattr(_sql_checks, rule_name)
    values = TRICKY_DATES if rule_name == "ISO_DATE" else TRICKY_JSON
    con = duckdb.connect()
    con.register("_v", pd.DataFrame({"v": pd.array(values, dtype="string")}))
    passed = [v for (v,) in con.execute(f"SELECT v FROM _v WHERE {rule.surely_valid}").fetchall()]
    assert passed and all(rule.valid(v) for v in passed)
    if rule_name == "JSON_TEXT":
        assert '[{"field": "customer_type", "code": "customer_type_inferred", "detail": null}]' in (
            passed
        )

"""The clean and raw suites: each critical rule fails on a broken frame, warnings never block."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from expectations import CHECKS, blocking_failures, validate_clean, validate_raw

pytestmark = pytest.mark.usefixtures("gx")


def _by_name(outcomes: list) -> dict:
    return {o.name: o for o in outcomes}


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[row], column] = value
    return frame


def test_good_clean_records_pass(clean_records: pd.DataFrame) -> None:
    outcomes = validate_clean(clean_records)
    assert {o.name: o.observed for o in outcomes if not o.success} == {}
    assert {o.name for o in outcomes} == {n for n, s in CHECKS.items() if s.layer == "clean"}


CLEAN_CASES = [
    # (check, column, bad value, row) — each defect is one cleaning bug
    ("clean_record_key_unique", "record_key", "crm:1", 1),
    ("clean_record_key_not_null", "record_key", None, 2),
    ("clean_customer_type_in_set", "customer_type", "个人", 3),
    ("clean_phone_e164", "phone", "13912345678", 0),  # national form, not E.164
    ("clean_email_format", "email", "Info@XingChen.cn", 0),  # not lowercased
    ("clean_email_format", "email", "info.xingchen.cn", 0),  # no @
    ("clean_dates_iso", "registered_date", "2021/03/04", 0),
    ("clean_dates_iso", "updated_at", "2023-02-29", 0),  # not a real date
    ("clean_province_known", "province", "北京", 0),  # short form
    ("clean_industry_code_known", "industry_code", "Z", 0),
]


@pytest.mark.parametrize(
    ("check", "column", "value", "row"), CLEAN_CASES, ids=[f"{c[0]}:{c[2]}" for c in CLEAN_CASES]
)
def test_clean_critical_checks_fail_and_block(clean_records, check, column, value, row) -> None:
    outcome = _by_name(validate_clean(_set(clean_records, row, column, value)))[check]
    assert outcome.critical and not outcome.success
    assert outcome in blocking_failures([outcome])


def test_clean_critical_cases_cover_the_catalog() -> None:
    critical = {n for n, s in CHECKS.items() if s.layer == "clean" and s.critical}
    assert critical - {"clean_required_columns"} == {c[0] for c in CLEAN_CASES}


def test_clean_missing_required_column_blocks(clean_records) -> None:
    outcome = _by_name(validate_clean(clean_records.drop(columns=["customer_type"])))[
        "clean_required_columns"
    ]
    assert not outcome.success and outcome.critical
    assert outcome.observed["missing_columns"] == ["customer_type"]


WARNING_CASES = [
    ("clean_credit_code_format", "credit_code", "9111010812345", 0),
    ("clean_credit_code_flag_consistent", "credit_code_valid", False, 0),  # code is valid
    ("clean_issues_json", "issues", "[{broken", 0),
    ("clean_customer_name_filled", "customer_name", None, 0),  # 1 of 6 missing < 95 %
    ("clean_dates_not_future", "updated_at", str(date.today().year + 2) + "-01-15", 0),
    ("clean_dates_not_future", "registered_date", str(date.today().year + 1) + "-12-31", 1),
]


@pytest.mark.parametrize(
    ("check", "column", "value", "row"), WARNING_CASES, ids=[c[0] for c in WARNING_CASES]
)
def test_clean_warnings_fail_without_blocking(clean_records, check, column, value, row) -> None:
    outcomes = validate_clean(_set(clean_records, row, column, value))
    outcome = _by_name(outcomes)[check]
    assert not outcome.success and not outcome.critical
    assert blocking_failures(outcomes) == []


def test_unknown_industry_accepted_when_configured(clean_records) -> None:
    frame = _set(clean_records, 0, "industry_code", "I65")
    outcomes = _by_name(validate_clean(frame, known_industry_codes={"I65", "F", "I"}))
    assert outcomes["clean_industry_code_known"].success


def test_absent_optional_column_is_recorded_as_skipped(clean_records) -> None:
    outcome = _by_name(validate_clean(clean_records.drop(columns=["email"])))["clean_email_format"]
    assert outcome.success
    assert outcome.observed == {"skipped": "column 'email' absent"}


def _raw_warehouse(rows_read: int = 6, quarantined: int = 0) -> duckdb.DuckDBPyConnection:
    """raw.crm with one delivery of run r1 (6 rows) and its manifest row."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA ops; CREATE SCHEMA quarantine")
    con.execute(
        "CREATE TABLE raw.crm (source_record_id VARCHAR, customer_name VARCHAR, phone VARCHAR, "
        "record_key VARCHAR, source_system VARCHAR, source_file VARCHAR, source_row BIGINT, "
        "source_sha256 VARCHAR, ingested_at VARCHAR, extra VARCHAR, run_id VARCHAR, "
        "active BOOLEAN)"
    )
    con.execute(
        "CREATE TABLE ops.deliveries (source_system VARCHAR, path VARCHAR, size BIGINT, "
        "sha256 VARCHAR, status VARCHAR, run_id VARCHAR, rows_read BIGINT, note VARCHAR)"
    )
    con.execute(
        "CREATE TABLE quarantine.rows (source_system VARCHAR, source_file VARCHAR, "
        "source_row BIGINT, raw_content VARCHAR, reason VARCHAR, run_id VARCHAR)"
    )
    _deliver(con, "r1", "crm/2024-03-15/crm.csv", 6, rows_read=rows_read)
    for i in range(quarantined):
        con.execute(
            "INSERT INTO quarantine.rows VALUES ('crm', 'crm/2024-03-15/crm.csv', ?, '{}', "
            "'empty key', 'r1')",
            [100 + i],
        )
    return con


def _deliver(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    path: str,
    n: int,
    rows_read: int | None = None,
    first_id: int = 1,
) -> None:
    for i in range(n):
        rid = f"C{first_id + i}"
        con.execute(
            "INSERT INTO raw.crm VALUES (?, ?, ?, ?, 'crm', ?, ?, 'abc', '2024-03-15T02:00:00', "
            "'{}', ?, true)",
            [rid, f"公司{i}", f"+86139000000{i:02d}", f"crm:{rid}", path, i + 1, run_id],
        )
    con.execute(
        "INSERT INTO ops.deliveries VALUES ('crm', ?, 10, ?, 'new', ?, ?, '')",
        [path, f"sha-{path}", run_id, n if rows_read is None else rows_read],
    )


def _raw(con: duckdb.DuckDBPyConnection, run_id: str = "r1") -> dict:
    return _by_name(validate_raw(con, "crm", ["source_record_id", "customer_name"], run_id))


def test_good_raw_layer_passes() -> None:
    outcomes = _raw(_raw_warehouse(quarantined=0))
    assert {n: o.observed for n, o in outcomes.items() if not o.success} == {}
    assert set(outcomes) == {n for n, s in CHECKS.items() if s.layer == "raw"}
    assert all(o.observed["source_system"] == "crm" for o in outcomes.values())


def test_quarantined_rows_reconcile() -> None:
    outcome = _raw(_raw_warehouse(rows_read=8, quarantined=2))["raw_rows_reconciled"]
    assert outcome.success and outcome.critical
    assert outcome.observed["deliveries"][0] == {
        "file": "crm/2024-03-15/crm.csv", "rows_read": 8, "ingested": 6, "quarantined": 2
    }  # fmt: skip


def test_source_with_nothing_new_passes() -> None:
    """A second run with no new delivery: delivery checks pass as skipped, layer checks run."""
    outcomes = _raw(_raw_warehouse(), run_id="r2")
    assert all(o.success for o in outcomes.values())
    for name in ("raw_rows_reconciled", "raw_delivery_not_empty", "raw_row_count_band"):
        assert outcomes[name].observed["skipped"] == "no new delivery in this run"
    assert outcomes["raw_lineage_not_null"].observed["active_rows"] == 6


def test_a_later_version_of_a_record_is_not_a_duplicate() -> None:
    """The same record_key in a later delivery is a new version (#15), not a key clash."""
    con = _raw_warehouse()
    _deliver(con, "r2", "crm/2024-03-16/crm.csv", 5)  # C1..C5 again, one day later
    outcomes = _raw(con, run_id="r2")
    assert outcomes["raw_record_key_unique"].success
    assert outcomes["raw_row_count_band"].success  # 5 rows vs 6 last time


RAW_BREAKS = [
    ("raw_lineage_not_null", "UPDATE raw.crm SET source_file = NULL WHERE source_row = 2"),
    ("raw_lineage_not_null", "UPDATE raw.crm SET run_id = NULL WHERE source_row = 2"),
    ("raw_record_key_format", "UPDATE raw.crm SET record_key = 'C3' WHERE source_row = 3"),
    ("raw_record_key_format", "UPDATE raw.crm SET record_key = 'erp:C3' WHERE source_row = 3"),
    ("raw_record_key_unique", "UPDATE raw.crm SET record_key = 'crm:C1', source_record_id = 'C1'"
     " WHERE source_row = 4"),
    ("raw_rows_reconciled", "DELETE FROM raw.crm WHERE source_row = 5"),
    ("raw_required_columns", "ALTER TABLE raw.crm DROP COLUMN source_sha256"),
    ("raw_required_columns", "ALTER TABLE raw.crm DROP COLUMN customer_name"),
]  # fmt: skip


@pytest.mark.parametrize(("check", "sql"), RAW_BREAKS, ids=[f"{c}:{i}" for i, (c, _) in
                         enumerate(RAW_BREAKS)])  # fmt: skip
def test_raw_structural_checks_fail_and_block(check: str, sql: str) -> None:
    con = _raw_warehouse()
    con.execute(sql)
    outcomes = validate_raw(con, "crm", ["source_record_id", "customer_name"], "r1")
    outcome = _by_name(outcomes)[check]
    assert outcome.critical and not outcome.success, outcome.observed
    assert outcome in blocking_failures(outcomes)


def test_superseded_rows_are_not_checked() -> None:
    con = _raw_warehouse()
    con.execute("UPDATE raw.crm SET record_key = 'bad', active = false WHERE source_row = 3")
    assert _raw(con)["raw_record_key_format"].success


def test_raw_critical_cases_cover_the_catalog() -> None:
    critical = {n for n, s in CHECKS.items() if s.layer == "raw" and s.critical}
    assert critical == {c for c, _ in RAW_BREAKS}


@pytest.mark.parametrize(
    ("check", "n", "rows_read"),
    [("raw_row_count_band", 2, None), ("raw_row_count_band", 30, None),
     ("raw_delivery_not_empty", 0, 0)],
    ids=["shrunk", "grew", "empty"],
)  # fmt: skip
def test_volume_checks_are_warnings(check: str, n: int, rows_read: int | None) -> None:
    con = _raw_warehouse()
    _deliver(con, "r2", "crm/2024-03-16/crm.csv", n, rows_read=rows_read, first_id=100)
    outcomes = validate_raw(con, "crm", ["source_record_id", "customer_name"], "r2")
    outcome = _by_name(outcomes)[check]
    assert not outcome.success and not outcome.critical
    assert blocking_failures(outcomes) == []


def test_a_small_delta_after_the_initial_load_is_not_a_volume_warning() -> None:
    """A delta source's nightly delivery holds the night's changes: 2 rows after a load of 6."""
    con = _raw_warehouse()
    _deliver(con, "r2", "crm/2024-03-16/crm.csv", 2, first_id=100)
    required = ["source_record_id", "customer_name"]
    as_delta = _by_name(validate_raw(con, "crm", required, "r2", delivery="delta"))
    assert as_delta["raw_row_count_band"].success
    assert "delta" in as_delta["raw_row_count_band"].observed["skipped"]
    # the same delivery from a source that re-exports its whole table is a shrunken export
    as_full = _by_name(validate_raw(con, "crm", required, "r2", delivery="full"))
    assert not as_full["raw_row_count_band"].success


def _band(con: duckdb.DuckDBPyConnection, run_id: str = "r2"):
    return _raw(con, run_id)["raw_row_count_band"]


def test_two_whole_exports_in_one_night_are_each_compared_with_the_previous_delivery() -> None:
    """Issue #15: a late export and the night's own (12 rows against 6) are two deliveries."""
    con = _raw_warehouse()  # r1: crm/2024-03-15, 6 rows
    _deliver(con, "r2", "crm/2024-03-10/crm.csv", 6)  # late, an older date
    _deliver(con, "r2", "crm/2024-03-16/crm.csv", 5)
    outcome = _band(con)
    assert outcome.success, outcome.observed
    assert outcome.observed["deliveries"] == [
        {"delivery": "2024-03-10", "rows": 6}, {"delivery": "2024-03-16", "rows": 5}
    ]  # fmt: skip
    assert outcome.observed["previous_delivery"] == "2024-03-15"
    assert outcome.observed["previous_rows"] == 6


def test_a_shrunk_export_beside_a_normal_one_still_fails() -> None:
    con = _raw_warehouse()
    _deliver(con, "r2", "crm/2024-03-10/crm.csv", 6)
    _deliver(con, "r2", "crm/2024-03-16/crm.csv", 2, first_id=50)  # truncated
    outcome = _band(con)
    assert not outcome.success and not outcome.critical
    assert outcome.observed["unexpected_keys"] == ["2024-03-16: 2 rows"]


def test_a_delivery_split_into_files_of_one_date_counts_as_one() -> None:
    con = _raw_warehouse()
    _deliver(con, "r2", "crm/2024-03-16/part1.csv", 2)  # alone, 2 of 6 rows would fail
    _deliver(con, "r2", "crm/2024-03-16/part2.csv", 4, first_id=3)
    outcome = _band(con)
    assert outcome.success, outcome.observed
    assert outcome.observed["deliveries"] == [{"delivery": "2024-03-16", "rows": 6}]


def test_the_previous_delivery_is_the_newest_dated_one_not_late_or_withdrawn() -> None:
    con = _raw_warehouse()  # r1: 2024-03-15, 6 rows
    _deliver(con, "r2", "crm/2024-03-01/crm.csv", 2)  # a late, small, old export
    _deliver(con, "r3", "crm/2024-03-16/crm.csv", 20, first_id=10)  # a doubled export ...
    con.execute(
        "CREATE TABLE ops.withdrawn_deliveries AS SELECT 'crm' AS source_system,"
        " 'crm/2024-03-16/crm.csv' AS path, 'sha-crm/2024-03-16/crm.csv' AS sha256"
    )  # ... withdrawn
    _deliver(con, "r4", "crm/2024-03-17/crm.csv", 6)
    outcome = _band(con, "r4")
    assert outcome.success, outcome.observed
    assert outcome.observed["previous_delivery"] == "2024-03-15"
    assert outcome.observed["previous_run_id"] == "r1"


def test_raw_blank_required_field_is_a_warning() -> None:
    con = _raw_warehouse()
    con.execute("UPDATE raw.crm SET customer_name = '  ' WHERE source_row <= 4")
    outcomes = validate_raw(con, "crm", ["source_record_id", "customer_name"], "r1")
    outcome = _by_name(outcomes)["raw_required_fields_filled"]
    assert not outcome.success and not outcome.critical
    assert outcome.observed["unexpected_keys"] == ["customer_name"]
    assert blocking_failures(outcomes) == []


def test_a_date_of_tomorrow_is_within_the_slack(clean_records) -> None:
    """Deliveries are stamped in Asia/Shanghai, a day ahead of UTC at night: one day's slack."""
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    outcome = _by_name(validate_clean(_set(clean_records, 0, "updated_at", tomorrow)))[
        "clean_dates_not_future"
    ]
    assert outcome.success


def test_per_row_checks_see_this_runs_rows_and_earlier_failures_until_withdrawn() -> None:
    """The per-row checks read the night's rows, not the whole raw layer; a delivery that
    failed one is checked again every run (it keeps blocking) until it is withdrawn."""
    con = _raw_warehouse()
    _deliver(con, "r2", "crm/2024-03-16/crm.csv", 4)  # the same C1..C4 again: new versions
    con.execute(  # r2's file repeats a key: a critical failure
        "UPDATE raw.crm SET record_key = 'crm:C1', source_record_id = 'C1'"
        " WHERE run_id = 'r2' AND source_row = 2"
    )
    failed = _raw(con, run_id="r2")["raw_record_key_unique"]
    assert not failed.success and failed.observed["failing_runs"] == ["r2"]
    lineage = _raw(con, run_id="r2")["raw_lineage_not_null"].observed
    assert (lineage["rows_checked"], lineage["active_rows"]) == (4, 10)

    # the next run delivers good rows: r2 is checked again and still blocks
    _deliver(con, "r3", "crm/2024-03-17/crm.csv", 3, first_id=50)
    outcomes = _by_name(
        validate_raw(con, "crm", ["source_record_id", "customer_name"], "r3", recheck_runs=["r2"])
    )
    assert not outcomes["raw_record_key_unique"].success
    assert outcomes["raw_record_key_unique"].observed["failing_runs"] == ["r2"]
    assert outcomes["raw_lineage_not_null"].observed["rows_checked"] == 3 + 4
    assert outcomes["raw_record_key_unique"] in blocking_failures(list(outcomes.values()))
    # without the failure to carry, only r3's rows are read and all pass
    assert _raw(con, run_id="r3")["raw_lineage_not_null"].observed["rows_checked"] == 3
    assert _raw(con, run_id="r3")["raw_record_key_unique"].success

    # the bad delivery is withdrawn: its rows are not checked again, the run passes
    con.execute(
        "CREATE TABLE ops.withdrawn_deliveries (source_system VARCHAR, path VARCHAR,"
        " sha256 VARCHAR, withdrawn_at TIMESTAMP, reason VARCHAR, withdrawn_by VARCHAR)"
    )
    con.execute(
        "INSERT INTO ops.withdrawn_deliveries VALUES ('crm', 'crm/2024-03-16/crm.csv', 'abc',"
        " now(), 'bad', 'test')"
    )
    outcomes = _by_name(
        validate_raw(con, "crm", ["source_record_id", "customer_name"], "r4", recheck_runs=["r2"])
    )
    assert outcomes["raw_record_key_unique"].success
    assert outcomes["raw_record_key_unique"].observed["failing_runs"] == []

"""The golden suite passes a consistent golden layer and blocks each deliberate corruption."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from expectations import CHECKS, QualitySettings, blocking_failures, validate_golden
from tests.expectations.conftest import CODE_C

pytestmark = pytest.mark.usefixtures("gx")

Frames = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def _by_name(outcomes: list) -> dict:
    return {o.name: o for o in outcomes}


def test_good_golden_layer_passes_every_check(customers, crosswalk, clean_records) -> None:
    outcomes = validate_golden(customers, crosswalk, clean_records, previous_customers=customers)
    failed = {o.name: o.observed for o in outcomes if not o.success}
    assert failed == {}
    golden_names = {name for name, spec in CHECKS.items() if spec.layer == "golden"}
    assert {o.name for o in outcomes} == golden_names
    assert len(golden_names) >= 10
    assert blocking_failures(outcomes) == []


def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[row], column] = value
    return frame


def _dup_id(c, x, r):  # two golden rows share one customer_id
    return _set(c, 1, "customer_id", "C20240315001"), x, r


def _null_id(c, x, r):
    return _set(c, 3, "customer_id", None), x, r


def _bad_id(c, x, r):  # date part too short, and the crosswalk follows it
    c = _set(c, 3, "customer_id", "C2024031604")
    return c, _set(x, 5, "customer_id", "C2024031604"), r


def _no_name(c, x, r):
    return _set(c, 2, "customer_name", None), x, r


def _bad_type(c, x, r):
    return _set(c, 0, "customer_type", "企业"), x, r


def _bad_tier(c, x, r):
    return _set(c, 0, "tier", "D"), x, r


def _bad_lifecycle(c, x, r):
    return _set(c, 0, "lifecycle", "lost"), x, r


def _bad_phone(c, x, r):  # national format left uncleaned
    return _set(c, 2, "phone", "138 0000 1111"), x, r


def _bad_email(c, x, r):
    return _set(c, 0, "email", "info@@xingchen"), x, r


def _bad_province(c, x, r):  # short form instead of the official full name
    return _set(c, 0, "province", "北京"), x, r


def _missing_column(c, x, r):
    return c.drop(columns=["lifecycle"]), x, r


def _empty(c, x, r):  # clean records exist but the golden layer came out empty
    return c.iloc[0:0], x.iloc[0:0], r


def _dup_crosswalk(c, x, r):  # one clean record linked to two customers
    extra = x.iloc[[0]].assign(customer_id="C20240315002")
    return c, pd.concat([x, extra], ignore_index=True), r


def _missing_crosswalk_row(c, x, r):  # a clean record lost on the way to golden
    return c, x.drop(index=x.index[4]), r


def _crosswalk_extra_record(c, x, r):  # crosswalk names a record cleaning never produced
    extra = x.iloc[[0]].assign(record_key="crm:999", source_record_id="999")
    return c, pd.concat([x, extra], ignore_index=True), r


def _crosswalk_unknown_customer(c, x, r):
    return c, _set(x, 1, "customer_id", "C20240315999"), r


def _customer_without_records(c, x, r):  # cluster re-pointed, golden row left behind
    return c, _set(x, 5, "customer_id", "C20240315003"), r


def _two_credit_codes(c, x, r):  # over-merge: second record has another valid code
    r = _set(r, 1, "credit_code", CODE_C)
    return c, x, _set(r, 1, "credit_code_valid", True)


def _duplicates(c, x, r):  # under-merge: the same company twice
    twin = c.iloc[[0]].assign(customer_id="C20240315005")
    c = pd.concat([c, twin], ignore_index=True)
    extra = x.iloc[[0]].assign(
        record_key="erp:77", source_system="erp", source_record_id="77", customer_id="C20240315005"
    )
    x = pd.concat([x, extra], ignore_index=True)
    new = r.iloc[[0]].assign(record_key="erp:77", source_system="erp", source_record_id="77")
    return c, x, pd.concat([r, new], ignore_index=True)


CRITICAL_CASES: list[tuple[str, Callable[..., Frames], object]] = [
    ("golden_customer_id_unique", _dup_id, "C20240315001"),
    ("golden_customer_id_not_null", _null_id, None),
    ("golden_customer_id_format", _bad_id, "C2024031604"),
    ("golden_customer_name_not_null", _no_name, "C20240315003"),
    ("golden_customer_type_in_set", _bad_type, "C20240315001"),
    ("golden_tier_in_set", _bad_tier, "C20240315001"),
    ("golden_lifecycle_in_set", _bad_lifecycle, "C20240315001"),
    ("golden_phone_e164", _bad_phone, "C20240315003"),
    ("golden_email_format", _bad_email, "C20240315001"),
    ("golden_province_known", _bad_province, "C20240315001"),
    ("golden_required_columns", _missing_column, None),
    ("golden_not_empty", _empty, None),
    ("crosswalk_record_key_unique", _dup_crosswalk, "crm:1"),
    ("crosswalk_covers_clean_records", _missing_crosswalk_row, "service:T-7"),
    ("crosswalk_records_in_clean", _crosswalk_extra_record, "crm:999"),
    ("crosswalk_customer_exists", _crosswalk_unknown_customer, "C20240315999"),
    ("customer_has_records", _customer_without_records, "C20240316004"),
    ("customer_single_credit_code", _two_credit_codes, "C20240315001"),
    ("golden_duplicate_rate", _duplicates, "C20240315001"),
]


@pytest.mark.parametrize(
    ("check", "corrupt", "key"), CRITICAL_CASES, ids=[c[0] for c in CRITICAL_CASES]
)
def test_each_critical_check_fails_and_blocks(
    check, corrupt, key, customers, crosswalk, clean_records
) -> None:
    c, x, r = corrupt(customers, crosswalk, clean_records)
    outcome = _by_name(validate_golden(c, x, r))[check]
    assert outcome.critical
    assert not outcome.success
    assert outcome in blocking_failures([outcome])
    if key is not None:
        assert key in outcome.observed.get("unexpected_keys", [])
    assert len(outcome.observed.get("unexpected_keys", [])) <= 5


def test_all_critical_cases_cover_the_catalog() -> None:
    critical = {n for n, s in CHECKS.items() if s.layer == "golden" and s.critical}
    assert critical == {case[0] for case in CRITICAL_CASES}


def test_conflicting_codes_are_reported(customers, crosswalk, clean_records) -> None:
    c, x, r = _two_credit_codes(customers, crosswalk, clean_records)
    outcome = _by_name(validate_golden(c, x, r))["customer_single_credit_code"]
    assert sorted(outcome.observed["conflicting_codes"]["C20240315001"]) == sorted(
        [clean_records["credit_code"].iloc[0], CODE_C]
    )


def test_missing_column_error_is_recorded_not_swallowed(customers, crosswalk, clean_records):
    outcomes = _by_name(validate_golden(customers.drop(columns=["tier"]), crosswalk, clean_records))
    assert outcomes["golden_required_columns"].observed["missing_columns"] == ["tier"]
    assert not outcomes["golden_tier_in_set"].success
    assert "error" in outcomes["golden_tier_in_set"].observed


def test_drift_is_a_warning_and_does_not_block(customers, crosswalk, clean_records) -> None:
    previous = pd.concat([customers] * 3, ignore_index=True)
    previous["tier"] = "A"
    outcomes = _by_name(validate_golden(customers, crosswalk, clean_records, previous))
    rows, dist = outcomes["golden_row_count_drift"], outcomes["golden_distribution_drift"]
    assert not rows.success and not rows.critical
    assert rows.observed["thresholds"]["previous_row_count"] == 12
    assert not dist.success and not dist.critical
    assert dist.observed["distances"]["tier"] == pytest.approx(0.75)
    assert "tier" in dist.observed["unexpected_keys"]
    assert blocking_failures(outcomes.values()) == []


def test_without_previous_snapshot_drift_is_recorded_as_skipped(
    customers, crosswalk, clean_records
) -> None:
    outcomes = _by_name(validate_golden(customers, crosswalk, clean_records))
    assert outcomes["golden_row_count_drift"].observed == {"skipped": "no previous snapshot"}
    assert outcomes["golden_row_count_drift"].success


def test_settings_override_severity_and_bounds(customers, crosswalk, clean_records) -> None:
    c, x, r = _bad_tier(customers, crosswalk, clean_records)
    relaxed = QualitySettings(critical={"golden_tier_in_set": False})
    outcome = _by_name(validate_golden(c, x, r, settings=relaxed))["golden_tier_in_set"]
    assert not outcome.success and not outcome.critical
    c, x, r = _duplicates(customers, crosswalk, clean_records)
    loose = QualitySettings(max_duplicate_rate=0.5)
    assert _by_name(validate_golden(c, x, r, settings=loose))["golden_duplicate_rate"].success


def test_unknown_override_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown check name"):
        QualitySettings(critical={"no_such_check": True})


def test_unlinkable_inputs_raise_a_clear_error(customers, crosswalk, clean_records) -> None:
    with pytest.raises(ValueError, match="crosswalk lacks column"):
        validate_golden(customers, crosswalk.drop(columns=["record_key"]), clean_records)


def test_empty_night_before_anything_was_published_is_not_blocked(
    customers, crosswalk, clean_records
) -> None:
    # a first night on which every delivered row was quarantined: nothing to publish yet
    c, x, r = customers.iloc[0:0], crosswalk.iloc[0:0], clean_records.iloc[0:0]
    outcome = _by_name(validate_golden(c, x, r))["golden_not_empty"]
    assert outcome.success and "skipped" in outcome.observed
    # once an archive was published, an empty golden layer still blocks
    again = _by_name(validate_golden(c, x, r, previous_customers=customers))["golden_not_empty"]
    assert not again.success and again in blocking_failures([again])


def _many_customers(customers: pd.DataFrame, copies: int, nameless: int) -> pd.DataFrame:
    """``copies`` × the fixture's customers with fresh ids; the first ``nameless`` lack a name."""
    frames = [
        customers.assign(customer_id=[f"C20240315{i:03d}{j}" for j in range(len(customers))])
        for i in range(copies)
    ]
    many = pd.concat(frames, ignore_index=True)
    many.loc[many.index[:nameless], "customer_name"] = None
    return many


def test_a_few_nameless_customers_do_not_block_publishing(
    customers, crosswalk, clean_records
) -> None:
    """59 of 2,540 callers known only by phone (2.3 %) is a normal night, not a broken one."""
    many = _many_customers(customers, 11, nameless=1)  # 1 of 44: 2.3 %
    outcome = _by_name(validate_golden(many, crosswalk, clean_records))[
        "golden_customer_name_not_null"
    ]
    assert outcome.success and outcome.critical


def test_a_broken_name_column_blocks_publishing(customers, crosswalk, clean_records) -> None:
    many = _many_customers(customers, 11, nameless=22)  # half the customers: a lost column
    outcome = _by_name(validate_golden(many, crosswalk, clean_records))[
        "golden_customer_name_not_null"
    ]
    assert not outcome.success and outcome in blocking_failures([outcome])


def test_the_name_rate_gate_is_configurable_and_validated(
    customers, crosswalk, clean_records, tmp_path
) -> None:
    from pipelines.settings import ConfigError, load_config

    strict = QualitySettings(golden_min_name_fill_rate=0.99)
    many = _many_customers(customers, 11, nameless=1)
    outcome = _by_name(validate_golden(many, crosswalk, clean_records, settings=strict))[
        "golden_customer_name_not_null"
    ]
    assert not outcome.success
    cfg = tmp_path / "archive.yml"
    cfg.write_text("quality:\n  golden_min_name_fill_rate: 0.9\n", encoding="utf-8")
    assert load_config(cfg).quality.golden_min_name_fill_rate == 0.9
    cfg.write_text("quality:\n  golden_min_name_fill_rate: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="golden_min_name_fill_rate"):
        load_config(cfg)


def test_a_last_seen_in_the_future_fails_an_expectation(customers, crosswalk, clean_records):
    from datetime import date

    future = date(date.today().year + 2, 3, 1)
    c = _set(customers, 1, "last_seen", future.isoformat())  # as the fixture holds dates
    outcomes = validate_golden(c, crosswalk, clean_records)
    outcome = _by_name(outcomes)["golden_dates_not_future"]
    assert not outcome.success
    assert outcome.observed["unexpected_keys"] == ["C20240315002"]
    assert blocking_failures(outcomes) == []  # a warning: one mistyped date does not block

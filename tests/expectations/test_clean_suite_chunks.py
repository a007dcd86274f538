"""The clean suite over chunks of records gives the outcomes it gives over all of them at once."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from expectations import validate_clean
from expectations._gx_runner import GxCheck, merge_parts, run_check_parts
from warehouse import read_table, read_table_chunks

pytestmark = pytest.mark.usefixtures("gx")

# (column, row, value): faults spread over the rows, so that the first chunks hold more than
# the 20 examples GX keeps (few distinct values) and later chunks hold new distinct ones
_FAULTS: list[tuple[str, int, object]] = [
    *[("customer_type", r, "Enterprise") for r in range(0, 50, 2)],  # 25 times one value
    ("customer_type", 61, "company"),
    ("customer_type", 88, "x"),
    ("phone", 3, "+8613800000000\n"),  # Python's ``$`` matches before a final newline
    ("phone", 17, "+86 139 1234 5678"),
    ("phone", 44, "+８６１３９１２３４５６７８"),  # full-width digits: ``\d`` in Python
    ("phone", 45, ""),
    ("phone", 90, "+0123456789"),
    ("email", 5, "Info@Example.cn"),
    ("email", 33, "a@b"),
    ("email", 71, " a@b.cn"),
    ("province", 8, "火星"),
    ("province", 80, ""),
    ("industry_code", 12, "Z"),
    ("industry_code", 13, "i"),
    ("credit_code", 20, "ABC"),
    ("credit_code", 21, "91110108ma01a00012"),
    ("credit_code_valid", 27, None),
    ("credit_code_valid", 28, False),
    ("registered_date", 2, "2024-2-3"),
    ("registered_date", 31, "2024-13-01"),
    ("registered_date", 32, "0000-01-01"),
    ("registered_date", 60, "2999-01-01"),  # in the future
    ("updated_at", 61, "2024-01-01T00:00"),
    ("updated_at", 62, "2998-05-06"),
    ("updated_at", 95, "3000-01-01"),
    ("issues", 4, "[1,]"),
    ("issues", 50, "nan"),
    ("issues", 51, "{"),
    ("issues", 52, None),
    ("record_key", 53, None),  # a failing row without a key: no failing key, an example
]


def _records(clean_records: pd.DataFrame, n: int = 97) -> pd.DataFrame:
    """``n`` records tiled from the fixture (unique keys), with the faults above."""
    frame = pd.concat([clean_records] * (n // len(clean_records) + 1), ignore_index=True)
    frame = frame.iloc[:n].copy()
    frame["record_key"] = [f"crm:{i:04d}" for i in range(n)]
    frame["source_record_id"] = [f"{i:04d}" for i in range(n)]
    frame["source_row"] = range(n)
    frame["credit_code_valid"] = frame["credit_code_valid"].astype("boolean")
    for column, row, value in _FAULTS:
        frame.loc[row, column] = value
    return frame


def _warehouse(frame: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("_frame", frame)
    con.execute("CREATE TABLE records AS SELECT * FROM _frame")
    con.unregister("_frame")
    return con


@pytest.mark.parametrize("rows", [1, 7, 30, 1000])
def test_chunks_from_the_warehouse_give_the_outcomes_of_the_whole_table(
    clean_records: pd.DataFrame, rows: int
) -> None:
    con = _warehouse(_records(clean_records))
    whole = read_table(con, "records")
    assert whole is not None
    want = validate_clean(whole, table=(con, "records"), all_failing=True)
    got = validate_clean(
        read_table_chunks(con, "records", rows=rows), table=(con, "records"), all_failing=True
    )
    assert got == want
    failed = {o.name for o in want if not o.success}
    assert {
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
    } <= failed
    by_name = {o.name: o.observed for o in want}
    assert by_name["clean_customer_type_in_set"]["unexpected_count"] == 27
    assert by_name["clean_customer_type_in_set"]["unexpected_examples"] == ["Enterprise"]


@pytest.mark.parametrize("rows", [1, 10, 40])
def test_chunks_of_a_frame_give_its_outcomes(clean_records: pd.DataFrame, rows: int) -> None:
    frame = _records(clean_records)
    con = _warehouse(frame)
    want = validate_clean(frame, table=(con, "records"), all_failing=True)
    chunks = (frame.iloc[i : i + rows] for i in range(0, len(frame), rows))
    assert validate_clean(chunks, table=(con, "records"), all_failing=True) == want


def test_an_empty_table_in_chunks(clean_records: pd.DataFrame) -> None:
    con = _warehouse(_records(clean_records).iloc[:0])
    whole = read_table(con, "records")
    assert whole is not None
    want = validate_clean(whole, table=(con, "records"), all_failing=True)
    chunks = read_table_chunks(con, "records", rows=5)
    assert validate_clean(chunks, table=(con, "records"), all_failing=True) == want


def test_chunks_need_the_table(clean_records: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="need the table"):
        validate_clean(iter([clean_records]))


def test_a_check_with_mostly_is_not_merged() -> None:
    from expectations._gx_import import import_gx

    gxe = import_gx("great_expectations.expectations")
    check = GxCheck(
        "c", [gxe.ExpectColumnValuesToNotBeNull(column="v", mostly=0.5)], key_column="k"
    )
    frame = pd.DataFrame({"k": ["a", "b"], "v": [None, "x"]})
    part = run_check_parts("test.mostly", frame, [check])["c"]
    with pytest.raises(ValueError, match="mostly"):
        merge_parts(part, part)


def test_read_table_chunks_keeps_rows_order_and_dtypes() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT range AS i, CASE WHEN range % 7 = 0 THEN NULL"
        " ELSE 'x' || range END AS s, DATE '2020-01-01' + (range % 100)::INT AS d,"
        " CASE WHEN range < 30 THEN NULL ELSE range::VARCHAR END AS n FROM range(103)"
    )
    whole = read_table(con, "t")
    assert whole is not None
    for rows in (1, 10, 30, 103, 500):
        chunks = list(read_table_chunks(con, "t", rows=rows))
        assert [len(c) for c in chunks[:-1]] == [rows] * (len(chunks) - 1)
        assert 0 < len(chunks[-1]) <= rows
        joined = pd.concat(chunks, ignore_index=True)
        for column in ("i", "d"):
            assert joined[column].equals(whole[column]), column
        for column in ("s", "n"):  # a chunk whose text is all null holds it as ``object``
            assert _plain(joined[column]) == _plain(whole[column]), column
    assert [len(c) for c in read_table_chunks(con, "t", where="i < 0")] == [0]
    assert str(next(read_table_chunks(con, "t", rows=10))["n"].dtype) == "object"  # all null
    with pytest.raises(KeyError):
        next(read_table_chunks(con, "missing"))


def _plain(values: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in values.tolist()]


def _flags_as_before(frame: pd.DataFrame, columns: list[str], latest: dt.date) -> list[int]:
    """``future_date_flags`` as it was: pandas reads every value of every column."""
    future = pd.Series(False, index=frame.index)
    for column in columns:
        values = pd.to_datetime(frame[column], errors="coerce", format="mixed")
        future |= (values > pd.Timestamp(latest)).fillna(False).astype(bool)
    return future.astype(int).tolist()


@pytest.mark.parametrize(
    "values",
    [
        ["2024-03-01", None, "1500-01-01", "0000-01-01", "2026-11-24"],  # all days, none later
        ["2024-03-01", "2026-11-25", None],  # a later day
        ["2024-03-01", "2024-02-30", "2024-2-3"],  # not a day; not zero-padded
        ["2024-03-01", "2999-01-01", "3000-12-31"],  # beyond pandas' range
        ["2024-03-01", "2024-03-01T10:00:00+08:00", "2099-03-01T10:00:00+08:00"],  # times, zones
        ["2024-03-01", "03/01/2024", " 2024-03-01", "2024-03-01 "],  # other forms, spaces
        ["２０２４-０３-０１", "", "x"],  # full-width digits, empty, not a date
        [None, None],  # all null (object)
    ],
)
def test_future_date_flags_as_pandas_gave_them(values: list[object]) -> None:
    from expectations._dates import future_date_flags

    latest = dt.date(2026, 11, 24)
    text = pd.array(values, dtype="str") if any(v is not None for v in values) else values
    frame = pd.DataFrame({"k": [f"k{i}" for i in range(len(values))], "d": text})
    frame["o"] = pd.Series(values, dtype=object)  # the same values in an object column
    for column in ("d", "o"):
        try:
            want: object = _flags_as_before(frame, [column], latest)
        except (ValueError, TypeError) as exc:  # pandas' error is the outcome: it must stay
            with pytest.raises(type(exc)):
                future_date_flags(frame, "k", [column], latest)
            continue
        got = future_date_flags(frame, "k", [column], latest)
        assert got["is_future"].tolist() == want
        assert got["k"].tolist() == frame["k"].tolist()


def test_a_column_of_past_days_is_decided_without_pandas() -> None:
    from expectations._dates import _iso_days_not_after

    latest = dt.date(2026, 11, 24)
    days = pd.Series(["2024-03-01", None, "2026-11-24"], dtype="str")
    assert _iso_days_not_after(days, latest)
    assert not _iso_days_not_after(pd.Series(["2024-03-01", "2026-11-25"], dtype="str"), latest)
    assert not _iso_days_not_after(pd.Series(["2024-02-30"], dtype="str"), latest)
    assert not _iso_days_not_after(pd.to_datetime(pd.Series(["2024-03-01"])), latest)


def test_read_table_chunks_of_other_types_is_one_frame() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS i, range::DECIMAL(10, 2) AS d FROM range(25)")
    chunks = list(read_table_chunks(con, "t", rows=10))
    whole = read_table(con, "t")
    assert len(chunks) == 1 and whole is not None and chunks[0].equals(whole)

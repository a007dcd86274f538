"""run_checks hands Great Expectations only the columns its checks read, with the same results."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import pandas as pd
import pytest
from great_expectations.execution_engine import pandas_execution_engine

from expectations._gx_runner import GxCheck, run_checks

pytestmark = pytest.mark.usefixtures("gx")


def _checks() -> list[GxCheck]:
    return [
        GxCheck(
            "phone_format",
            [gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=r"^\+86\d{11}$")],
            key_column="record_key",
        ),
        GxCheck(
            "type_in_set",
            [gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["a", "b"])],
            key_column="record_key",
        ),
    ]


def _frame(extra: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "record_key": pd.array([f"r{i}" for i in range(8)], dtype="string"),
            "phone": pd.array(
                ["+8613912345678", "12345", None, "+8613800000000"] * 2, dtype="string"
            ),
            "kind": pd.array(["a", "b", "c", None, "a", "z", "b", "a"], dtype="string"),
        },
        index=range(100, 108),  # not a default index: run_checks resets it
    )
    if extra:  # columns no check reads (a suite reads them for its SQL or date checks)
        frame.insert(1, "issues", pd.array(['{"x": 1}'] * 8, dtype="string"))
        frame["registered_date"] = pd.array(["2024-01-01"] * 8, dtype="string")
    return frame


@pytest.fixture()
def batch_columns(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The columns of every batch GX fingerprints (once per validation)."""
    seen: list[list[str]] = []
    original = pandas_execution_engine.hash_pandas_dataframe

    def spy(df: pd.DataFrame) -> Any:
        seen.append([str(c) for c in df.columns])
        return original(df)

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", spy)
    return seen


def test_unread_columns_change_no_result(batch_columns: list[list[str]]) -> None:
    wide = run_checks("test.columns", _frame(extra=True), _checks(), all_failing=True)
    narrow = run_checks("test.columns", _frame(extra=False), _checks(), all_failing=True)
    assert wide == narrow
    assert wide["phone_format"][1]["unexpected_count"] == 2
    assert wide["phone_format"][1]["failing_keys"] == ["r1", "r5"]
    assert wide["type_in_set"][1]["failing_keys"] == ["r2", "r5"]


def test_gx_validates_only_the_checked_columns(batch_columns: list[list[str]]) -> None:
    run_checks("test.columns", _frame(extra=True), _checks(), all_failing=True)
    assert batch_columns == [["record_key", "phone", "kind"]]


def test_a_table_expectation_keeps_every_column(batch_columns: list[list[str]]) -> None:
    frame = _frame(extra=True)
    check = GxCheck("row_count", [gxe.ExpectTableRowCountToBeBetween(min_value=1)])
    (success, observed) = run_checks("test.table", frame, [check])["row_count"]
    assert success and observed["observed_value"] == len(frame)
    assert batch_columns == [list(frame.columns)]

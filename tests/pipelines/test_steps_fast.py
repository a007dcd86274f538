"""Fast paths of the incremental stages equal the pandas definitions they replace."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cleaning.incremental import isin_text as _isin
from warehouse.publish import carry_forward_run_ids
from warehouse.signatures import as_text as _as_text


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C2", None, "C4"], dtype="str"),
            "record_date": pd.Series(
                [dt.date(2020, 1, 11), None, dt.date(1999, 12, 31), dt.date(2026, 2, 28)],
                dtype=pd.ArrowDtype(pa.date32()),
            ),
            "candidates": [1, 2, 3, 4],
            "score": [0.5, np.nan, 1.0, 0.25],
            "flag": pd.Series([True, None, False, True], dtype="boolean"),
            "as_object": pd.Series([dt.date(2020, 1, 11), None, "x", 3], dtype=object),
        }
    )


def test_row_text_equals_pandas_astype_string() -> None:
    frame = _frame()
    expected = frame.astype("string").fillna("\x00")
    pd.testing.assert_frame_equal(_as_text(frame, list(frame.columns)), expected)


def test_date32_and_python_dates_give_the_same_signature() -> None:
    frame = _frame()[["record_date"]]
    as_objects = pd.DataFrame({"record_date": frame["record_date"].astype(object)})
    left = pd.util.hash_pandas_object(_as_text(frame, ["record_date"]), index=False)
    right = pd.util.hash_pandas_object(_as_text(as_objects, ["record_date"]), index=False)
    assert left.tolist() == right.tolist()


@pytest.mark.parametrize("dtype", ["str", "string", object])
def test_isin_equals_pandas_isin(dtype) -> None:
    values = pd.Series(["a", "b", None, "c", "中文", "b"], dtype=dtype)
    keys = {"b", "中文", "zz"}
    assert _isin(values, keys).tolist() == values.isin(keys).tolist()
    assert _isin(values, set()).tolist() == [False] * len(values)
    assert _isin(values, pa.array(sorted(keys), pa.large_string())).tolist() == values.isin(
        keys
    ).tolist()


def test_carry_forward_keeps_run_ids_of_unchanged_rows_only() -> None:
    old = _frame().drop(columns=["as_object"]).assign(customer_id=["C1", "C2", "C3", "C4"])
    old = old.assign(run_id="r1")
    new = old.drop(columns=["run_id"]).assign(run_id="r2")
    new.loc[1, "score"] = 9.0  # changed content
    new.loc[3, "record_date"] = dt.date(2026, 3, 1)  # changed date
    out = carry_forward_run_ids(new, old, ["customer_id"], "run_id")
    assert out["run_id"].tolist() == ["r1", "r2", "r1", "r2"]

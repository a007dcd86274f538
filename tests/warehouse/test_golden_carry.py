"""Run ids carried forward in DuckDB (``golden_carry``) decide as the pandas definition does."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from warehouse import connect, ensure_schemas, replace_tables
from warehouse.golden_carry import carry_forward_published
from warehouse.publish import carry_forward_run_ids

_DATE = pd.ArrowDtype(pa.date32())
_DAYS = [dt.date(2020, 1, 11), None, dt.date(1999, 12, 31), dt.date(2026, 2, 28)]


def _published() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["C1", "C1", "C2", "C3", "C4", "C5"], dtype="str"),
            "attribute": pd.Series(["phone", "email", "phone", "phone", "phone", "phone"]),
            "value": pd.Series(["138", "a@b.cn", None, "139", "137", "中文"], dtype="str"),
            "record_date": pd.Series([*_DAYS, _DAYS[3], None], dtype=_DATE),
            "candidates": [1, 2, 3, 4, 5, 6],
            "score": [0.5, np.nan, 1.0, 0.25, 100.0, np.nan],
            "flag": pd.Series([True, None, False, True, False, None], dtype="boolean"),
            "run_id": pd.Series(["r1", "r1", "r0", "r1", "r0", "r1"], dtype="str"),
        }
    )


def _rebuilt() -> pd.DataFrame:
    return _published().assign(run_id="r2")


# each case: (what a rebuild changed, the change) — the two definitions must agree on every row
_CASES = {
    "nothing changed": lambda f: f,
    "a value changed": lambda f: f.assign(value=f["value"].where(f.index != 0, "136")),
    "null became a value": lambda f: f.assign(value=f["value"].where(f.index != 2, "x")),
    "a value became null": lambda f: f.assign(value=f["value"].where(f.index != 3, None)),
    "a date moved": lambda f: f.assign(
        record_date=f["record_date"].where(f.index != 4, pd.NA).astype(_DATE)
    ),
    "a float changed in its last digit": lambda f: f.assign(
        score=f["score"].where(f.index != 0, 0.5000000000000001)
    ),
    "NaN where the published row has none": lambda f: f.assign(
        score=f["score"].where(f.index != 4, np.nan)
    ),
    "a flag flipped": lambda f: f.assign(flag=f["flag"].where(f.index != 0, False)),
    "an integer changed": lambda f: f.assign(candidates=f["candidates"].where(f.index != 5, 60)),
    "a new row and a row gone": lambda f: pd.concat(
        [f.iloc[1:], f.iloc[[0]].assign(customer_id="C9")], ignore_index=True
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_carried_run_ids_equal_the_pandas_decision(case: str) -> None:
    published = _published()
    new = _CASES[case](_rebuilt())
    keys = ["customer_id", "attribute"]
    with connect(":memory:") as con:
        ensure_schemas(con)
        replace_tables(con, {"golden.attribute_lineage": published})
        got = carry_forward_published(con, new, "golden.attribute_lineage", keys, "run_id")
    expected = carry_forward_run_ids(new, published, keys, "run_id")
    pd.testing.assert_frame_equal(got, expected)


def test_unchanged_rows_keep_the_published_run_and_changed_rows_take_this_one() -> None:
    new = _CASES["a value changed"](_rebuilt())
    with connect(":memory:") as con:
        ensure_schemas(con)
        replace_tables(con, {"golden.attribute_lineage": _published()})
        got = carry_forward_published(
            con, new, "golden.attribute_lineage", ["customer_id", "attribute"], "run_id"
        )
    assert got["run_id"].tolist() == ["r2", "r1", "r0", "r1", "r0", "r1"]


def test_nothing_is_carried_without_a_comparable_published_table() -> None:
    new = _rebuilt()
    with connect(":memory:") as con:
        ensure_schemas(con)
        absent = carry_forward_published(con, new, "golden.customers", ["customer_id"], "run_id")
        assert absent["run_id"].tolist() == ["r2"] * len(new)
        # a column the published table lacks is a schema change: every row counts as changed
        replace_tables(con, {"golden.customers": _published().drop(columns=["flag"])})
        changed = carry_forward_published(
            con, new, "golden.customers", ["customer_id", "attribute"], "run_id"
        )
        assert changed["run_id"].tolist() == ["r2"] * len(new)


@pytest.mark.parametrize("case", list(_CASES))
def test_rows_read_beforehand_carry_as_the_whole_table_does(case: str) -> None:
    """The published rows of the rebuilt customers, read from the warehouse beforehand (as
    Arrow, as the golden stage's thread reads them), decide as a join with the whole table:
    the other customers' rows (here an untouched customer with the same attribute and run)
    cannot match a rebuilt row."""
    published = pd.concat(
        [_published(), _published().assign(customer_id="C7", run_id="r0")], ignore_index=True
    )
    new = _CASES[case](_rebuilt())
    keys = ["customer_id", "attribute"]
    with connect(":memory:") as con:
        ensure_schemas(con)
        replace_tables(con, {"golden.attribute_lineage": published})
        whole = carry_forward_published(con, new, "golden.attribute_lineage", keys, "run_id")
        ids = ", ".join(f"'{c}'" for c in sorted(set(new["customer_id"])))
        ahead = con.sql(
            f"SELECT * FROM golden.attribute_lineage WHERE customer_id IN ({ids})"
        ).to_arrow_table()
        assert ahead.num_rows < len(published)
        got = carry_forward_published(
            con, new, "golden.attribute_lineage", keys, "run_id", published=ahead
        )
        with pytest.raises(ValueError, match="customer_id must be a key"):
            carry_forward_published(
                con, new, "golden.attribute_lineage", ["attribute"], "run_id", published=ahead
            )
    pd.testing.assert_frame_equal(got, whole)
    pd.testing.assert_frame_equal(got, carry_forward_run_ids(new, published, keys, "run_id"))

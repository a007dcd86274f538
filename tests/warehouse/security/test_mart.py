"""The analyst mart built on Arrow equals the per-value reference and the pandas API."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from warehouse.security import (
    build_analyst_mart,
    build_analyst_mart_arrow,
    mask_email,
    mask_person_name,
    mask_phone,
    pseudonym,
    treatment,
)
from warehouse.security._mart_mask import customer_types

SECRET = b"m" * 32


def _golden() -> dict[str, pa.Table]:
    customers = pa.table(
        {
            "customer_id": ["C20240315001", "C20240315002", "C20240315003", "C20240315004"],
            "customer_name": ["北京星辰科技有限公司", "李娜", "John Smith", "王小明"],
            "customer_type": ["enterprise", "individual", "individual", None],  # unknown → masked
            "contact_name": ["张伟经理", "李娜", None, "王小明"],
            "phone": ["+8613811111111", "+8613922222222", "+14155552671", None],
            "email": ["info@xingchen.cn", "lina@qq.com", None, "wang@163.com"],
            "address": ["北京市海淀区中关村大街1号", None, "1 Main St", None],  # dropped
            "province": ["北京市", "上海市", None, "广东省"],
            "registered_date": pa.array(
                [dt.date(2020, 1, 2), None, dt.date(2019, 5, 6), dt.date(2021, 7, 8)]
            ),
            "source_count": pa.array([2, 1, None, 1], pa.int64()),
            "revenue_12m": [1.5, None, 0.0, 3.25],
            "mystery": ["a", "b", "c", "d"],  # unknown column: dropped (deny by default)
        }
    )
    crosswalk = pa.table(
        {
            "source_system": ["sales", "service", "sales", "marketing", "sales"],
            "source_record_id": ["A1", "T9", "A2", "L5", "A3"],
            "record_key": ["sales:A1", "service:T9", "sales:A2", "marketing:L5", "sales:A3"],
            "customer_id": ["C20240315001", "C20240315001", "C20240315002", None, "C20240315009"],
            "match_score": [12.5, None, 3.0, 1.0, 2.0],
        }
    )
    contacts = pa.table(  # no customer_type column: types come from golden.customers
        {
            "customer_id": ["C20240315001", "C20240315002", "C20240315009"],
            "customer_name": ["北京星辰科技有限公司", "李娜", "赵六"],  # C…009 unknown → masked
            "phone": ["+8613811111111", "+8613922222222", "+861062345678"],
        }
    )
    ids = pa.table(
        {
            "customer_id": ["C20240315001", "C20240315003"],
            "event": ["created", "merged"],
            "other_customer_id": [None, "C20240315001"],
        }
    )
    return {
        "golden.customers": customers,
        "golden.crosswalk": crosswalk,
        "golden.contacts": contacts,
        "golden.customer_ids": ids,
    }


def _reference(tables: dict[str, pa.Table]) -> dict[str, dict[str, list]]:
    """The mart rules applied value by value (the slow, obviously-right path)."""
    customers = tables["golden.customers"].to_pylist()
    types: dict[str, str] = {}
    for row in customers:
        if row["customer_id"] is not None and row["customer_type"] is not None:
            types.setdefault(row["customer_id"], row["customer_type"])
    rules = {
        "phone": mask_phone,
        "email": mask_email,
        "person": mask_person_name,
        "pseudonym": lambda v: pseudonym(v, SECRET),
    }
    out: dict[str, dict[str, list]] = {}
    for name, table in tables.items():
        rows = table.to_pylist()
        columns: dict[str, list] = {}
        for column in table.column_names:
            how = treatment(column)
            values = [r[column] for r in rows]
            if how == "drop":
                continue
            if how == "keep":
                columns[column] = values
            elif how == "name_by_type":
                kinds = [r.get("customer_type", types.get(r.get("customer_id"))) for r in rows]
                columns[column] = [
                    v if v is None or k == "enterprise" else mask_person_name(v)
                    for v, k in zip(values, kinds, strict=True)
                ]
            else:
                columns[column] = [None if v is None else rules[how](v) for v in values]
        out["mart." + name.split(".", 1)[1]] = columns
    return out


def test_arrow_mart_equals_the_per_value_reference() -> None:
    tables = _golden()
    mart = build_analyst_mart_arrow(tables, SECRET)
    assert mart.keys() == _reference(tables).keys()
    for name, expected in _reference(tables).items():
        assert mart[name].to_pydict() == expected, name
    customers = mart["mart.customers"]
    assert "address" not in customers.column_names and "mystery" not in customers.column_names
    assert customers.schema.field("registered_date").type == pa.date32()  # kept columns as given
    assert customers.schema.field("source_count").type == pa.int64()
    assert customers.column("customer_name").to_pylist() == [
        "北京星辰科技有限公司",
        "李*",
        "J*** S***",
        "王**",
    ]


def test_pseudonyms_join_across_tables() -> None:
    mart = build_analyst_mart_arrow(_golden(), SECRET)
    ids = set(mart["mart.customers"].column("customer_id").to_pylist())
    linked = mart["mart.crosswalk"].column("customer_id").to_pylist()
    assert linked[:3] == [pseudonym(c, SECRET) for c in ["C20240315001"] * 2 + ["C20240315002"]]
    assert set(linked[:3]) <= ids
    merged = mart["mart.customer_ids"].column("other_customer_id").to_pylist()
    assert merged == [None, pseudonym("C20240315001", SECRET)]


def test_pandas_api_gives_the_same_values_and_keeps_its_shape() -> None:
    tables = _golden()
    frames = {k: v.to_pandas() for k, v in tables.items()}
    for col in ("registered_date",):
        frames["golden.customers"][col] = pd.Series(
            tables["golden.customers"].column(col).to_pylist(), dtype=pd.ArrowDtype(pa.date32())
        )
    pandas_mart = build_analyst_mart(frames, SECRET)
    arrow_mart = build_analyst_mart_arrow(tables, SECRET)
    for name, frame in pandas_mart.items():
        assert list(frame.columns) == arrow_mart[name].column_names
        for column in frame.columns:
            got = [None if pd.isna(v) else v for v in frame[column]]
            want = arrow_mart[name].column(column).to_pylist()
            assert got == want, (name, column)
    dropped = pandas_mart["mart.customers"].attrs["dropped_columns"]
    assert dropped == ["address", "revenue_12m", "mystery"]  # revenue_12m is not classified yet
    assert str(pandas_mart["mart.customers"]["phone"].dtype) == "string"


def test_two_tables_with_one_mart_name_are_refused() -> None:
    tables = {"golden.customers": _golden()["golden.customers"]}
    tables["staging.customers"] = tables["golden.customers"]
    with pytest.raises(ValueError, match=r"mart\.customers"):
        build_analyst_mart_arrow(tables, SECRET)
    with pytest.raises(ValueError, match=r"mart\.customers"):
        build_analyst_mart(tables, SECRET)


def test_mart_built_table_by_table_equals_one_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """One remembering masker over the tables one at a time (what a full publish does, so it
    holds one table at a time): the same mart, and each distinct value masked once."""
    import warehouse.security.columns as columns

    tables = _golden()
    masked: list[str] = []
    real = columns.pseudonyms

    def counting(values, secret, prefix="P"):  # type: ignore[no-untyped-def]
        values = list(values)
        masked.extend(values)
        return real(values, secret, prefix)

    monkeypatch.setattr(columns, "pseudonyms", counting)
    whole = build_analyst_mart_arrow(tables, SECRET)
    once = sorted(masked)
    masked.clear()
    masker = columns.ColumnMasker(SECRET, remember=True)
    types = customer_types(tables)
    one_by_one: dict[str, pa.Table] = {}
    for name in reversed(list(tables)):  # the customers table last: types come from `types`
        one_by_one.update(build_analyst_mart_arrow({name: tables[name]}, SECRET, masker, types))
    assert sorted(masked) == once == sorted(set(once))  # every distinct value masked once
    assert one_by_one.keys() == whole.keys()
    for name, table in whole.items():
        assert one_by_one[name].equals(table), name

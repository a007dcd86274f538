"""Customer chunks of a full golden build, and the whole-set checks done in SQL."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from warehouse.golden_chunks import check_golden_inputs, chunk_where, plan_golden_chunks


def _warehouse(
    records: list[str],
    assignments: list[tuple[str, str | None]],
    transactions: list[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA clean")
    con.register("r", pd.DataFrame({"record_key": records}))
    con.execute("CREATE TABLE clean.records AS SELECT * FROM r")
    frame = pd.DataFrame(assignments, columns=["record_key", "customer_id"])
    con.register("a", frame)
    con.execute("CREATE TABLE assignments AS SELECT * FROM a")
    if transactions is not None:
        con.register("t", pd.DataFrame({"record_key": transactions}))
        con.execute("CREATE TABLE clean.transactions AS SELECT * FROM t")
    return con


def _chunks(con: duckdb.DuckDBPyConnection, size: int) -> list[dict[str, list[str]]]:
    """Each chunk's customers and their records, as the chunk's condition selects them."""
    out = []
    for chunk in plan_golden_chunks(con, "assignments", size):
        rows = con.execute(
            f"SELECT customer_id, record_key FROM assignments WHERE {chunk_where(chunk)}"
            " ORDER BY ALL"
        ).fetchall()
        grouped: dict[str, list[str]] = {}
        for customer, key in rows:
            grouped.setdefault(customer, []).append(key)
        out.append(grouped)
    return out


def test_chunks_hold_whole_customers_in_customer_order() -> None:
    # C1: 3 records, C2: 1, C3: 2, C4: 1 (assigned out of order on purpose)
    assignments = [("r5", "C3"), ("r1", "C1"), ("r2", "C1"), ("r7", "C4"), ("r3", "C1"),
                   ("r4", "C2"), ("r6", "C3")]  # fmt: skip
    con = _warehouse([k for k, _ in assignments], assignments)
    assert _chunks(con, 3) == [
        {"C1": ["r1", "r2", "r3"]},
        {"C2": ["r4"], "C3": ["r5", "r6"]},
        {"C4": ["r7"]},
    ]
    # a customer with more records than a chunk stays whole
    assert _chunks(con, 2)[0] == {"C1": ["r1", "r2", "r3"]}
    assert _chunks(con, 100) == [
        {"C1": ["r1", "r2", "r3"], "C2": ["r4"], "C3": ["r5", "r6"], "C4": ["r7"]}
    ]
    every = [k for chunk in _chunks(con, 1) for keys in chunk.values() for k in keys]
    assert sorted(every) == sorted(k for k, _ in assignments)  # each record in one chunk


def test_no_record_is_one_empty_chunk() -> None:
    con = _warehouse([], [])
    assert plan_golden_chunks(con, "assignments", 10) == [0]
    with pytest.raises(ValueError, match="at least 1"):
        plan_golden_chunks(con, "assignments", 0)


@pytest.mark.parametrize(
    ("records", "assignments", "transactions", "message"),
    [
        (["a", "a"], [("a", "C1")], None, r"clean records repeat record_key: \['a'\]"),
        (["a"], [("a", "C1"), ("a", "C2")], None, "a record is assigned to two customers"),
        (["a", "b"], [("a", "C1")], None, r"1 clean records have no customer_id: \['b'\]"),
        (["a"], [("a", None)], None, "null customer_id"),
        (["a"], [("a", "C1")], ["a", "x"], "1 transactions rows refer to unknown records: x"),
    ],
)
def test_whole_set_checks(
    records: list[str],
    assignments: list[tuple[str, str | None]],
    transactions: list[str] | None,
    message: str,
) -> None:
    con = _warehouse(records, assignments, transactions)
    with pytest.raises(ValueError, match=message):
        check_golden_inputs(con, "assignments")


def test_consistent_inputs_pass() -> None:
    con = _warehouse(["a", "b"], [("a", "C1"), ("b", "C1")], ["a", "a", "b"])
    check_golden_inputs(con, "assignments")

"""`ops.check_results`: every expectation's outcome per run and scope, rewritten by scope only."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pytest

from warehouse import ops
from warehouse.db import replace_tables
from warehouse.ops import read_check_results, write_check_results


def _result(name: str, success: bool, **observed: Any) -> dict[str, Any]:
    return {"name": name, "layer": "raw", "critical": True, "success": success,
            "observed": observed, "description": name}  # fmt: skip


def _rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT run_id, scope, name, success FROM ops.check_results ORDER BY ALL"
    ).fetchall()


def test_a_suite_replaces_only_its_runs_scope_and_leaves_earlier_runs_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    con = duckdb.connect()
    write_check_results(con, "r1", [_result("a", True)], scope="raw.crm")

    # once the table exists, a write neither reads it into Python nor rewrites it whole: its
    # cost follows the suite, not the number of runs stored (a year of nights: 60 k rows)
    def whole(*_: object, **__: object) -> None:
        raise AssertionError("ops.check_results read or rewritten whole")

    monkeypatch.setattr(ops, "read_table", whole)
    monkeypatch.setattr(ops, "replace_tables", whole)
    write_check_results(con, "r1", [_result("b", True)], scope="golden")
    write_check_results(con, "r2", [_result("a", False, n=1)], scope="raw.crm")
    # the raw suite of r2 runs again (a re-check): its rows replaced, nothing else touched
    write_check_results(con, "r2", [_result("a", True, n=2), _result("c", True)], scope="raw.crm")
    monkeypatch.undo()
    assert _rows(con) == [
        ("r1", "golden", "b", True), ("r1", "raw.crm", "a", True),
        ("r2", "raw.crm", "a", True), ("r2", "raw.crm", "c", True),
    ]  # fmt: skip
    assert {r["name"]: r["observed"] for r in read_check_results(con, "r2")} == {
        "a": {"n": 2},
        "c": {},
    }
    # without a scope, all of the run's rows are replaced
    write_check_results(con, "r2", [_result("d", False)])
    assert [r for r in _rows(con) if r[0] == "r2"] == [("r2", None, "d", False)]


def test_a_table_stored_before_scopes_existed_is_rewritten_with_them() -> None:
    con = duckdb.connect()
    old = pd.DataFrame({"run_id": ["r0"], "name": ["a"], "layer": ["raw"], "critical": [True],
                        "success": [True], "observed": ["{}"], "description": ["a"]})  # fmt: skip
    replace_tables(con, {"ops.check_results": old})
    write_check_results(con, "r1", [_result("a", False)], scope="raw.crm")
    assert _rows(con) == [("r0", None, "a", True), ("r1", "raw.crm", "a", False)]

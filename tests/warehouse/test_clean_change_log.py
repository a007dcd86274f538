"""The clean layer's change log (``ops.clean_runs`` / ``ops.clean_changes``): what the cleans
since a link changed, and when the log cannot tell (then the caller compares whole tables)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from warehouse.ops import (
    CLEAN_LOG_RUNS,
    CLEAN_RUNS,
    clean_changes_since,
    linked_run,
    record_clean_run,
)


def _clean(con: duckdb.DuckDBPyConnection, run_id: str, changes: dict[str, str] | None) -> None:
    """One clean's commit: its log rows (None: a full clean)."""
    table = None
    if changes is not None:
        con.register(
            "_changes",
            pa.table({"record_key": list(changes), "change": list(changes.values())}),
        )
        table = "_changes"
    con.execute("BEGIN TRANSACTION")
    record_clean_run(con, run_id, "full" if changes is None else "incremental", table)
    con.execute("COMMIT")


def _link(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS match")
    con.execute("CREATE TABLE IF NOT EXISTS match.params (run_id VARCHAR, created_at VARCHAR)")
    con.execute("INSERT INTO match.params VALUES (?, ?)", [run_id, f"2030-01-01T{run_id}"])


def _since(con: duckdb.DuckDBPyConnection, run_id: str | None) -> set[str] | None:
    name = clean_changes_since(con, run_id)
    if name is None:
        return None
    return {r[0] for r in con.execute(f"SELECT record_key FROM {name}").fetchall()}


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def test_nothing_logged_cannot_tell(con: duckdb.DuckDBPyConnection) -> None:
    assert _since(con, "r1") is None  # a warehouse from before the log
    assert linked_run(con) is None
    _clean(con, "r1", {"k1": "inserted"})
    assert _since(con, None) is None  # never linked


def test_the_cleans_after_the_link_and_a_failed_run_between(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _clean(con, "r1", None)  # the first run: a full clean, then a link
    _link(con, "r1")
    assert linked_run(con) == "r1"
    assert _since(con, "r1") == set()  # nothing cleaned since the link
    _clean(con, "r2", {"k1": "updated", "k2": "inserted"})  # r2's match failed: no link
    _clean(con, "r3", {"k3": "removed", "k1": "updated"})
    assert _since(con, "r1") == {"k1", "k2", "k3"}  # r2's changes are not lost
    assert _since(con, "r2") == {"k1", "k3"}
    changes = con.execute(
        "SELECT run_id, record_key, change FROM ops.clean_changes ORDER BY seq, record_key"
    ).fetchall()
    assert changes == [
        ("r2", "k1", "updated"), ("r2", "k2", "inserted"),
        ("r3", "k1", "updated"), ("r3", "k3", "removed"),
    ]  # fmt: skip


def test_a_full_clean_or_an_unlogged_link_run_cannot_tell(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _clean(con, "r1", {"k1": "inserted"})
    _link(con, "r1")
    _clean(con, "r2", None)  # a full clean: every row may have changed
    assert _since(con, "r1") is None
    _link(con, "r2")
    _clean(con, "r3", {"k2": "updated"})
    assert _since(con, "r2") == {"k2"}
    assert _since(con, "r0") is None  # a link whose clean is not in the log
    _clean(con, "r3", {"k4": "updated"})  # two cleans in one run: which did the link read?
    assert _since(con, "r3") is None


def test_cleans_before_the_link_are_pruned_and_the_log_is_capped(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for i in range(1, 4):
        _clean(con, f"r{i}", {f"k{i}": "updated"})
    _link(con, "r2")
    _clean(con, "r4", {"k4": "updated"})
    runs = [r[0] for r in con.execute(f"SELECT run_id FROM {CLEAN_RUNS} ORDER BY seq").fetchall()]
    assert runs == ["r2", "r3", "r4"]  # r1 came before the link's clean: nothing reads it
    assert _since(con, "r2") == {"k3", "k4"}
    for i in range(5, 5 + CLEAN_LOG_RUNS):  # the link falls more than the cap behind
        _clean(con, f"r{i}", {f"k{i}": "updated"})
    (kept,) = con.execute(f"SELECT count(*) FROM {CLEAN_RUNS}").fetchall()[0]
    assert kept == CLEAN_LOG_RUNS
    assert _since(con, "r2") is None

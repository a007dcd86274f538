"""The match layer's change log (``ops.match_runs`` / ``ops.match_changes``): the records the
links since a golden build changed, and when the log cannot tell (then every record is hashed)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from warehouse.ops import MATCH_LOG_RUNS, MATCH_RUNS, match_changes_since, record_match_run


def _link(con: duckdb.DuckDBPyConnection, run_id: str, keys: list[str] | None) -> None:
    """One link's log (None: a full link)."""
    if keys is None:
        record_match_run(con, run_id, "full")
        return
    con.register("_keys", pa.table({"record_key": pa.array(keys, pa.string())}))
    record_match_run(con, run_id, "incremental", "_keys")
    con.unregister("_keys")


def _since(con: duckdb.DuckDBPyConnection, run_id: str) -> set[str] | None:
    table = match_changes_since(con, run_id)
    if table is None:
        return None
    return {str(r[0]) for r in con.execute(f"SELECT record_key FROM {table}").fetchall()}


def test_the_links_since_a_run_are_listed_until_a_full_link() -> None:
    con = duckdb.connect()
    assert match_changes_since(con, "r1") is None  # nothing logged: a warehouse from before
    _link(con, "r1", None)
    _link(con, "r2", ["a", "b", "a"])
    _link(con, "r3", ["c"])
    assert _since(con, "r1") == {"a", "b", "c"}
    assert _since(con, "r3") == set()
    assert _since(con, "unknown") is None
    assert con.execute(f"SELECT changed FROM {MATCH_RUNS} WHERE run_id = 'r2'").fetchall() == [(2,)]
    _link(con, "r4", None)  # a full link: every row may have changed since r1
    assert _since(con, "r1") is None and _since(con, "r3") is None
    assert _since(con, "r4") == set()
    _link(con, "r4", ["d"])  # the same run logged twice (a re-executed stage): cannot tell
    assert _since(con, "r4") is None


def test_old_links_are_pruned_and_an_inconsistent_entry_refused() -> None:
    con = duckdb.connect()
    _link(con, "r0", None)
    for n in range(1, MATCH_LOG_RUNS + 1):
        _link(con, f"r{n}", [f"k{n}"])
    assert _since(con, "r0") is None  # pruned: more links since than the log keeps
    assert _since(con, "r1") == {f"k{n}" for n in range(2, MATCH_LOG_RUNS + 1)}
    with pytest.raises(ValueError, match="incremental link"):
        record_match_run(con, "x", "incremental")

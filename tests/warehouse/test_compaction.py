"""When a run's checkpoints vacuum (`warehouse.compaction`): the due rule and DuckDB's setting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from warehouse.compaction import (
    COMPACTIONS,
    compaction_due,
    defer_vacuum,
    last_compaction,
    record_compaction,
    vacuum_deferred,
)


def test_due_when_none_recorded_within_the_days_before_the_run_date() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ops")
    assert last_compaction(con) is None
    assert compaction_due(con, date(2026, 11, 24), 7)  # none recorded
    record_compaction(con, date(2026, 11, 23))
    record_compaction(con, date(2026, 11, 20))  # an older one: the latest counts
    assert last_compaction(con) == date(2026, 11, 23)
    assert not compaction_due(con, date(2026, 11, 24), 7)
    assert not compaction_due(con, date(2026, 11, 29), 7)
    assert compaction_due(con, date(2026, 11, 30), 7)  # 7 days after the latest
    assert not compaction_due(con, date(2026, 11, 1), 7)  # a replayed earlier night
    assert compaction_due(con, date(2026, 11, 24), 0)  # 0: every run compacts
    assert con.execute(f"SELECT count(*) FROM {COMPACTIONS}").fetchall() == [(2,)]


def _row_groups(con: duckdb.DuckDBPyConnection) -> int:
    sql = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')"
    return int(con.execute(sql).fetchall()[0][0])


def test_a_deferred_vacuum_leaves_row_groups_apart_with_the_same_rows(tmp_path: Path) -> None:
    """The setting is what the nightly relies on: without it DuckDB's checkpoint merges the two
    row groups (rewriting them); with it they stay, holding the same rows in the same order."""
    rows: dict[bool, list] = {}
    for defer in (False, True):
        path = tmp_path / f"w{defer}.duckdb"
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE t AS SELECT range AS id, 'x' || range AS v FROM range(50000)")
        con.execute("CHECKPOINT")
        con.close()
        con = duckdb.connect(str(path))
        assert not vacuum_deferred(con)  # DuckDB's default on every open
        if defer:
            defer_vacuum(con)
            assert vacuum_deferred(con)
        con.execute("INSERT INTO t SELECT range + 50000, 'y' || range FROM range(50000)")
        con.execute("DELETE FROM t WHERE id % 3 = 0")
        assert _row_groups(con) == 2
        con.execute("CHECKPOINT")
        assert _row_groups(con) == (2 if defer else 1)
        con.close()
        con = duckdb.connect(str(path))
        assert not vacuum_deferred(con)  # not stored in the file
        rows[defer] = con.execute("SELECT id, v FROM t").fetchall()  # storage order
        con.close()
    assert rows[True] == rows[False] and len(rows[True]) == 66_666

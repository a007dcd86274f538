"""A whole history fold (every customer, e.g. a first run) in customer ranges writes exactly
the history of one fold over every customer."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from warehouse import read_table
from warehouse.archive._hashing import table_content_hash
from warehouse.archive.tables import table_schema
from warehouse.db import replace_tables, table_exists
from warehouse.golden_staged import stage_views, staged_table
from warehouse.naming import GOLDEN_TABLES
from warehouse.ops import concat_frames
from warehouse.publish import swap_in_golden

_BREAK = {
    # no history yet: every customer's first row (a first run)
    "first": "DROP TABLE golden.customers_history",
    # open rows that are not the published customers: the whole history folded again, some
    # customers with earlier rows, some without any
    "stale": "DELETE FROM golden.customers_history WHERE customer_id IN (SELECT customer_id"
    " FROM golden.customers ORDER BY customer_id LIMIT 11)",
}


def _restage(con) -> None:
    """Stage the published golden tables again as a full build stages them (hidden tables in
    golden, ``staging.*`` views: ``warehouse.golden_staged``); the run's swap renamed them."""
    for name in GOLDEN_TABLES:
        con.execute(f"CREATE TABLE {staged_table(name)} AS SELECT * FROM golden.{name}")
    stage_views(con)


def _swapped(project: Path, run_id: str, copy: Path, chunk: int, why: str) -> tuple:
    cfg = load_config(project)
    shutil.copy(cfg.resolve(cfg.warehouse), copy)
    cfg = load_config(project, warehouse=str(copy))
    with open_warehouse(cfg) as con:
        _restage(con)
        con.execute(_BREAK[why])
        changed = swap_in_golden(con, run_id, date(2026, 11, 24), history_chunk=chunk)
        history = read_table(con, "golden.customers_history")
        assert history is not None
        assert not table_exists(con, "staging._history_whole")  # dropped after the swap
        return (
            changed,
            len(history),
            table_content_hash(history),
            table_schema(con, "golden.customers_history"),
        )


def test_history_folded_in_customer_ranges_equals_one_fold(project: Path, tmp_path: Path) -> None:
    run = run_pipeline(project, run_date="2026-11-23")
    assert run.success, run.errors
    for why in _BREAK:
        whole = _swapped(project, "r2", tmp_path / f"{why}-whole.duckdb", 10**9, why)
        ranges = _swapped(project, "r2", tmp_path / f"{why}-ranges.duckdb", 7, why)
        assert whole[1] > 14, why  # more than two ranges of customers
        assert ranges == whole, why


def _first_swap(project: Path, copy: Path, old_path: bool, monkeypatch) -> tuple:
    """A first run's swap (no history yet) with ID events of every kind staged."""
    import warehouse.publish as publish

    cfg = load_config(project)
    shutil.copy(cfg.resolve(cfg.warehouse), copy)
    cfg = load_config(project, warehouse=str(copy))
    with monkeypatch.context() as patch:
        if old_path:  # the fold in pandas, as before the SQL view
            patch.setattr(publish, "_no_history", lambda con: False)
        else:  # the first rows never go through the pandas fold
            patch.setattr(publish, "update_history", _refuse)
        with open_warehouse(cfg) as con:
            _restage(con)
            con.execute(_BREAK["first"])
            con.execute("DROP TABLE golden.customer_ids")  # no ID events written yet either
            ids = [r[0] for r in con.execute(
                "SELECT customer_id FROM staging.customers ORDER BY customer_id LIMIT 4"
            ).fetchall()]  # fmt: skip
            # merged, split, two events of one customer (the last one counts), no other id
            con.execute(
                "INSERT INTO staging.id_events (customer_id, event, other_customer_id)"
                " VALUES (?, 'merged_into', 'C1'), (?, 'split_from', 'C2'),"
                " (?, 'merged_into', 'C3'), (?, 'created', NULL), (?, 'reissued', NULL),"
                " ('C-not-a-customer', 'merged_into', 'C4')",
                [ids[0], ids[1], ids[2], ids[2], ids[3]],
            )
            # the ID events as the swap wrote them from a frame before (a first run)
            frame = concat_frames(None, read_table(con, "staging.id_events"))
            replace_tables(con, {"staging.expected_ids": frame})
            swap_in_golden(con, "r2", date(2026, 11, 24), history_chunk=7)
            ids_written = [
                (table_schema(con, n), table_content_hash(read_table(con, n)))
                for n in ("golden.customer_ids", "staging.expected_ids")
            ]
            assert ids_written[0] == ids_written[1]
            history = con.sql(
                "SELECT * FROM golden.customers_history ORDER BY rowid"
            ).to_arrow_table()
            assert not table_exists(con, "staging._history_whole")
            assert not table_exists(con, "staging._history_first")
            reasons = dict(
                con.execute(
                    "SELECT customer_id, change_reason FROM golden.customers_history"
                    " WHERE customer_id IN (SELECT unnest(?))",
                    [ids],
                ).fetchall()
            )
            return (
                history.num_rows,
                table_content_hash(history),
                history.column("customer_id").to_pylist(),
                table_schema(con, "golden.customers_history"),
                [reasons[i] for i in ids],
            )


def _refuse(*args, **kwargs):
    raise AssertionError("a first run's history is selected in SQL, not folded in pandas")


def test_first_history_in_sql_equals_the_pandas_fold(
    project: Path, tmp_path: Path, monkeypatch
) -> None:
    run = run_pipeline(project, run_date="2026-11-23")
    assert run.success, run.errors
    sql = _first_swap(project, tmp_path / "sql.duckdb", False, monkeypatch)
    fold = _first_swap(project, tmp_path / "fold.duckdb", True, monkeypatch)
    assert sql[0] > 14
    assert sql[4] == ["merged into C1", "split from C2", "new customer", "reissued"]
    assert sql == fold

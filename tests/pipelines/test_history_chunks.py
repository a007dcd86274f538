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
from warehouse.db import table_exists
from warehouse.publish import swap_in_golden

_BREAK = {
    # no history yet: every customer's first row (a first run)
    "first": "DROP TABLE golden.customers_history",
    # open rows that are not the published customers: the whole history folded again, some
    # customers with earlier rows, some without any
    "stale": "DELETE FROM golden.customers_history WHERE customer_id IN (SELECT customer_id"
    " FROM golden.customers ORDER BY customer_id LIMIT 11)",
}


def _swapped(project: Path, run_id: str, copy: Path, chunk: int, why: str) -> tuple:
    cfg = load_config(project)
    shutil.copy(cfg.resolve(cfg.warehouse), copy)
    cfg = load_config(project, warehouse=str(copy))
    with open_warehouse(cfg) as con:
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

"""A full golden build is staged under hidden names in ``golden`` and renamed in by the swap.

The swap publishes the staged tables themselves (no ``CREATE TABLE golden.* AS SELECT``
copy); until then ``golden.*`` is the last published state and no role but admin sees the
staged tables; a blocked build's leftovers are dropped by the next golden stage.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from pipelines.stages.context import RunContext
from pipelines.stages.golden import golden_stage
from warehouse.archive._hashing import table_content_hash
from warehouse.naming import GOLDEN_TABLES
from warehouse.publish import swap_in_golden
from warehouse.security import role_database

_OIDS = (
    "SELECT table_name, table_oid FROM duckdb_tables() WHERE schema_name = 'golden'"
    " ORDER BY table_name"
)


def _hashes(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, str]:
    return {
        t: table_content_hash(con.sql(f"SELECT * FROM {schema}.{t}").to_arrow_table())
        for t in GOLDEN_TABLES
    }


def test_a_full_build_is_renamed_in_not_copied(project: Path) -> None:
    run = run_pipeline(project, run_date="2026-11-23")
    assert run.success, run.errors
    cfg = load_config(project, golden_incremental=False)
    with open_warehouse(cfg) as con:
        published = _hashes(con, "golden")
        ctx = RunContext(config=cfg, run_id="r2", run_date=date(2026, 11, 24))
        assert golden_stage(con, ctx).mode == "full"
        oids = dict(con.execute(_OIDS).fetchall())
        staged = _hashes(con, "staging")  # the views the golden suite reads
        # staged, not published: golden.* unchanged, the build under hidden names only
        assert _hashes(con, "golden") == published
        assert {f"_staged_{t}" for t in GOLDEN_TABLES} <= set(oids)
        steward = role_database(con, "steward")
        try:
            rows = steward.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            seen = {r[0] for r in rows}
        finally:
            steward.close()
        assert "customers" in seen and not any(t.startswith("_") for t in seen)
        assert swap_in_golden(con, "r2", ctx.run_date) is None
        after = dict(con.execute(_OIDS).fetchall())
        # each published table IS the staged one (same DuckDB table: no row written again)
        assert {t: after[t] for t in GOLDEN_TABLES} == {
            t: oids[f"_staged_{t}"] for t in GOLDEN_TABLES
        }
        assert not any(t.startswith("_") for t in after)
        assert _hashes(con, "golden") == staged
        (views,) = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'staging'"
        ).fetchall()[0]
        assert views == 0


def test_a_blocked_full_build_leaves_golden_and_is_dropped_by_the_next(project: Path) -> None:
    run = run_pipeline(project, run_date="2026-11-23")
    assert run.success, run.errors
    cfg = load_config(project, golden_incremental=False)
    with open_warehouse(cfg) as con:
        published = _hashes(con, "golden")
        ctx = RunContext(config=cfg, run_id="r2", run_date=date(2026, 11, 23))
        golden_stage(con, ctx)  # staged; its swap never comes (a failed gate, a crash)
    again = run_pipeline(project, run_date="2026-11-23")  # an incremental run: a delta
    assert again.success, again.errors
    with open_warehouse(cfg, read_only=True) as con:
        names = [r[0] for r in con.execute(_OIDS).fetchall()]
        assert not any(t.startswith("_") for t in names)  # the leftovers dropped first
        assert _hashes(con, "golden") == published  # same inputs: the same golden content

"""The publish stage writes the Parquet exports on a second connection while the analyst mart
is masked and written (issue #22): the same files, the two at once."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

import pipelines.stages.publish as publish_stage
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from pipelines.stages.publish import beside


def test_exports_are_written_while_the_mart_is(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mart_started = threading.Event()
    seen: dict[str, object] = {}
    export, mart = publish_stage.publish_exports, publish_stage.update_analyst_mart

    def exporting(con, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["thread"] = threading.current_thread().name
        # written beside the mart: the mart starts while the exports are still being written
        seen["beside"] = mart_started.wait(timeout=60)
        return export(con, *args, **kwargs)

    def marting(*args, **kwargs):  # type: ignore[no-untyped-def]
        mart_started.set()
        return mart(*args, **kwargs)

    monkeypatch.setattr(publish_stage, "publish_exports", exporting)
    monkeypatch.setattr(publish_stage, "update_analyst_mart", marting)
    run = run_pipeline(project, run_date="2026-11-23")
    assert run.success
    assert seen["beside"] is True
    assert str(seen["thread"]).startswith("publish-beside")
    cfg = load_config(project)
    exports = cfg.resolve(cfg.exports_dir) / "golden"
    assert pq.read_table(exports / "customers.parquet").num_rows > 0
    assert (exports / "_export.json").exists()


def _database() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS wh; USE wh; CREATE TABLE t AS SELECT 1 AS x")
    return con


def test_the_work_beside_sees_the_connections_database_and_returns_its_result() -> None:
    con = _database()
    with beside(con, lambda c: c.execute("SELECT x FROM t").fetchall()) as job:
        con.execute("INSERT INTO t VALUES (2)")
    assert (1,) in job.result()  # the table as its own transaction saw it


def test_an_error_beside_is_raised_when_the_block_ends() -> None:
    con = _database()
    ran = []
    with (
        pytest.raises(duckdb.CatalogException),
        beside(con, lambda c: c.execute("SELECT * FROM missing").fetchall()),
    ):
        ran.append(True)
    assert ran == [True]


def test_a_failing_block_waits_for_the_work_beside_and_raises_its_own_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    con = _database()
    release = threading.Event()
    done = []

    def work(c: duckdb.DuckDBPyConnection) -> None:
        release.wait(timeout=30)
        done.append(True)
        raise RuntimeError("export failed")

    with pytest.raises(ValueError, match="mart failed"), beside(con, work):
        release.set()
        raise ValueError("mart failed")
    assert done == [True]  # waited for, not left running
    assert "export failed" in caplog.text  # its error logged, not swallowed

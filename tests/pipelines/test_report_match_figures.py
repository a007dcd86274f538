"""A run's reports compute the match tables' figures once (``pipelines.reporting``): the
snapshot step's report takes the golden suite's, and anything that changes the warehouse,
the run or the match tables computes them again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

import pipelines.reporting as reporting
from warehouse.report_figures import cluster_sizes, score_histogram


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA match; CREATE SCHEMA ops")
    con.execute("CREATE TABLE ops.match_runs (seq BIGINT, run_id VARCHAR, mode VARCHAR)")
    con.execute("INSERT INTO ops.match_runs VALUES (1, 'r1', 'full')")
    con.execute(
        "CREATE TABLE match.pairs AS SELECT 'a' || i AS left_key, 'b' || i AS right_key,"
        " (i % 10) / 10.0 AS probability FROM range(50) AS t(i)"
    )
    con.execute(
        "CREATE TABLE match.clusters AS SELECT 'k' || i AS record_key, 'c' || (i // 3) AS"
        " cluster_key FROM range(20) AS t(i)"
    )
    return con


def _cfg(root: Path) -> SimpleNamespace:
    return SimpleNamespace(warehouse=Path("w.duckdb"), resolve=lambda p: root / p)


def test_the_second_report_of_a_run_reuses_the_figures(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def counted(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def wrapper(c: Any) -> Any:
            calls.append(fn.__name__)
            return fn(c)

        return wrapper

    monkeypatch.setattr(reporting, "score_histogram", counted(score_histogram))
    monkeypatch.setattr(reporting, "cluster_sizes", counted(cluster_sizes))
    reporting._MATCH_FIGURES.clear()
    cfg = _cfg(tmp_path)
    expected = (score_histogram(con), cluster_sizes(con))

    first = reporting._match_figures(con, cfg, "run-1")
    second = reporting._match_figures(con, cfg, "run-1")
    assert first == second == expected
    assert calls == ["score_histogram", "cluster_sizes"]

    # another run, another warehouse: computed again
    reporting._match_figures(con, cfg, "run-2")
    reporting._match_figures(con, _cfg(tmp_path / "other"), "run-2")
    assert len(calls) == 6

    # a link logged, or the tables' rows changed: computed again, and the new figures
    con.execute("INSERT INTO ops.match_runs VALUES (2, 'run-2', 'incremental')")
    reporting._match_figures(con, cfg, "run-2")
    assert len(calls) == 8
    con.execute("INSERT INTO match.pairs VALUES ('x', 'y', 0.95)")
    changed = reporting._match_figures(con, cfg, "run-2")
    assert len(calls) == 10
    assert changed == (score_histogram(con), cluster_sizes(con)) != expected
    con.execute("DELETE FROM match.clusters WHERE record_key = 'k0'")
    assert reporting._match_figures(con, cfg, "run-2")[1] == cluster_sizes(con)
    assert len(calls) == 12


def test_without_a_match_log_nothing_is_kept(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    con.execute("DROP TABLE ops.match_runs")
    reporting._MATCH_FIGURES.clear()
    figures = reporting._match_figures(con, _cfg(tmp_path), "run-1")
    assert figures == (score_histogram(con), cluster_sizes(con))
    assert reporting._MATCH_FIGURES == {}

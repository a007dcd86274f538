"""Nightly runs defer DuckDB's checkpoint vacuum between compactions, with the same results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

import pipelines.assets as assets
from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from warehouse.compaction import COMPACTIONS, vacuum_deferred
from warehouse.naming import GOLDEN_TABLES


def _content(project: Path) -> dict[str, tuple[int, int]]:
    """count(*) and sum(hash(row)) of every golden table and the clean records, run ids and
    timestamps left out (they name the run)."""
    out: dict[str, tuple[int, int]] = {}
    with open_warehouse(load_config(project), read_only=True) as con:
        for table in [*(f"golden.{t}" for t in GOLDEN_TABLES), "clean.records", "match.clusters"]:
            schema, name = table.split(".")
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = "
                    "current_database() AND schema_name = ? AND table_name = ?",
                    [schema, name],
                ).fetchall()
                if "run_id" not in c and not c.endswith("_at")
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            sql = f"SELECT count(*), sum(hash({listed})::HUGEINT) FROM {table}"
            (count, digest) = con.execute(sql).fetchall()[0]
            out[table] = (int(count), int(digest or 0))
    return out


def _compactions(project: Path) -> list[str]:
    with open_warehouse(load_config(project), read_only=True) as con:
        rows = con.execute(f"SELECT run_date FROM {COMPACTIONS} ORDER BY run_date").fetchall()
    return [d.isoformat() for (d,) in rows]


def test_nightly_defers_the_vacuum_until_due_and_publishes_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deferred: list[bool] = []
    real_golden = assets.golden_stage

    def golden(con: duckdb.DuckDBPyConnection, ctx: Any) -> Any:
        deferred.append(vacuum_deferred(con))
        return real_golden(con, ctx)

    monkeypatch.setattr(assets, "golden_stage", golden)
    settings = ReplaySettings(nights=3, entities=150, late_every=2, repeat_every=2)
    projects = {}
    for every in (0, 2):  # 0: every run compacts (DuckDB's default); 2: every other day
        root = tmp_path / f"every{every}"
        root.mkdir()
        projects[every] = write_project(
            root, root / "demo" / "landing", (f"duckdb:\n  compact_every_days: {every}",)
        )
    nights = zip(
        replay_nights(tmp_path / "every0" / "demo", settings),
        replay_nights(tmp_path / "every2" / "demo", settings),
        strict=True,
    )
    seen: dict[int, list[bool]] = {0: [], 2: []}
    for night, _ in nights:
        for every, project in projects.items():
            deferred.clear()
            outcome = run_pipeline(project, run_date=night.run_date)
            assert outcome.success, (every, night.run_date, outcome.errors)
            seen[every].append(deferred[-1])
        # the same golden state whether the night's checkpoints vacuumed or not
        assert _content(projects[0]) == _content(projects[2]), night.run_date
    # night 0 is a first run (no held warehouse: DuckDB's default) and records a compaction;
    # every 2 days: night 1 defers, night 2 compacts (2 days after night 0), night 3 defers
    assert seen[2] == [False, True, False, True]
    assert seen[0] == [False, False, False, False]
    assert _compactions(projects[2]) == ["2026-11-23", "2026-11-25"]
    assert _compactions(projects[0]) == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]


def test_a_deferral_holds_for_every_write_open_until_the_run_ends(tmp_path: Path) -> None:
    """DuckDB's first checkpoint that vacuums does all the merging deferred so far, whatever it
    wrote: the run's own later writes (the audit anchor) must defer too, until the run ends."""
    from datetime import date

    from pipelines.access import run_vacuum_scope, run_warehouse
    from tests.pipelines.test_run_warehouse import _config, _with_table
    from warehouse.compaction import record_compaction

    cfg = _config(tmp_path, "1GiB")
    # compaction deferred once a week (opt-in: the default 0 compacts every run)
    cfg = cfg.model_copy(update={"duckdb": cfg.duckdb.model_copy(update={"compact_every_days": 7})})
    _with_table(cfg)
    with open_warehouse(cfg) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ops")
        record_compaction(con, date(2026, 11, 23))
    with run_vacuum_scope(cfg):
        with run_warehouse(cfg, date(2026, 11, 24)) as held:
            assert held is not None and vacuum_deferred(held.con)
        with open_warehouse(cfg) as con:  # after the steps, still the run
            assert vacuum_deferred(con)
        with open_warehouse(cfg, read_only=True) as con:  # a reader never checkpoints
            assert not vacuum_deferred(con)
    with open_warehouse(cfg) as con:  # the run is over: DuckDB's default
        assert not vacuum_deferred(con)
    with run_warehouse(cfg, date(2026, 11, 24)) as held:  # no scope: ends with the block
        assert held is not None and vacuum_deferred(held.con)
    with open_warehouse(cfg) as con:
        assert not vacuum_deferred(con)
    with run_warehouse(cfg, date(2026, 11, 30)) as held:  # due: compacts and records it
        assert held is not None and not vacuum_deferred(held.con)
    with open_warehouse(cfg, read_only=True) as con:
        rows = con.execute(f"SELECT run_date FROM {COMPACTIONS} ORDER BY 1").fetchall()
    assert [d.isoformat() for (d,) in rows] == ["2026-11-23", "2026-11-30"]


def test_by_default_every_nightly_compacts(tmp_path: Path) -> None:
    """Deferral is opt-in: over 15 nights it saved no CPU and grew the file 47 % (BENCHMARKS.md)."""
    from datetime import date

    from pipelines.access import run_warehouse
    from tests.pipelines.test_run_warehouse import _config, _with_table
    from warehouse.compaction import record_compaction

    cfg = _config(tmp_path, "1GiB")
    _with_table(cfg)
    with open_warehouse(cfg) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ops")
        record_compaction(con, date(2026, 11, 23))
    with run_warehouse(cfg, date(2026, 11, 24)) as held:  # the day after a compaction
        assert held is not None and not vacuum_deferred(held.con)

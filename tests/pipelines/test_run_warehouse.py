"""One warehouse database for the steps of an in-process nightly (`pipelines.access.run_warehouse`).

Each stage used to open the (encrypted) warehouse itself, so every table a stage read was read
and decrypted again; a nightly now keeps one database open and each step finds the blocks the
steps before it read still in DuckDB's buffer pool, trimmed to ``duckdb.stage_cache``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

import pipelines.access as access
from pipelines.access import end_stage_cache, run_warehouse, step_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from tests.pipelines.conftest import write_project
from tests.pipelines.test_nightly import golden_state_hash

_SECURITY = ("security:", "  key_file: keys/archive.key", "  audit_log: audit/audit.jsonl")


def _config(tmp_path: Path, cache: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg_file = write_project(
        tmp_path, tmp_path / "landing", ("duckdb:", f"  stage_cache: {cache}", *_SECURITY)
    )
    return load_config(cfg_file)


def _buffered(con) -> int:
    sql = "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()"
    return int(con.execute(sql).fetchall()[0][0])


def _with_table(cfg) -> None:
    """Create the warehouse with ``clean.t``: 400,000 rows, several MiB of blocks."""
    with step_warehouse(cfg, create_key=True) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS clean")
        con.execute("CREATE TABLE clean.t AS SELECT range AS i, md5(range::VARCHAR) AS s"
                    " FROM range(400000)")  # fmt: skip


def test_steps_share_one_buffer_pool_trimmed_to_the_stage_cache(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "2MiB")
    _with_table(cfg)  # the warehouse exists from here on
    with run_warehouse(cfg) as held:
        assert held is not None
        with step_warehouse(cfg, trim=True) as first:
            first.execute("SELECT sum(hash(t)) FROM clean.t AS t").fetchall()
            read = held.buffered_bytes()
            assert read > 4 * 2**20  # the table's blocks, decrypted, in the pool
            first.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        # after the step: the pool trimmed to the stage cache, the run's limit set back
        assert _buffered(held.con) <= 2 * 2**20
        with step_warehouse(cfg, trim=True) as second:
            assert second.execute("SELECT count(*) FROM clean.t").fetchall() == [(400000,)]
            # the step's own connection: its temp tables are gone with the step before's
            names = second.execute("SELECT table_name FROM duckdb_tables() WHERE temporary")
            assert names.fetchall() == []
            limit = second.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            assert limit != "2.0 MiB"
    assert access._RUN_WAREHOUSES == {}


def test_the_next_step_finds_the_blocks_warm_unless_it_starts_cold(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "1GiB")
    _with_table(cfg)
    with run_warehouse(cfg) as held:
        assert held is not None
        with step_warehouse(cfg, trim=True) as first:
            first.execute("SELECT sum(hash(t)) FROM clean.t AS t").fetchall()
        warm = held.buffered_bytes()
        assert warm > 4 * 2**20  # kept for the next step
        with step_warehouse(cfg, trim=True, cold=True) as cold:
            assert held.buffered_bytes() < warm / 4  # a cold step starts with the pool emptied
            cold.execute("SELECT sum(hash(t)) FROM clean.t AS t").fetchall()
            end_stage_cache(cfg)  # this step rebuilt its tables whole: the rest is full-size
        assert held.buffered_bytes() < warm / 4  # nothing kept for the steps after it


def test_no_held_warehouse_for_a_first_run_or_stage_cache_zero(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "0")
    with step_warehouse(cfg, create_key=True) as con:
        con.execute("SELECT 1")
    with run_warehouse(cfg) as held:
        assert held is None
    first_run = _config(tmp_path / "other", "768MiB")
    with run_warehouse(first_run) as held:
        assert held is None  # no warehouse yet: a full first run opens it per step as before
    assert not first_run.resolve(first_run.warehouse).exists()


@pytest.fixture
def after_first_run(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("first")
    shutil.copytree(demo_dir / "landing", root / "landing")
    write_project(root, root / "landing")
    assert run_pipeline(root / "archive.yml", run_date="2026-11-23").success
    return root


def _nightly(root: Path, target: Path, cache: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """A copy of ``root`` given a changed sales export; the nightly's warehouse opens."""
    shutil.copytree(root, target)
    cfg_file = write_project(target, target / "landing", ("duckdb:", f"  stage_cache: {cache}"))
    sales = next((target / "landing" / "sales").glob("*/crm_customers.csv"))
    night = target / "landing" / "sales" / "2026-11-24" / "crm_customers.csv"
    night.parent.mkdir(parents=True)
    lines = sales.read_bytes().splitlines(keepends=True)
    night.write_bytes(b"".join(lines[:-3]))  # three records deleted at source
    opened: list[bool] = []
    real = access.open_warehouse

    def counting(*args, **kwargs):
        opened.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(access, "open_warehouse", counting)
    outcome = run_pipeline(cfg_file, run_date="2026-11-24")
    monkeypatch.undo()
    assert outcome.success, outcome.errors
    assert outcome.stats.golden is not None and outcome.stats.golden.mode == "incremental"
    return len(opened)


def test_a_nightly_opens_the_warehouse_once_with_the_same_result(
    after_first_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_step = _nightly(after_first_run, tmp_path / "per_step", "0", monkeypatch)
    held = _nightly(after_first_run, tmp_path / "held", "768MiB", monkeypatch)
    # per step: ingest per source, three suites, clean … snapshot; held: the run's database,
    # then the summary's read and the audit anchor after the run
    assert per_step >= 10
    assert held <= 3
    assert golden_state_hash(tmp_path / "held" / "archive.yml") == golden_state_hash(
        tmp_path / "per_step" / "archive.yml"
    )


def test_a_read_only_step_reads_beside_other_readers_and_refuses_writes(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "0")  # no held database: each step opens the warehouse itself
    _with_table(cfg)
    with step_warehouse(cfg, read_only=True) as first, step_warehouse(cfg, read_only=True) as two:
        # two read-only steps side by side (shard steps of a multiprocess run read so)
        assert first.execute("SELECT count(*) FROM clean.t").fetchall() == [(400000,)]
        assert two.execute("SELECT count(*) FROM clean.t").fetchall() == [(400000,)]
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            first.execute("CREATE TABLE clean.u AS SELECT 1 AS x")


def test_a_read_only_step_of_a_held_run_connects_through_the_held_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path, "1GiB")
    _with_table(cfg)
    with run_warehouse(cfg) as held:
        assert held is not None

        def refuse(*args, **kwargs):
            raise AssertionError("the held warehouse must not be opened a second time")

        monkeypatch.setattr(access, "open_warehouse", refuse)
        with step_warehouse(cfg, read_only=True, cold=True) as con:
            assert con.execute("SELECT count(*) FROM clean.t").fetchall() == [(400000,)]

"""A full clean in chunks (``scale.clean_chunk_records``) writes exactly what one chunk writes.

Same rows (the order of ``clean.records`` was never fixed: the current versions come out of a
parallel window query), same column types, equal to ``clean_records`` over every current
record; switchboard phones whose records fall into different chunks are flagged as in one
clean (the records guessed wrong are cleaned again in place).
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
import threading
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cleaning import _slices
from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.clean import CleanStats, clean_stage
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from tests.pipelines.conftest import write_project
from tests.pipelines.test_clean_incremental import _assert_equals_full_clean
from warehouse import read_table
from warehouse.db import ChunkedTables

TABLES = ("records", "transactions", "interactions", "follow_up", "unmapped_industries",
          "date_orders")  # fmt: skip


def _make_switchboard(landing: Path) -> str:
    """Give one phone to sales records of 4 different customers far apart in the export."""
    path = next(landing.glob("sales/*/*.csv"))
    with path.open(encoding="gb18030", newline="") as handle:
        rows = list(csv.reader(handle))
    phone = rows[0].index("手机")
    body = rows[1:]
    for row in (2, len(body) // 3, 2 * len(body) // 3, len(body) - 2):
        body[row][phone] = "010-88886666"
    with path.open("w", encoding="gb18030", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *body])
    return "+861088886666"


def _clean(
    project: Path, chunk: int, oracle: bool, workers: int = 1, behind: bool = True
) -> tuple[CleanStats, dict[str, pd.DataFrame], dict]:
    extra = ("clean_incremental: false", "scale:", f"  clean_chunk_records: {chunk}",
             f"  clean_workers: {workers}", "  workers: 2",
             f"  write_behind: {str(behind).lower()}")  # fmt: skip
    text = project.read_text(encoding="utf-8")
    cfg_path = project.parent / f"archive-{chunk}-{workers}-{behind}.yml"
    cfg_path.write_text(text + "\n".join(extra) + "\n", encoding="utf-8")
    cfg = load_config(cfg_path)
    ctx = RunContext(config=cfg, run_id=f"c{chunk}", run_date=date(2026, 11, 23))
    with open_warehouse(cfg, create_key=True) as con:
        stats = clean_stage(con, ctx)
        if oracle:  # equal to clean_records over every current record
            _assert_equals_full_clean(con, project)
        tables = {name: read_table(con, f"clean.{name}") for name in TABLES}
        types = {name: con.execute(f"DESCRIBE clean.{name}").fetchall() for name in TABLES}
    return stats, tables, types


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [
        c
        for c in frame.columns
        if c
        in ("record_key", "txn_id", "interaction_id", "missing", "industry_raw", "source_system")
    ]
    return frame.sort_values(keys).reset_index(drop=True)


def _assert_same_layer(
    got: dict[str, pd.DataFrame], got_types: dict, want: dict[str, pd.DataFrame], want_types: dict
) -> None:
    """Every clean table has the same column types and the same rows (in any order)."""
    for name in TABLES:
        assert got_types[name] == want_types[name], name
        pd.testing.assert_frame_equal(_sorted(got[name]), _sorted(want[name]), obj=name)


def _figures(stats: CleanStats) -> dict:
    """The clean figures; the version step's differ between a first clean (every version
    resolved) and the next (the stored state read)."""
    return {k: v for k, v in dataclasses.asdict(stats).items() if not k.startswith("versions_")}


@pytest.fixture
def ingested(tmp_path: Path, demo_dir: Path) -> tuple[Path, str]:
    landing = tmp_path / "landing"
    shutil.copytree(demo_dir / "landing", landing)
    phone = _make_switchboard(landing)
    project = write_project(tmp_path, landing)
    cfg = load_config(project)
    ctx = RunContext(config=cfg, run_id="ingest", run_date=date(2026, 11, 23))
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            ingest_stage(con, ctx, source.name)
    return project, phone


def test_a_full_clean_in_chunks_equals_one_chunk(ingested: tuple[Path, str]) -> None:
    project, switchboard = ingested
    stats_one, one, types_one = _clean(project, 1_000_000, oracle=False)
    # again in chunks of 300 records: the clean layer is replaced whole ...
    stats_many, many, types_many = _clean(project, 300, oracle=True)
    assert _figures(stats_many) == _figures(stats_one)
    assert stats_one.clean_records > 3 * 300
    _assert_same_layer(many, types_many, one, types_one)
    # ... the switchboard's records sit in different chunks, yet all are flagged
    records = many["records"]
    flagged = records.loc[records["phone"] == switchboard, "phone_shared"]
    assert len(flagged) == 4 and flagged.all()
    assert records["issues"][records["phone"] == switchboard].str.contains("phone_shared").all()


def test_chunks_written_behind_equal_chunks_written_inline(
    ingested: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scale.write_behind``: each chunk appended and committed by a background thread on a
    second connection while the next slice is cleaned; the same layer as written inline."""
    project, switchboard = ingested
    threads: list[str] = []
    real_append = ChunkedTables.append

    def recording_append(self: ChunkedTables, name: str, frame: object) -> None:
        if name == "clean._building_records":
            threads.append(threading.current_thread().name)
        real_append(self, name, frame)  # type: ignore[arg-type]

    monkeypatch.setattr(ChunkedTables, "append", recording_append)
    stats_inline, inline, types_inline = _clean(project, 300, oracle=False, behind=False)
    assert len(threads) > 3 and set(threads) == {threading.main_thread().name}
    threads.clear()
    stats_behind, behind, types_behind = _clean(project, 300, oracle=True, behind=True)
    assert len(threads) > 3 and all(t.startswith("write-behind") for t in threads)
    assert _figures(stats_behind) == _figures(stats_inline)
    _assert_same_layer(behind, types_behind, inline, types_inline)
    records = behind["records"]
    assert records.loc[records["phone"] == switchboard, "phone_shared"].all()


def test_slices_cleaned_in_helper_processes_equal_one_chunk(
    ingested: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, switchboard = ingested
    stats_one, one, types_one = _clean(project, 1_000_000, oracle=False)
    started: list[int] = []
    real_init = _slices._Helper.__init__

    def counting_init(self: _slices._Helper, *args: str, **kwargs: str) -> None:
        real_init(self, *args, **kwargs)
        started.append(self.proc.pid)

    answered: list[bool] = []
    real_result = _slices._Helper.result

    def recording_result(self: _slices._Helper, deadline: float) -> tuple[bool, object]:
        ok, value = real_result(self, deadline)
        answered.append(ok)
        return ok, value

    monkeypatch.setattr(_slices._Helper, "__init__", counting_init)
    monkeypatch.setattr(_slices._Helper, "result", recording_result)
    # two processes: even slices here, odd slices in a helper; every slice's result is used
    stats_two, two, types_two = _clean(project, 200, oracle=True, workers=2)
    assert len(started) == 1 and len(answered) >= 2 and all(answered)  # the helper cleaned
    assert stats_two.clean_records == stats_one.clean_records > 4 * 200
    _assert_same_layer(two, types_two, one, types_one)
    records = two["records"]
    assert records.loc[records["phone"] == switchboard, "phone_shared"].all()


def _clean_tables(con: object) -> list[str]:
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'clean' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def test_a_clean_failing_between_chunks_leaves_the_old_layer_whole(
    ingested: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = ingested
    _, before, types_before = _clean(project, 1_000_000, oracle=False)
    real_append = ChunkedTables.append
    appended: list[str] = []
    committed: list[int] = []

    def failing_append(self: ChunkedTables, name: str, frame: object) -> None:
        real_append(self, name, frame)  # type: ignore[arg-type]
        appended.append(name)
        if name == "clean._building_records":  # what another connection sees: each chunk is
            (db,) = self._con.execute("SELECT current_database()").fetchall()[0]
            with self._con.cursor() as other:  # committed (memory does not hold every chunk)
                try:
                    sql = f'SELECT count(*) FROM "{db}".clean._building_records'
                    committed.append(other.execute(sql).fetchall()[0][0])
                except duckdb.CatalogException:  # created in the first chunk, not committed yet
                    committed.append(0)
        if appended.count("clean._building_records") == 3:  # two chunks committed, a third half
            raise KeyboardInterrupt  # an interruption, not an error the stage could expect

    monkeypatch.setattr(ChunkedTables, "append", failing_append)
    with pytest.raises(KeyboardInterrupt):
        _clean(project, 300, oracle=False)
    monkeypatch.undo()
    assert committed == [0, 300, 600]  # seen while the next chunk is being appended
    cfg = load_config(project)
    with open_warehouse(cfg) as con:
        assert _clean_tables(con) == sorted(TABLES)  # nothing built is left behind
        (runs,) = con.execute("SELECT count(*) FROM ops.clean_runs").fetchall()[0]
        assert runs == 1  # the failed clean logged nothing
        for name in TABLES:  # the old layer, untouched
            assert con.execute(f"DESCRIBE clean.{name}").fetchall() == types_before[name]
            pd.testing.assert_frame_equal(
                _sorted(read_table(con, f"clean.{name}")), _sorted(before[name]), obj=name
            )
    # the next clean works and equals an uninterrupted one
    _, after, types_after = _clean(project, 300, oracle=True)
    _assert_same_layer(after, types_after, before, types_before)


def test_the_next_clean_drops_what_a_killed_clean_built(ingested: tuple[Path, str]) -> None:
    project, _ = ingested
    _, before, _ = _clean(project, 1_000_000, oracle=False)
    cfg = load_config(project)
    with open_warehouse(cfg) as con:  # what a SIGKILL between two chunks leaves: committed chunks
        con.execute("CREATE TABLE clean._building_records AS SELECT * FROM clean.records LIMIT 300")
        con.execute("CREATE TABLE clean._building_follow_up AS SELECT 1 AS stray")
    # the next run, incremental (the project's default) or full, drops them first
    with open_warehouse(cfg) as con:
        stats = clean_stage(con, RunContext(config=cfg, run_id="n", run_date=date(2026, 11, 24)))
        assert stats.mode == "incremental"
        assert _clean_tables(con) == sorted(TABLES)
        con.execute("CREATE TABLE clean._building_records AS SELECT 1 AS stray")
    _, after, _ = _clean(project, 300, oracle=True)  # a full clean with a leftover
    for name in TABLES:
        pd.testing.assert_frame_equal(_sorted(after[name]), _sorted(before[name]), obj=name)
    with open_warehouse(cfg) as con:
        assert _clean_tables(con) == sorted(TABLES)

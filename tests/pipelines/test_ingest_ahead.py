"""Later sources read ahead in a helper process write exactly what their own stages would.

The ingest steps run one after the other (by source name) as the in-process executor runs
them, once with ``scale.workers: 1`` (every source read by its stage) and once with 2 and the
read-ahead threshold at 0 bytes (the demo files are small), so the first stage hands the later
sources to a helper process. The raw layer, the quarantine, the delivery manifest, the per-file
index and the stage figures must be equal; every raw row carries its own stage's
``ingested_at``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import uuid
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

import pipelines.ingest_ahead as ingest_ahead
from pipelines.access import keyring, open_warehouse
from pipelines.settings import ArchiveConfig, load_config
from pipelines.stages import load_sources
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from tests.pipelines.conftest import REPO, write_project
from warehouse import read_table
from warehouse.security.suppression import suppression_entries

TABLES = ("quarantine.rows", "quarantine.files", "ops.deliveries", "ops.raw_files")


@pytest.fixture
def project(tmp_path: Path, demo_dir: Path) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(demo_dir / "landing", landing)
    sources = tmp_path / "sources.yml"
    shutil.copy(REPO / "sources" / "sources.yml", sources)
    return write_project(tmp_path, landing, (f"sources_file: {sources}",))


def _config(project: Path, workers: int, warehouse: str) -> ArchiveConfig:
    cfg = load_config(project, warehouse=str(project.parent / warehouse))
    return cfg.model_copy(update={"scale": cfg.scale.model_copy(update={"workers": workers})})


def _ingest(
    cfg: ArchiveConfig,
    suppression: pd.DataFrame | None = None,
    between: dict[str, object] | None = None,
) -> tuple[dict, dict]:
    """Run every source's ingest stage in the steps' order; return figures and tables."""
    names = sorted(s.name for s in load_sources(cfg).sources if s.enabled)
    run_id = uuid.uuid4().hex  # each run its own (the read-ahead serves one run)
    stats, tables = {}, {}
    with open_warehouse(cfg, create_key=True) as con:
        if suppression is not None:
            con.execute("CREATE SCHEMA IF NOT EXISTS security")
            con.register("_s", suppression)
            con.execute("CREATE TABLE security.suppression AS SELECT * FROM _s")
            con.unregister("_s")
        for name in names:
            if between and name in between:
                between[name](con)  # type: ignore[operator]
            ctx = RunContext(config=cfg, run_id=run_id, run_date=date(2026, 11, 23))
            figures = dataclasses.asdict(ingest_stage(con, ctx, name))
            stats[name] = {k: v for k, v in figures.items() if k.startswith(("rows", "files"))}
            stats[name]["warnings"] = figures["warnings"]
            raw = read_table(con, f"raw.{name}")
            # each row of this run carries its own stage's clock (two runs differ by seconds)
            ours = raw["run_id"] == run_id
            assert set(raw.loc[ours, "ingested_at"]) <= {ctx.ingested_at}, name
            tables[name] = raw.drop(columns=["ingested_at", "run_id"])
        for table in TABLES:
            frame = read_table(con, table).drop(columns=["run_id", "note"], errors="ignore")
            tables[table] = frame.sort_values(list(frame.columns), ignore_index=True)
        tables["schema"] = con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM "
            "information_schema.columns ORDER BY ALL"
        ).df()
    return stats, tables


def _assert_same(one: tuple[dict, dict], two: tuple[dict, dict]) -> None:
    assert two[0] == one[0]
    assert set(two[1]) == set(one[1])
    for name, frame in one[1].items():
        pd.testing.assert_frame_equal(two[1][name], frame, obj=name)


def _read_ahead_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "read ahead (" in r.getMessage()]


@pytest.fixture
def no_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_ahead, "MIN_NEW_BYTES", 0)


@pytest.mark.parametrize("batch_rows", ["null", "40"])
def test_read_ahead_writes_what_each_stage_reads(
    project: Path, batch_rows: str, no_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    sources = project.parent / "sources.yml"
    sources.write_text(f"ingest_batch_rows: {batch_rows}\n{sources.read_text('utf-8')}", "utf-8")
    alone = _ingest(_config(project, 1, "alone.duckdb"))
    assert not _read_ahead_log(caplog)
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        ahead = _ingest(_config(project, 2, "ahead.duckdb"))
    # the first stage (marketing) starts the helper on the last (service) and reads its own;
    # the sales stage finds sales not begun and reads it too
    assert [m.split()[1] for m in _read_ahead_log(caplog)] == ["service"]
    assert min(s["rows_ingested"] for s in alone[0].values()) > 0
    _assert_same(alone, ahead)
    assert ingest_ahead._current is not None and ingest_ahead._current[1].helper is None


def test_read_ahead_screens_erased_people_as_the_stage_does(
    project: Path, no_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    sources = project.parent / "sources.yml"
    sources.write_text(f"ingest_batch_rows: 40\n{sources.read_text('utf-8')}", "utf-8")
    first = _ingest(_config(project, 1, "first.duckdb"))
    keys = [*first[1]["sales"]["record_key"][:3], *first[1]["service"]["record_key"][:3]]
    cfg = _config(project, 1, "alone.duckdb")
    ring = keyring(cfg, create=True)
    assert ring is not None
    secret = ring.derive("suppression", ring.ids()[0])
    erased = suppression_entries("KH-1", keys, [], [], [], secret, "2026-11-22T00:00:00")
    alone = _ingest(cfg, erased)
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        ahead = _ingest(_config(project, 2, "ahead.duckdb"), erased)
    assert len(_read_ahead_log(caplog)) == 1
    quarantine = alone[1]["quarantine.rows"]
    assert (quarantine["reason"] == "erased").sum() == len(keys)
    _assert_same(alone, ahead)


def test_a_source_whose_inputs_changed_is_read_by_its_stage(
    project: Path, no_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Here service's file is recorded as delivered after the helper planned it as new."""

    def record_service(con: object) -> None:
        cfg_sources = load_sources(_config(project, 1, "x.duckdb"))
        service = cfg_sources.source("service")
        files = sorted((project.parent / "landing").glob(service.path))
        from sources.deliveries import file_sha256

        rows = pd.DataFrame(
            {
                "source_system": ["service"] * len(files),
                "path": [f.relative_to(project.parent / "landing").as_posix() for f in files],
                "size": [f.stat().st_size for f in files],
                "sha256": [file_sha256(f) for f in files],
                "status": ["new"] * len(files),
                "run_id": ["earlier"] * len(files),
                "rows_read": [0] * len(files),
                "mapping_sha256": [service.mapping_sha256()] * len(files),
                "note": [""] * len(files),
            }
        )
        con.register("_d", rows)  # type: ignore[attr-defined]
        con.execute("INSERT INTO ops.deliveries BY NAME SELECT * FROM _d")  # type: ignore[attr-defined]

    between = {"service": record_service}
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        stats, tables = _ingest(_config(project, 2, "ahead.duckdb"), between=between)
    messages = [r.getMessage() for r in caplog.records]
    assert any("service changed since it was read ahead" in m for m in messages)
    assert stats["service"]["files_new"] == 0 and stats["service"]["files_skipped"] == 1
    assert tables["service"].empty


def test_a_helper_that_dies_leaves_its_sources_to_their_stages(
    project: Path, no_threshold: None, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    alone = _ingest(_config(project, 1, "alone.duckdb"))

    class DyingHelper(ingest_ahead._Helper):
        def submit(self, func: object, payload: object) -> None:
            self.proc.kill()  # gone before it reads anything
            self.proc.wait()

    monkeypatch.setattr(ingest_ahead, "_Helper", DyingHelper)
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        again = _ingest(_config(project, 2, "ahead.duckdb"))
    assert any("reading service ahead failed" in r.getMessage() for r in caplog.records)
    assert not _read_ahead_log(caplog)
    _assert_same(alone, again)


def test_a_helper_starts_only_when_both_processes_have_a_large_source() -> None:
    """A full run's three exports: the helper takes the last two (it starts on the last); a
    nightly (one large re-export between small deltas) or a step whose later sources are
    small starts none."""
    big, small = ingest_ahead.MIN_NEW_BYTES, 600_000
    order = ["marketing", "sales", "service"]
    full = {"marketing": 69 * 2**20, "sales": 48 * 2**20, "service": 53 * 2**20}
    assert ingest_ahead.read_ahead_sources("marketing", order, full) == ["sales", "service"]
    nightly = {"marketing": small, "sales": 49 * 2**20, "service": small}
    assert ingest_ahead.read_ahead_sources("marketing", order, nightly) == []
    one_big_later = {"marketing": big, "sales": small, "service": big}
    assert ingest_ahead.read_ahead_sources("marketing", order, one_big_later) == ["service"]
    assert ingest_ahead.read_ahead_sources("service", order, full) == []


def test_new_bytes_counts_files_no_delivery_recorded(tmp_path: Path) -> None:
    from sources import SourceConfig

    landing = tmp_path / "landing"
    (landing / "crm" / "d1").mkdir(parents=True)
    (landing / "crm" / "d2").mkdir(parents=True)
    (landing / "crm" / "d1" / "a.csv").write_bytes(b"x" * 100)
    (landing / "crm" / "d2" / "a.csv").write_bytes(b"x" * 30)
    source = SourceConfig(name="crm", path="crm/**/*.csv", columns={"customer_name": "名称"})
    none = pd.DataFrame()
    assert ingest_ahead.new_bytes(source, landing, none) == 130
    recorded = pd.DataFrame({"path": ["crm/d1/a.csv"], "size": [100]})
    assert ingest_ahead.new_bytes(source, landing, recorded) == 30
    grown = pd.DataFrame({"path": ["crm/d1/a.csv"], "size": [99]})
    assert ingest_ahead.new_bytes(source, landing, grown) == 130


def _stop_after_first_step(cfg: ArchiveConfig, pid_file: Path) -> None:
    """(In a forked child) ingest the first source with the helper reading the others, then
    die by SIGKILL, as a run killed between two ingest steps does."""
    import os
    import signal

    names = sorted(s.name for s in load_sources(cfg).sources if s.enabled)
    with open_warehouse(cfg, create_key=True) as con:
        ctx = RunContext(config=cfg, run_id=uuid.uuid4().hex, run_date=date(2026, 11, 23))
        ingest_stage(con, ctx, names[0])
        assert ingest_ahead._current is not None and ingest_ahead._current[1] is not None
        helper = ingest_ahead._current[1].helper
        assert helper is not None
        pid_file.write_text(str(helper.proc.pid))
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_run_killed_while_the_helper_reads_leaves_no_partial_delivery(
    project: Path, no_threshold: None
) -> None:
    import multiprocessing
    import os
    import time

    alone = _ingest(_config(project, 1, "alone.duckdb"))
    cfg = _config(project, 2, "killed.duckdb")
    pid_file = project.parent / "helper.pid"
    child = multiprocessing.get_context("fork").Process(
        target=_stop_after_first_step, args=(cfg, pid_file)
    )
    child.start()
    child.join(300)
    assert child.exitcode == -9
    helper = int(pid_file.read_text())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the orphaned helper ends once its pipe is closed
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"helper {helper} still running")
    with open_warehouse(cfg) as con:
        delivered = con.execute("SELECT DISTINCT source_system FROM ops.deliveries").fetchall()
        raw = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
    assert delivered == [("marketing",)] and raw == [("marketing",)]
    # the next run reads the other two: the warehouse is the uninterrupted run's
    again = _ingest(cfg)
    assert again[0]["marketing"]["files_skipped"] == 1
    for name in ("sales", "service", "quarantine.rows", "quarantine.files", "ops.raw_files"):
        pd.testing.assert_frame_equal(again[1][name], alone[1][name], obj=name)


def test_closing_a_busy_read_ahead_stops_the_helper_and_removes_its_files(
    project: Path, no_threshold: None
) -> None:
    """A run that ends (or the next one that starts) before taking what the helper reads."""
    import time

    cfg = _config(project, 2, "ahead.duckdb")
    with open_warehouse(cfg, create_key=True) as con:
        ctx = RunContext(config=cfg, run_id=uuid.uuid4().hex, run_date=date(2026, 11, 23))
        ingest_stage(con, ctx, "marketing")
    assert ingest_ahead._current is not None
    ahead = ingest_ahead._current[1]
    assert ahead is not None and ahead.helper is not None and ahead.running is not None
    proc, folder = ahead.helper.proc, ahead.running[1].folder
    started = time.monotonic()
    ingest_ahead.close_read_ahead()
    assert proc.poll() is not None and time.monotonic() - started < 4
    assert not folder.exists()
    assert ingest_ahead._current is None


def test_ingest_read_ahead_off_keeps_every_read_in_its_stage(
    project: Path, no_threshold: None, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _config(project, 2, "off.duckdb")
    cfg = cfg.model_copy(
        update={"scale": cfg.scale.model_copy(update={"ingest_read_ahead": False})}
    )
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        _ingest(cfg)
    assert not _read_ahead_log(caplog)
    assert not any("helper process reads ahead" in r.getMessage() for r in caplog.records)

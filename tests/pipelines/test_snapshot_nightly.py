"""The nightly snapshot of a replay: a delta read from the changed customers, exact every night."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipelines.access import open_warehouse, snapshot_reader
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from warehouse.archive import content_hash, list_snapshots, load_snapshot
from warehouse.publish import golden_snapshot_tables


def test_nightly_snapshots_are_scoped_deltas_equal_to_the_golden_tables(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="warehouse.archive")
    settings = ReplaySettings(nights=2, entities=150, late_every=2, repeat_every=2)
    (tmp_path / "nightly").mkdir()
    project = write_project(tmp_path / "nightly", tmp_path / "demo" / "landing")
    cfg = load_config(project)
    storages = []
    for night in replay_nights(tmp_path / "demo", settings):
        outcome = run_pipeline(project, run_date=night.run_date)
        assert outcome.success, (night.run_date, outcome.errors)
        snapshot = list_snapshots(cfg.resolve(cfg.archive_dir))[-1]
        storages.append(snapshot.storage)
        with open_warehouse(cfg, read_only=True) as con:
            golden = content_hash(golden_snapshot_tables(con))
        # the delta's recorded hash is the golden tables' hash, and so is its reconstruction
        assert snapshot.content_hash == golden
        loaded = load_snapshot(snapshot.path, reader=snapshot_reader(cfg))  # verifies first
        assert content_hash(loaded) == golden
    assert storages[0] == "full" and set(storages[1:]) == {"delta"}, storages
    # every nightly table was read from its changed customers only (no whole-table fallback)
    assert "changed customers read; 0 of 9 tables read whole" in caplog.text, caplog.text
    assert "outside the run's customers" not in caplog.text

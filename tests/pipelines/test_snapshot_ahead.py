"""A full run's publish stage writes the full snapshot's table files beside the analyst mart
(``scale.snapshot_ahead``); the snapshot stage adds the manifest: the same snapshot content as
a snapshot stage that writes them itself, and files of another state are never used."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import pipelines.stages.publish as publish_stage
from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from warehouse.archive import list_snapshots, read_tables_arrow
from warehouse.archive._hashing import table_content_hash
from warehouse.archive._layout import TEMP_PREFIX
from warehouse.naming import EXPORTED

from .conftest import write_project

RUN_DATE = "2026-11-24"


def _project(tmp_path: Path, landing: Path, ahead: bool) -> Path:
    return write_project(
        tmp_path, landing, ("scale:", "  workers: 2", f"  snapshot_ahead: {str(ahead).lower()}")
    )


def _manifest(project: Path) -> dict:
    cfg = load_config(project)
    (snapshot,) = list_snapshots(cfg.resolve(cfg.archive_dir))
    manifest = json.loads((snapshot.path / "manifest.json").read_text(encoding="utf-8"))
    assert not [
        p for p in cfg.resolve(cfg.archive_dir).glob("*/*/.*") if p.name.startswith(TEMP_PREFIX)
    ]
    return manifest


def _golden_hashes(project: Path) -> dict[str, str]:
    cfg = load_config(project)
    with open_warehouse(cfg, read_only=True) as con:
        tables = read_tables_arrow(con, [f"golden.{n}" for n in EXPORTED])
    return {name: table_content_hash(t) for name, t in tables.items()}


def test_files_written_ahead_give_the_snapshot_written_by_its_stage(
    tmp_path: Path, demo_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifests = {}
    for ahead in (False, True):
        root = tmp_path / str(ahead)
        root.mkdir()
        project = _project(root, demo_dir / "landing", ahead)
        with caplog.at_level(logging.INFO, logger="customer_archive"):
            caplog.clear()
            assert run_pipeline(project, run_date=RUN_DATE).success
        written_ahead = "snapshot files of 9 tables written ahead" in caplog.text
        assert written_ahead is ahead
        manifests[ahead] = _manifest(project)
        # each snapshot holds its run's golden tables (their rows carry the run's id)
        hashes = _golden_hashes(project)
        assert hashes.keys() == manifests[ahead]["files"].keys()
        for name, entry in manifests[ahead]["files"].items():
            assert entry["content_hash"] == hashes[name], name
    off, on = manifests[False], manifests[True]
    assert on["row_counts"] == off["row_counts"]
    for name, entry in off["files"].items():
        assert on["files"][name]["schema"] == entry["schema"]
    assert publish_stage._hand_over(None) is None  # taken by the snapshot stage


def test_files_of_another_state_are_not_used(
    tmp_path: Path,
    demo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    project = _project(tmp_path, demo_dir / "landing", True)
    deliveries = publish_stage.run_deliveries

    def changed_first(con, run_id):  # type: ignore[no-untyped-def]
        # a golden row changes between the publish (files prepared) and the snapshot stage
        con.execute(
            "DELETE FROM golden.crosswalk WHERE record_key = (SELECT min(record_key)"
            " FROM golden.crosswalk)"
        )
        return deliveries(con, run_id)

    monkeypatch.setattr(publish_stage, "run_deliveries", changed_first)
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        assert run_pipeline(project, run_date=RUN_DATE).success
    assert "snapshot files of 9 tables written ahead" in caplog.text
    assert "files prepared ahead are not of this state" in caplog.text
    manifest = _manifest(project)
    hashes = _golden_hashes(project)  # the tables as the snapshot stage found them
    for name, entry in manifest["files"].items():
        assert entry["content_hash"] == hashes[name], name

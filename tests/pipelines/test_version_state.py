"""The stored current versions, updated by key from the new sightings, equal a resolution over
every raw sighting, night after night (re-exports, deltas with deletion markers, records
missing from a full export, late and byte-identical files, a withdrawal); and a nightly
version step reads only the sightings delivered since the last run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from sources.demo.replay import ReplaySettings, replay_nights
from sources.versions import current_records_sql
from tests.pipelines.conftest import write_project
from warehouse.version_state import CURRENT_TABLE, VersionStats, update_version_state
from warehouse.versions import WITHDRAWN_TABLE, withdraw_deliveries


def _norm(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.astype("string").fillna("\x00").sort_values("record_key").reset_index(drop=True)
    return out[sorted(out.columns)]


def _assert_state_is_a_full_resolution(con: duckdb.DuckDBPyConnection, sources) -> int:
    """Every stored row equals ``current_records_sql`` over all live rows (helpers too)."""
    withdrawn = (
        WITHDRAWN_TABLE
        if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ops'"
            " AND table_name = 'withdrawn_deliveries'"
        ).fetchall()[0][0]
        else None
    )
    total = 0
    for source in sources:
        sql = current_records_sql(f"raw.{source.name}", source, withdrawn)
        expected = con.sql(f"SELECT * REPLACE (version_no::BIGINT AS version_no) FROM ({sql})").df()
        stored = con.sql(
            f"SELECT * EXCLUDE (version_source) FROM {CURRENT_TABLE}"
            f" WHERE version_source = '{source.name}'"
        ).df()[list(expected.columns)]
        assert len(stored) == len(expected), source.name
        pd.testing.assert_frame_equal(_norm(stored), _norm(expected), obj=source.name)
        total += len(expected)
    return total


def _ingest(project: Path, run_date: str, run_id: str) -> int:
    """Ingest one night; returns the raw rows it appended."""
    cfg = load_config(project)
    ctx = RunContext(config=cfg, run_id=run_id, run_date=date.fromisoformat(run_date))
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            ingest_stage(con, ctx, source.name)
        return sum(
            con.execute(f"SELECT count(*) FROM raw.{s.name} WHERE run_id = ?", [run_id]).fetchall()[
                0
            ][0]
            for s in load_sources(cfg).sources
        )


def _update(project: Path) -> tuple[VersionStats, int]:
    cfg = load_config(project)
    sources = load_sources(cfg).sources
    with open_warehouse(cfg) as con:
        stats = update_version_state(con, sources)
        return stats, _assert_state_is_a_full_resolution(con, sources)


def test_version_state_folds_new_sightings_and_equals_a_full_resolution(tmp_path: Path) -> None:
    settings = ReplaySettings(
        nights=4, entities=100, late_every=2, repeat_every=3, change_share=0.05,
        delete_share=0.03,
    )  # fmt: skip
    project = write_project(tmp_path, tmp_path / "demo" / "landing")
    nights = []
    for night in replay_nights(tmp_path / "demo", settings):
        appended = _ingest(project, night.run_date, f"run{night.night}")
        stats, current = _update(project)
        nights.append((night, appended, stats, current))

    (_, appended0, stats0, _), *later = nights
    assert stats0.mode == "full" and stats0.sightings_read == appended0
    assert any(night.late for night, *_ in later) and any(night.repeated for night, *_ in later)
    for night, appended, stats, current in later:
        assert stats.mode == "incremental", stats.full_sources
        # a night without a late file reads exactly the rows it delivered, although the
        # whole sales export arrives again and raw holds every earlier night
        if not night.late:
            assert stats.sightings_read == appended, night.night
            assert stats.keys_recomputed == 0
        else:  # a late export: its records are resolved again over all their sightings
            assert stats.keys_recomputed > 0
            assert stats.sightings_read > appended
        assert stats.keys_folded > 0 and current > 0
    # the raw layer keeps growing with the re-exports; the nightly read does not
    cfg = load_config(project)
    with open_warehouse(cfg, read_only=True) as con:
        raw_rows = sum(
            con.execute(f"SELECT count(*) FROM raw.{s.name}").fetchall()[0][0]
            for s in load_sources(cfg).sources
        )
    assert max(s.sightings_read for n, _, s, _ in later if not n.late) < raw_rows / 3
    # records deleted at source (missing from the full sales export, delta markers)
    with open_warehouse(cfg, read_only=True) as con:
        deleted = con.execute(f"SELECT count(deleted_at_source) FROM {CURRENT_TABLE}").fetchall()[
            0
        ][0]
    assert deleted > 0

    # a byte-identical re-run (nothing new) reads nothing
    stats, _ = _update(project)
    assert (stats.mode, stats.sightings_read, stats.keys_folded) == ("incremental", 0, 0)

    # withdraw the last night's deliveries: those sources are resolved whole again
    last = nights[-1][0].run_date
    with open_warehouse(cfg) as con:
        for source in ("sales", "marketing"):
            withdraw_deliveries(con, f"{source}/{last}", reason="test: bad export")
    stats, _ = _update(project)
    assert stats.mode == "full"
    assert sorted(s.split(":")[0] for s in stats.full_sources) == ["marketing", "sales"]

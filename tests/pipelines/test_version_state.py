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
from warehouse.raw import RAW_FILES_TABLE
from warehouse.version_state import (
    CURRENT_TABLE,
    VersionStats,
    _stage_live_files,
    update_version_state,
)
from warehouse.versions import WITHDRAWN_TABLE, ensure_withdrawn_table, withdraw_deliveries


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


def _live_by_grouping_raw(con: duckdb.DuckDBPyConnection, source: str) -> pd.DataFrame:
    """The live-file list as the version step computed it before the per-file index: a GROUP
    BY over every active raw row (what grew by a whole source with each full re-export)."""
    return con.sql(
        f"""SELECT source_file, source_sha256, substr(ingested_at, 1, 10) AS ingest_day,
                   count(*) AS n
        FROM raw.{source} AS r WHERE active AND NOT EXISTS (
            SELECT 1 FROM {WITHDRAWN_TABLE} AS w WHERE w.path = r.source_file
              AND w.sha256 = r.source_sha256 AND w.source_system = r.source_system)
        GROUP BY ALL ORDER BY ALL"""
    ).df()


def _live_from_index_only(con: duckdb.DuckDBPyConnection, sources) -> dict[str, pd.DataFrame]:
    """The version step's live files with every raw table out of reach (renamed away): the
    list must come from the per-file index alone, never from the raw rows."""
    out = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for s in sources:
            con.execute(f"ALTER TABLE raw.{s.name} RENAME TO {s.name}_out_of_reach")
        for s in sources:
            _stage_live_files(con, s.name, WITHDRAWN_TABLE)
            out[s.name] = con.sql(
                "SELECT source_file, source_sha256, ingest_day, n FROM _v_live ORDER BY ALL"
            ).df()
    finally:
        con.execute("ROLLBACK")
    return out


def test_live_files_come_from_the_index_and_equal_the_raw_rows_night_after_night(
    tmp_path: Path,
) -> None:
    settings = ReplaySettings(nights=3, entities=60, late_every=2, repeat_every=2)
    project = write_project(tmp_path, tmp_path / "demo" / "landing")
    cfg = load_config(project)
    sources = load_sources(cfg).sources
    landing = tmp_path / "demo" / "landing"

    def ingest_and_compare(run_date: str, run_id: str) -> VersionStats:
        _ingest(project, run_date, run_id)
        with open_warehouse(cfg) as con:
            ensure_withdrawn_table(con)
            from_index = _live_from_index_only(con, sources)
            for s in sources:
                expected = _live_by_grouping_raw(con, s.name)
                assert len(expected) > 0, (run_id, s.name)
                pd.testing.assert_frame_equal(
                    from_index[s.name], expected, check_dtype=False, obj=f"{run_id} {s.name}"
                )
        # and the state built on it equals a resolution over every live raw row
        stats, current = _update(project)
        assert current > 0
        return stats

    seen = []
    for night in replay_nights(tmp_path / "demo", settings):
        stats = ingest_and_compare(night.run_date, f"run{night.night}")
        assert stats.mode == ("full" if night.night == 0 else "incremental"), stats.full_sources
        seen.append(night)
    assert any(n.late for n in seen) and any(n.repeated for n in seen)
    last = seen[-1].run_date
    # a corrected file at the same path (one lead less): its earlier rows are superseded
    corrected = landing / "marketing" / seen[0].run_date / "leads.jsonl"
    lines = corrected.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) > 2
    corrected.write_text("".join(lines[:-1]), encoding="utf-8")
    stats = ingest_and_compare(last, "corrected")
    assert "marketing: 1 file(s) withdrawn, superseded or erased" in stats.full_sources
    # a sales export withdrawn
    with open_warehouse(cfg) as con:
        bad = con.execute(
            "SELECT max(path) FROM ops.deliveries WHERE source_system = 'sales'"
            " AND status = 'new' AND run_id <> 'run0'"
        ).fetchall()[0][0]
        assert len(withdraw_deliveries(con, bad, reason="test: bad export")) == 1
    stats = ingest_and_compare(last, "after-withdrawal")
    assert [s.split(":")[0] for s in stats.full_sources] == ["sales"]
    # the index holds a few rows per delivered file, not one per raw row
    with open_warehouse(cfg, read_only=True) as con:
        indexed = con.execute(f"SELECT count(*) FROM {RAW_FILES_TABLE}").fetchall()[0][0]
        raw_rows = sum(
            con.execute(f"SELECT count(*) FROM raw.{s.name}").fetchall()[0][0] for s in sources
        )
    assert indexed < raw_rows / 20

"""The incremental golden build and history fold (only touched customers) equal full ones."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from pipelines.stages.context import RunContext
from pipelines.stages.golden import golden_stage
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from warehouse import read_table
from warehouse.archive._hashing import table_content_hash
from warehouse.export_changes import current_export_sql
from warehouse.history import TRACKED_ATTRIBUTES, update_history
from warehouse.naming import EXPORTED, GOLDEN_TABLES
from warehouse.versions import delivery_reasons


def _full_build_equals_published(project: Path, run_id: str, run_date: str) -> None:
    """Rebuild every customer for the run just published: ``staging.*`` must equal ``golden.*``.

    Run ids included: a full build carries the published run id forward on every row whose
    content it reproduces, so any row the incremental build got wrong shows up.
    """
    cfg = load_config(project, golden_incremental=False)
    with open_warehouse(cfg) as con:
        ctx = RunContext(config=cfg, run_id=run_id, run_date=date.fromisoformat(run_date))
        assert golden_stage(con, ctx).mode == "full"
        for name in GOLDEN_TABLES:
            staged = read_table(con, f"staging.{name}")
            published = read_table(con, f"golden.{name}")
            assert staged is not None and published is not None
            assert len(staged) == len(published), name
            assert table_content_hash(staged) == table_content_hash(published), name
        # the input hashes the next night compares with: after a nightly only the changed
        # records' rows were staged and published (a view over the published ones), yet they
        # equal every record's hashes as a full build stages them
        full_inputs = read_table(con, "staging.golden_inputs")
        published_inputs = read_table(con, "match.golden_inputs")
        assert full_inputs is not None and published_inputs is not None
        assert table_content_hash(full_inputs) == table_content_hash(published_inputs)


def _history_equals_a_full_fold(
    project: Path, before: pd.DataFrame | None, run_id: str, run_date: str
) -> pd.DataFrame:
    """The swap folds only changed customers into the history: same as folding all of them."""
    with open_warehouse(load_config(project), read_only=True) as con:
        published = read_table(con, "golden.customers_history")
        customers = read_table(con, "golden.customers", ["customer_id", *TRACKED_ATTRIBUTES])
        events = read_table(con, "staging.id_events")
        reasons = delivery_reasons(con, "golden.crosswalk", "clean.records")
    assert published is not None and customers is not None
    full = update_history(before, customers, run_id, date.fromisoformat(run_date), events, reasons)
    # values compared as text: the frame's dtypes are not the stored column types (e.g. a
    # column null on every row), the stored table's are
    pd.testing.assert_frame_equal(_as_text(full), _as_text(published))
    return published


def _exports_equal_published(project: Path) -> None:
    """The Parquet exports (full export + change files) read back as every golden table."""
    cfg = load_config(project)
    out = cfg.resolve(cfg.exports_dir) / "golden"
    with open_warehouse(cfg, read_only=True) as con:
        published = {t: con.execute(f"SELECT * FROM golden.{t}").df() for t in EXPORTED}
    with duckdb.connect() as con:
        for table, frame in published.items():
            exported = con.execute(current_export_sql(out, table)).df()
            columns = sorted(frame.columns)
            assert sorted(exported.columns) == columns, table
            pd.testing.assert_frame_equal(
                _as_text(exported[columns]), _as_text(frame[columns]), obj=table
            )


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    text = frame.astype("string").fillna("\x00")
    return text.sort_values(list(text.columns), ignore_index=True)


def test_nightly_golden_rebuilds_only_touched_customers_and_equals_a_full_build(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ReplaySettings(nights=2, entities=150, late_every=1, repeat_every=2)
    (tmp_path / "nightly").mkdir()
    project = write_project(tmp_path / "nightly", tmp_path / "demo" / "landing")
    modes = []
    exports = []
    history: pd.DataFrame | None = None
    inputs_delta = []
    hashed: list[tuple[int, int]] = []
    for night in replay_nights(tmp_path / "demo", settings):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="customer_archive"):
            outcome = run_pipeline(project, run_date=night.run_date)
        assert outcome.success, (night.run_date, outcome.errors)
        # the publish replaced only the changed records' input hashes (DELETE + INSERT), not
        # a copy of every record's (tests/warehouse/test_golden_delta_inputs.py: the rows)
        inputs_delta.append("inputs published as a delta" in caplog.text)
        history = _history_equals_a_full_fold(project, history, outcome.run_id, night.run_date)
        golden = outcome.stats.golden
        assert golden is not None
        modes.append((golden.mode, golden.customers_rebuilt, golden.golden_customers))
        hashed.append((golden.records_hashed, golden.crosswalk_rows))
        assert outcome.stats.publish is not None
        exports.append(outcome.stats.publish.export)
        _exports_equal_published(project)
        _full_build_equals_published(project, outcome.run_id, night.run_date)
    assert modes[0][0] == "full"
    later = modes[1:]
    assert all(mode == "incremental" for mode, _, _ in later), modes
    assert inputs_delta == [False] + [True] * len(later), inputs_delta
    # a nightly writes only the changed customers' rows beside the first night's full export
    assert exports[0] == "full" and set(exports[1:]) == {"changes"}, exports
    # a night's changes touch a small share of the customers
    assert all(0 < rebuilt < total / 2 for _, rebuilt, total in later), modes
    # the first build hashes every record's inputs; a nightly only the records the clean and
    # match change logs list (golden_scope), and still equals a full build (checked above)
    assert hashed[0][0] == hashed[0][1], hashed
    assert all(0 < n < records / 2 for n, records in hashed[1:]), hashed


def test_golden_falls_back_to_every_record_when_the_match_log_is_incomplete(
    project: Path,
) -> None:
    """A warehouse from before the match change log (or a link not logged): every record's
    inputs are hashed again, and the result still equals a full build."""
    first = run_pipeline(project, run_date="2026-11-23")
    assert first.success and first.stats.golden is not None
    records = first.stats.golden.crosswalk_rows
    assert first.stats.golden.records_hashed == records
    quiet = run_pipeline(project, run_date="2026-11-24")
    assert quiet.success and quiet.stats.golden is not None
    # nothing delivered, nothing relinked: the logs list no record, none is hashed
    assert quiet.stats.golden.mode == "incremental"
    assert quiet.stats.golden.records_hashed == 0
    with open_warehouse(load_config(project)) as con:
        con.execute("DROP TABLE ops.match_runs")
    older = run_pipeline(project, run_date="2026-11-25")
    assert older.success, older.errors
    assert older.stats.golden is not None and older.stats.golden.mode == "incremental"
    assert older.stats.golden.records_hashed == records
    _full_build_equals_published(project, older.run_id, "2026-11-25")
    # the link of that run is logged again: the next night narrows once more
    again = run_pipeline(project, run_date="2026-11-26")
    assert again.success and again.stats.golden is not None
    assert again.stats.golden.records_hashed == 0


def test_a_changed_golden_table_forces_a_full_build(project: Path) -> None:
    """A restore, an erasure or a manual edit of golden.* makes the saved inputs stale."""
    first = run_pipeline(project, run_date="2026-11-23")
    assert first.success and first.stats.golden is not None
    assert first.stats.golden.mode == "full"
    cfg = load_config(project)
    with open_warehouse(cfg) as con:
        con.execute(
            "UPDATE golden.customers SET phone = NULL WHERE customer_id ="
            " (SELECT min(customer_id) FROM golden.customers)"
        )
    again = run_pipeline(project, run_date="2026-11-24")
    assert again.success, again.errors
    assert again.stats.golden is not None and again.stats.golden.mode == "full"
    _full_build_equals_published(project, again.run_id, "2026-11-24")


def test_a_later_run_date_reclassifies_only_customers_crossing_a_bound(project: Path) -> None:
    """Unchanged inputs, a later run date: tiers and lifecycles move as in a full build.

    Only the customers with a business date near a moved bound are re-classified (read into
    pandas); the rest keep their published rows, and the staged delta holds just the
    customers whose classification changed.
    """
    first = run_pipeline(project, run_date="2026-11-23")
    assert first.success, first.errors
    later = run_pipeline(project, run_date="2027-06-11")  # 200 days: new → active, tier windows
    assert later.success, later.errors
    golden = later.stats.golden
    assert golden is not None and golden.mode == "incremental", golden
    assert golden.customers_rebuilt == 0
    assert 0 < golden.customers_reclassified < golden.golden_customers
    with open_warehouse(load_config(project), read_only=True) as con:
        (moved,) = con.execute(
            "SELECT count(*) FROM golden.customers WHERE updated_run_id = ?", [later.run_id]
        ).fetchall()[0]
    assert 0 < moved <= golden.customers_reclassified
    _full_build_equals_published(project, later.run_id, "2027-06-11")
    next_day = run_pipeline(project, run_date="2027-06-12")
    assert next_day.success and next_day.stats.golden is not None
    assert next_day.stats.golden.customers_reclassified < golden.customers_reclassified
    _full_build_equals_published(project, next_day.run_id, "2027-06-12")

"""What a nightly golden stage reads: one best-score pass, only the changed clusters for ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pipelines.stages.golden as golden_stage_module
from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import ScaleSettings, load_config
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from tests.pipelines.test_golden_incremental import _full_build_equals_published


def test_nightly_scores_once_and_reads_only_changed_clusters_for_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    score_passes: list[int] = []
    id_reads: list[tuple[bool, int]] = []
    real_scores = golden_stage_module.best_scores_sql
    real_inputs = golden_stage_module.id_assignment_inputs

    def scores(*args: Any, **kwargs: Any) -> str:
        score_passes[-1] += 1
        return real_scores(*args, **kwargs)

    def inputs(con: Any, run_date: Any, logged: str | None = None) -> Any:
        found = real_inputs(con, run_date, logged)
        id_reads.append((logged is not None, -1 if found is None else len(found[0])))
        return found

    monkeypatch.setattr(golden_stage_module, "best_scores_sql", scores)
    monkeypatch.setattr(golden_stage_module, "id_assignment_inputs", inputs)
    # a second core (whatever this machine has): the scores and the touched customers'
    # published rows are read on a second connection beside the stage's own work
    monkeypatch.setattr(ScaleSettings, "writes_behind", lambda self: True)
    carried_ahead: list[str] = []
    real_rows = golden_stage_module._PublishedAhead.rows

    def rows(self: Any, table: str, new: Any) -> Any:
        found = real_rows(self, table, new)
        if found is not None:
            carried_ahead.append(table)
        return found

    monkeypatch.setattr(golden_stage_module._PublishedAhead, "rows", rows)
    (tmp_path / "p").mkdir()
    project = write_project(tmp_path / "p", tmp_path / "demo" / "landing")
    settings = ReplaySettings(nights=3, entities=150, late_every=1, repeat_every=2)
    for night in replay_nights(tmp_path / "demo", settings):
        score_passes.append(0)
        outcome = run_pipeline(project, run_date=night.run_date)
        assert outcome.success, (night.run_date, outcome.errors)
        # one pass over match.pairs a run: the scores hashed and those rebuilt come from it
        assert score_passes[-1] == 1, score_passes
        with open_warehouse(load_config(project), read_only=True) as con:
            (exact,) = con.execute("SELECT exact_clusters FROM match.golden_state").fetchall()[0]
            (clusters,) = con.execute("SELECT count(*) FROM match.clusters").fetchall()[0]
        assert exact is True  # checked when staged: the next night may read only changes
        golden = outcome.stats.golden
        assert golden is not None
        if golden.mode == "incremental":
            narrow, read = id_reads[-1]
            assert narrow and 0 <= read < clusters / 2, (id_reads, clusters)
        # the same ids, events and golden rows as a build over every cluster and record
        _full_build_equals_published(project, outcome.run_id, night.run_date)
    assert [n for n, _ in id_reads[1:]].count(True) >= 2, id_reads
    # the incremental nights compared their rebuilt rows with the rows read ahead
    assert {"golden.customers", "golden.attribute_lineage"} <= set(carried_ahead), carried_ahead

"""The nightly match finds the changed records from the clean change log: the same records as
comparing every row (``clean.records``' fingerprints ``EXCEPT match.linked_records``), also
after a run whose match failed or whose clean was rolled back.

Replay nights (re-exports, deltas, deletions, a late file) run the ingest, clean and match
stages one by one; before each match the records the log narrows to are checked against the
whole-table comparison, which is what the match stage relinks.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

import warehouse.clean_delta as clean_delta
from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.clean import clean_stage
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from pipelines.stages.match import match_stage
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from warehouse.db import table_columns
from warehouse.ops import clean_changes_since, linked_run


def _except_everything(con) -> set[str]:
    """The changed records as the match stage found them before the log: every row compared
    (its fingerprint, hashed here from the columns ``match.linked_layout`` names)."""
    (layout,) = con.execute("SELECT columns FROM match.linked_layout").fetchone()
    listed = ", ".join(f'"{name}"' for name, _ in json.loads(layout))
    assert sorted(json.loads(layout)) == sorted(
        [c, t]
        for c, t in zip(
            table_columns(con, "clean.records"),
            map(str, con.sql("SELECT * FROM clean.records LIMIT 0").types),
            strict=True,
        )
    )
    return {
        r[0]
        for r in con.execute(
            f"SELECT record_key FROM (SELECT record_key, hash({listed}) FROM clean.records"
            " EXCEPT SELECT record_key, fingerprint FROM match.linked_records)"
        ).fetchall()
    }


def test_the_log_finds_what_comparing_every_row_finds_across_a_failed_match_and_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ReplaySettings(
        nights=4, entities=100, late_every=2, repeat_every=3, change_share=0.05, delete_share=0.02
    )
    project = write_project(tmp_path, tmp_path / "demo" / "landing")
    cfg = load_config(project)
    narrowed: list[bool] = []
    for night in replay_nights(tmp_path / "demo", settings):
        run_date = date.fromisoformat(night.run_date)
        ctx = RunContext(config=cfg, run_id=f"r{night.night}", run_date=run_date)
        with open_warehouse(cfg, create_key=True) as con:
            for source in load_sources(cfg).sources:
                ingest_stage(con, ctx, source.name)
            if night.night == 3:  # this run's clean fails as it commits: rolled back

                def broken(*args: object, **kwargs: object) -> None:
                    raise RuntimeError("disk full")

                with monkeypatch.context() as patch:
                    patch.setattr(clean_delta, "record_clean_run", broken)
                    with pytest.raises(RuntimeError, match="disk full"):
                        clean_stage(con, ctx)
                assert con.execute(
                    "SELECT count(*) FROM ops.clean_runs WHERE run_id = 'r3'"
                ).fetchall() == [(0,)]
                ctx = RunContext(config=cfg, run_id="r3-again", run_date=run_date)
            clean = clean_stage(con, ctx)
            assert clean.mode == ("full" if night.night == 0 else "incremental")
            if night.night == 1:
                continue  # the match of this run failed: the next link must see its changes
            expected = _except_everything(con) if night.night else set()
            logged = clean_changes_since(con, linked_run(con))
            narrowed.append(logged is not None)
            if logged is not None:
                candidates = {
                    r[0] for r in con.execute(f"SELECT record_key FROM {logged}").fetchall()
                }
                assert expected <= candidates  # every changed record is in the log
                assert len(candidates) < clean.clean_records / 2  # and the log is narrow
            stats = match_stage(con, ctx)
            if night.night:
                assert stats.mode == "incremental", night.night
                assert stats.records_relinked == len(expected), night.night
            assert _except_everything(con) == set()  # the link caught up with the clean
    # night 0 has no link yet; every later link read the log (night 2 across the failed match)
    assert narrowed == [False, True, True, True]

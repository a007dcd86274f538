"""Stage figures round-trip through their JSON form in ops.stage_stats, typed on the way back."""

from __future__ import annotations

import json

import pytest

from pipelines.runner import RunOutcome, format_summary
from pipelines.stages import (
    CleanStats,
    GoldenStats,
    IngestStats,
    MatchStats,
    PublishStats,
    RunStats,
    SnapshotStats,
)

STAGES = {
    "ingest:sales": IngestStats(
        source="sales", files_new=1, files_skipped=0, rows_in=10, rows_ingested=9,
        rows_quarantined=1, files_quarantined=0, warnings=["a"], seconds=1.5, peak_rss_mb=300.0,
    ),
    "clean": CleanStats(
        mode="full", raw_rows=9, clean_records=9, transactions=3, interactions=4, follow_up=1
    ),
    "match": MatchStats(
        candidate_pairs=20, matched_pairs=5, review_queue=2, clusters=6, mode="full",
        records_relinked=9, shards=3,
    ),
    "golden": GoldenStats(golden_customers=6, crosswalk_rows=9, ids_created=6, merges=0, splits=0),
    "publish": PublishStats(exported_files=4, analyst_mart_tables=3),
    "snapshot": SnapshotStats(kind="daily", snapshot="/a/b", snapshot_id="s1"),
}  # fmt: skip


def _stored() -> dict[str, dict]:
    """What ``ops.stage_stats`` holds after the run: each ``as_dict`` as JSON text, parsed."""
    return {stage: json.loads(json.dumps(s.as_dict())) for stage, s in STAGES.items()}


def test_every_stage_result_round_trips() -> None:
    stats = RunStats.from_json(_stored())
    assert stats.ingest == {"sales": STAGES["ingest:sales"]}
    assert stats.clean == STAGES["clean"] and stats.match == STAGES["match"]
    assert stats.golden == STAGES["golden"] and stats.publish == STAGES["publish"]
    assert stats.snapshot == STAGES["snapshot"]
    assert stats.by_stage() == STAGES


def test_unknown_figures_and_stages_are_ignored_missing_ones_named() -> None:
    stored = _stored()
    stored["clean"]["added_by_a_later_version"] = 1
    stored["report"] = {"seconds": 1.0}
    assert RunStats.from_json(stored).clean == STAGES["clean"]
    del stored["golden"]["merges"]
    with pytest.raises(ValueError, match="merges"):
        RunStats.from_json(stored)


def test_summary_reads_the_typed_figures() -> None:
    text = format_summary(RunOutcome(run_id="r", success=True, stats=RunStats.from_json(_stored())))
    assert "    sales               10         9            1   (1 / 0 / 0)" in text
    assert "candidate pairs:   20  (matched 5, review queue 2), scored in 3 blocking shards" in text
    assert "snapshot:          /a/b" in text


def test_summary_columns_stay_under_their_headers_for_long_source_names() -> None:
    stored = _stored()
    long = dict(stored["ingest:sales"], source="marketing_leads_2026", rows_in=12681)
    stored["ingest:marketing_leads_2026"] = long
    text = format_summary(RunOutcome(run_id="r", success=True, stats=RunStats.from_json(stored)))
    lines = text.splitlines()
    header = next(line for line in lines if "rows per source:" in line)
    rows = [line for line in lines if line.startswith("    sales") or "marketing_leads" in line]
    assert len(rows) == 2
    for column in ("in", "ingested", "quarantined"):
        end = header.index(f" {column} ") + 1 + len(column)  # right-aligned figures end here
        for row in rows:
            assert row[end - 1].isdigit() and row[end] == " ", (column, row)


def test_a_run_that_stopped_early_has_no_later_figures() -> None:
    stored = {k: v for k, v in _stored().items() if k.startswith("ingest:") or k == "clean"}
    stats = RunStats.from_json(stored)
    assert stats.match is None and stats.snapshot is None
    assert "clean records:     9" in format_summary(RunOutcome("r", False, stats=stats))

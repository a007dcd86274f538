"""The ingest stage with a small ``ingest_batch_rows`` writes the raw layer of the one-pass read.

The demo exports (CSV, XLSX, JSONL) ingested with batches of 40 rows (the CSV and XLSX files
stream, spill and publish) give the same ``raw.<source>`` rows in the same order, the same
quarantine and the same stage figures as with every file read whole.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from tests.pipelines.conftest import REPO, write_project
from warehouse import read_table


def _ingest(root: Path, landing: Path, batch_rows: str) -> tuple[dict, dict]:
    root.mkdir()
    sources = root / "sources.yml"
    text = (REPO / "sources" / "sources.yml").read_text(encoding="utf-8")
    sources.write_text(f"ingest_batch_rows: {batch_rows}\n{text}", encoding="utf-8")
    project = write_project(root, landing, (f"sources_file: {sources}",))
    cfg = load_config(project)
    ctx = RunContext(config=cfg, run_id="ingest", run_date=date(2026, 11, 23))
    stats, tables = {}, {}
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            figures = dataclasses.asdict(ingest_stage(con, ctx, source.name))
            stats[source.name] = {
                k: v for k, v in figures.items() if k.startswith(("rows", "files"))
            }
            # ingested_at is the run's clock: the two runs differ by seconds
            raw = read_table(con, f"raw.{source.name}")
            tables[source.name] = raw.drop(columns="ingested_at")
        tables["quarantine"] = read_table(con, "quarantine.rows").sort_values(
            ["source_system", "source_file", "source_row"], kind="stable", ignore_index=True
        )
        leftovers = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '\\_ingest%' ESCAPE '\\'"
        ).fetchone()
        assert leftovers == (0,)
    return stats, tables


def test_small_batches_write_the_one_pass_raw_layer(tmp_path: Path, demo_dir: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(demo_dir / "landing", landing)
    whole_stats, whole = _ingest(tmp_path / "whole", landing, "null")
    batch_stats, batched = _ingest(tmp_path / "batched", landing, "40")
    assert batch_stats == whole_stats
    assert set(batched) == set(whole)
    for name, frame in whole.items():
        assert len(frame) > 0 or name == "quarantine"
        pd.testing.assert_frame_equal(batched[name], frame, obj=name)
    assert max(s["rows_in"] for s in whole_stats.values()) > 3 * 40  # several batches

"""A full golden build in customer chunks stages exactly what one build over every record does."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from pipelines.stages.context import RunContext
from pipelines.stages.golden import golden_stage
from warehouse import golden as golden_module
from warehouse import read_table
from warehouse.archive._hashing import table_content_hash
from warehouse.archive.tables import table_schema
from warehouse.naming import GOLDEN_TABLES

_STAGED = (*GOLDEN_TABLES, "id_events", "golden_inputs")


def _staged(project: Path, run_id: str, chunk_records: int, workers: int = 1) -> dict[str, tuple]:
    """A full golden build of the published run's inputs: each staged table's hash and types."""
    cfg = load_config(
        project,
        golden_incremental=False,
        scale={"golden_chunk_records": chunk_records, "golden_workers": workers},
    )
    with open_warehouse(cfg) as con:
        ctx = RunContext(config=cfg, run_id=run_id, run_date=date(2026, 11, 23))
        assert golden_stage(con, ctx).mode == "full"
        out = {}
        for name in _STAGED:
            frame = read_table(con, f"staging.{name}")
            assert frame is not None, name
            out[name] = (
                len(frame),
                table_content_hash(frame),
                table_schema(con, f"staging.{name}"),
            )
        return out


def test_chunked_full_build_equals_one_build(
    project: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_pipeline(project, run_date="2026-11-23")
    assert first.success, first.errors
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        whole = _staged(project, first.run_id, 10**9)
    assert "full build in 1 chunk(s)" in caplog.text
    caplog.clear()
    # the inputs are checked once over the whole set (SQL), not again in every chunk
    checked: list[int] = []
    real_check = golden_module._check_assignments
    monkeypatch.setattr(
        golden_module,
        "_check_assignments",
        lambda records, assignments: (
            checked.append(len(records)) or real_check(records, assignments)
        ),
    )
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        chunked = _staged(project, first.run_id, 97)
    assert "full build in 1 chunk(s)" not in caplog.text and "chunk(s)" in caplog.text
    assert checked == []
    assert chunked == whole
    # chunks built side by side in helper processes (scale.golden_workers): the same tables
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="customer_archive"):
        helped = _staged(project, first.run_id, 97, workers=3)
    assert "2 helper process(es)" in caplog.text
    assert "in this process" not in caplog.text  # no helper failed and fell back to here
    assert helped == whole
    # and both equal what the run published (run ids carried forward on unchanged rows)
    with open_warehouse(load_config(project), read_only=True) as con:
        for name in GOLDEN_TABLES:
            published = read_table(con, f"golden.{name}")
            assert published is not None
            assert table_content_hash(published) == whole[name][1], name

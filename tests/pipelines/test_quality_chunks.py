"""The quality suites over chunks of rows give, on a run's warehouse, the outcomes of one frame.

One pipeline run of the demo data (with a lead whose dates lie in the future, so per-row
checks fail), then the clean suite stage run again with tiny chunks and with one chunk, and
the golden per-customer checks over the published customers both ways.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from expectations import QualitySettings
from expectations.suites import GOLDEN_ROW_COLUMNS, GoldenSuiteTables, validate_golden_tables
from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from pipelines.stages import quality
from pipelines.stages.context import RunContext
from sources.demo import write_demo
from tests.pipelines.conftest import write_project
from warehouse import read_table, read_table_chunks, table_columns


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quality_chunks")
    write_demo(root / "demo", entities=60, seed=11)
    landing = root / "landing"
    shutil.copytree(root / "demo" / "landing", landing)
    folder = landing / "marketing" / "2026-11-23"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"lead_id": f"L99{i:05d}", "company": f"远期登记测试{i}有限公司", "contact": "王测试",
         "mobile": "1391234567" + str(i), "city": "杭州",
         "created_at": "2099-03-01T10:00:00+08:00", "customer_type": "B2B"}
        for i in range(3)
    ]  # fmt: skip
    with (folder / "future.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    cfg = write_project(root, landing)
    outcome = run_pipeline(cfg, run_date="2026-11-23")
    assert outcome.success, outcome.errors
    return cfg


def _clean_suite(cfg: Path, run_id: str, rows: int, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setattr(quality, "SUITE_CHUNK_ROWS", rows)
    config = load_config(cfg)
    ctx = RunContext(config=config, run_id=run_id, run_date=dt.date(2026, 11, 23))
    with open_warehouse(config) as con:
        outcomes = quality.clean_quality_stage(con, ctx)
        stored = con.execute(
            "SELECT check_name, record_key FROM ops.clean_check_failures ORDER BY ALL"
        ).fetchall()
    return outcomes, stored


def test_the_clean_suite_stage_in_chunks(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small, small_stored = _clean_suite(project, "chunks-of-7", 7, monkeypatch)
    whole, whole_stored = _clean_suite(project, "one-chunk", 10**7, monkeypatch)
    assert small == whole
    assert small_stored == whole_stored
    future = {o.name: o for o in whole}["clean_dates_not_future"]
    assert not future.success and future.observed["unexpected_count"] == 3
    assert future.observed["rows_validated"] == future.observed["rows_in_table"] > 3 * 7
    assert ("clean_dates_not_future", "marketing:L9900002") in whole_stored


def test_the_golden_row_checks_in_chunks(project: Path) -> None:
    with open_warehouse(load_config(project)) as con:
        present = table_columns(con, "golden.customers")
        columns = [c for c in GOLDEN_ROW_COLUMNS if c in present]
        tables = GoldenSuiteTables("golden.customers", "golden.crosswalk", "clean.records")
        settings = QualitySettings()
        today = dt.date(2026, 11, 23)
        rows = read_table(con, "golden.customers", columns)
        assert rows is not None and len(rows) > 3 * 5
        whole = validate_golden_tables(con, rows, settings, tables, all_failing=True, today=today)
        chunks = read_table_chunks(con, "golden.customers", columns, rows=5)
        assert (
            validate_golden_tables(con, chunks, settings, tables, all_failing=True, today=today)
            == whole
        )
    future = {o.name: o for o in whole}["golden_dates_not_future"]
    assert not future.success and future.observed["failing_keys"]  # the leads (one customer)

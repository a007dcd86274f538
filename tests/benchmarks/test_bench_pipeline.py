"""The pipeline benchmark's scale-out options and its process-tree watchdog (issue #22)."""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from benchmarks import bench_pipeline as bp
from benchmarks.tree_watch import Sample, tree_pids, watch
from pipelines.settings import load_config


def _args(**kw: object) -> argparse.Namespace:
    base = {
        "shards": None,
        "executor": None,
        "max_concurrent": 2,
        "workers": None,
        "clean_workers": None,
        "golden_workers": None,
        "memory_limit": None,
        "duckdb_threads": None,
        "temp_dir": None,
    }
    return argparse.Namespace(**{**base, **kw})


def test_scale_options_reach_a_valid_project_config(tmp_path: Path) -> None:
    scale = bp.scale_settings(
        _args(shards=10, memory_limit="6GB", temp_dir=tmp_path / "spill", clean_workers=2)
    )
    assert scale["executor"] == "multiprocess"  # shards imply the multiprocess executor
    cfg = load_config(bp._write_config(tmp_path, tmp_path / "landing", scale))
    assert cfg.scale.match_shards == 10
    assert cfg.scale.executor == "multiprocess"
    assert cfg.scale.max_concurrent == 2
    assert cfg.scale.clean_workers == 2
    assert cfg.duckdb.memory_limit == "6GB"
    assert Path(str(cfg.duckdb.temp_directory)) == tmp_path / "spill"
    assert "match_shards=10" in bp.settings_label(scale)


def test_default_options_leave_the_project_defaults(tmp_path: Path) -> None:
    scale = bp.scale_settings(_args())
    cfg = load_config(bp._write_config(tmp_path, tmp_path / "landing", scale))
    assert cfg.scale.match_shards == 1
    assert cfg.scale.executor == "in_process"
    assert cfg.duckdb.memory_limit == "auto"  # the project default: bounded by the machine
    assert Path(str(cfg.duckdb.temp_directory)) == tmp_path / "state" / "duckdb_tmp"
    assert bp.settings_label(scale).startswith("defaults")


def test_a_state_carries_its_own_sources_file(tmp_path: Path) -> None:
    """A benchmark state kept for later does not name the checkout that made it."""
    import shutil

    made = tmp_path / "made"
    bp._write_config(made, made / "landing", bp.scale_settings(_args()))
    moved = shutil.copytree(made, tmp_path / "moved")
    shutil.rmtree(made)
    cfg = load_config(moved / "archive.yml")
    assert cfg.resolve(cfg.sources_file) == moved / "sources.yml"
    assert cfg.resolve(cfg.sources_file).read_text(encoding="utf-8") == (
        bp.ROOT / "sources" / "sources.yml"
    ).read_text(encoding="utf-8")


def test_steps_map_to_stages() -> None:
    assert bp.stage_of_step("raw__sales") == "ingest"
    assert bp.stage_of_step("raw_expectations_sales") == "quality:raw"
    assert bp.stage_of_step("match__clusters.match_score_shard[shard_3]") == "match"
    assert bp.stage_of_step("archive__snapshot") == "snapshot"


def test_stage_figures_come_from_the_samples_inside_each_stage() -> None:
    t0 = 1000.0
    samples = [
        Sample(
            t0 + i,
            1,
            rss=(100 + 10 * i) * 10**6,
            pss=0,
            cpu_s=2.0 * i,
            disk={"run_folder": i * 10**6},
        )
        for i in range(21)
    ]
    steps = {
        "raw__sales": {"start": t0 + 1, "end": t0 + 5, "status": "success"},
        # two shard steps side by side: their windows merge, the stage is not counted twice
        "match__clusters.match_score_shard[shard_0]": {
            "start": t0 + 10,
            "end": t0 + 14,
            "status": "success",
        },
        "match__clusters.match_score_shard[shard_1]": {
            "start": t0 + 12,
            "end": t0 + 16,
            "status": "success",
        },
        "staging__golden": {"start": t0 + 18, "end": None, "status": "running"},  # killed
    }
    fig = bp.stage_tree_figures(samples, steps)
    assert fig["ingest"]["seconds"] == 4.0
    assert fig["ingest"]["tree_cpu_s"] == 8.0
    assert fig["ingest"]["tree_peak_rss_mb"] == 150
    assert fig["match"]["seconds"] == 6.0
    assert fig["match"]["tree_cpu_s"] == 12.0
    assert fig["match"]["peak_disk_mb"] == 16
    assert fig["golden"]["status"] == "running"
    assert fig["golden"]["seconds"] == 2.0  # until the last sample


def test_watchdog_kills_the_whole_tree_over_its_memory_limit(tmp_path: Path) -> None:
    # a parent that starts a child; the child holds the memory, so only the tree's sum trips
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([{sys.executable!r}, "-c",
            "import time; b = bytearray(300 * 10**6); time.sleep(60)"])
        time.sleep(60)
    """)
    started = time.time()
    status, summary, samples = watch(
        [sys.executable, "-c", script],
        tmp_path / "w.log",
        max_rss=150 * 10**6,
        deadline=None,
        every=0.2,
        disk={"tmp": tmp_path},
    )
    assert status == 137
    assert "limit" in str(summary["killed"])
    assert summary["peak_processes"] >= 2
    assert summary["peak_tree_rss_mb"] > 150
    assert time.time() - started < 30
    root_pid = int((tmp_path / "w.log").read_text().split(" pid ", 1)[1].split()[0])
    assert tree_pids(root_pid) == []  # nothing of the tree is left
    assert "# summary" in (tmp_path / "w.log").read_text()
    assert any(s.disk for s in samples)


def test_a_service_export_beyond_one_sheet_is_split_into_files(tmp_path: Path, monkeypatch) -> None:
    from python_calamine import CalamineWorkbook

    from sources.demo.generator import _generate

    tables = _generate(300, 7).tables
    rows = len(tables["service"].frame)
    monkeypatch.setattr(bp, "XLSX_MAX_ROWS", rows // 3 + 1)  # as if a sheet held a third
    counts = bp._write_delivery(tables, tmp_path, bp.BASE_DATE)
    files = sorted((tmp_path / "service" / bp.BASE_DATE).glob("*.xlsx"))
    assert [f.name for f in files] == ["tickets.xlsx", "tickets_2.xlsx", "tickets_3.xlsx"]
    in_files = 0
    for f in files:
        sheet = CalamineWorkbook.from_path(str(f)).get_sheet_by_name("工单").to_python()
        in_files += sum(1 for row in sheet[3:] if any(str(v) for v in row))
    assert counts["service"] == rows == in_files  # every ticket is in exactly one file


def test_large_sizes_are_generated_in_batches_with_distinct_ids(
    tmp_path: Path, monkeypatch
) -> None:
    import pandas as pd

    monkeypatch.setattr(bp, "OUT_ROOT", tmp_path)
    monkeypatch.setattr(bp, "GEN_BATCH_ENTITIES", 200)
    meta = bp.prepare_data(1200, seed=5, delta_share=0.05, jobs=2)  # 500 entities: 3 batches
    assert meta["generator_batches"] == 3
    folder = Path(meta["folder"])
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    assert len(truth) == meta["base_records"] + meta["delta_records"]
    assert not truth.duplicated(["source_system", "source_record_id"]).any()
    assert truth["entity_id"].nunique() == 500
    # every batch is more files of the same two deliveries
    sales = sorted(p.name for p in (folder / "base" / "sales" / bp.BASE_DATE).glob("*.csv"))
    assert sales == ["crm_customers.csv", "crm_customers_2.csv", "crm_customers_3.csv"]
    ids = pd.concat(
        pd.read_csv(folder / "base" / "sales" / bp.BASE_DATE / name, dtype=str, encoding="gb18030")[
            "客户编号"
        ]
        for name in sales
    )
    assert ids.is_unique and ids.str.fullmatch(r"KH\d+").all()
    assert set(ids) <= set(truth["source_record_id"])


def test_a_run_stopped_before_its_counts_are_known_still_gets_its_report_line() -> None:
    """The 10 M rehearsal's run was stopped in the match stage: no clean-record or pair
    count; its report must still be written (it crashed formatting None with ``:,``)."""
    assert bp._count(1000434) == "1,000,434"
    assert bp._count(None) == "–"

"""``scale.workers``: a run on two cores publishes exactly what a single-threaded run publishes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cleaning import _parallel, _slices
from dedupe import similarity
from pipelines.access import duckdb_threads, open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import ConfigError, load_config
from tests.pipelines.conftest import write_project
from warehouse import read_table

RUN_DATE = "2026-11-24"
# table -> sort keys; run ids differ between runs and are left out
_TABLES = {
    "clean.records": ["record_key"],
    "match.pairs": ["left_key", "right_key"],
    "match.clusters": ["record_key"],
    "match.prepared": ["record_key"],
    "golden.customers": ["customer_id"],
    "golden.crosswalk": ["record_key"],
    "golden.contacts": None,
    "golden.addresses": None,
}
_RUN_COLUMNS = {"run_id", "updated_run_id", "created_run_id", "ingested_at", "clean_run_id"}


def _project(root: Path, landing: Path, workers: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = write_project(root, landing)
    scale = f"scale:\n  workers: {workers}\n  clean_workers: {workers}\n"
    # the full match prepares chunks of 400 records, some in a helper process
    scale += f"  prepare_workers: {workers}\n  prepare_chunk_records: 400\n"
    cfg.write_text(cfg.read_text("utf-8") + scale, "utf-8")
    return cfg


def _published(cfg_path: Path) -> dict[str, pd.DataFrame]:
    out = {}
    with open_warehouse(load_config(cfg_path), read_only=True) as con:
        for name, keys in _TABLES.items():
            frame = read_table(con, name)
            assert frame is not None and len(frame) > 0, name
            frame = frame.drop(columns=[c for c in frame.columns if c in _RUN_COLUMNS])
            keys = keys or list(frame.columns)
            out[name] = frame.sort_values(keys).reset_index(drop=True)
    return out


def test_two_workers_publish_what_one_worker_publishes(
    tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chunks of 20 values, so the demo's few hundred distinct values reach the worker pool
    monkeypatch.setattr(_parallel, "MIN_VALUES_PER_CHUNK", 20)
    pooled_calls: list[int] = []
    real_map = _parallel.ProcessPoolExecutor.map

    def counting_map(self, fn, *iterables, **kwargs):  # type: ignore[no-untyped-def]
        pooled_calls.append(1)
        return real_map(self, fn, *iterables, **kwargs)

    monkeypatch.setattr(_parallel.ProcessPoolExecutor, "map", counting_map)
    # a full clean cleans whole slices side by side: one in a helper process
    helpers: list[int] = []
    real_result = _slices._Helper.result

    def recording_result(self: _slices._Helper, deadline: float) -> tuple[bool, object]:
        ok, value = real_result(self, deadline)
        helpers.append(ok)
        return ok, value

    monkeypatch.setattr(_slices._Helper, "result", recording_result)
    warmed: list[str] = []
    real_init = _slices._Helper.__init__

    def recording_init(self: _slices._Helper, warm: str = "cleaning.pipeline") -> None:
        warmed.append(warm)
        real_init(self, warm)

    monkeypatch.setattr(_slices._Helper, "__init__", recording_init)
    scored_with: list[int] = []
    real_cpdist = similarity.process.cpdist

    def recording_cpdist(*args, **kwargs):  # type: ignore[no-untyped-def]
        scored_with.append(kwargs.get("workers", 1))
        return real_cpdist(*args, **kwargs)

    monkeypatch.setattr(similarity.process, "cpdist", recording_cpdist)

    landing = demo_dir / "landing"
    single_cfg = _project(tmp_path / "one", landing, workers=1)
    assert run_pipeline(single_cfg, run_date=RUN_DATE).success
    assert not pooled_calls and not helpers and not warmed and set(scored_with) == {1}
    scored_with.clear()

    pooled_cfg = _project(tmp_path / "two", landing, workers=2)
    outcome = run_pipeline(pooled_cfg, run_date=RUN_DATE)
    assert outcome.success, outcome.errors
    assert helpers and all(helpers), "no helper process cleaned a slice of the full clean"
    assert "dedupe.prepare" in warmed, "no helper process prepared the full match's records"
    assert set(scored_with) == {2}
    single, pooled = _published(single_cfg), _published(pooled_cfg)
    for name in _TABLES:
        pd.testing.assert_frame_equal(pooled[name], single[name], obj=name)


def test_workers_default_to_cores_and_set_duckdb_threads(tmp_path: Path) -> None:
    cfg_path = tmp_path / "archive.yml"
    cfg_path.write_text("scale:\n  workers: 3\n", encoding="utf-8")
    assert duckdb_threads(load_config(cfg_path)) == 3
    cfg_path.write_text("scale:\n  workers: 3\nduckdb:\n  threads: 1\n", encoding="utf-8")
    assert duckdb_threads(load_config(cfg_path)) == 1  # an explicit duckdb.threads wins
    cfg_path.write_text("landing_dir: x\n", encoding="utf-8")
    assert load_config(cfg_path).scale.resolved_workers() >= 1


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_invalid_workers_name_the_key(tmp_path: Path, value: str) -> None:
    cfg_path = tmp_path / "archive.yml"
    cfg_path.write_text(f"scale:\n  workers: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scale\.workers"):
        load_config(cfg_path)

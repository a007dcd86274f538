"""The match stage sharded through Dagster gives exactly the single-process run's result."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from dedupe import ModelParams
from pipelines import sharding
from pipelines.access import open_warehouse
from pipelines.definitions import build_definitions
from pipelines.jobs import JOB_NAME, WAREHOUSE_TAG_KEY
from pipelines.runner import RunOutcome, format_summary, run_pipeline
from pipelines.settings import ConfigError, load_config
from pipelines.sharding import MATCH_KEY
from pipelines.stages import reusable_params
from tests.pipelines.conftest import write_project
from warehouse import ensure_schemas, read_table, replace_tables

RUN_DATE = "2026-11-24"
# Run-specific columns: everything else must be identical between the two runs.
_SORT = {
    "match.pairs": (["left_key", "right_key"], []),
    "match.clusters": (["record_key"], []),
    "match.review_queue": (["left_key", "right_key"], []),
    "match.blocking_stats": (["rule"], ["run_id"]),
    # a sharded rebuild streams it from the file its prepare step staged
    "match.prepared": (["record_key"], []),
    "golden.customers": (["customer_id"], ["updated_run_id"]),
    "golden.crosswalk": (["record_key"], []),
}
_RUN_FIGURES = {"seconds", "peak_rss_mb", "shards"}


def _project(root: Path, landing: Path, scale: dict[str, object] | None = None) -> Path:
    """A project reading ``landing``, with an optional ``scale:`` section."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = write_project(root, landing)
    if scale:
        lines = "".join(f"  {k}: {v}\n" for k, v in scale.items())
        cfg.write_text(cfg.read_text(encoding="utf-8") + "scale:\n" + lines, encoding="utf-8")
    return cfg


def _tables(cfg_path: Path) -> dict[str, pd.DataFrame]:
    cfg = load_config(cfg_path)
    out = {}
    with open_warehouse(cfg, read_only=True) as con:
        for name, (keys, drop) in _SORT.items():
            frame = read_table(con, name)
            assert frame is not None, name
            out[name] = frame.drop(columns=drop).sort_values(keys).reset_index(drop=True)
    return out


def _assert_same_run(
    cfg_path: Path, outcome: RunOutcome, baseline: tuple[Path, RunOutcome], full: bool = True
) -> None:
    """Same match and golden tables as the baseline; for a full run also the same figures."""
    base_cfg, base_out = baseline
    assert outcome.success, outcome.errors
    mine, base = _tables(cfg_path), _tables(base_cfg)
    for name in _SORT:
        if not full and name == "match.blocking_stats":
            continue  # an incremental link counts only the pairs it generated
        assert len(base[name]) > 0 or name == "match.review_queue", name
        pd.testing.assert_frame_equal(mine[name], base[name], obj=name)
    if not full:
        return
    figures = {k: v for k, v in outcome.stats.match.as_dict().items() if k not in _RUN_FIGURES}
    expected = {k: v for k, v in base_out.stats.match.as_dict().items() if k not in _RUN_FIGURES}
    assert figures == expected


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> tuple[Path, RunOutcome]:
    """One single-process run (match_shards 1, today's path) over the demo exports."""
    cfg = _project(tmp_path_factory.mktemp("single"), demo_dir / "landing")
    outcome = run_pipeline(cfg, run_date=RUN_DATE)
    assert outcome.success, outcome.errors
    assert outcome.stats.match.shards is None
    return cfg, outcome


def test_sharded_run_equals_single_process_run(
    tmp_path: Path,
    demo_dir: Path,
    baseline: tuple[Path, RunOutcome],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: dict[str, int] = {}
    original = sharding.read_shard_file

    def spy(path: Path) -> pd.DataFrame:
        frame = original(path)
        read[path.name] = len(frame)
        return frame

    monkeypatch.setattr(sharding, "read_shard_file", spy)
    cfg = _project(tmp_path, demo_dir / "landing", {"match_shards": 3})
    warehouse = load_config(cfg).resolve(load_config(cfg).warehouse)
    left = sharding.shard_folder(warehouse, "a-run-that-was-killed") / "shard_0000.pkl"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"left behind")
    first = run_pipeline(cfg, run_date=RUN_DATE)
    assert first.stats.match.shards == 3
    assert first.stats.match.mode == "full"
    _assert_same_run(cfg, first, baseline)
    # each shard step loaded its own records' file only, never every record
    records = first.stats.match.records_relinked
    assert sorted(read) == [f"shard_{s:04d}.pkl" for s in range(3)]
    assert all(0 < n < records for n in read.values()), (read, records)
    # the shard files are removed once match.* is written, and an earlier run's leftovers
    # when the next full rebuild starts
    assert not sharding.shard_folder(warehouse, first.run_id).exists()
    assert not left.parent.exists()
    assert "scored in 3 blocking shards" in format_summary(first)
    assert "blocking shards" not in format_summary(baseline[1])

    # nothing new: the sharded graph takes the incremental path (no shards) and still publishes
    again = run_pipeline(cfg, run_date=RUN_DATE)
    assert again.success, again.errors
    assert again.stats.match.mode == "incremental"
    assert again.stats.match.shards is None
    _assert_same_run(cfg, again, baseline, full=False)


def test_sharded_full_rebuild_reuses_params_of_unchanged_settings(
    tmp_path: Path, demo_dir: Path, baseline: tuple[Path, RunOutcome]
) -> None:
    landing = demo_dir / "landing"
    cfg = _project(tmp_path, landing, {"match_shards": 2})
    assert run_pipeline(cfg, run_date=RUN_DATE).success
    # force a full rebuild with the same matching settings: the shards reuse the stored params
    cfg.write_text(cfg.read_text(encoding="utf-8") + "match_incremental: false\n", "utf-8")
    rebuilt = run_pipeline(cfg, run_date=RUN_DATE)
    assert rebuilt.stats.match.mode == "full"
    with open_warehouse(load_config(cfg), read_only=True) as con:
        params = read_table(con, "match.params")
    assert params is not None and len(params) == 2
    assert params["params"].iloc[0] == params["params"].iloc[1]
    _assert_same_run(cfg, rebuilt, baseline)


def test_reusable_params_only_under_the_same_matching_settings() -> None:
    params = ModelParams.from_json(_some_params())
    con = duckdb.connect()
    ensure_schemas(con)
    assert reusable_params(con, {"settings": "abc"}) is None  # no previous run
    rows = pd.DataFrame(
        {
            "run_id": ["r1", "r2"],
            "created_at": ["2026-11-23T00:00:00", "2026-11-24T00:00:00"],
            "params": ["{}", params.to_json()],
            "mode": ["full", "full"],
            "settings": ["old", "abc"],
            "decisions": ["empty", "empty"],
        }
    )
    replace_tables(con, {"match.params": rows})
    reused = reusable_params(con, {"settings": "abc", "decisions": "changed"})
    assert reused is not None and reused.to_json() == params.to_json()
    assert reusable_params(con, {"settings": "other", "decisions": "empty"}) is None


def _some_params() -> str:
    """Model params as the match stage stores them (estimated on a tiny frame)."""
    from dedupe import link_records
    from tests.dedupe.synth import make_records

    records, _ = make_records(40, seed=3)
    return link_records(records).params.to_json()


def test_definitions_show_the_shard_fan_out_and_the_multiprocess_executor(
    tmp_path: Path, demo_dir: Path
) -> None:
    cfg = _project(
        tmp_path,
        demo_dir / "landing",
        {"match_shards": 4, "executor": "multiprocess", "max_concurrent": 3},
    )
    defs = build_definitions(str(cfg))
    match = defs.resolve_assets_def(MATCH_KEY)
    graph = match.node_def
    assert isinstance(graph, dg.GraphDefinition)
    nodes = {n.name: n for n in graph.nodes}
    assert set(nodes) == {"match_prepare", "match_score_shard", "match_finish"}
    prepare = nodes["match_prepare"].definition
    assert prepare.output_def_named("shards").is_dynamic
    # the shard step scores pairs only: no warehouse tag, so shards run side by side
    assert WAREHOUSE_TAG_KEY not in nodes["match_score_shard"].definition.tags
    assert prepare.tags[WAREHOUSE_TAG_KEY] == "write"
    assert nodes["match_finish"].definition.tags[WAREHOUSE_TAG_KEY] == "write"
    upstream = defs.resolve_asset_graph().get(MATCH_KEY).parent_keys
    assert upstream == {dg.AssetKey(["clean", "records"])}

    job = defs.resolve_job_def(JOB_NAME)
    assert job.executor_def.name == "archive_multiprocess"
    resolved = job.executor_def.apply_config_mapping({})
    assert resolved.success
    executor_config = resolved.value["config"]
    assert executor_config["max_concurrent"] == 3
    assert executor_config["tag_concurrency_limits"] == [
        {"key": WAREHOUSE_TAG_KEY, "value": "write", "limit": 1}
    ]
    # every step that opens the warehouse is tagged, so the executor never runs two at once
    ops = []
    for assets_def in defs.resolve_asset_graph().assets_defs:
        node_def = assets_def.node_def
        if isinstance(node_def, dg.GraphDefinition):
            ops.extend(n.definition for n in node_def.nodes)
        else:
            ops.append(node_def)
    assert {"golden_expectations", "match_finish"} <= {op.name for op in ops}
    for op in ops:
        if op.name != "match_score_shard":
            assert op.tags.get(WAREHOUSE_TAG_KEY) == "write", op.name


def test_default_configuration_keeps_one_match_step_in_one_process(
    tmp_path: Path, demo_dir: Path
) -> None:
    defs = build_definitions(str(_project(tmp_path, demo_dir / "landing")))
    match = defs.resolve_assets_def(MATCH_KEY)
    assert isinstance(match.node_def, dg.OpDefinition)
    assert defs.resolve_job_def(JOB_NAME).executor_def.name == "in_process"


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ({"match_shards": 0}, "scale.match_shards: Input should be greater than or equal to 1"),
        ({"match_shards": "many"}, "scale.match_shards: Input should be a valid integer"),
        ({"executor": "threads"}, "scale.executor: Input should be 'in_process' or 'multiprocess'"),
        ({"max_concurrent": 0}, "scale.max_concurrent: Input should be greater than or equal to 1"),
        ({"shards": 2}, "scale.shards: Extra inputs are not permitted"),
    ],
)
def test_bad_scale_settings_are_named_in_the_error(
    tmp_path: Path, scale: dict[str, object], message: str
) -> None:
    cfg = _project(tmp_path, tmp_path / "landing", scale)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(cfg) in str(err.value)
    assert message in str(err.value)


def test_shard_count_stays_out_of_the_matching_settings(tmp_path: Path) -> None:
    cfg = _project(tmp_path, tmp_path / "landing")
    cfg.write_text(cfg.read_text(encoding="utf-8") + "matching:\n  match_shards: 2\n", "utf-8")
    with pytest.raises(ConfigError, match=r"matching\.match_shards"):
        load_config(cfg)


@pytest.mark.slow
def test_multiprocess_run_equals_single_process_run(
    tmp_path: Path, demo_dir: Path, baseline: tuple[Path, RunOutcome]
) -> None:
    """One real run with a process per step: shards in parallel, warehouse steps one at a time."""
    cfg = _project(
        tmp_path,
        demo_dir / "landing",
        {"match_shards": 2, "executor": "multiprocess", "max_concurrent": 2},
    )
    outcome = run_pipeline(cfg, run_date=RUN_DATE)
    assert outcome.stats.match.shards == 2
    _assert_same_run(cfg, outcome, baseline)
    assert outcome.stats.snapshot.snapshot

"""Dagster checks per suite and severity: what the Dagster UI and run history show.

Each suite reports one blocking ``<layer>_critical`` check and one ``<layer>_warnings`` check,
every expectation's result named in the result's metadata; a failed critical expectation still
fails its blocking check, so nothing after it runs, and ``ops.check_results`` keeps every
expectation's own row.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from expectations import CheckOutcome, QualitySettings, checks_for_layer
from pipelines.access import open_warehouse
from pipelines.checks import MISSING, check_groups, group_result
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from pipelines.stages import golden as golden_stage_module
from warehouse import read_table

LAYERS = ("raw", "clean", "golden")
STAGED = dg.AssetKey(["staging", "golden"])


def test_each_catalog_entry_is_in_one_group_of_its_severity() -> None:
    moved = QualitySettings(critical={"golden_customer_id_unique": False})
    for settings in (QualitySettings(), moved):
        for layer in LAYERS:
            groups = check_groups(layer, settings)
            names = [s.name for g in groups for s in g.entries]
            assert sorted(names) == sorted(s.name for s in checks_for_layer(layer))
            for g in groups:
                assert g.name == f"{layer}_{'critical' if g.critical else 'warnings'}"
                assert all(settings.is_critical(s.name) == g.critical for s in g.entries)
    warnings = next(g for g in check_groups("golden", moved) if not g.critical)
    assert "golden_customer_id_unique" in {s.name for s in warnings.entries}


def test_a_group_fails_naming_its_failed_and_missing_expectations() -> None:
    group = next(g for g in check_groups("golden", QualitySettings()) if g.critical)
    first, second, third, *rest = [s.name for s in group.entries]
    outcomes = [
        CheckOutcome(first, "golden", True, True, {"element_count": 3}),
        CheckOutcome(second, "golden", True, False, {"unexpected_keys": ["C1", "C2"]}),
        *(CheckOutcome(n, "golden", True, True) for n in rest),
    ]  # ``third`` produced no outcome
    result = group_result(group, STAGED, outcomes)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    meta = result.metadata
    assert meta["failed"].value == f"{second}, {third}"
    assert meta["expectations"].value == len(group.entries)
    # every expectation under its name, with its observed figures
    names = [k for k in meta if k not in ("failed", "expectations")]
    assert sorted(names) == sorted(s.name for s in group.entries)
    assert meta[second].value == {"passed": False, "unexpected_keys": "['C1', 'C2']"}
    assert meta[third].value == {"passed": False, "error": MISSING}
    assert meta[first].value == {"passed": True, "element_count": 3}

    warnings = next(g for g in check_groups("golden", QualitySettings()) if not g.critical)
    ok = group_result(warnings, STAGED, [CheckOutcome(s.name, "golden", False, True)
                                          for s in warnings.entries])  # fmt: skip
    assert ok.passed and ok.severity == dg.AssetCheckSeverity.WARN
    assert ok.metadata["failed"].value == "none"


def _evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    return [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]


def test_a_run_shows_one_check_per_suite_and_severity_and_a_critical_failure_blocks(
    project: Path, monkeypatch
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    good = run_pipeline(project, run_date="2026-11-24", instance=instance)
    assert good.success, good.errors
    sources = sorted(good.stats.ingest)
    evaluations = _evaluations(instance, good.run_id)
    seen = sorted((e.asset_key.to_user_string(), e.check_name) for e in evaluations)
    expected = sorted(
        [(f"raw/{s}", f"raw_{k}") for s in sources for k in ("critical", "warnings")]
        + [("clean/records", "clean_critical"), ("clean/records", "clean_warnings")]
        + [("staging/golden", "golden_critical"), ("staging/golden", "golden_warnings")]
    )
    assert seen == expected  # 10 checks a run, not one per catalog entry (61)
    planned = instance.all_logs(
        good.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    )
    assert len(planned) == len(expected)
    # every expectation's result is in the metadata of its suite's checks, once per asset
    for asset in {a for a, _ in expected}:
        layer = asset.split("/")[0].replace("staging", "golden")
        named = [
            k
            for e in evaluations
            if e.asset_key.to_user_string() == asset
            for k in e.metadata
            if k not in ("failed", "expectations")
        ]
        assert sorted(named) == sorted(s.name for s in checks_for_layer(layer)), asset
    critical = {e.check_name: e for e in evaluations if e.asset_key == STAGED}
    assert critical["golden_critical"].passed
    assert critical["golden_critical"].severity == dg.AssetCheckSeverity.ERROR

    real = golden_stage_module.build_golden_chunk

    def corrupt(*args, **kwargs):
        tables = real(*args, **kwargs)
        c = tables.customers  # one customer twice: golden_customer_id_unique fails
        tables.customers = pd.concat([c, c.iloc[[0]]], ignore_index=True)
        return tables

    monkeypatch.setattr(golden_stage_module, "build_golden_chunk", corrupt)
    cfg = load_config(project)
    extra = cfg.resolve(cfg.landing_dir) / "marketing" / "extra"
    extra.mkdir(parents=True)
    (extra / "more.jsonl").write_text(
        '{"lead_id": "LX1", "company": "杭州新线索网络科技有限公司", "mobile": "13700000009"}\n',
        encoding="utf-8",
    )
    bad = run_pipeline(project, run_date="2026-11-25", instance=instance)
    assert bad.blocked and not bad.success
    by_check = {
        e.check_name: e for e in _evaluations(instance, bad.run_id) if e.asset_key == STAGED
    }
    blocked = by_check["golden_critical"]
    assert not blocked.passed and blocked.severity == dg.AssetCheckSeverity.ERROR
    assert "golden_customer_id_unique" in blocked.metadata["failed"].value.split(", ")
    assert blocked.metadata["golden_customer_id_unique"].value["passed"] is False
    # the blocking check stopped everything after staging/golden
    materialized = {
        e.dagster_event.asset_key.to_user_string()
        for e in instance.all_logs(bad.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    assert "staging/golden" in materialized
    assert not {"golden/customers", "archive/snapshot"} & materialized
    # every expectation keeps its own row in ops.check_results
    with open_warehouse(cfg, read_only=True) as con:
        rows = read_table(con, "ops.check_results")
    rows = rows[rows["run_id"] == bad.run_id]
    assert set(rows.loc[rows["layer"] == "golden", "name"]) == {
        s.name for s in checks_for_layer("golden")
    }

"""The Dagster definitions load with every asset, check, schedule and sensor."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from expectations import checks_for_layer
from pipelines.definitions import build_definitions
from pipelines.jobs import JOB_NAME


def test_definitions_have_assets_checks_schedule_and_sensor(project: Path) -> None:
    defs = build_definitions(str(project))
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "raw/sales",
        "raw/service",
        "raw/marketing",
        "clean/records",
        "match/clusters",
        "staging/golden",
        "golden/customers",
        "archive/snapshot",
    } <= keys
    checks = defs.resolve_asset_graph().asset_check_keys
    assert any(c.asset_key == dg.AssetKey(["staging", "golden"]) for c in checks)
    schedule = defs.resolve_schedule_def("nightly_archive")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert defs.resolve_sensor_def("landing_sensor") is not None
    assert defs.resolve_sensor_def("archive_run_failure_alert") is not None
    golden = defs.resolve_assets_def(dg.AssetKey(["golden", "customers"]))
    policy = golden.specs_by_key[dg.AssetKey(["golden", "customers"])].freshness_policy
    assert policy is not None  # ops see a stale golden table in the UI
    # one check per suite and severity: <layer>_critical (blocking) and <layer>_warnings, each
    # naming its catalog entries in its description (pipelines/checks.py)
    graph = defs.resolve_asset_graph()
    for asset, layer in [
        (["raw", "sales"], "raw"),
        (["raw", "marketing"], "raw"),
        (["clean", "records"], "clean"),
        (["staging", "golden"], "golden"),
    ]:
        key = dg.AssetKey(asset)
        names = {c.name for c in checks if c.asset_key == key}
        assert names == {f"{layer}_critical", f"{layer}_warnings"}, asset
        for name in names:
            node = graph.get(dg.AssetCheckKey(key, name))
            assert node.blocking == name.endswith("_critical"), name
            entries = [s for s in checks_for_layer(layer) if s.critical == node.blocking]
            assert entries and all(f"`{s.name}`" in node.description for s in entries), name
    golden_critical = graph.get(
        dg.AssetCheckKey(dg.AssetKey(["staging", "golden"]), "golden_critical")
    )
    assert "`golden_customer_id_unique`" in golden_critical.description
    assert "`crosswalk_covers_clean_records`" in golden_critical.description
    assert defs.resolve_job_def(JOB_NAME) is not None


def test_landing_sensor_requests_a_run_only_for_new_files(project: Path) -> None:
    defs = build_definitions(str(project))
    sensor = defs.resolve_sensor_def("landing_sensor")
    ctx = dg.build_sensor_context()
    first = sensor.evaluate_tick(ctx)
    assert len(first.run_requests) == 1
    again = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor))
    assert not again.run_requests


def test_whole_graph_materializes_with_dagster_materialize(project: Path) -> None:
    """The same assets and checks, run through `dagster.materialize` as a user would in a test."""
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from warehouse import read_table

    defs = build_definitions(str(project), run_date="2026-11-24")
    graph = defs.resolve_asset_graph()
    assets = [a for a in graph.assets_defs if a.keys or a.check_keys]
    # the definitions bind the `archive` resource (config path, run date) to every asset
    result = dg.materialize(assets, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks if c.severity == dg.AssetCheckSeverity.ERROR)
    cfg = load_config(project)
    with open_warehouse(cfg, read_only=True) as con:
        assert len(read_table(con, "golden.customers")) > 0
    log_file = cfg.resolve(cfg.reports_dir) / result.run_id / "run.log.jsonl"
    stages = {json.loads(line)["stage"] for line in log_file.read_text().splitlines()}
    assert {"clean", "match", "golden", "publish", "snapshot"} <= stages


def test_schedule_and_landing_sensor_are_on_by_configuration(project: Path) -> None:
    on = build_definitions(str(project))
    assert on.resolve_schedule_def("nightly_archive").default_status == (
        dg.DefaultScheduleStatus.RUNNING
    )
    assert on.resolve_sensor_def("landing_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    text = project.read_text(encoding="utf-8")
    project.write_text(
        text + "schedule:\n  enabled: false\n  sensor_enabled: false\n", encoding="utf-8"
    )
    off = build_definitions(str(project))
    assert off.resolve_schedule_def("nightly_archive").default_status == (
        dg.DefaultScheduleStatus.STOPPED
    )
    assert off.resolve_sensor_def("landing_sensor").default_status == dg.DefaultSensorStatus.STOPPED


def test_cli_parses_the_deliveries_commands() -> None:
    from pipelines.cli import build_parser

    args = build_parser().parse_args(
        ["deliveries", "withdraw", "sales/2026-11-25", "--reason", "truncated export"]
    )
    assert (args.handler, args.delivery, args.reason) == (
        "deliveries withdraw",
        "sales/2026-11-25",
        "truncated export",
    )
    assert build_parser().parse_args(["deliveries", "list"]).handler == "deliveries list"

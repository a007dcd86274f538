"""The Dagster definitions load with every asset, check, schedule and sensor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.schedules import JOB_NAME


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
    assert defs.resolve_job_def(JOB_NAME) is not None


def test_landing_sensor_requests_a_run_only_for_new_files(project: Path) -> None:
    defs = build_definitions(str(project))
    sensor = defs.resolve_sensor_def("landing_sensor")
    ctx = dg.build_sensor_context()
    first = sensor.evaluate_tick(ctx)
    assert len(first.run_requests) == 1
    again = sensor.evaluate_tick(dg.build_sensor_context(cursor=first.cursor))
    assert not again.run_requests

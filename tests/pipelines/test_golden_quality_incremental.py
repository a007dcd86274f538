"""The nightly golden suite validates only the staged customers plus earlier failures.

A bad golden row must keep failing until it is fixed, whether it was published (a warning)
or blocked publishing (a critical check), and the whole-table checks still see every row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.access import open_warehouse
from pipelines.runner import RunOutcome, run_pipeline
from pipelines.settings import load_config
from sources.demo import write_demo
from tests.pipelines.conftest import write_project

FUTURE = "2099-03-01T10:00:00+08:00"


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden_quality_demo")
    write_demo(out, entities=60, seed=11)
    return out


def _project(tmp_path: Path, demo: Path, extra: tuple[str, ...] = ()) -> tuple[Path, Path]:
    landing = tmp_path / "landing"
    shutil.copytree(demo / "landing", landing)
    return write_project(tmp_path, landing, extra), landing


def _lead(landing: Path, day: str, lead_id: str, company: str, created_at: str) -> None:
    """Deliver one new marketing lead (a ``delivery: delta`` source) on ``day``."""
    folder = landing / "marketing" / day
    folder.mkdir(parents=True, exist_ok=True)
    row = {
        "lead_id": lead_id,
        "company": company,
        "contact": "王测试",
        "mobile": "13912345678",
        "city": "杭州",
        "created_at": created_at,
        "customer_type": "B2B",
    }
    (folder / "leads.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")


def _golden(project: Path, run_id: str) -> dict[str, tuple[bool, dict]]:
    with open_warehouse(load_config(project), read_only=True) as con:
        rows = con.execute(
            "SELECT name, success, observed FROM ops.check_results"
            " WHERE run_id = ? AND scope = 'golden'",
            [run_id],
        ).fetchall()
    return {name: (bool(ok), json.loads(observed)) for name, ok, observed in rows}


def _future_customer(project: Path) -> str:
    with open_warehouse(load_config(project), read_only=True) as con:
        (cid,) = con.execute(
            "SELECT customer_id FROM golden.crosswalk WHERE record_key = 'marketing:L9900001'"
        ).fetchall()[0]
    return str(cid)


def _run(project: Path, day: str) -> RunOutcome:
    return run_pipeline(project, run_date=day)


def test_a_published_bad_row_keeps_failing_on_later_nights(tmp_path: Path, small_demo: Path):
    project, landing = _project(tmp_path, small_demo)
    first = _run(project, "2026-11-23")
    assert first.success, first.errors
    full = _golden(project, first.run_id)
    assert (
        full["golden_phone_e164"][1]["rows_validated"]
        == full["golden_phone_e164"][1]["rows_in_table"]
    )
    _lead(landing, "2026-11-24", "L9900001", "远期登记测试有限公司", FUTURE)
    second = _run(project, "2026-11-24")
    assert second.success, second.errors  # a future date is a warning: published
    bad = _future_customer(project)
    ok, observed = _golden(project, second.run_id)["golden_dates_not_future"]
    assert not ok and bad in observed["unexpected_keys"]
    assert observed["rows_validated"] < observed["rows_in_table"]
    # a later night that does not touch that customer still reports it
    _lead(landing, "2026-11-25", "L9900002", "次日新增测试有限公司", "2024-05-01T09:00:00+08:00")
    third = _run(project, "2026-11-25")
    assert third.success, third.errors
    assert third.stats.golden is not None and third.stats.golden.mode == "incremental"
    checks = _golden(project, third.run_id)
    ok, observed = checks["golden_dates_not_future"]
    assert not ok and bad in observed["unexpected_keys"]
    assert observed["validated"] == "customers staged this run and earlier failures"
    assert observed["rows_validated"] < observed["rows_in_table"]
    # the whole-table checks still count every customer
    assert checks["golden_customer_id_unique"][1]["element_count"] == observed["rows_in_table"]
    with open_warehouse(load_config(project), read_only=True) as con:
        stored = con.execute(
            "SELECT customer_id FROM ops.golden_check_failures"
            " WHERE check_name = 'golden_dates_not_future'"
        ).fetchall()
    assert (bad,) in stored


def test_a_blocked_bad_row_keeps_blocking_until_fixed(tmp_path: Path, small_demo: Path):
    extra = ("quality:", "  critical:", "    golden_dates_not_future: true")
    project, landing = _project(tmp_path, small_demo, extra)
    assert _run(project, "2026-11-23").success
    _lead(landing, "2026-11-24", "L9900001", "远期登记测试有限公司", FUTURE)
    blocked = _run(project, "2026-11-24")
    assert not blocked.success
    ok, _ = _golden(project, blocked.run_id)["golden_dates_not_future"]
    assert not ok
    # next night: an unrelated change; the bad row was never published and still blocks
    _lead(landing, "2026-11-25", "L9900002", "次日新增测试有限公司", "2024-05-01T09:00:00+08:00")
    again = _run(project, "2026-11-25")
    assert not again.success
    ok, observed = _golden(project, again.run_id)["golden_dates_not_future"]
    assert not ok and observed["unexpected_count"] >= 1
    with open_warehouse(load_config(project), read_only=True) as con:
        (published,) = con.execute(
            "SELECT count(*) FROM golden.crosswalk WHERE record_key = 'marketing:L9900001'"
        ).fetchall()[0]
    assert published == 0

"""A run whose globs match no file: a first run is refused; a later one keeps all and warns."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.cli import main
from pipelines.cli.errors import EXIT_USAGE
from pipelines.runner import format_summary, run_pipeline
from pipelines.settings import load_config

from .test_run import _one_source_project, _q


def test_first_run_without_any_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    cfg = _one_source_project(tmp_path, "客户编号,客户名称,手机\nK1,北京星辰,13912345678\n")
    shutil.rmtree(tmp_path / "landing" / "crm")  # landing_dir or the glob is wrong
    assert main(["run", "--config", str(cfg)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no delivery to ingest" in err and "crm/**/*.csv" in err and "landing_dir" in err
    assert not load_config(cfg).resolve("state/warehouse.duckdb").exists()  # nothing created


def test_a_night_without_files_keeps_the_archive_and_says_so(tmp_path: Path) -> None:
    rows = "客户编号,客户名称,手机\nK1,北京星辰科技有限公司,13912345678\nK2,张伟,13800000000\n"
    cfg = _one_source_project(tmp_path, rows)
    assert run_pipeline(cfg, run_date="2026-11-24").success
    before = _q(cfg, "SELECT customer_id, customer_name FROM golden.customers ORDER BY 1")
    assert len(before) == 2
    shutil.move(tmp_path / "landing" / "crm", tmp_path / "elsewhere")  # the glob finds nothing
    out = run_pipeline(cfg, run_date="2026-11-25")
    assert out.success, out.errors
    summary = format_summary(out)
    assert "warning: crm: no file matches 'crm/**/*.csv'" in summary
    assert "nothing changes for crm" in summary
    after = _q(cfg, "SELECT customer_id, customer_name FROM golden.customers ORDER BY 1")
    assert after == before  # not an empty snapshot over a good one

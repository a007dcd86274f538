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


def _report(cfg: Path, run_id: str) -> str:
    folder = load_config(cfg).resolve("state/reports") / run_id
    return (folder / "report.html").read_text(encoding="utf-8")


def test_the_report_written_during_a_run_is_complete(tmp_path: Path) -> None:
    """Snapshot, finish time and the Data Docs link are in the report the run leaves behind;
    two runs on one day get distinct trend labels; Data Docs load nothing remote."""
    import re

    from expectations._offline_docs import remote_assets

    rows = "客户编号,客户名称,手机\nK1,北京星辰科技有限公司,13912345678\n"
    cfg = _one_source_project(tmp_path, rows)
    first = run_pipeline(cfg, run_date="2026-11-24")
    assert first.success
    html = _report(cfg, first.run_id)
    snapshot = first.stats.snapshot.snapshot if first.stats.snapshot else None
    assert snapshot and snapshot in html
    assert "not published" not in html and "Finished at</td><td>—" not in html
    assert "Data Docs were not built" not in html
    href = re.search(r'href="(data_docs/index\.html)"', html)
    assert href is not None
    docs = load_config(cfg).resolve("state/reports") / first.run_id / href[1]
    assert docs.is_file() and remote_assets(docs.read_text(encoding="utf-8")) == []

    (tmp_path / "landing" / "crm" / "2026-11-25").mkdir()
    (tmp_path / "landing" / "crm" / "2026-11-25" / "b.csv").write_text(
        rows + "K2,张伟,13800000000\n", encoding="utf-8"
    )
    second = run_pipeline(cfg, run_date="2026-11-25")
    assert second.success
    html = _report(cfg, second.run_id)
    labels = re.findall(r"<text[^>]*>(\d\d-\d\d \d\d:\d\d(?::\d\d)?)</text>", html)
    assert len(set(labels)) == 2, labels  # two runs on one day: told apart by their times

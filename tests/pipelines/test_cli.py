"""The CLI error path (one line, an exit code a class), `sql` rendering, start-up imports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.access import open_warehouse
from pipelines.cli import main
from pipelines.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_USAGE,
    DataError,
    report,
)
from pipelines.settings import load_config

from .conftest import REPO, write_project


@pytest.fixture(scope="module")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose encrypted warehouse holds a few awkward customers (no pipeline run)."""
    root = tmp_path_factory.mktemp("cli")
    cfg_path = write_project(root, root / "landing")
    cfg = load_config(cfg_path)
    with open_warehouse(cfg, create_key=True) as con:
        con.execute("CREATE SCHEMA golden")
        con.execute(
            """
            CREATE TABLE golden.customers AS SELECT * FROM (VALUES
                ('C1', '北京中佳物流有限公司', '+8613912345678', 12, DATE '2026-01-02'),
                ('C2', NULL, '+8613900000000', NULL, NULL),
                ('C3', '=HYPERLINK("http://x","y")', NULL, 3, DATE '2025-05-05')
            ) t(customer_id, customer_name, phone, n_records, last_seen)
            """
        )
    return cfg_path


def _cli(project: Path, *args: str) -> list[str]:
    return [*args[:1], "--config", str(project), *args[1:]]


def test_bad_sql_is_one_line_without_exception_name(small_project: Path, capsys) -> None:
    code = main(_cli(small_project, "sql", "SELECT * FROM golden.nope"))
    err = capsys.readouterr().err
    assert code == EXIT_DATA
    assert err.count("\n") == 1 and "nope" in err
    assert "CatalogException" not in err and "Traceback" not in err


def test_syntax_error_is_one_line(small_project: Path, capsys) -> None:
    assert main(_cli(small_project, "sql", "SELEC 1")) == EXIT_DATA
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "syntax error" in err


def test_debug_shows_the_traceback(small_project: Path) -> None:
    import duckdb

    with pytest.raises(duckdb.CatalogException):
        main(_cli(small_project, "sql", "--debug", "SELECT * FROM golden.nope"))


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "--fraction", "1.5"],
        ["audit", "--fraction", "abc"],
        ["review", "list", "--limit", "0"],
        ["sql", "--max-rows", "-1", "SELECT 1"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_option_values_are_one_usage_line(args: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == EXIT_USAGE
    assert err.count("\n") == 1 and "usage error" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["snapshots", "verify", "--config", "a.yml", "S1", "S2"], "ids", ["S1", "S2"]),
        (["snapshots", "restore", "S1", "--config", "a.yml"], "ids", ["S1"]),
        (["dormant", "approve", "--reason", "OA-1", "C1", "C2"], "customers", ["C1", "C2"]),
        (["package", "verify", "--config", "a.yml", "P1"], "ids", ["P1"]),
        (["explain", "sales:K1", "--config", "a.yml", "crm:K2"], "right", "crm:K2"),
        (["explain", "--config", "a.yml", "sales:K1", "crm:K2"], "right", "crm:K2"),
    ],
)
def test_ids_may_follow_the_options(
    argv: list[str], field: str, expected: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`snapshots verify --config a.yml ID` (options before the ids) reaches the command."""
    import importlib

    main_module = importlib.import_module("pipelines.cli.main")
    seen = {}
    handler = argv[0]
    monkeypatch.setitem(main_module.HANDLERS, handler, lambda a: seen.setdefault("a", a) and 0)
    assert main(argv) == 0
    assert getattr(seen["a"], field) == expected


def test_an_unknown_option_after_the_ids_is_still_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["snapshots", "verify", "S1", "--bogus"])
    assert stop.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_third_record_key_for_explain_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["explain", "a:1", "--config", "a.yml", "b:2", "c:3"])
    assert stop.value.code == 2 and "unrecognized arguments: c:3" in capsys.readouterr().err


def test_missing_config_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["sql", "--config", str(tmp_path / "none.yml"), "SELECT 1"]) == EXIT_USAGE
    assert "configuration file not found" in capsys.readouterr().err


def test_parquet_without_output_is_a_usage_error(small_project: Path, capsys) -> None:
    assert main(_cli(small_project, "sql", "--format", "parquet", "SELECT 1")) == EXIT_USAGE
    assert "--output" in capsys.readouterr().err


def test_error_classes_have_distinct_codes(capsys) -> None:
    def data() -> int:
        raise DataError("customer C9 not found\n  (try `customer-archive ids C9`)")

    def bug() -> int:
        raise KeyError("x")

    assert report(data) == EXIT_DATA
    assert report(bug) == EXIT_INTERNAL
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "data error: customer C9 not found; (try `customer-archive ids C9`)"
    assert lines[1].startswith("internal error: KeyError") and "--debug" in lines[1]


def test_broken_pipe_exits_quietly(small_project: Path) -> None:
    """`customer-archive sql … | head -1` stops without a BrokenPipeError traceback."""
    code = (
        "import sys; from pipelines.cli import main; "
        f"sys.exit(main(['sql', '--config', {str(small_project)!r}, "
        "'SELECT range FROM range(2000)', '--max-rows', '2000']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the rows come, as `head` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert "BrokenPipeError" not in err and "Traceback" not in err


def test_sql_table_shows_null_and_aligns_chinese(small_project: Path, capsys) -> None:
    query = "SELECT customer_id, customer_name, n_records, last_seen FROM golden.customers"
    query += " ORDER BY 1"
    assert main(_cli(small_project, "sql", query)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "(3 rows)"
    c1, c2, c3 = out[2:5]
    assert c2.split() == ["C2", "NULL", "NULL", "NULL"]
    assert "NaN" not in "".join(out) and "None" not in "".join(out) and "NaT" not in "".join(out)
    assert c1.split()[2] == "12"  # an integer column with a NULL stays integer
    from wcwidth import wcswidth

    # the wide Chinese name (20 cells) does not shift the columns after it: the right-aligned
    # counts end, and the dates start, at the same display column on every line
    def end_of_field(line: str, n: int) -> int:
        field = list(re.finditer(r"\S+", line))[n]
        return wcswidth(line[: field.end()])

    assert end_of_field(c1, 2) == end_of_field(c2, 2) == end_of_field(c3, 2)
    assert wcswidth(c1.rstrip()) == wcswidth(c3.rstrip())


def test_listings_show_missing_values_as_null_and_align_chinese() -> None:
    """The review queue and delivery listings: no pandas NaN/None/NaT, CJK by display width."""
    import pandas as pd
    from wcwidth import wcswidth

    from pipelines.cli.render import render_frame

    frame = pd.DataFrame({
        "left_customer_name": ["北京星鑫信息技术有限公司", None, "王芳"],
        "probability": [0.9968, float("nan"), 0.5],
        "withdrawn_at": pd.to_datetime(["2026-12-07 06:35", None, None]),
    })  # fmt: skip
    lines = render_frame(frame, max_rows=2, more_hint="--limit N shows more").splitlines()
    text = "\n".join(lines)
    assert "NaN" not in text and "None" not in text and "NaT" not in text
    assert lines[3].split() == ["NULL", "NULL", "NULL"]
    assert lines[-1] == "… 1 more rows (3 in all; --limit N shows more)"

    # the wide name does not shift the right-aligned probabilities: they end at one column
    def end_of_field(line: str, n: int) -> int:
        field = list(re.finditer(r"\S+", line))[n]
        return wcswidth(line[: field.end()])

    assert end_of_field(lines[2], 1) == end_of_field(lines[3], 1)


def test_sql_empty_result_says_zero_rows(small_project: Path, capsys) -> None:
    assert main(_cli(small_project, "sql", "SELECT * FROM golden.customers WHERE false")) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "(0 rows)" and "Empty DataFrame" not in out


def test_sql_csv_keeps_e164_phones_and_guards_formulas(small_project: Path, capsys) -> None:
    query = "SELECT customer_id, customer_name, phone FROM golden.customers ORDER BY 1"
    assert main(_cli(small_project, "sql", "--format", "csv", query)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "C1,北京中佳物流有限公司,+8613912345678"
    assert lines[2] == "C2,,+8613900000000"
    assert lines[3].startswith("C3,\"'=HYPERLINK(")


def test_sql_json_has_null(small_project: Path, capsys) -> None:
    import json

    query = "SELECT customer_id, n_records, last_seen FROM golden.customers ORDER BY 1"
    assert main(_cli(small_project, "sql", "--format", "json", query)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1] == {"customer_id": "C2", "n_records": None, "last_seen": None}
    assert rows[0]["n_records"] == 12 and rows[0]["last_seen"] == "2026-01-02"


def test_sql_command_imports_neither_dagster_nor_great_expectations(small_project: Path) -> None:
    """`customer-archive sql` starts fast: it loads no orchestration or validation framework."""
    code = (
        "import sys; from pipelines.cli import main; "
        f"rc = main(['sql', '--config', {str(small_project)!r}, 'SELECT 1 AS one']); "
        "heavy = [m for m in ('dagster', 'great_expectations') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout

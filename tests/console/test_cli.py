"""`customer-archive console`: argument parsing, refusal without a warehouse, local binding."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipelines.cli import main
from pipelines.cli.main import build_parser


def test_console_defaults_to_this_machine_only() -> None:
    args = build_parser().parse_args(["console"])
    assert (args.host, args.port, args.user_header) == ("127.0.0.1", 8765, None)


def test_console_without_a_warehouse_says_so(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "archive.yml"
    cfg.write_text("warehouse: nothing/here.duckdb\n", encoding="utf-8")
    assert main(["console", "--config", str(cfg)]) == 2
    assert "run `customer-archive run` first" in capsys.readouterr().err


def test_console_serves_the_app_and_warns_off_loopback(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import uvicorn

    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    assert main(["console", "--config", str(project), "--by", "王芳"]) == 0
    assert served["host"] == "127.0.0.1" and "warning" not in capsys.readouterr().err
    page = TestClient(served["app"]).get("/queue")  # type: ignore[arg-type]
    assert page.status_code == 200 and "王芳" in page.text

    assert main(["console", "--config", str(project), "--host", "0.0.0.0"]) == 0
    assert "behind your company login" in capsys.readouterr().err

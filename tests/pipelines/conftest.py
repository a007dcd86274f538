"""A small demo project (generated exports + config) shared by the pipeline tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sources.demo import write_demo

REPO = Path(__file__).resolve().parents[2]


def write_project(root: Path, landing: Path | str, extra: tuple[str, ...] = ()) -> Path:
    """Write an archive.yml under ``root`` that reads ``landing`` and keeps all state under root
    (``extra``: further YAML lines)."""
    cfg = root / "archive.yml"
    cfg.write_text(
        "\n".join(
            [
                f"landing_dir: {landing}",
                f"sources_file: {REPO / 'sources' / 'sources.yml'}",
                "warehouse: state/warehouse.duckdb",
                "archive_dir: state/archive",
                "reports_dir: state/reports",
                "exports_dir: state/exports",
                *extra,
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return cfg


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo exports for 400 entities (seed 7), generated once per test session."""
    out = tmp_path_factory.mktemp("demo")
    write_demo(out, entities=400, seed=7)
    return out


@pytest.fixture
def project(tmp_path: Path, demo_dir: Path) -> Path:
    """A fresh project whose landing folder is a private copy of the demo exports."""
    landing = tmp_path / "landing"
    shutil.copytree(demo_dir / "landing", landing)
    return write_project(tmp_path, landing)

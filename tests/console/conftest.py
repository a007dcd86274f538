"""A small demo warehouse (published once per session) and private copies of it per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines.runner import run_pipeline
from sources.demo import write_demo
from tests.pipelines.conftest import write_project

# the demo has few uncertain pairs at a few hundred entities; a wider review band (0.01 instead
# of 0.6) gives the steward a queue of a few dozen pairs to work through
REVIEW_THRESHOLD = 0.01


def write_console_project(root: Path, landing: Path) -> Path:
    """archive.yml under ``root``: the demo landing, all state under root, a wide review band."""
    root.mkdir(parents=True, exist_ok=True)
    return write_project(root, landing, (f"matching: {{review_threshold: {REVIEW_THRESHOLD}}}",))


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project over 600 demo entities (seed 7) after one successful run; do not modify."""
    root = tmp_path_factory.mktemp("console-demo")
    write_demo(root / "demo", entities=600, seed=7)
    cfg = write_console_project(root / "project", root / "demo" / "landing")
    out = run_pipeline(cfg, run_date="2026-11-24")
    assert out.success, out.errors
    return root


@pytest.fixture
def project(published: Path, tmp_path: Path) -> Path:
    """A private copy of the published project (warehouse, keys, audit log): its archive.yml."""
    shutil.copytree(published / "project", tmp_path / "project")
    return tmp_path / "project" / "archive.yml"


@pytest.fixture(scope="session")
def truth(published: Path) -> dict[str, str]:
    """Demo ground truth: record_key → entity_id."""
    frame = pd.read_csv(published / "demo" / "truth.csv", dtype=str)
    keys = frame["source_system"] + ":" + frame["source_record_id"]
    return dict(zip(keys, frame["entity_id"], strict=True))

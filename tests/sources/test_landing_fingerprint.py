"""The landing-folder fingerprint the sensor keeps as its cursor."""

from __future__ import annotations

import os
from pathlib import Path

from sources import SourcesConfig, landing_fingerprint
from tests.sources.conftest import HEADERS, ROWS, csv_text, make_source


def test_fingerprint_moves_when_files_land_or_change(landing: Path) -> None:
    config = SourcesConfig(landing_dir=landing, sources=[make_source()])
    empty = landing_fingerprint(config)
    assert empty[1] == 0
    (landing / "crm").mkdir()
    path = landing / "crm" / "a.csv"
    path.write_text(csv_text(HEADERS, ROWS), "utf-8")
    landed = landing_fingerprint(config)
    assert landed != empty and landed[1] == 1
    assert landing_fingerprint(config) == landed
    os.utime(path, ns=(0, 0))  # touched: the fingerprint moves
    assert landing_fingerprint(config) != landed

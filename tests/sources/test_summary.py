"""Run summary counts and the landing-folder sensor hooks."""

from __future__ import annotations

import os
from pathlib import Path

from sources import (
    SourcesConfig,
    ingest_summary,
    landing_fingerprint,
    manifest_frame,
    pending_deliveries,
)
from tests.sources.conftest import HEADERS, ROWS, csv_text, make_source, run


def test_summary_counts_reconcile_per_source(landing: Path) -> None:
    (landing / "crm").mkdir()
    (landing / "crm" / "a.csv").write_text(csv_text(HEADERS, [*ROWS, ["K9", "坏行"]]), "utf-8")
    (landing / "crm" / "b.csv").write_bytes(b"")
    result = run(make_source(), landing)
    summary = ingest_summary([result]).iloc[0]
    assert summary["source_system"] == "crm"
    assert (summary["files_read"], summary["files_quarantined"]) == (2, 1)
    assert (summary["rows_read"], summary["rows_kept"], summary["rows_quarantined"]) == (4, 3, 1)


def test_sensor_hooks_see_new_files_only(landing: Path) -> None:
    config = SourcesConfig(landing_dir=landing, sources=[make_source()])
    empty = landing_fingerprint(config)
    (landing / "crm").mkdir()
    path = landing / "crm" / "a.csv"
    path.write_text(csv_text(HEADERS, ROWS), "utf-8")
    landed = landing_fingerprint(config)
    assert landed != empty
    assert [d.path for d in pending_deliveries(config, None)] == ["crm/a.csv"]

    manifest = manifest_frame(run(make_source(), landing).files, "run-1")
    assert pending_deliveries(config, manifest) == []
    os.utime(path, ns=(0, 0))  # touched but unchanged content: fingerprint moves, nothing pends
    assert landing_fingerprint(config) != landed
    assert pending_deliveries(config, manifest) == []

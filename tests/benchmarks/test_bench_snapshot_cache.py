"""The digest-cache benchmark runs over a real snapshot's cache and reports its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from warehouse.archive import publish_snapshot

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_reports_peaks_cpu_and_equal_hashes_per_seed(tmp_path: Path) -> None:
    ids = [f"C{i:04d}" for i in range(400)]
    tables = {
        "golden.customers": pa.table({"customer_id": ids, "n": list(range(400))}),
        "golden.crosswalk": pa.table({"customer_id": ids * 2, "record_key": list(range(800))}),
    }
    assert publish_snapshot(tables, tmp_path, "r0", datetime(2026, 11, 2, tzinfo=UTC))
    script = ROOT / "benchmarks" / "bench_snapshot_cache.py"
    command = [sys.executable, str(script), str(tmp_path), "--customers", "50"]
    runs = []
    for _ in range(2):
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        runs.append(json.loads(done.stdout))
    assert runs[0]["cached_rows"] == 1200 and runs[0]["scope_customers"] == 50
    assert runs[0]["peak_mb_after"] >= runs[0]["peak_mb_before"] > 0
    assert runs[0]["content_hashes_md5"] == runs[1]["content_hashes_md5"]  # same seed, same

"""The nightly-floor benchmark's fixed-size change and its table reads (issue #15)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from benchmarks import bench_nightly_floor as floor


def _leads(path: Path, n: int) -> Path:
    rows = [{"lead_id": f"L{i}", "contact": f"联系人{i}", "city": "大连市"} for i in range(n)]
    rows[1]["contact"] = None  # a lead without a contact name still gets a changed one
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def test_changed_leads_change_the_contact_of_exactly_the_first_ones(tmp_path: Path) -> None:
    delivered = _leads(tmp_path / "leads.jsonl", 5)
    changed = floor.changed_leads(delivered, 3)
    assert [r["lead_id"] for r in changed] == ["L0", "L1", "L2"]
    assert [r["contact"] for r in changed] == ["联系人0明", "明", "联系人2明"]
    assert all(r["city"] == "大连市" for r in changed)  # nothing else changed


def test_changed_leads_refuse_a_delivery_too_small(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fewer than 6"):
        floor.changed_leads(_leads(tmp_path / "leads.jsonl", 5), 6)


def test_reads_count_every_row_twice() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    con.execute("CREATE TABLE golden.customers AS SELECT range AS id FROM range(1000)")
    found = floor._reads(con, ["golden.customers"])
    rows, first, second = found["golden.customers"]
    assert rows == 1000
    assert first >= 0 and second >= 0

"""Delta snapshots: exact reconstruction over several nights, policy, retention, tampering."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.archive import (
    RetentionPolicy,
    SnapshotPolicy,
    content_hash,
    copy_offsite,
    delta_base,
    diff_snapshots,
    list_snapshots,
    load_snapshot,
    plan_retention,
    publish_snapshot,
    verify_snapshot,
)
from warehouse.archive.delta import multiset_changes

START = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def _night(n: int) -> dict[str, pa.Table]:
    """Golden-like tables on night ``n``: customers change, leave and arrive; duplicates."""
    ids = [f"C{i:04d}" for i in range(200 + 5 * n) if i % 50 != n]  # one leaves each night
    phones = [f"138{(i * 7 + (n if i % 13 == 0 else 0)) % 10**8:08d}" for i in range(len(ids))]
    customers = pa.table(
        {
            "customer_id": pa.array(ids, pa.large_string()),
            "phone": pa.array(phones, pa.large_string()),
            "revenue": pa.array([(i % 3) * 1.5 + (i % 17 == n) for i in range(len(ids))]),
            "since": pa.array([date(2020, 1, 1) + timedelta(days=i) for i in range(len(ids))]),
            "note": pa.nulls(len(ids))  # empty (Arrow null) on the base night, text later
            if n < 2
            else pa.array(
                ["x" if i % 10 == 0 else None for i in range(len(ids))], pa.large_string()
            ),
        }
    )
    events = pa.table(  # duplicate rows: a multiset, not a set
        {"customer_id": pa.array(["C0001"] * (3 + n % 2) + ids[:n], pa.large_string())}
    )
    tables = {"golden.customers": customers, "golden.customer_ids": events}
    if n >= 3:
        tables["golden.contacts"] = pa.table({"customer_id": pa.array(ids[:5], pa.large_string())})
    return tables


def _publish(archive: Path, n: int, policy: SnapshotPolicy, kind: str = "daily"):
    base = delta_base(list_snapshots(archive), kind, policy)
    return publish_snapshot(
        _night(n), archive, f"r{n}", START + timedelta(days=n), kind=kind, base=base
    )


@pytest.mark.parametrize("cached", [True, False], ids=["base-rows-cached", "base-read"])
def test_deltas_rebuild_every_night_exactly(tmp_path: Path, cached: bool) -> None:
    policy = SnapshotPolicy()
    infos = []
    for n in range(6):
        if not cached:  # without the kept base rows a delta reads its base: same result
            shutil.rmtree(tmp_path / ".delta-cache", ignore_errors=True)
        infos.append(_publish(tmp_path, n, policy))
    # a delta that had to read its base keeps the base's rows for the next one
    assert (tmp_path / ".delta-cache" / ".index.json").is_file()
    assert [i.storage for i in infos] == ["full"] + ["delta"] * 5
    assert {i.base_id for i in infos[1:]} == {infos[0].snapshot_id}
    for n, info in enumerate(infos):
        expected = content_hash(_night(n))
        assert info.content_hash == expected  # what a full snapshot would have recorded
        loaded = load_snapshot(info.path)  # verifies: delta files, base, rebuilt hashes
        assert content_hash(loaded) == expected
        assert loaded["golden.customers"].schema == _night(n)["golden.customers"].schema
    manifest = json.loads((infos[1].path / "manifest.json").read_text("utf-8"))
    stored = sum(e["rows"] for e in manifest["files"].values() if e["part"] == "add")
    assert 0 < stored < 0.3 * sum(infos[1].row_counts.values())  # only the changed rows
    later = json.loads((infos[3].path / "manifest.json").read_text("utf-8"))
    # a column typed null on the base night and text later: still rows added and dropped
    assert set(later["tables"]["golden.customers"]["parts"]) == {"add", "drop"}
    # a table the base does not have is stored whole
    assert later["tables"]["golden.contacts"]["parts"] == {"full": "golden.contacts:full"}
    diff = diff_snapshots(infos[0].path, infos[4].path)
    ids = [set(_night(n)["golden.customers"]["customer_id"].to_pylist()) for n in (0, 4)]
    assert diff.summary()["added"] == len(ids[1] - ids[0]) == 23
    assert diff.summary()["removed"] == len(ids[0] - ids[1]) == 4


def test_multiset_changes_count_duplicates() -> None:
    base = np.array([[1, 1], [1, 1], [2, 2], [3, 3]], dtype=np.uint64)
    now = np.array([[1, 1], [3, 3], [3, 3], [4, 4]], dtype=np.uint64)
    drop, add = multiset_changes(base, now)
    assert drop.tolist() == [1, 2] and add.tolist() == [2, 3]


def test_full_snapshots_first_at_month_end_when_long_or_large(tmp_path: Path) -> None:
    policy = SnapshotPolicy(max_deltas=2)
    kinds = [_publish(tmp_path, n, policy).storage for n in range(5)]
    assert kinds == ["full", "delta", "delta", "full", "delta"]
    assert _publish(tmp_path, 5, policy, kind="month_end").storage == "full"
    assert delta_base(list_snapshots(tmp_path), "daily", SnapshotPolicy(delta=False)) is None
    # changes larger than the allowed share: written full
    base = list_snapshots(tmp_path)[-1]
    wide = publish_snapshot(
        _night(30), tmp_path, "r30", START + timedelta(days=30), base=base, max_delta_share=0.01
    )
    assert wide.storage == "full"


def test_retention_keeps_the_base_of_every_kept_delta(tmp_path: Path) -> None:
    infos = [_publish(tmp_path, n, SnapshotPolicy()) for n in range(4)]
    plan = plan_retention(
        list_snapshots(tmp_path),
        RetentionPolicy(keep_daily_days=2, keep_month_end=False, keep_year_end=False),
        today=(START + timedelta(days=4)).date(),
    )
    kept = {s.snapshot_id for s in plan.keep}
    assert infos[0].snapshot_id in kept  # old, outside the window, but the base of kept deltas
    assert any("base of kept delta" in r for r in plan.reasons[infos[0].snapshot_id])
    assert infos[1].snapshot_id not in kept


def test_verify_detects_tampering_in_a_delta_or_its_base(tmp_path: Path) -> None:
    infos = [_publish(tmp_path, n, SnapshotPolicy()) for n in range(3)]
    delta, base = infos[2].path, infos[0].path
    assert verify_snapshot(delta).ok
    part = delta / "golden.customer_ids.add.parquet"
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)
    codes = {p.code for p in verify_snapshot(delta).problems}
    assert {"checksum_mismatch", "row_count_mismatch"} <= codes
    infos2 = [_publish(tmp_path / "b", n, SnapshotPolicy()) for n in range(2)]
    base = infos2[0].path
    file = base / "golden.customers.parquet"
    t = pq.read_table(file)
    pq.write_table(t.set_column(1, "phone", pa.array(["0"] * t.num_rows, pa.large_string())), file)
    report = verify_snapshot(infos2[1].path)
    assert not report.ok
    assert any(p.code.startswith("base_") for p in report.problems)
    with pytest.raises(Exception, match="refusing to load"):
        load_snapshot(infos2[1].path)


def test_offsite_copy_of_a_delta_brings_its_base(tmp_path: Path) -> None:
    infos = [_publish(tmp_path / "a", n, SnapshotPolicy()) for n in range(2)]
    copied = Path(copy_offsite(infos[1].path, str(tmp_path / "off")))
    assert verify_snapshot(copied).ok
    assert content_hash(load_snapshot(copied)) == content_hash(_night(1))

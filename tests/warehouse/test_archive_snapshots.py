"""Tests for publishing, listing, verifying and loading archive snapshots."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.archive import (
    SnapshotVerificationError,
    clean_leftovers,
    content_hash,
    list_snapshots,
    load_snapshot,
    prepare_restore,
    publish_snapshot,
    verify_snapshot,
)

T0 = datetime(2026, 11, 24, 2, 0, 0)


def golden_tables(**changes: str) -> dict[str, pd.DataFrame]:
    """A small golden layer; ``changes`` overrides customer names by customer_id."""
    customers = pd.DataFrame(
        {
            "customer_id": ["C20240315001", "C20240315002", "C20240316001"],
            "customer_name": ["北京星河科技有限公司", "王芳", "Acme Trading Ltd."],
            "customer_type": ["enterprise", "individual", "enterprise"],
            "phone": ["+8613912345678", None, "+442079460000"],
            "record_count": [2, 1, 1],
            "updated_run_id": ["r1", "r1", "r1"],
        }
    )
    for customer_id, name in changes.items():
        customers.loc[customers["customer_id"] == customer_id, "customer_name"] = name
    crosswalk = pd.DataFrame(
        {
            "source_system": ["crm", "erp", "service", "crm"],
            "source_record_id": ["1", "A9", "T-7", "2"],
            "record_key": ["crm:1", "erp:A9", "service:T-7", "crm:2"],
            "customer_id": ["C20240315001", "C20240315001", "C20240315002", "C20240316001"],
            "match_score": [12.5, 12.5, None, None],
        }
    )
    return {"golden.customers": customers, "golden.crosswalk": crosswalk}


def test_publish_then_verify_ok_with_manifest_fields(tmp_path: Path) -> None:
    extra = {"source_manifest": [{"file": "crm.csv", "sha256": "ab"}], "expectation_results": []}
    info = publish_snapshot(golden_tables(), tmp_path, "run42", T0, manifest_extra=extra)
    assert info is not None
    assert info.path == tmp_path / "2026" / "Q4" / "2026-11-24T02-00-00_run42"
    assert info.snapshot_id == "2026-11-24T02-00-00_run42"
    assert info.row_counts == {"golden.crosswalk": 4, "golden.customers": 3}
    assert sorted(p.name for p in info.path.iterdir()) == [
        "golden.crosswalk.parquet",
        "golden.customers.parquet",
        "manifest.json",
    ]
    manifest = json.loads((info.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["run_id"] == "run42" and manifest["kind"] == "daily"
    assert manifest["source_manifest"] == extra["source_manifest"]
    assert manifest["code_version"]
    assert manifest["content_hash"] == info.content_hash == content_hash(golden_tables())
    entry = manifest["files"]["golden.customers"]
    assert len(entry["sha256"]) == 64 and entry["rows"] == 3 and entry["bytes"] > 0
    assert [f["name"] for f in entry["schema"]][:2] == ["customer_id", "customer_name"]
    report = verify_snapshot(info.path)
    assert report.ok, report.summary()
    assert report.checked_files == 2


@pytest.mark.parametrize(
    ("moment", "folder"),
    [
        (datetime(2026, 1, 1, 0, 0, 0), "2026/Q1"),
        (datetime(2026, 3, 31, 23, 59, 59), "2026/Q1"),
        (datetime(2026, 4, 1, 2, 0, 0), "2026/Q2"),
        (datetime(2025, 9, 30, 2, 0, 0), "2025/Q3"),
        (datetime(2025, 12, 31, 2, 0, 0), "2025/Q4"),
    ],
)
def test_layout_by_year_and_quarter(tmp_path: Path, moment: datetime, folder: str) -> None:
    info = publish_snapshot(golden_tables(), tmp_path, "r1", moment)
    assert info is not None
    assert info.path.parent == tmp_path / folder


def test_tampered_parquet_byte_is_reported(tmp_path: Path) -> None:
    info = publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    assert info is not None
    target = info.path / "golden.customers.parquet"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    report = verify_snapshot(info.path)
    assert not report.ok
    assert ("golden.customers.parquet", "checksum_mismatch") in {
        (p.file, p.code) for p in report.problems
    }
    with pytest.raises(SnapshotVerificationError, match="checksum_mismatch"):
        load_snapshot(info.path)


def test_rewritten_table_with_other_content_is_reported(tmp_path: Path) -> None:
    info = publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    assert info is not None
    forged = golden_tables(C20240315002="李四")["golden.customers"]
    pq.write_table(pa.Table.from_pandas(forged), info.path / "golden.customers.parquet")
    codes = {p.code for p in verify_snapshot(info.path).problems}
    assert {"checksum_mismatch", "content_hash_mismatch"} <= codes


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda p: (p / "golden.crosswalk.parquet").unlink(), "missing_file"),
        (lambda p: (p / "notes.txt").write_text("x"), "extra_file"),
        (lambda p: (p / "manifest.json").unlink(), "missing_manifest"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "bad_manifest"),
    ],
)
def test_missing_extra_and_manifest_damage_reported(tmp_path: Path, damage, code: str) -> None:
    info = publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    assert info is not None
    damage(info.path)
    report = verify_snapshot(info.path)
    assert code in {p.code for p in report.problems}, report.summary()


def test_same_content_publishes_nothing(tmp_path: Path) -> None:
    first = publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    shuffled = {
        name: frame.iloc[::-1][list(reversed(frame.columns))]
        for name, frame in golden_tables().items()
    }
    again = publish_snapshot(shuffled, tmp_path, "r2", datetime(2026, 11, 25, 2, 0, 0))
    assert first is not None and again is None
    assert [s.run_id for s in list_snapshots(tmp_path)] == ["r1"]
    assert sorted(p.name for p in (tmp_path / "2026" / "Q4").iterdir()) == [first.snapshot_id]
    forced = publish_snapshot(
        golden_tables(), tmp_path, "r3", datetime(2026, 11, 26), skip_if_unchanged=False
    )
    assert forced is not None and forced.content_hash == first.content_hash


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        # row order does not matter
        (pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [2, 1]}), True),
        # duplicates count (multiset, not set)
        (pd.DataFrame({"a": [1, 1]}), pd.DataFrame({"a": [1]}), False),
        # NULL differs from the empty string
        (pd.DataFrame({"s": [None]}, dtype="string"), pd.DataFrame({"s": [""]}), False),
        # values cannot shift between columns ("ab","c") vs ("a","bc")
        (pd.DataFrame({"x": ["ab"], "y": ["c"]}), pd.DataFrame({"x": ["a"], "y": ["bc"]}), False),
        # string and large_string are the same content
        (
            pa.table({"s": pa.array(["客户"], pa.string())}),
            pa.table({"s": pa.array(["客户"], pa.large_string())}),
            True,
        ),
        # the column name is part of the content
        (pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]}), False),
    ],
)
def test_content_hash_rules(left, right, equal: bool) -> None:
    assert (content_hash({"t": left}) == content_hash({"t": right})) is equal


def test_load_round_trip_equals_content(tmp_path: Path) -> None:
    info = publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    assert info is not None
    loaded = load_snapshot(info.path)
    assert content_hash(loaded) == info.content_hash
    pd.testing.assert_frame_equal(
        loaded["golden.customers"].to_pandas(), golden_tables()["golden.customers"]
    )


def test_restore_round_trip_after_later_runs(tmp_path: Path) -> None:
    a = publish_snapshot(golden_tables(), tmp_path, "runA", datetime(2026, 11, 1, 2))
    b_tables = golden_tables(C20240315002="王芳芳")
    c_tables = golden_tables(C20240315002="王芳芳", C20240316001="Acme Ltd")
    publish_snapshot(b_tables, tmp_path, "runB", datetime(2026, 11, 2, 2))
    c = publish_snapshot(c_tables, tmp_path, "runC", datetime(2026, 11, 3, 2))
    assert a is not None and c is not None
    plan = prepare_restore(a.path, tmp_path, c_tables, "restore1", datetime(2026, 11, 3, 9))
    assert content_hash(plan.tables) == a.content_hash
    # the state before the restore is C's content, already archived: no duplicate backup
    assert plan.backup is not None and plan.backup.content_hash == c.content_hash
    plan2 = prepare_restore(a.path, tmp_path, b_tables, "restore2", datetime(2026, 11, 4, 9))
    assert plan2.backup is not None and plan2.backup.kind == "restore_backup"
    assert verify_snapshot(plan2.backup.path).ok


def test_restore_refuses_tampered_snapshot_before_backup(tmp_path: Path) -> None:
    a = publish_snapshot(golden_tables(), tmp_path, "runA", datetime(2026, 11, 1, 2))
    assert a is not None
    (a.path / "golden.customers.parquet").write_bytes(b"PAR1garbagePAR1")
    with pytest.raises(SnapshotVerificationError):
        prepare_restore(
            a.path, tmp_path, golden_tables(C20240315002="x"), "r", datetime(2026, 12, 1)
        )
    assert len(list_snapshots(tmp_path)) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"run_id": "../evil"}, "run_id"),
        ({"run_id": "run 1"}, "run_id"),
        ({"kind": "weekly"}, "kind"),
        ({"manifest_extra": {"content_hash": "x"}}, "reserved"),
        ({"tables": {"golden/../x": pd.DataFrame({"a": [1]})}}, "dotted identifier"),
        ({"tables": {}}, "at least one table"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict, error: str) -> None:
    args = {"tables": golden_tables(), "archive_dir": tmp_path, "run_id": "r1", "created_at": T0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=error):
        publish_snapshot(**args)
    assert list_snapshots(tmp_path) == []


def test_published_snapshot_is_never_overwritten(tmp_path: Path) -> None:
    publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    with pytest.raises(FileExistsError):
        publish_snapshot(golden_tables(C20240315002="x"), tmp_path, "r1", T0)
    assert verify_snapshot(list_snapshots(tmp_path)[0].path).ok


def test_list_ignores_incomplete_and_sorts(tmp_path: Path) -> None:
    publish_snapshot(golden_tables(C20240315002="b"), tmp_path, "r2", datetime(2026, 5, 2))
    publish_snapshot(golden_tables(C20240315002="a"), tmp_path, "r1", datetime(2026, 5, 1))
    (tmp_path / "2026" / "Q2" / "2026-05-03T00-00-00_r3").mkdir()  # no manifest: incomplete
    (tmp_path / "2026" / "Q2" / ".tmp-1@h@2026-05-04T00-00-00_r4@ab").mkdir()
    assert [s.run_id for s in list_snapshots(tmp_path)] == ["r1", "r2"]
    assert list_snapshots(tmp_path / "missing") == []


def test_custom_reader_is_used_for_verify_and_load(tmp_path: Path) -> None:
    """Encrypted snapshots are verified with a decrypting reader; failures are problems."""
    info = publish_snapshot(golden_tables(), tmp_path, "r1", T0)
    assert info is not None
    seen: list[str] = []

    def recording(path: Path) -> pa.Table:
        seen.append(path.name)
        return pq.read_table(path)

    assert verify_snapshot(info.path, reader=recording).ok
    assert sorted(seen) == ["golden.crosswalk.parquet", "golden.customers.parquet"]
    assert content_hash(load_snapshot(info.path, reader=recording)) == info.content_hash

    def locked(path: Path) -> pa.Table:
        raise PermissionError(f"no key for {path.name}")

    report = verify_snapshot(info.path, reader=locked)
    assert {p.code for p in report.problems} == {"unreadable_file"}
    assert "no key for" in report.summary()


def test_leftover_cleanup_spares_a_live_writer(tmp_path: Path) -> None:
    quarter = tmp_path / "2026" / "Q4"
    quarter.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = socket.gethostname()
    live = quarter / f".tmp-{os.getpid()}@{host}@2026-11-24T02-00-00_r1@aa"
    dead = quarter / f".tmp-{child.pid}@{host}@2026-11-24T02-00-00_r2@bb"
    deleting = quarter / ".deleting-2026-10-01T02-00-00_r0"
    for folder in (live, dead, deleting):
        folder.mkdir()
    assert sorted(clean_leftovers(tmp_path)) == sorted([dead, deleting])
    assert live.is_dir()

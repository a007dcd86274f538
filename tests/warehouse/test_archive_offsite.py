"""Tests for the off-site copy: verified, committed last, idempotent, refuses conflicts."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import fsspec
import pytest

from tests.warehouse.test_archive_snapshots import golden_tables
from warehouse.archive import (
    OffsiteCopyError,
    copy_offsite,
    list_snapshots,
    publish_snapshot,
    verify_snapshot,
)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    info = publish_snapshot(golden_tables(), tmp_path / "archive", "r1", datetime(2026, 11, 24, 2))
    assert info is not None
    return info.path


def test_copy_to_folder_verifies_and_is_idempotent(snapshot: Path, tmp_path: Path) -> None:
    offsite = tmp_path / "offsite"
    copied = copy_offsite(snapshot, str(offsite))
    assert Path(copied) == offsite / "2026" / "Q4" / snapshot.name
    assert verify_snapshot(Path(copied)).ok
    assert [s.snapshot_id for s in list_snapshots(offsite)] == [snapshot.name]
    assert copy_offsite(snapshot, str(offsite)) == copied  # again: no-op
    assert not list(offsite.rglob(".tmp-*"))


def test_copy_refuses_a_tampered_source(snapshot: Path, tmp_path: Path) -> None:
    (snapshot / "golden.crosswalk.parquet").write_bytes(b"tampered")
    with pytest.raises(OffsiteCopyError, match="fails verification"):
        copy_offsite(snapshot, str(tmp_path / "offsite"))
    assert not (tmp_path / "offsite").exists()


def test_copy_refuses_to_overwrite_a_different_copy(snapshot: Path, tmp_path: Path) -> None:
    offsite = tmp_path / "offsite"
    copied = Path(copy_offsite(snapshot, str(offsite)))
    (copied / "manifest.json").write_text('{"other": 1}', encoding="utf-8")
    with pytest.raises(OffsiteCopyError, match="different snapshot"):
        copy_offsite(snapshot, str(offsite))


def test_copy_to_fsspec_url_writes_manifest_last(snapshot: Path) -> None:
    root = f"memory://offsite-{uuid.uuid4().hex}"
    copied = copy_offsite(snapshot, root)
    fs = fsspec.filesystem("memory")
    assert copied.endswith(f"2026/Q4/{snapshot.name}")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(copied, detail=False))
    assert names == ["golden.crosswalk.parquet", "golden.customers.parquet", "manifest.json"]
    # an interrupted earlier attempt (data without manifest) is completed, not trusted
    fs.rm(f"{copied}/manifest.json")
    fs.pipe(f"{copied}/golden.customers.parquet", b"partial")
    assert copy_offsite(snapshot, root) == copied
    with fs.open(f"{copied}/golden.customers.parquet", "rb") as handle:
        assert handle.read() == (snapshot / "golden.customers.parquet").read_bytes()
    assert copy_offsite(snapshot, root) == copied

"""Fault injection: SIGKILL inside publish/retention/off-site copy, and a full disk (ENOSPC)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.test_archive_snapshots import golden_tables
from warehouse.archive import (
    OffsiteCopyError,
    RetentionPolicy,
    SnapshotWriteError,
    apply_retention,
    copy_offsite,
    list_snapshots,
    offsite,
    publish_snapshot,
    retention,
    snapshots,
    verify_snapshot,
)

T_A = datetime(2026, 11, 23, 2)
T_B = datetime(2026, 11, 24, 2)
TABLES_B = golden_tables(C20240315002="王芳芳")
# fork: children start in well under a second (a fork server costs ~15 s of imports here); the
# archive opens its own DuckDB per process id, so a child never touches its parent's database
_FORK = multiprocessing.get_context("fork")


def _write_partial(path: Path) -> None:
    Path(path).write_bytes(b"PAR1\x00\x01half-written")


def _hang_on_call(
    module: Any, attr: str, nth: int, reached: Any, before: Callable[..., None] | None = None
) -> None:
    """Replace ``module.attr`` so that its nth call signals ``reached`` and then hangs."""
    original = getattr(module, attr)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth:
            if before is not None:
                before(*args)
            reached.set()
            time.sleep(60)
        return original(*args, **kwargs)

    setattr(module, attr, wrapper)


def _rename_only(temp: Path, final: Path) -> None:
    os.rename(temp, final)


# point → (module, attribute, nth call, action before hanging)
POINTS: dict[str, tuple[Any, str, int, Callable[..., None] | None]] = {
    "before first table": (snapshots, "_write_table_file", 1, None),
    "mid first table": (snapshots, "_write_table_file", 1, lambda t, p, *_: _write_partial(p)),
    "before second table": (snapshots, "_write_table_file", 2, None),
    "mid second table": (snapshots, "_write_table_file", 2, lambda t, p, *_: _write_partial(p)),
    "before manifest": (snapshots, "_write_manifest_file", 1, None),
    "mid manifest": (snapshots, "_write_manifest_file", 1, lambda m, p: Path(p).write_text('{"sn')),
    "before rename": (snapshots, "_commit_dir", 1, None),
    "after rename before fsync": (snapshots, "commit_dir", 1, _rename_only),
}


def _child_publish(point: str, archive: str, reached: Any) -> None:
    module, attr, nth, before = POINTS[point]
    _hang_on_call(module, attr, nth, reached, before)
    publish_snapshot(TABLES_B, Path(archive), "runB", T_B)


def _kill_at(target: Callable[..., None], *args: Any) -> None:
    reached = _FORK.Event()
    child = _FORK.Process(target=target, args=(*args, reached))
    child.start()
    try:
        assert reached.wait(30), "the child never reached the fault point"
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        child.join(30)
    assert child.exitcode == -signal.SIGKILL


def _assert_consistent(archive: Path) -> list[str]:
    listed = list_snapshots(archive)
    for info in listed:
        assert verify_snapshot(info.path).ok, verify_snapshot(info.path).summary()
    return [s.run_id for s in listed]


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_during_publish_leaves_archive_consistent(tmp_path: Path, point: str) -> None:
    archive = tmp_path / "archive"
    a = publish_snapshot(golden_tables(), archive, "runA", T_A)
    assert a is not None
    _kill_at(_child_publish, point, str(archive))
    runs = _assert_consistent(archive)
    assert runs == (["runA", "runB"] if point == "after rename before fsync" else ["runA"])
    # the next run completes and equals an uninterrupted run
    again = publish_snapshot(TABLES_B, archive, "runB2", datetime(2026, 11, 25, 2))
    final = list_snapshots(archive)
    assert final[-1].content_hash == snapshots.content_hash(TABLES_B)
    assert (again is None) == (point == "after rename before fsync")
    assert not list(archive.rglob(".tmp-*")), "leftover temp folder was not cleaned"
    _assert_consistent(archive)


def _child_retention(archive: str, reached: Any) -> None:
    _hang_on_call(retention.shutil, "rmtree", 1, reached)
    apply_retention(Path(archive), RetentionPolicy(keep_daily_days=1), date(2026, 11, 24))


def test_sigkill_during_retention_delete(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    publish_snapshot(golden_tables(), archive, "runOld", datetime(2026, 11, 10, 2))
    publish_snapshot(TABLES_B, archive, "runNew", T_B)
    _kill_at(_child_retention, str(archive))
    assert _assert_consistent(archive) == ["runNew"]  # renamed away atomically before removal
    publish_snapshot(golden_tables(), archive, "runNext", datetime(2026, 11, 25, 2))
    assert not list(archive.rglob(".deleting-*"))


def _child_offsite(snapshot: str, destination: str, reached: Any) -> None:
    _hang_on_call(offsite, "_copy_file_durably", 2, reached)
    copy_offsite(Path(snapshot), destination)


def test_sigkill_during_offsite_copy(tmp_path: Path) -> None:
    a = publish_snapshot(golden_tables(), tmp_path / "archive", "runA", T_A)
    assert a is not None
    destination = tmp_path / "offsite"
    _kill_at(_child_offsite, str(a.path), str(destination))
    assert list_snapshots(destination) == []
    copied = copy_offsite(a.path, str(destination))
    assert verify_snapshot(Path(copied)).ok
    assert not list(destination.rglob(".tmp-*"))


def _enospc(*_args: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _partial_then_enospc(_table: Any, path: Path, *_: Any) -> None:
    _write_partial(path)
    _enospc()


@pytest.mark.parametrize(
    ("attr", "fake"),
    [
        ("_write_table_file", _partial_then_enospc),
        ("_write_manifest_file", _enospc),
        ("_commit_dir", _enospc),
    ],
)
def test_disk_full_raises_clearly_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attr: str, fake: Callable[..., None]
) -> None:
    archive = tmp_path / "archive"
    a = publish_snapshot(golden_tables(), archive, "runA", T_A)
    assert a is not None
    monkeypatch.setattr(snapshots, attr, fake)
    with pytest.raises(SnapshotWriteError, match="disk full") as caught:
        publish_snapshot(TABLES_B, archive, "runB", T_B)
    assert "nothing was published" in str(caught.value)
    assert caught.value.__cause__ is not None
    assert _assert_consistent(archive) == ["runA"]
    leftovers = [p for p in archive.rglob("*") if p.name.startswith(".")]
    # the delta cache of snapshot A (its rows, for the next delta) is no leftover
    assert not [p for p in leftovers if ".delta-cache" not in p.relative_to(archive).parts]


def test_disk_full_at_offsite_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = publish_snapshot(golden_tables(), tmp_path / "archive", "runA", T_A)
    assert a is not None
    monkeypatch.setattr(offsite, "_copy_file_durably", _enospc)
    with pytest.raises(OffsiteCopyError, match="No space left"):
        copy_offsite(a.path, str(tmp_path / "offsite"))
    assert list_snapshots(tmp_path / "offsite") == []
    assert not list((tmp_path / "offsite").rglob(".tmp-*"))

"""Tests for the run lock: exclusion, holder record, stale-lock detection."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warehouse.archive import RunLock, RunLockedError


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _holder(pid: int, started: datetime) -> str:
    record = {"pid": pid, "host": socket.gethostname(), "started_at": started.isoformat()}
    return json.dumps({**record, "run_id": "old-run"})


@pytest.mark.parametrize("shared_filesystem", [False, True])
def test_second_holder_is_refused_with_the_holder_named(
    tmp_path: Path, shared_filesystem: bool
) -> None:
    path = tmp_path / "run.lock"
    with RunLock(path, run_id="run-1", shared_filesystem=shared_filesystem):
        holder = json.loads(path.read_text())
        assert holder["run_id"] == "run-1" and holder["host"] == socket.gethostname()
        with pytest.raises(RunLockedError, match="run-1") as caught:
            RunLock(path, run_id="run-2", shared_filesystem=shared_filesystem).acquire()
        assert caught.value.holder is not None and caught.value.holder["run_id"] == "run-1"
    assert not path.exists()
    with RunLock(path, run_id="run-3", shared_filesystem=shared_filesystem):
        assert json.loads(path.read_text())["run_id"] == "run-3"


def test_lock_held_by_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    code = (
        "import sys, time; from pathlib import Path; from warehouse.archive import RunLock\n"
        f"lock = RunLock(Path({str(path)!r}), run_id='child').acquire()\n"
        "print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"pid {child.pid}"):
            RunLock(path).acquire()
    finally:
        child.kill()
        child.wait()
    # the kernel released the killed holder's lock; its leftover record is reported as stale
    lock = RunLock(path, run_id="next").acquire()
    try:
        assert lock.stale_holder is not None and lock.stale_holder["run_id"] == "child"
    finally:
        lock.release()


def test_stale_soft_lock_from_dead_pid_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    Path(str(path) + ".lock").write_text("")  # the soft lock a crashed run left behind
    path.write_text(_holder(_dead_pid(), datetime.now(UTC)))
    lock = RunLock(path, run_id="new", shared_filesystem=True).acquire()
    try:
        assert lock.stale_holder is not None and lock.stale_holder["run_id"] == "old-run"
        assert json.loads(path.read_text())["run_id"] == "new"
    finally:
        lock.release()


def test_soft_lock_older_than_max_age_is_stale_but_live_young_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    Path(str(path) + ".lock").write_text("")
    path.write_text(_holder(os.getpid(), datetime.now(UTC)))
    with pytest.raises(RunLockedError, match="old-run"):
        RunLock(path, shared_filesystem=True).acquire()
    path.write_text(_holder(os.getpid(), datetime.now(UTC) - timedelta(days=2)))
    lock = RunLock(path, shared_filesystem=True, max_age=timedelta(hours=12)).acquire()
    assert lock.stale_holder is not None
    lock.release()

"""A run lock (file lock + JSON holder record) so only one pipeline run changes the warehouse."""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import filelock

from warehouse.archive._errors import ArchiveError
from warehouse.archive._layout import pid_alive as _pid_alive

LOG = logging.getLogger(__name__)


class RunLockedError(ArchiveError):
    """Another run holds the lock; ``holder`` is its record (pid, host, started_at, run_id)."""

    def __init__(self, message: str, holder: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.holder = holder


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "an unknown holder (no holder record)"
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')}, run {holder.get('run_id')}, "
        f"since {holder.get('started_at')}"
    )


class RunLock:
    """Exclusive run lock: ``with RunLock(path, run_id=…):`` or raise :class:`RunLockedError`.

    The lock is an OS file lock (``filelock``), released by the kernel if the holder dies, beside a
    JSON holder record ``<path>`` (pid, host, started_at, run_id). With ``shared_filesystem=True``
    (NFS and other file systems without reliable locks) an existence-based soft lock is used, and
    a stale one — holder pid dead on this host, or older than ``max_age`` — is broken.

    Args:
        path: the holder record (e.g. ``warehouse/run.lock``); the lock file is ``<path>.lock``.
        run_id: the run taking the lock, recorded for whoever finds it held.
        max_age: a holder older than this is stale (hard lock: reported as probably hung).
        timeout: seconds to wait for the lock before raising.
        shared_filesystem: use a soft lock with stale-lock breaking.
    """

    def __init__(
        self,
        path: Path,
        run_id: str | None = None,
        max_age: timedelta = timedelta(hours=12),
        timeout: float = 0.0,
        shared_filesystem: bool = False,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.max_age = max_age
        self.timeout = timeout
        self.stale_holder: dict[str, Any] | None = None
        lock_file = str(self.path) + ".lock"
        self._soft = shared_filesystem
        self._lock: filelock.BaseFileLock = (
            filelock.SoftFileLock(lock_file) if shared_filesystem else filelock.FileLock(lock_file)
        )

    def read_holder(self) -> dict[str, Any] | None:
        """The current holder record, or ``None`` when absent or unreadable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            LOG.warning("unreadable run-lock holder record %s: %s", self.path, exc)
            return None
        return data if isinstance(data, dict) else None

    def is_stale(self, holder: dict[str, Any] | None) -> str | None:
        """Why a holder record is stale (dead pid on this host, or too old), else ``None``."""
        if not holder:
            return None
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
            return f"holder pid {pid} is no longer running on {host}"
        try:
            started = datetime.fromisoformat(str(holder.get("started_at")))
        except ValueError:
            return "holder record has no valid started_at"
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        age = datetime.now(UTC) - started
        if age > self.max_age:
            return f"holder started {age} ago (more than max_age {self.max_age})"
        return None

    def acquire(self) -> RunLock:
        """Take the lock and write the holder record.

        Raises:
            RunLockedError: another live run holds it; the message names the holder.
        """
        try:
            self._lock.acquire(timeout=self.timeout)
        except filelock.Timeout:
            holder = self.read_holder()
            stale = self.is_stale(holder) if self._soft else None
            if stale is None:
                hint = ""
                if not self._soft and self.is_stale(holder):
                    hint = f" — it looks hung ({self.is_stale(holder)}); stop that process first"
                raise RunLockedError(
                    f"another run holds {self.path}: {_describe(holder)}{hint}", holder
                ) from None
            LOG.warning("breaking stale run lock %s: %s", self.path, stale)
            self.stale_holder = holder
            Path(self._lock.lock_file).unlink(missing_ok=True)
            self._lock.acquire(timeout=self.timeout)
        previous = self.read_holder()
        if previous is not None and self.stale_holder is None:
            reason = self.is_stale(previous) or "holder did not release the lock cleanly"
            LOG.warning("previous run ended without releasing %s (%s)", self.path, reason)
            self.stale_holder = previous
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(),
            "run_id": self.run_id,
        }
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temp, self.path)
        return self

    def release(self) -> None:
        """Remove the holder record and release the lock."""
        self.path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

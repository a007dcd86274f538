"""Archive folder layout, manifest I/O, fsync helpers and leftover temp-folder cleanup."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from warehouse.archive._errors import ArchiveError

LOG = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
TEMP_PREFIX = ".tmp-"
DELETING_PREFIX = ".deleting-"
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SAFE_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SNAPSHOT_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}_[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is safe in a folder name, else raise ``ValueError``."""
    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(
            f"run_id {run_id!r} is not usable in a snapshot folder name: "
            "use 1-128 characters of letters, digits, '_', '.', '-' (starting with a letter/digit)"
        )
    return run_id


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a dotted identifier (``golden.customers``), else raise."""
    if not _SAFE_TABLE.match(name):
        raise ValueError(f"table name {name!r} is not a dotted identifier like 'golden.customers'")
    return name


def is_snapshot_dir_name(name: str) -> bool:
    """Whether ``name`` has the shape of a published snapshot folder."""
    return bool(_SNAPSHOT_DIR.match(name))


def quarter(moment: date) -> str:
    """Quarter folder name (``Q1``…``Q4``) of a date."""
    return f"Q{(moment.month - 1) // 3 + 1}"


def snapshot_id_for(created_at: datetime, run_id: str) -> str:
    """Snapshot id = folder name ``<YYYY-MM-DDTHH-MM-SS>_<run_id>``."""
    return f"{created_at.strftime('%Y-%m-%dT%H-%M-%S')}_{check_run_id(run_id)}"


def snapshot_parent(archive_dir: Path, created_at: datetime) -> Path:
    """Folder ``archive_dir/<YYYY>/<Qn>`` that holds a snapshot created at ``created_at``."""
    return archive_dir / f"{created_at.year:04d}" / quarter(created_at)


def relative_snapshot_path(snapshot_id: str, created_at: datetime) -> str:
    """``<YYYY>/<Qn>/<snapshot_id>`` — a snapshot's place below any archive root."""
    return f"{created_at.year:04d}/{quarter(created_at)}/{snapshot_id}"


def table_file_name(table: str) -> str:
    """File name of a table inside a snapshot (``golden.customers.parquet``)."""
    return f"{check_table_name(table)}.parquet"


def temp_dir_name(snapshot_id: str) -> str:
    """Hidden temp folder name, carrying this process id so leftovers can be told from live ones."""
    return f"{TEMP_PREFIX}{os.getpid()}@{socket.gethostname()}@{snapshot_id}@{uuid.uuid4().hex[:8]}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(
        f"manifest value of type {type(value).__name__} is not JSON-serializable: {value!r}"
    )


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Serialize a manifest deterministically (sorted keys, UTF-8, readable Chinese)."""
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True, default=_json_default)
    return (text + "\n").encode("utf-8")


def read_manifest(snapshot: Path) -> dict[str, Any]:
    """Read and parse ``snapshot/manifest.json``.

    Raises:
        ArchiveError: when the manifest is missing, unreadable or not a JSON object.
    """
    path = snapshot / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArchiveError(f"snapshot {snapshot} has no {MANIFEST_NAME}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"snapshot {snapshot} has an unreadable {MANIFEST_NAME}: {exc}") from exc
    if not isinstance(data, dict) or "files" not in data or "snapshot_id" not in data:
        raise ArchiveError(f"snapshot {snapshot}: {MANIFEST_NAME} is not a snapshot manifest")
    return data


def write_file_durably(path: Path, data: bytes) -> None:
    """Write bytes to a new file and fsync it."""
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_file(path: Path) -> None:
    """fsync an already written file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_dir(temp: Path, final: Path) -> None:
    """Rename a finished temp folder to its final name and fsync the parent; never overwrite."""
    if final.exists():
        raise FileExistsError(errno.EEXIST, "snapshot already published", str(final))
    os.rename(temp, final)
    fsync_dir(final.parent)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a stale lock/temp folder test)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftover_is_stale(name: str, age_seconds: float, max_age_seconds: float) -> bool:
    """A temp folder is stale when its writer process (on this host) is gone, or it is old."""
    if name.startswith(DELETING_PREFIX):
        return True
    parts = name[len(TEMP_PREFIX) :].split("@", 2)
    if len(parts) >= 2 and parts[0].isdigit() and parts[1] == socket.gethostname():
        return not pid_alive(int(parts[0])) or age_seconds > max_age_seconds
    return age_seconds > max_age_seconds


def clean_leftovers(archive_dir: Path, max_age_seconds: float = 6 * 3600) -> list[Path]:
    """Remove temp/deleting folders left by crashed writers; published snapshots are untouched.

    Args:
        archive_dir: the archive root.
        max_age_seconds: a temp folder of a live process (or another host) older than this is
            also removed.

    Returns:
        The folders removed.
    """
    removed: list[Path] = []
    if not archive_dir.is_dir():
        return removed
    now = time.time()
    for candidate in sorted(archive_dir.glob("*/*/.*")):
        name = candidate.name
        if not candidate.is_dir() or not name.startswith((TEMP_PREFIX, DELETING_PREFIX)):
            continue
        age = now - candidate.stat().st_mtime
        if _leftover_is_stale(name, age, max_age_seconds):
            LOG.warning("removing leftover folder of an interrupted archive write: %s", candidate)
            shutil.rmtree(candidate)
            removed.append(candidate)
    return removed

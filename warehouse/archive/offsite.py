"""Copy verified snapshots to a second, off-site destination (a folder or an fsspec URL)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec

from warehouse.archive._errors import OffsiteCopyError
from warehouse.archive._layout import (
    MANIFEST_NAME,
    clean_leftovers,
    commit_dir,
    fsync_dir,
    read_manifest,
    relative_snapshot_path,
    temp_dir_name,
)
from warehouse.archive.verify import TableReader, verify_snapshot

LOG = logging.getLogger(__name__)
_CHUNK = 1 << 20


def _is_local(destination: str) -> bool:
    return "://" not in destination or destination.startswith("file://")


def _local_root(destination: str) -> Path:
    return Path(destination.removeprefix("file://"))


def _copy_file_durably(source: Path, target: Path) -> None:
    with source.open("rb") as reader, target.open("xb") as writer:
        shutil.copyfileobj(reader, writer, _CHUNK)
        writer.flush()
        os.fsync(writer.fileno())


def _copy_local(
    snapshot: Path,
    manifest: dict[str, Any],
    root: Path,
    relative: str,
    reader: TableReader | None,
) -> str:
    final = root / relative
    if final.exists():
        _check_existing_local(snapshot, final, reader)
        return str(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(root)
    temp = final.parent / temp_dir_name(final.name)
    try:
        temp.mkdir()
        for entry in manifest["files"].values():
            _copy_file_durably(snapshot / entry["file"], temp / entry["file"])
        _copy_file_durably(snapshot / MANIFEST_NAME, temp / MANIFEST_NAME)
        fsync_dir(temp)
        report = verify_snapshot(temp, reader=reader)
        if not report.ok:
            raise OffsiteCopyError(
                f"copy at the destination failed verification: {report.summary()}"
            )
        commit_dir(temp, final)
    except BaseException as exc:
        if temp.exists():
            shutil.rmtree(temp)
        if isinstance(exc, OSError):
            raise OffsiteCopyError(f"could not copy {snapshot.name} to {final}: {exc}") from exc
        raise
    return str(final)


def _check_existing_local(snapshot: Path, final: Path, reader: TableReader | None) -> None:
    if (final / MANIFEST_NAME).read_bytes() != (snapshot / MANIFEST_NAME).read_bytes():
        raise OffsiteCopyError(f"{final} already holds a different snapshot; not overwriting")
    report = verify_snapshot(final, reader=reader)
    if not report.ok:
        raise OffsiteCopyError(f"existing off-site copy is damaged: {report.summary()}")


def _remote_sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_remote(
    snapshot: Path, manifest: dict[str, Any], fs: fsspec.AbstractFileSystem, final: str
) -> None:
    """Upload data files, check their sha256 at the destination, then upload the manifest last.

    Object stores have no atomic folder rename, so the manifest is the commit marker: a prefix
    without it is an interrupted copy, ignored by readers and overwritten by the next attempt.
    """
    manifest_path = f"{final}/{MANIFEST_NAME}"
    if fs.exists(manifest_path):
        with fs.open(manifest_path, "rb") as handle:
            if handle.read() != (snapshot / MANIFEST_NAME).read_bytes():
                raise OffsiteCopyError(f"{final} already holds a different snapshot")
        _verify_remote(fs, final, manifest)
        return
    fs.makedirs(final, exist_ok=True)
    for entry in manifest["files"].values():
        fs.put_file(str(snapshot / entry["file"]), f"{final}/{entry['file']}")
    _verify_remote(fs, final, manifest)
    fs.put_file(str(snapshot / MANIFEST_NAME), manifest_path)


def _verify_remote(fs: fsspec.AbstractFileSystem, final: str, manifest: dict[str, Any]) -> None:
    for entry in manifest["files"].values():
        remote = f"{final}/{entry['file']}"
        if not fs.exists(remote):
            raise OffsiteCopyError(f"off-site copy is missing {remote}")
        if _remote_sha256(fs, remote) != entry["sha256"]:
            raise OffsiteCopyError(f"off-site copy of {remote} has a wrong sha256")


def copy_offsite(snapshot: Path, destination: str, *, reader: TableReader | None = None) -> str:
    """Copy a verified snapshot to a second destination, verify it there, then commit it.

    The copy lands at ``<destination>/<YYYY>/<Qn>/<snapshot_id>/``. Locally it is written to a
    temp folder, verified and renamed; on an fsspec URL (``s3://…``) data files go first, are
    checked by sha256, and the manifest is written last. Copying again is a no-op once complete.
    A delta snapshot's base is copied first (a no-op when it is there already).

    Args:
        snapshot: the local snapshot folder.
        destination: a folder path or an fsspec URL.
        reader: reads one table file for verification (a decrypting one for encrypted
            snapshots; default plain Parquet).

    Returns:
        The path or URL of the off-site copy.

    Raises:
        OffsiteCopyError: the snapshot fails verification, the destination holds a different or
            damaged copy, or the copy fails.
    """
    snapshot = Path(snapshot)
    report = verify_snapshot(snapshot, reader=reader)
    if not report.ok:
        raise OffsiteCopyError(
            f"not copying a snapshot that fails verification: {report.summary()}"
        )
    manifest = read_manifest(snapshot)
    if manifest.get("storage", "full") != "full":  # a delta needs its base beside it
        from warehouse.archive.snapshots import base_path

        copy_offsite(base_path(snapshot, manifest), destination, reader=reader)
    created_at = datetime.fromisoformat(str(manifest["created_at"]))
    relative = relative_snapshot_path(str(manifest["snapshot_id"]), created_at)
    if _is_local(destination):
        copied = _copy_local(snapshot, manifest, _local_root(destination), relative, reader)
    else:
        fs, root = fsspec.core.url_to_fs(destination)
        final = f"{root.rstrip('/')}/{relative}"
        try:
            _copy_remote(snapshot, manifest, fs, final)
        except OSError as exc:
            raise OffsiteCopyError(
                f"could not copy {snapshot.name} to {destination}: {exc}"
            ) from exc
        copied = fs.unstrip_protocol(final)
    LOG.info("off-site copy of %s at %s", manifest["snapshot_id"], copied)
    return copied

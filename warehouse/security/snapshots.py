"""Encrypt, re-key, read and rewrite published snapshot files, keeping manifest.json consistent."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from warehouse.archive import list_snapshots, load_snapshot, verify_snapshot
from warehouse.archive._hashing import (
    combine_table_hashes,
    file_sha256,
    schema_record,
    table_content_hash,
)
from warehouse.archive._layout import MANIFEST_NAME, fsync_file, manifest_bytes, read_manifest
from warehouse.archive.delta import ADD, DROP, FULL, delta_for, drop_table
from warehouse.archive.snapshots import base_path, part_file_name
from warehouse.security.encryption import (
    DecryptionError,
    file_key_ids,
    is_encrypted_parquet,
    read_parquet_any,
    write_parquet_like,
)
from warehouse.security.keys import KeyRing

ENCRYPTION_SCHEME = "parquet-modular-encryption/AES_GCM_V1/double-wrapped"
Transform = Callable[[str, pa.Table], pa.Table | None]


def read_snapshot(snapshot_dir: Path, key: KeyRing | None) -> dict[str, pa.Table]:
    """Every table of a snapshot, decrypting encrypted files with the ring.

    Raises:
        DecryptionError: a file is encrypted and the ring does not open it.
    """
    return load_snapshot(Path(snapshot_dir), verify=False, reader=_reader(key))


def _reader(key: KeyRing | None) -> Callable[[Path], pa.Table]:
    return lambda path: read_parquet_any(path, key)


def rewrite_delta(
    snapshot_dir: Path,
    tables: dict[str, pa.Table],
    key: KeyRing | None,
    note_key: str | None = None,
    note: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Store new content in a published delta snapshot, encoded again on its (rewritten) base.

    Erasure rewrites a delta this way: rows leave its base, so the base row positions the
    delta drops are no longer valid; the delta is re-encoded from the erased tables it
    represents (read before the base was rewritten) against the erased base. Part files are
    written beside the old ones and renamed over them; the manifest is replaced last.

    Args:
        snapshot_dir: the delta snapshot folder.
        tables: the tables the delta shall represent.
        key: the key ring (parts are encrypted when the delta's files were).
        note_key: manifest list to record the change in.
        note: the record (no personal data).

    Returns:
        Rows removed per represented table.
    """
    snapshot_dir = Path(snapshot_dir)
    manifest = read_manifest(snapshot_dir)
    base_dir = base_path(snapshot_dir, manifest)
    base_manifest = read_manifest(base_dir)
    base_tables = read_snapshot(base_dir, key)
    encrypted = any(
        is_encrypted_parquet(snapshot_dir / e["file"]) for e in manifest["files"].values()
    )
    deltas = delta_for(base_tables, tables)
    files: dict[str, dict[str, Any]] = {}
    represented: dict[str, dict[str, Any]] = {}
    key_ids: set[str] = set()
    written: list[Path] = []
    for name, delta in sorted(deltas.items()):
        parts = (
            {FULL: delta.full}
            if delta.full is not None
            else {DROP: drop_table(delta.drop), ADD: delta.add}  # type: ignore[arg-type]
        )
        keys = {}
        for part, table in parts.items():
            file_key = f"{name}:{part}"
            path = snapshot_dir / part_file_name(name, part)
            temp = path.with_name(f".{path.name}.rewrite-{secrets.token_hex(4)}")
            used = write_parquet_like(table, temp, key, encrypted)
            fsync_file(temp)
            os.replace(temp, path)
            written.append(path)
            if used:
                key_ids.add(used)
            sha, size = file_sha256(path)
            files[file_key] = {
                "file": path.name,
                "table": name,
                "part": part,
                "sha256": sha,
                "bytes": size,
                "rows": table.num_rows,
                "schema": schema_record(table.schema),
                "content_hash": table_content_hash(table),
            }
            keys[part] = file_key
        represented[name] = {
            "rows": tables[name].num_rows,
            "schema": schema_record(tables[name].schema),
            "content_hash": table_content_hash(tables[name]),
            "parts": keys,
        }
    for stale in {e["file"] for e in manifest["files"].values()} - {p.name for p in written}:
        (snapshot_dir / stale).unlink(missing_ok=True)
    removed = {
        name: int(manifest["row_counts"].get(name, 0)) - t.num_rows for name, t in tables.items()
    }
    manifest.update(
        files=files,
        tables=represented,
        row_counts={name: entry["rows"] for name, entry in sorted(represented.items())},
        content_hash=combine_table_hashes(
            {name: entry["content_hash"] for name, entry in represented.items()}
        ),
    )
    manifest["base"]["content_hash"] = base_manifest["content_hash"]
    if key_ids:
        manifest["encryption"] = {"scheme": ENCRYPTION_SCHEME, "key_ids": sorted(key_ids)}
    if note_key:
        record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **(note or {})}
        record["tables"] = {k: v for k, v in removed.items() if v}
        manifest.setdefault(note_key, []).append(record)
    _write_manifest(snapshot_dir, manifest)
    return removed


def _write_manifest(snapshot_dir: Path, manifest: dict[str, Any]) -> None:
    temp = snapshot_dir.parent / f".{snapshot_dir.name}.manifest-{secrets.token_hex(4)}"
    temp.write_bytes(manifest_bytes(manifest))
    fsync_file(temp)
    os.replace(temp, snapshot_dir / MANIFEST_NAME)


def rewrite_snapshot(
    snapshot_dir: Path,
    transform: Transform,
    key: KeyRing | None,
    encrypt: bool | None = None,
    note_key: str | None = None,
    note: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Rewrite a published snapshot's files in place; the one sanctioned change to a snapshot.

    Each changed file is written beside the original and renamed over it; the manifest's
    checksums, sizes, row counts, schemas and content hashes are recomputed so
    ``verify_snapshot`` still passes, and ``note`` is appended to ``manifest[note_key]``.

    Args:
        snapshot_dir: the snapshot folder.
        transform: ``(table name, table) -> new table`` or None to leave the content as is.
        key: the key ring (needed for encrypted files and for ``encrypt``).
        encrypt: True to (re-)encrypt every file with the ring's current key, False to keep
            each file's state (``None`` = keep; encrypted files are re-encrypted when changed).
        note_key: manifest list to record the change in (``"erasures"``, ``"key_rotations"``).
        note: the record (no personal data).

    Returns:
        Rows removed per rewritten table (0 for files rewritten only to change keys).
    """
    snapshot_dir = Path(snapshot_dir)
    manifest = read_manifest(snapshot_dir)
    files: dict[str, dict[str, Any]] = manifest["files"]
    paths = {name: snapshot_dir / entry["file"] for name, entry in files.items()}
    current_ids = file_key_ids(paths, key) if key is not None else dict.fromkeys(paths)
    changed: dict[str, int] = {}
    key_ids: set[str] = set()
    before = {name: entry.get("content_hash") for name, entry in files.items()}
    for name, entry in sorted(files.items()):
        path = paths[name]
        was_encrypted = is_encrypted_parquet(path)
        table = read_parquet_any(path, key)
        new = transform(name, table)
        want_encrypted = was_encrypted if encrypt is None else encrypt
        rekey = want_encrypted and (not was_encrypted or current_ids[name] != _current(key))
        if new is None and not rekey:
            if was_encrypted and current_ids[name]:
                key_ids.add(str(current_ids[name]))
            continue
        out = table if new is None else new
        temp = path.with_name(f".{path.name}.rewrite-{secrets.token_hex(4)}")
        used = write_parquet_like(out, temp, key, want_encrypted)
        fsync_file(temp)
        os.replace(temp, path)
        if used:
            key_ids.add(used)
        sha, size = file_sha256(path)
        entry.update(
            sha256=sha,
            bytes=size,
            rows=out.num_rows,
            schema=schema_record(out.schema),
            content_hash=table_content_hash(out),
        )
        changed[name] = table.num_rows - out.num_rows
    if not changed:
        return changed
    if manifest.get("storage", "full") == "full":
        manifest["content_hash"] = combine_table_hashes(
            {name: entry["content_hash"] for name, entry in files.items()}
        )
        manifest["row_counts"] = {name: entry["rows"] for name, entry in sorted(files.items())}
    elif any(changed.values()) or any(
        entry["content_hash"] != before[name] for name, entry in files.items()
    ):
        raise ValueError(
            f"{snapshot_dir.name} is a delta snapshot: change its content with rewrite_delta"
        )
    if key_ids:
        manifest["encryption"] = {"scheme": ENCRYPTION_SCHEME, "key_ids": sorted(key_ids)}
    if note_key:
        record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **(note or {})}
        record["tables"] = changed
        manifest.setdefault(note_key, []).append(record)
    _write_manifest(snapshot_dir, manifest)
    return changed


def _current(key: KeyRing | None) -> str | None:
    return None if key is None else key.current_id


def encrypt_snapshot(snapshot_dir: Path, key: KeyRing) -> int:
    """Encrypt every plaintext file of a published snapshot with the ring's current key.

    Args:
        snapshot_dir: the snapshot folder (as returned by ``publish_snapshot``).
        key: the key ring.

    Returns:
        How many files were (re-)encrypted.
    """
    done = rewrite_snapshot(snapshot_dir, lambda _n, _t: None, key, encrypt=True)
    return len(done)


def rotate_snapshot_keys(archive_dir: Path, key: KeyRing) -> dict[str, int]:
    """Re-encrypt every encrypted snapshot file not under the ring's current key.

    Run after adding a new current key (old keys listed as previous); afterwards the old
    keys can be removed from the key file.

    Args:
        archive_dir: the archive root.
        key: the ring: current = the new key, previous = keys files may still use.

    Returns:
        Snapshot id → files re-encrypted (snapshots needing nothing are left out).
    """
    out: dict[str, int] = {}
    for info in list_snapshots(Path(archive_dir)):
        manifest = read_manifest(info.path)
        if "encryption" not in manifest:
            continue
        note = {"key_id": key.current_id}
        done = rewrite_snapshot(
            info.path, lambda _n, _t: None, key, encrypt=True, note_key="key_rotations", note=note
        )
        if done:
            out[info.snapshot_id] = len(done)
    return out


def verify_snapshot_with_key(snapshot_dir: Path, key: KeyRing | None) -> list[str]:
    """Verify checksums, row counts and content hashes of a (possibly encrypted) snapshot.

    Returns:
        Problems found (empty when intact).
    """
    snapshot_dir = Path(snapshot_dir)
    manifest = read_manifest(snapshot_dir)
    if manifest.get("storage", "full") != "full":  # rebuilt on its base, both checked
        report = verify_snapshot(snapshot_dir, reader=_reader(key))
        return [f"{p.file}: {p.code} {p.detail}" for p in report.problems]
    problems: list[str] = []
    hashes: dict[str, str] = {}
    for name, entry in sorted(manifest["files"].items()):
        path = snapshot_dir / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing")
            continue
        sha, size = file_sha256(path)
        if (sha, size) != (entry["sha256"], entry["bytes"]):
            problems.append(f"{entry['file']}: checksum or size differs from the manifest")
        try:
            table = read_parquet_any(path, key)
        except DecryptionError as exc:
            problems.append(f"{entry['file']}: {exc}")
            continue
        hashes[name] = table_content_hash(table)
        if table.num_rows != entry["rows"] or hashes[name] != entry["content_hash"]:
            problems.append(f"{entry['file']}: content differs from the manifest")
    if len(hashes) == len(manifest["files"]) and combine_table_hashes(hashes) != manifest.get(
        "content_hash"
    ):
        problems.append(f"{MANIFEST_NAME}: snapshot content hash differs")
    return problems

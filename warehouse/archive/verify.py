"""Verify a published snapshot: checksums, sizes, row counts, schemas, content hash, file set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.archive._errors import ArchiveError
from warehouse.archive._hashing import (
    combine_table_hashes,
    file_sha256,
    schema_record,
    table_content_hash,
)
from warehouse.archive._layout import MANIFEST_NAME, read_manifest
from warehouse.archive.delta import ADD, DROP, FULL, apply_delta, drop_positions

TableReader = Callable[[Path], pa.Table]


def read_parquet(path: Path) -> pa.Table:
    """Default table reader: plain (unencrypted) Parquet."""
    return pq.read_table(path)


@dataclass(frozen=True)
class VerifyProblem:
    """One thing wrong with a snapshot.

    ``code`` is one of ``missing_manifest``, ``bad_manifest``, ``missing_file``, ``extra_file``,
    ``size_mismatch``, ``checksum_mismatch``, ``unreadable_file``, ``row_count_mismatch``,
    ``schema_mismatch``, ``content_hash_mismatch``; for a delta snapshot also ``missing_base``,
    ``base_mismatch`` (the base is not the one recorded), ``delta_unappliable`` and
    ``base_<code>`` for each problem of its base.
    """

    file: str
    code: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify_snapshot`; ``ok`` is True when no problem was found."""

    path: Path
    snapshot_id: str | None
    checked_files: int
    problems: list[VerifyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the snapshot is intact."""
        return not self.problems

    def summary(self) -> str:
        """One human-readable paragraph (for the CLI and error messages)."""
        name = self.snapshot_id or self.path.name
        if self.ok:
            return f"snapshot {name}: OK ({self.checked_files} files verified)"
        lines = [f"snapshot {name}: {len(self.problems)} problem(s)"]
        lines += [f"  - {p.code} {p.file}: {p.detail}" for p in self.problems]
        return "\n".join(lines)


def _check_table_file(
    path: Path,
    file_name: str,
    entry: dict[str, Any],
    problems: list[VerifyProblem],
    reader: TableReader,
    tables: dict[str, pa.Table] | None = None,
) -> str | None:
    """Check one Parquet file against its manifest entry; return its content hash if readable.

    ``tables`` (when given) receives the table read, under its file name.
    """
    sha, size = file_sha256(path)
    if size != entry.get("bytes"):
        problems.append(
            VerifyProblem(
                file_name, "size_mismatch", f"{size} bytes, manifest {entry.get('bytes')}"
            )
        )
    if sha != entry.get("sha256"):
        problems.append(
            VerifyProblem(
                file_name, "checksum_mismatch", f"sha256 {sha}, manifest {entry.get('sha256')}"
            )
        )
    try:
        table = reader(path)
    except Exception as exc:  # any decoder error means the file is damaged; reported, not hidden
        problems.append(VerifyProblem(file_name, "unreadable_file", f"{type(exc).__name__}: {exc}"))
        return None
    if table.num_rows != entry.get("rows"):
        problems.append(
            VerifyProblem(
                file_name,
                "row_count_mismatch",
                f"{table.num_rows} rows, manifest {entry.get('rows')}",
            )
        )
    if schema_record(table.schema) != entry.get("schema"):
        problems.append(
            VerifyProblem(
                file_name, "schema_mismatch", f"schema {table.schema} differs from manifest"
            )
        )
    if tables is not None:
        tables[file_name] = table
    return table_content_hash(table)


def verify_snapshot(path: Path, *, reader: TableReader | None = None) -> VerifyReport:
    """Recompute a snapshot's checksums, row counts, schemas and content hash against its manifest.

    Args:
        path: the snapshot folder (``archive/2026/Q4/2026-11-24T02-00-00_run42``).
        reader: reads one table file (default plain Parquet; pass a decrypting reader for
            snapshots encrypted by ``warehouse.security``).

    Returns:
        A :class:`VerifyReport` listing every problem (tampered, missing or extra file, …).
    """
    path = Path(path)
    try:
        manifest = read_manifest(path)
    except ArchiveError as exc:
        code = "missing_manifest" if not (path / MANIFEST_NAME).exists() else "bad_manifest"
        return VerifyReport(path, None, 0, [VerifyProblem(MANIFEST_NAME, code, str(exc))])
    problems: list[VerifyProblem] = []
    files: dict[str, dict[str, Any]] = manifest["files"]
    expected = {entry["file"] for entry in files.values()} | {MANIFEST_NAME}
    present = {p.name for p in path.iterdir()}
    for extra in sorted(present - expected):
        problems.append(VerifyProblem(extra, "extra_file", "not listed in the manifest"))
    table_hashes: dict[str, str] = {}
    read_files: dict[str, pa.Table] = {}
    checked = 0
    for table, entry in sorted(files.items()):
        file_name = entry["file"]
        file_path = path / file_name
        if not file_path.is_file():
            problems.append(VerifyProblem(file_name, "missing_file", f"table {table} is missing"))
            continue
        checked += 1
        digest = _check_table_file(
            file_path, file_name, entry, problems, reader or read_parquet, read_files
        )
        if digest is not None:
            table_hashes[table] = digest
            if digest != entry.get("content_hash"):
                problems.append(
                    VerifyProblem(
                        file_name, "content_hash_mismatch", f"table {table} content changed"
                    )
                )
    if manifest.get("storage", "full") != "full":
        checked += _verify_delta(path, manifest, read_files, problems, reader or read_parquet)
    elif len(table_hashes) == len(files) and combine_table_hashes(table_hashes) != manifest.get(
        "content_hash"
    ):
        problems.append(
            VerifyProblem(MANIFEST_NAME, "content_hash_mismatch", "snapshot content hash differs")
        )
    return VerifyReport(path, manifest.get("snapshot_id"), checked, problems)


def _verify_delta(
    path: Path,
    manifest: dict[str, Any],
    read_files: dict[str, pa.Table],
    problems: list[VerifyProblem],
    reader: TableReader,
) -> int:
    """Check a delta's base (intact, the one recorded) and rebuild every table from both.

    Returns:
        How many files of the base were checked.
    """
    from warehouse.archive.snapshots import base_path

    base = manifest.get("base") or {}
    folder = base_path(path, manifest)
    if not folder.is_dir():
        problems.append(
            VerifyProblem(MANIFEST_NAME, "missing_base", f"base {base.get('snapshot_id')} absent")
        )
        return 0
    base_report = verify_snapshot(folder, reader=reader)
    for problem in base_report.problems:
        problems.append(
            VerifyProblem(f"base/{problem.file}", f"base_{problem.code}", problem.detail)
        )
    base_manifest = read_manifest(folder) if base_report.problems == [] else None
    if base_manifest is None:
        return base_report.checked_files
    if base_manifest.get("content_hash") != base.get("content_hash"):
        problems.append(
            VerifyProblem(
                MANIFEST_NAME, "base_mismatch", "the base's content differs from the one recorded"
            )
        )
        return base_report.checked_files
    hashes: dict[str, str] = {}
    for name, entry in sorted(manifest.get("tables", {}).items()):
        files = {part: manifest["files"].get(key, {}) for part, key in entry["parts"].items()}
        parts = {part: read_files.get(f.get("file", "")) for part, f in files.items()}
        if any(p is None for p in parts.values()):
            continue  # a part already reported as missing or unreadable
        base_entry = base_manifest["files"].get(name)
        try:
            if FULL in parts:
                table = parts[FULL]
            elif base_entry is None:
                raise ValueError(f"the base has no table {name}")
            else:
                base_table = reader(folder / base_entry["file"])
                table = apply_delta(base_table, drop_positions(parts[DROP]), parts[ADD])
        except (ValueError, pa.ArrowException) as exc:
            problems.append(VerifyProblem(name, "delta_unappliable", str(exc)))
            continue
        hashes[name] = table_content_hash(table)
        if table.num_rows != entry.get("rows"):
            problems.append(
                VerifyProblem(name, "row_count_mismatch", f"{table.num_rows} rows rebuilt")
            )
        if schema_record(table.schema) != entry.get("schema"):
            problems.append(VerifyProblem(name, "schema_mismatch", "rebuilt schema differs"))
        if hashes[name] != entry.get("content_hash"):
            problems.append(
                VerifyProblem(name, "content_hash_mismatch", f"rebuilt table {name} differs")
            )
    tables = manifest.get("tables", {})
    if len(hashes) == len(tables) and combine_table_hashes(hashes) != manifest.get("content_hash"):
        problems.append(
            VerifyProblem(MANIFEST_NAME, "content_hash_mismatch", "snapshot content hash differs")
        )
    return base_report.checked_files

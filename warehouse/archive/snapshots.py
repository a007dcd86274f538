"""Publish, list and load immutable Parquet snapshots of the golden tables (归档快照)."""

from __future__ import annotations

import errno
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from warehouse.archive._digest_cache import (
    TableRows,
    read_cache,
    read_changed,
    table_rows,
    write_cache,
    write_changed,
)
from warehouse.archive._errors import ArchiveError, SnapshotVerificationError, SnapshotWriteError
from warehouse.archive._hashing import (
    KEY_COLUMN,
    combine_table_hashes,
    content_hash,
    file_sha256,
    hash_from_sorted,
    schema_record,
    table_content_hash,
    to_arrow,
)
from warehouse.archive._layout import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    check_table_name,
    clean_leftovers,
    commit_dir,
    fsync_dir,
    fsync_file,
    is_snapshot_dir_name,
    manifest_bytes,
    read_manifest,
    relative_snapshot_path,
    snapshot_id_for,
    snapshot_parent,
    table_file_name,
    temp_dir_name,
    write_file_durably,
)
from warehouse.archive._nightly import RowState, TableShape, cache_rows, nightly_delta
from warehouse.archive.delta import (
    ADD,
    DROP,
    FULL,
    PARTS,
    TableDelta,
    apply_delta,
    delta_share,
    drop_positions,
    drop_table,
)
from warehouse.archive.verify import TableReader, VerifyReport, read_parquet, verify_snapshot
from warehouse.parquet_batches import TableBatches, write_parquet

__all__ = [
    "SNAPSHOT_KINDS",
    "SnapshotInfo",
    "VerifyReport",
    "content_hash",
    "latest_snapshot",
    "list_snapshots",
    "load_snapshot",
    "publish_snapshot",
    "read_snapshot_table",
    "verify_snapshot",
]

LOG = logging.getLogger(__name__)

SNAPSHOT_KINDS = ("daily", "month_end", "year_end", "restore_backup")
_WRITERS = 2  # table files written at once
_RESERVED_KEYS = frozenset(
    {
        "format",
        "snapshot_id",
        "run_id",
        "created_at",
        "kind",
        "code_version",
        "row_counts",
        "files",
        "content_hash",
        "storage",
        "base",
        "tables",
    }
)

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

    from warehouse.archive._scoped import WarehouseTables


@dataclass(frozen=True)
class SnapshotInfo:
    """A published snapshot as listed from its manifest."""

    snapshot_id: str
    path: Path
    run_id: str
    created_at: datetime
    content_hash: str
    row_counts: dict[str, int]
    kind: str
    storage: str = "full"
    base_id: str | None = None


def _sort_key(info: SnapshotInfo) -> tuple[datetime, str]:
    moment = info.created_at
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment, info.snapshot_id


@functools.cache
def code_version() -> str:
    """Code version for manifests: ``git describe`` of this checkout, else the package version."""
    override = os.environ.get("CUSTOMER_ARCHIVE_CODE_VERSION")
    if override:
        return override
    repo = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return f"git:{done.stdout.strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        LOG.info("git describe unavailable (%s); using the package version", exc)
    try:
        return f"customer-archive=={metadata.version('customer-archive')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def _info_from_manifest(path: Path, manifest: Mapping[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=str(manifest["snapshot_id"]),
        path=path,
        run_id=str(manifest["run_id"]),
        created_at=datetime.fromisoformat(str(manifest["created_at"])),
        content_hash=str(manifest["content_hash"]),
        row_counts={str(k): int(v) for k, v in manifest["row_counts"].items()},
        kind=str(manifest.get("kind", "daily")),
        storage=str(manifest.get("storage", "full")),
        base_id=str(manifest["base"]["snapshot_id"]) if manifest.get("base") else None,
    )


def list_snapshots(archive_dir: Path) -> list[SnapshotInfo]:
    """List the complete snapshots of an archive, oldest first.

    Hidden temp folders of interrupted writes and folders without a parseable manifest are not
    listed (the latter are logged as warnings; :func:`verify_snapshot` reports them).

    Args:
        archive_dir: the archive root.

    Returns:
        Snapshots sorted by ``created_at`` (then id).
    """
    archive_dir = Path(archive_dir)
    found: list[SnapshotInfo] = []
    if not archive_dir.is_dir():
        return found
    for candidate in archive_dir.glob("[0-9][0-9][0-9][0-9]/Q[1-4]/*"):
        if not candidate.is_dir() or not is_snapshot_dir_name(candidate.name):
            continue
        try:
            manifest = read_manifest(candidate)
            found.append(_info_from_manifest(candidate, manifest))
        except (ArchiveError, KeyError, TypeError, ValueError) as exc:
            LOG.warning("not listing incomplete or damaged snapshot %s: %s", candidate, exc)
    return sorted(found, key=_sort_key)


TableWriter = Callable[[pa.Table, Path], Any]
"""Writes one table file (e.g. Parquet modular encryption); the snapshot fsyncs it afterwards.
A writer with ``takes_batches = True`` is also given ``TableBatches`` (a full snapshot read
from the warehouse a row batch at a time, :func:`takes_batches`)."""


def _plain_parquet(table: pa.Table | TableBatches, path: Path) -> None:
    write_parquet(table, path, compression="zstd")


def takes_batches(writer: TableWriter | None) -> bool:
    """Whether ``writer`` also writes a table handed over in row batches (``TableBatches``):
    the default writer does, another one when it says so (``writer.takes_batches = True``)."""
    return writer is None or bool(getattr(writer, "takes_batches", False))


def _write_table_file(
    table: pa.Table | TableBatches, path: Path, writer: TableWriter | None = None
) -> None:
    """Write one table as Parquet and fsync it (a seam for fault-injection tests)."""
    (writer or _plain_parquet)(table, path)
    fsync_file(path)


def _write_and_checksum(
    table: pa.Table | TableBatches, path: Path, writer: TableWriter | None
) -> tuple[str, int]:
    _write_table_file(table, path, writer)
    return file_sha256(path)


def _write_table_files(
    tables: Mapping[str, pa.Table],
    folder: Path,
    writer: TableWriter | None,
    file_names: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, int]]:
    """Write every table file (two at a time: Parquet encoding releases the GIL); checksums.

    The first failure cancels the files not started yet and is raised once the running ones
    end, so the caller can remove the temp folder.
    """
    names = file_names or {name: table_file_name(name) for name in tables}
    workers = max(1, min(_WRITERS, os.cpu_count() or 1, len(tables)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snapshot-write") as pool:
        futures = {
            name: pool.submit(_write_and_checksum, table, folder / names[name], writer)
            for name, table in sorted(tables.items())
        }
        try:
            return {name: future.result() for name, future in futures.items()}
        except BaseException:
            for future in futures.values():
                future.cancel()
            raise


def _write_manifest_file(manifest: Mapping[str, Any], path: Path) -> None:
    """Write the manifest, last, so its presence marks a complete folder."""
    write_file_durably(path, manifest_bytes(manifest))


def _commit_dir(temp: Path, final: Path) -> None:
    """Atomically move the finished temp folder into place (a seam for fault-injection tests)."""
    commit_dir(temp, final)


def _manifest_head(
    arrow_tables: Mapping[str, pa.Table | TableShape],
    table_hashes: Mapping[str, str],
    snapshot_id: str,
    run_id: str,
    created_at: datetime,
    kind: str,
    manifest_extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest fields every snapshot has, full or delta (the caller adds its files)."""
    manifest: dict[str, Any] = dict(manifest_extra)
    manifest.update(
        format=MANIFEST_FORMAT,
        snapshot_id=snapshot_id,
        run_id=run_id,
        created_at=created_at.isoformat(),
        kind=kind,
        code_version=code_version(),
        row_counts={name: arrow_tables[name].num_rows for name in sorted(arrow_tables)},
        content_hash=combine_table_hashes(table_hashes),
    )
    return manifest


def _build_manifest(
    arrow_tables: Mapping[str, pa.Table | TableShape],
    table_hashes: Mapping[str, str],
    file_stats: Mapping[str, tuple[str, int]],
    *,
    snapshot_id: str,
    run_id: str,
    created_at: datetime,
    kind: str,
    manifest_extra: Mapping[str, Any],
) -> dict[str, Any]:
    files = {
        name: {
            "file": table_file_name(name),
            "sha256": file_stats[name][0],
            "bytes": file_stats[name][1],
            "rows": arrow_tables[name].num_rows,
            "schema": schema_record(arrow_tables[name].schema),
            "content_hash": table_hashes[name],
        }
        for name in sorted(arrow_tables)
    }
    manifest = _manifest_head(
        arrow_tables, table_hashes, snapshot_id, run_id, created_at, kind, manifest_extra
    )
    manifest.update(files=files)
    return manifest


def part_file_name(table: str, part: str) -> str:
    """File name of one part of a delta table (``golden.customers.add.parquet``)."""
    if part not in PARTS:
        raise ValueError(f"delta part must be one of {PARTS}, got {part!r}")
    return f"{check_table_name(table)}.{part}.parquet"


def _delta_parts(deltas: Mapping[str, TableDelta]) -> dict[str, tuple[str, str, pa.Table]]:
    """File key → (table, part, part table) of every stored part of a delta snapshot."""
    parts: dict[str, tuple[str, str, pa.Table]] = {}
    for name, delta in sorted(deltas.items()):
        if delta.full is not None:
            parts[f"{name}:{FULL}"] = (name, FULL, delta.full)
            continue
        assert delta.drop is not None and delta.add is not None
        parts[f"{name}:{DROP}"] = (name, DROP, drop_table(delta.drop))
        parts[f"{name}:{ADD}"] = (name, ADD, delta.add)
    return parts


def _build_delta_manifest(
    arrow_tables: Mapping[str, pa.Table | TableShape],
    table_hashes: Mapping[str, str],
    parts: Mapping[str, tuple[str, str, pa.Table]],
    file_stats: Mapping[str, tuple[str, int]],
    base: SnapshotInfo,
    *,
    snapshot_id: str,
    run_id: str,
    created_at: datetime,
    kind: str,
    manifest_extra: Mapping[str, Any],
    part_hashes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    known = part_hashes or {}
    files = {
        key: {
            "file": part_file_name(table, part),
            "table": table,
            "part": part,
            "sha256": file_stats[key][0],
            "bytes": file_stats[key][1],
            "rows": part_table.num_rows,
            "schema": schema_record(part_table.schema),
            "content_hash": known.get(key) or table_content_hash(part_table),
        }
        for key, (table, part, part_table) in sorted(parts.items())
    }
    tables = {
        name: {
            "rows": arrow_tables[name].num_rows,
            "schema": schema_record(arrow_tables[name].schema),
            "content_hash": table_hashes[name],
            "parts": {part: key for key, (t, part, _p) in sorted(parts.items()) if t == name},
        }
        for name in sorted(arrow_tables)
    }
    manifest = _manifest_head(
        arrow_tables, table_hashes, snapshot_id, run_id, created_at, kind, manifest_extra
    )
    manifest.update(
        storage="delta",
        base={
            "snapshot_id": base.snapshot_id,
            "path": relative_snapshot_path(base.snapshot_id, base.created_at),
            "content_hash": base.content_hash,
        },
        tables=tables,
        files=files,
    )
    return manifest


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"disk full (no space left on device): {exc}"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded: {exc}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class PreparedFull:
    """A full snapshot's table files, written ahead into a hidden temp folder of this process.

    ``prepare_full_snapshot`` writes them (e.g. in the publish stage, beside its other work);
    ``publish_snapshot(..., prepared=...)`` then adds the manifest and renames the folder in
    instead of reading, hashing and writing the tables again. The folder is a temp folder of
    this process (``temp_dir_name``): ``clean_leftovers`` removes it once the process is gone.

    Attributes:
        folder: the temp folder holding one file per table.
        names: the tables, sorted.
        hashes: each table's content hash.
        shapes: each table's rows and schema.
        file_stats: each file's sha256 and size.
        cache_rows: each table's digest-cache rows (written with the snapshot), memory-mapped
            from files in ``rows_folder`` (held from the publish stage to the snapshot stage,
            they would add ≈ 50 bytes a golden row to the resident memory in between).
        rows_folder: a temp folder of this process holding those files.
    """

    folder: Path
    names: tuple[str, ...]
    hashes: dict[str, str]
    shapes: dict[str, pa.Table | TableShape]
    file_stats: dict[str, tuple[str, int]]
    cache_rows: dict[str, TableRows]
    rows_folder: Path

    def discard(self) -> None:
        """Remove the folders (the files were not used)."""
        self.cache_rows.clear()
        _remove_temp(self.folder)
        _remove_temp(self.rows_folder)


def prepare_full_snapshot(
    tables: WarehouseTables,
    archive_dir: Path,
    run_id: str,
    created_at: datetime,
    writer: TableWriter | None = None,
) -> PreparedFull:
    """Read, hash and write every table of a full snapshot of ``tables`` into a temp folder.

    The same reads, hashes, cache rows and files ``publish_snapshot`` makes for a full snapshot
    of ``tables`` (``_write_full_tables``); nothing is published. On any error the folder is
    removed and the error raised.

    Args:
        tables: the warehouse's tables (``warehouse_tables``).
        archive_dir: the archive root.
        run_id: the pipeline run id (names the temp folder).
        created_at: the time whose ``<YYYY>/<Qn>`` folder holds the temp folder.
        writer: writes one table file (default: plain zstd Parquet).
    """
    names = tuple(sorted(tables.names))
    for name in names:
        check_table_name(name)
    row_states: dict[str, RowState] = {}

    def take(name: str) -> pa.Table:
        table, state = tables.read_whole(name)
        if state is not None:
            row_states[name] = state
        return table

    def batches(name: str) -> tuple[TableBatches, list[RowState]] | None:
        return tables.read_batches(name) if tables.columns.get(name) else None

    parent = snapshot_parent(Path(archive_dir), created_at)
    snapshot_id = snapshot_id_for(created_at, run_id)
    folder = parent / temp_dir_name(snapshot_id)
    rows_folder = parent / temp_dir_name(snapshot_id)
    cache_rows_of: dict[str, TableRows] = {}

    def spill(name: str, rows: TableRows) -> TableRows:
        path = rows_folder / f"{name}.npy"
        np.save(path, rows.rows, allow_pickle=False)
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        return TableRows(rows.schema, mapped, rows.keyed, rows.guard_sum)

    parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    try:
        rows_folder.mkdir()
        hashes, shapes, stats = _write_full_tables(
            list(names), take, row_states, cache_rows_of, folder, writer,
            batches if takes_batches(writer) else None, spill,
        )  # fmt: skip
    except BaseException:
        cache_rows_of.clear()
        _remove_temp(folder)
        _remove_temp(rows_folder)
        raise
    return PreparedFull(folder, names, hashes, shapes, stats, cache_rows_of, rows_folder)


def publish_snapshot(
    tables: Mapping[str, pd.DataFrame | pa.Table] | WarehouseTables,
    archive_dir: Path,
    run_id: str,
    created_at: datetime,
    manifest_extra: Mapping[str, Any] | None = None,
    kind: str = "daily",
    skip_if_unchanged: bool = True,
    *,
    writer: TableWriter | None = None,
    base: SnapshotInfo | None = None,
    reader: TableReader | None = None,
    max_delta_share: float = 1.0,
    prepared: PreparedFull | None = None,
) -> SnapshotInfo | None:
    """Publish an immutable snapshot: Parquet per table + manifest, written aside then renamed in.

    Layout: ``archive_dir/<YYYY>/<Qn>/<YYYY-MM-DDTHH-MM-SS>_<run_id>/``. Files are written to a
    hidden temp folder beside it, fsynced, and the folder is renamed into place, so a crash or a
    full disk never leaves a partial snapshot listed. A published folder is never modified.

    Args:
        tables: table name (``"golden.customers"``) → DataFrame or Arrow table; or the
            warehouse's tables (``warehouse_tables``: each read and hashed in one scan), or
            those and the customers this run changed (``changed_state``): then a delta reads
            only those customers' rows (and whole tables only where needed).
        archive_dir: the archive root.
        run_id: the pipeline run id (letters, digits, ``_.-``).
        created_at: the snapshot time (names the folder).
        manifest_extra: more manifest keys (``source_manifest``, ``expectation_results`` …).
        kind: ``daily``, ``month_end``, ``year_end`` or ``restore_backup``.
        skip_if_unchanged: return ``None`` and write nothing when the content hash equals the
            latest snapshot's.
        writer: writes one table file inside the temp folder (default: plain zstd Parquet);
            an encrypting writer keeps encryption inside the atomic publish.
        base: write a delta snapshot on this full snapshot (rows dropped and added per table,
            see :mod:`warehouse.archive.delta`); None writes a full snapshot.
        reader: reads the base's table files (a decrypting one for encrypted snapshots).
        max_delta_share: with ``base``, write a full snapshot instead when the delta would store
            more than this share of the represented rows.
        prepared: the table files of a full snapshot of these same tables, written ahead
            (``prepare_full_snapshot``): used instead of reading and writing the tables when
            the snapshot is a full one of the same table names (``base`` None); else removed.
            The caller vouches that the tables did not change since they were prepared.

    Returns:
        The published snapshot, or ``None`` when skipped as unchanged.

    Raises:
        ValueError: bad kind, run id, table name, or a ``manifest_extra`` key that is reserved.
        FileExistsError: a snapshot with the same id is already published.
        SnapshotWriteError: writing failed (disk full, I/O error); the archive is unchanged.
    """
    if kind not in SNAPSHOT_KINDS:
        raise ValueError(f"kind must be one of {SNAPSHOT_KINDS}, got {kind!r}")
    if not tables:
        raise ValueError("publish_snapshot needs at least one table")
    extra = dict(manifest_extra or {})
    clash = sorted(_RESERVED_KEYS & extra.keys())
    if clash:
        raise ValueError(f"manifest_extra may not set reserved manifest keys: {clash}")
    archive_dir = Path(archive_dir)
    snapshot_id = snapshot_id_for(created_at, run_id)
    from warehouse.archive._scoped import ChangedState

    source = None if isinstance(tables, Mapping) else tables
    state = source if isinstance(source, ChangedState) else None
    arrow_tables: dict[str, pa.Table] = {}
    if isinstance(tables, Mapping):
        arrow_tables = {check_table_name(name): to_arrow(t) for name, t in tables.items()}
    names = sorted(source.names if source is not None else arrow_tables)
    for name in names:
        check_table_name(name)
    if prepared is not None and (base is not None or list(prepared.names) != names):
        LOG.info("snapshot files prepared ahead not used (a delta, or other tables)")
        prepared.discard()
        prepared = None
    row_states: dict[str, RowState] = {}  # of the tables read from the warehouse

    def whole(name: str) -> pa.Table:
        if name not in arrow_tables:
            assert source is not None
            arrow_tables[name], read_state = source.read_whole(name)
            if read_state is not None:
                row_states[name] = read_state
        return arrow_tables[name]

    parts, table_hashes, nightly = None, None, None
    shapes: dict[str, pa.Table | TableShape] = {}
    if base is not None:
        if base.storage != "full":
            raise ValueError(f"the base of a delta must be a full snapshot, not {base.storage}")
        cached = read_cache(archive_dir, base.snapshot_id, base.content_hash)
        if not cached:  # an older cache format, or none: derive it from the base once
            cached = _cache_from_base(archive_dir, base, reader)
        nightly = nightly_delta(
            cached,
            names,
            whole,
            state,
            read_changed(archive_dir, base.snapshot_id) if state is not None else None,
            row_states,
        )
        table_hashes, shapes = nightly.hashes, dict(nightly.shapes)
        share = delta_share(nightly.deltas, shapes)
        if share > max_delta_share:
            LOG.info("changes are %.0f%% of the rows: writing a full snapshot", 100 * share)
        else:
            parts = _delta_parts(nightly.deltas)
    cache_rows_of: dict[str, TableRows] = {}
    parent = snapshot_parent(archive_dir, created_at)
    final = parent / snapshot_id
    temp = parent / temp_dir_name(snapshot_id)
    if parts is None and prepared is not None:
        # a full snapshot whose files were written ahead: only the manifest is left
        temp = prepared.folder
        table_hashes, shapes = prepared.hashes, dict(prepared.shapes)
        file_stats, cache_rows_of = prepared.file_stats, prepared.cache_rows
    elif parts is None:
        # a full snapshot: each table is read, hashed and written one at a time (its rows kept
        # for the deltas that will build on it), so memory holds one table being hashed and one
        # being written, not all of them; unchanged content removes what was written
        def take(name: str) -> pa.Table:
            table = whole(name)
            arrow_tables.pop(name, None)
            return table

        def batches(name: str) -> tuple[TableBatches, list[RowState]] | None:
            # a table not read yet, from the warehouse: read, hashed and written a row batch
            # at a time (memory holds one batch of it, not the table)
            if source is None or name in arrow_tables or not source.columns.get(name):
                return None
            return source.read_batches(name)

        clean_leftovers(archive_dir)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            temp.mkdir()
            table_hashes, shapes, file_stats = _write_full_tables(
                names, take, row_states, cache_rows_of, temp, writer,
                batches if takes_batches(writer) else None,
            )  # fmt: skip
        except FileExistsError:
            _remove_temp(temp)
            raise
        except OSError as exc:
            cleanup = _remove_temp(temp)
            raise SnapshotWriteError(
                f"could not publish snapshot {snapshot_id} to {parent}: "
                f"{_describe_os_error(exc)}; nothing was published, earlier snapshots are "
                f"untouched{cleanup}"
            ) from exc
        except BaseException:
            _remove_temp(temp)
            raise
    assert table_hashes is not None
    snapshot_hash = combine_table_hashes(table_hashes)
    existing = list_snapshots(archive_dir)
    if skip_if_unchanged and existing and existing[-1].content_hash == snapshot_hash:
        _remove_temp(temp, prepared)
        LOG.info("content unchanged since snapshot %s; nothing published", existing[-1].snapshot_id)
        return None
    if final.exists():
        _remove_temp(temp, prepared)
        raise FileExistsError(errno.EEXIST, "snapshot already published", str(final))
    if parts is not None:
        clean_leftovers(archive_dir)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if parts is not None and base is not None:
            temp.mkdir()
            file_stats = _write_table_files(
                {key: part for key, (_t, _p, part) in parts.items()},
                temp,
                writer,
                {key: part_file_name(t, p) for key, (t, p, _part) in parts.items()},
            )
            manifest = _build_delta_manifest(
                shapes,
                table_hashes,
                parts,
                file_stats,
                base,
                snapshot_id=snapshot_id,
                run_id=run_id,
                created_at=created_at,
                kind=kind,
                manifest_extra=extra,
                part_hashes={f"{t}:{ADD}": h for t, h in nightly.added_hashes.items()}
                if nightly is not None
                else None,
            )
        else:
            manifest = _build_manifest(
                shapes,
                table_hashes,
                file_stats,
                snapshot_id=snapshot_id,
                run_id=run_id,
                created_at=created_at,
                kind=kind,
                manifest_extra=extra,
            )
        _write_manifest_file(manifest, temp / MANIFEST_NAME)
        fsync_dir(temp)
        _commit_dir(temp, final)
    except FileExistsError:
        _remove_temp(temp, prepared)
        raise
    except OSError as exc:
        cleanup = _remove_temp(temp, prepared)
        raise SnapshotWriteError(
            f"could not publish snapshot {snapshot_id} to {parent}: {_describe_os_error(exc)}; "
            f"nothing was published, earlier snapshots are untouched{cleanup}"
        ) from exc
    except BaseException:
        _remove_temp(temp, prepared)
        raise
    if parts is None:
        write_cache(archive_dir, snapshot_id, manifest["content_hash"], cache_rows_of)
        if prepared is not None:
            prepared.discard()  # its folder is the snapshot now: only its rows' files go
    elif nightly is not None and state is not None:
        write_changed(archive_dir, nightly.changed_keys)
    LOG.info("published snapshot %s (%s)", snapshot_id, kind)
    return _info_from_manifest(final, manifest)


def _write_full_tables(
    names: list[str],
    whole: Callable[[str], pa.Table],
    row_states: Mapping[str, RowState],
    cache_rows_of: dict[str, TableRows],
    temp: Path,
    writer: TableWriter | None,
    batches: Callable[[str], tuple[TableBatches, list[RowState]] | None] | None = None,
    spill: Callable[[str, TableRows], TableRows] | None = None,
) -> tuple[dict[str, str], dict[str, pa.Table | TableShape], dict[str, tuple[str, int]]]:
    """Every table of a full snapshot: read, hashed, its cache rows kept, written to ``temp``.

    ``spill`` (table, its cache rows) returns what to keep instead of them once the table is
    hashed (e.g. the same rows in a file, memory-mapped).

    A table ``batches`` hands over in row batches is read, hashed and written a batch at a
    time (the batches' row states joined afterwards: the same hash and cache rows). Any other
    table's file is written (in a thread: Parquet encoding releases the GIL) while the next
    is read and hashed; a table is let go once written, so at most two are held.

    Returns:
        Each table's content hash, its shape (rows and schema) and its file's checksum and size.
    """
    hashes: dict[str, str] = {}
    shapes: dict[str, pa.Table | TableShape] = {}
    stats: dict[str, tuple[str, int]] = {}
    pending: tuple[str, Any] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-write") as pool:
        try:
            for name in names:
                streamed = batches(name) if batches is not None else None
                if streamed is not None:
                    if pending is not None:  # the connection reads one table at a time
                        stats[pending[0]] = pending[1].result()
                        pending = None
                    parts, states = streamed
                    stats[name] = _write_and_checksum(parts, temp / table_file_name(name), writer)
                    state = _joined_states(states, KEY_COLUMN in parts.schema.names)
                    cache_rows_of[name] = table_rows(schema_record(parts.schema), *state)
                    hashes[name] = hash_from_sorted(parts.schema, cache_rows_of[name].rows["d"])
                    shapes[name] = TableShape(len(state[0]), parts.schema)
                    if spill is not None:
                        cache_rows_of[name] = spill(name, cache_rows_of[name])
                    continue
                table = whole(name)
                if not table.column_names:
                    hashes[name] = table_content_hash(table)
                else:
                    known = row_states.get(name)
                    cache_rows_of[name] = (
                        cache_rows(table)
                        if known is None
                        else table_rows(schema_record(table.schema), *known)
                    )
                    hashes[name] = hash_from_sorted(table.schema, cache_rows_of[name].rows["d"])
                    if spill is not None:
                        cache_rows_of[name] = spill(name, cache_rows_of[name])
                shapes[name] = TableShape(table.num_rows, table.schema)
                if pending is not None:
                    stats[pending[0]] = pending[1].result()
                future = pool.submit(
                    _write_and_checksum, table, temp / table_file_name(name), writer
                )
                pending = (name, future)
                del table
            if pending is not None:
                stats[pending[0]] = pending[1].result()
        except BaseException:
            if pending is not None:
                pending[1].cancel()
            raise
    return hashes, shapes, stats


def _joined_states(states: list[RowState], keyed: bool) -> RowState:
    """The row state of a table from its batches' states (in row order)."""
    if not states:
        keys = np.empty(0, dtype=np.uint32) if keyed else None
        return np.empty(0, dtype="S32"), np.empty(0, dtype=np.uint64), keys
    digests = np.concatenate([d for d, _g, _k in states])
    guards = np.concatenate([g for _d, g, _k in states])
    keys_of = [k for _d, _g, k in states]
    joined = None if any(k is None for k in keys_of) else np.concatenate(keys_of)  # type: ignore[arg-type]
    return digests, guards, joined


def _cache_from_base(
    archive_dir: Path, base: SnapshotInfo, reader: TableReader | None
) -> dict[str, TableRows]:
    """The base's cache rows, read from its files; kept when they give its content hash."""
    base_tables = load_snapshot(base.path, verify=False, reader=reader)
    cached = {name: cache_rows(t) for name, t in base_tables.items() if t.column_names}
    hashes = {
        name: hash_from_sorted(t.schema, cached[name].rows["d"])
        if name in cached
        else table_content_hash(t)
        for name, t in base_tables.items()
    }
    if combine_table_hashes(hashes) == base.content_hash:
        write_cache(archive_dir, base.snapshot_id, base.content_hash, cached)
    else:
        LOG.warning("base %s does not hash to its manifest's content hash", base.snapshot_id)
    return cached


def _remove_temp(temp: Path, prepared: PreparedFull | None = None) -> str:
    """Remove a failed write's temp folder (and the rows' files of ``prepared``); return a
    note for the error message if that fails."""
    if prepared is not None:
        prepared.cache_rows.clear()
        _remove_temp(prepared.rows_folder)
    if not temp.exists():
        return ""
    try:
        shutil.rmtree(temp)
    except OSError as exc:
        LOG.error("could not remove temp folder %s: %s", temp, exc)
        return f" (temp folder {temp} left behind: {exc}; it is ignored and removed later)"
    return ""


def load_snapshot(
    path: Path, verify: bool = True, *, reader: TableReader | None = None
) -> dict[str, pa.Table]:
    """Load every table of a snapshot (for restore), verifying it first.

    Args:
        path: the snapshot folder.
        verify: verify checksums, counts and schemas first (default).
        reader: reads one table file (default plain Parquet; a decrypting one for encrypted
            snapshots).

    Returns:
        Table name → Arrow table.

    Raises:
        SnapshotVerificationError: the snapshot fails verification.
    """
    path = Path(path)
    if verify:
        report = verify_snapshot(path, reader=reader)
        if not report.ok:
            raise SnapshotVerificationError(f"refusing to load: {report.summary()}")
    return _load_tables(path, read_manifest(path), reader or read_parquet)


def base_path(path: Path, manifest: Mapping[str, Any]) -> Path:
    """Folder of a delta snapshot's base (same archive root: ``<root>/<YYYY>/<Qn>/<id>``)."""
    return Path(path).parents[2] / str(manifest["base"]["path"])


def _load_tables(
    path: Path, manifest: Mapping[str, Any], read: TableReader, only: str | None = None
) -> dict[str, pa.Table]:
    """Every table (or ``only`` that one) of a full or delta snapshot, without verifying."""
    if manifest.get("storage", "full") == "full":
        return {
            name: read(path / entry["file"])
            for name, entry in manifest["files"].items()
            if only is None or name == only
        }
    base_folder = base_path(path, manifest)
    base_manifest = read_manifest(base_folder) if base_folder.is_dir() else None
    if base_manifest is None:
        raise ArchiveError(f"delta snapshot {path.name}: its base {base_folder} is missing")
    out: dict[str, pa.Table] = {}
    for name, table in manifest["tables"].items():
        if only is not None and name != only:
            continue
        parts = {
            part: read(path / manifest["files"][key]["file"])
            for part, key in table["parts"].items()
        }
        if FULL in parts:
            out[name] = parts[FULL]
            continue
        base_entry = base_manifest["files"].get(name)
        if base_entry is None:
            raise ArchiveError(f"delta snapshot {path.name}: its base has no table {name}")
        out[name] = apply_delta(
            read(base_folder / base_entry["file"]), drop_positions(parts[DROP]), parts[ADD]
        )
    return out


def read_snapshot_table(
    path: Path, table: str, *, reader: TableReader | None = None
) -> pa.Table | None:
    """One table of a full or delta snapshot (rebuilt from the base for a delta), or None."""
    path = Path(path)
    return _load_tables(path, read_manifest(path), reader or read_parquet, only=table).get(table)


def latest_snapshot(archive_dir: Path) -> SnapshotInfo | None:
    """The most recent complete snapshot, or ``None`` for an empty archive."""
    snapshots = list_snapshots(archive_dir)
    return snapshots[-1] if snapshots else None

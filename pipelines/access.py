"""One place that opens the warehouse and the archive with the configured keys, and audits.

Every command and stage goes through here, so encryption, the analyst mart and the audit
trail are applied the same way whether a run starts from the CLI or from Dagster.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from warehouse.archive import RunLock
from warehouse.db import database_cursor

# submodules, not the package: the mart's masking (pandas) loads only when a mart is written
from warehouse.security.audit import AuditLog
from warehouse.security.encryption import (
    encrypt_parquet,
    open_encrypted_warehouse,
    read_parquet_any,
)
from warehouse.security.keys import (
    KEY_ENV,
    KEY_FILE_ENV,
    KeyMaterialError,
    KeyRing,
    generate_key_file,
    load_keyring,
)
from warehouse.security.snapshots import ENCRYPTION_SCHEME

from .settings import ArchiveConfig

if TYPE_CHECKING:
    from warehouse.security.mart_delta import MartPublish

log = logging.getLogger("customer_archive")


def keyring(cfg: ArchiveConfig, create: bool = False) -> KeyRing | None:
    """The master key ring: ``$CUSTOMER_ARCHIVE_KEY``, else the configured key file.

    Args:
        cfg: the project configuration.
        create: generate the key file (0600) when absent and ``security.generate_key`` allows.

    Returns:
        The ring, or None when nothing is encrypted and no key exists.

    Raises:
        KeyMaterialError: encryption is configured but no key can be found.
    """
    sec = cfg.security
    if os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV):
        return load_keyring()
    path = cfg.resolve(sec.key_file)
    if path.exists():
        return load_keyring(path)
    if create and sec.generate_key:
        path.parent.mkdir(parents=True, exist_ok=True)
        ring = generate_key_file(path)
        log.warning("generated a new master key in %s (0600); back it up off-site", path)
        return ring
    if sec.encrypt_warehouse or sec.encrypt_snapshots or sec.analyst_mart_enabled:
        raise KeyMaterialError(
            f"no key: set ${KEY_ENV}, ${KEY_FILE_ENV}, or create {path} "
            "(the first `customer-archive run` generates it when security.generate_key is true)"
        )
    return None


_VACUUM_DEFERRED: dict[Path, bool] = {}
"""Per warehouse file, whether this process's run defers the checkpoint vacuum (`run_warehouse`)
for every read-write open until the run ends (`run_vacuum_scope`)."""


def open_warehouse(
    cfg: ArchiveConfig, read_only: bool = False, create_key: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, encrypted (DuckDB database encryption) when configured.

    While this process's run defers the checkpoint vacuum (`run_warehouse`), a read-write
    connection opened here defers it too: the first checkpoint that vacuums does all the
    merging deferred so far, whatever it wrote itself (the run's audit anchor would).
    """
    con = _open_warehouse(cfg, read_only, create_key)
    if not read_only and _VACUUM_DEFERRED.get(cfg.resolve(cfg.warehouse)):
        con.execute("SET max_vacuum_tasks = 0")  # warehouse.compaction.defer_vacuum
    return con


def _open_warehouse(
    cfg: ArchiveConfig, read_only: bool = False, create_key: bool = False
) -> duckdb.DuckDBPyConnection:
    path = cfg.resolve(cfg.warehouse)
    if not cfg.security.encrypt_warehouse:
        from warehouse.db import connect  # (warehouse.db loads pandas: only when needed)

        return connect(
            path,
            read_only=read_only,
            memory_limit=cfg.duckdb.resolved_memory_limit(),
            temp_directory=cfg.duckdb.temp_directory,
            threads=duckdb_threads(cfg),
            release_memory=cfg.duckdb.release_memory,
        )
    ring = keyring(cfg, create=create_key)
    assert ring is not None  # keyring() raises when encryption is on and no key exists
    con = open_encrypted_warehouse(
        path, ring, read_only=read_only, allow_unsafe_crypto=cfg.security.allow_unsafe_duckdb_crypto
    )
    memory_limit = cfg.duckdb.resolved_memory_limit()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    # spill beside the warehouse, as DuckDB does for an unencrypted file, not into the working
    # folder's `.tmp` (the default of the in-memory database it is attached to): another
    # encrypted database opened in this process (the analyst mart) refuses a folder that
    # holds this one's temporary files
    con.execute(f"SET temp_directory = '{cfg.duckdb.temp_directory or f'{path}.tmp'}'")
    con.execute(f"SET threads = {duckdb_threads(cfg)}")
    if cfg.duckdb.release_memory:
        con.execute("SET allocator_background_threads = true")
    return con


@dataclass
class RunWarehouse:
    """The warehouse database one in-process run keeps open from its first step to its last.

    Every stage used to open the warehouse itself, so each started with an empty DuckDB
    buffer pool and decrypted every block it read again (DuckDB's mbedtls module: ≈ 110 MB/s;
    BENCHMARKS.md, "Nightly floor"). A step now gets its own connection to this one database
    (:meth:`step`: a cursor, i.e. its own transactions and temporary tables, closed after the
    step) and finds the blocks the steps before it read or wrote still decrypted.

    Attributes:
        con: the connection that holds the database open (never handed to a step).
        memory_limit: DuckDB's ``memory_limit`` of the run (restored after each trim).
        keep_bytes: how much of the buffer pool a step leaves to the next
            (``duckdb.stage_cache``); the least recently used blocks beyond it are evicted.
        reopen: opens the warehouse again (:meth:`trim` to nothing closes the database).
    """

    con: duckdb.DuckDBPyConnection
    memory_limit: str | None
    keep_bytes: int
    reopen: Callable[[], duckdb.DuckDBPyConnection]

    def step(self) -> duckdb.DuckDBPyConnection:
        """A connection for one step: the run's database, the warehouse selected."""
        return database_cursor(self.con)

    def buffered_bytes(self) -> int:
        """Bytes DuckDB's buffer pool holds now (cached blocks, spilled and in-flight data)."""
        sql = "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()"
        (used,) = self.con.execute(sql).fetchone() or (0,)
        return int(used)

    def trim(self, keep: int | None = None) -> None:
        """Evict the least recently used blocks beyond ``keep`` bytes (default ``keep_bytes``).

        DuckDB evicts down to a lowered ``memory_limit`` at once (least recently used first,
        unpinned blocks only: between steps nothing is pinned); the run's limit is then set
        back. So a stage's peak never carries more than ``keep_bytes`` of an earlier stage's
        blocks. ``keep`` 0 closes the database and opens it again (nothing to evict, nothing
        written to temporary files).
        """
        keep = self.keep_bytes if keep is None else keep
        held = self.buffered_bytes()
        log.debug("DuckDB buffer pool between steps: %.0f MB", held / 1e6)
        if held <= keep:
            return
        if not keep:  # nothing kept: the database closed and opened again, as per step before
            self.con.close()
            self.con = self.reopen()
            return
        try:
            self.con.execute(f"SET memory_limit = '{max(keep // 1024, 1)}KiB'")
        except duckdb.OutOfMemoryException as exc:  # what is left cannot be evicted now
            log.warning("DuckDB buffer pool not trimmed between steps: %s", exc)
        finally:
            if self.memory_limit:
                self.con.execute(f"SET memory_limit = '{self.memory_limit}'")
            else:
                self.con.execute("RESET memory_limit")


_RUN_WAREHOUSES: dict[Path, RunWarehouse] = {}
"""The warehouse held open by a run in this process, by database file (see `run_warehouse`)."""


@contextmanager
def run_warehouse(
    cfg: ArchiveConfig, run_date: date | None = None
) -> Iterator[RunWarehouse | None]:
    """Hold the warehouse open for an in-process run's steps (a nightly: it exists already).

    A first run (no warehouse file yet) and ``duckdb.stage_cache: 0`` keep the old way: every
    step opens and closes the warehouse itself. The caller holds the run lock.

    With `run_date`, the run's checkpoints (DuckDB's automatic ones, the cold step's reopen,
    the close at the end) vacuum only when a compaction is due (``duckdb.compact_every_days``;
    its default 0: always; `warehouse.compaction`); a run that compacted and ended without an
    error records it.
    """
    from warehouse.compaction import compaction_due, defer_vacuum, record_compaction

    path = cfg.resolve(cfg.warehouse)
    keep = int(cfg.duckdb.stage_cache)
    if not keep or not path.exists() or path in _RUN_WAREHOUSES:
        yield None
        return
    open_held = partial(open_warehouse, cfg, create_key=True)  # bound now: the held database's
    con = open_held()
    compact = run_date is None or compaction_due(con, run_date, cfg.duckdb.compact_every_days)
    owner = path not in _VACUUM_DEFERRED  # else `run_vacuum_scope` ends the deferral
    if not compact:
        # a setting of the database, DuckDB's default on each open: `open_warehouse` sets it
        # on every read-write open of this process until the run ends (the cold step's reopen,
        # the audit anchor after the run)
        _VACUUM_DEFERRED[path] = True
        defer_vacuum(con)
        log.info(
            "warehouse  checkpoints without vacuum this run (compacted within the last %d "
            "days: duckdb.compact_every_days)",
            cfg.duckdb.compact_every_days,
        )
    held = RunWarehouse(con, cfg.duckdb.resolved_memory_limit(), keep, open_held)
    _RUN_WAREHOUSES[path] = held
    try:
        yield held
        if compact and run_date is not None:
            record_compaction(held.con, run_date)  # the close below vacuums
    finally:
        del _RUN_WAREHOUSES[path]
        held.con.close()
        if owner:
            _VACUUM_DEFERRED.pop(path, None)


@contextmanager
def run_vacuum_scope(cfg: ArchiveConfig) -> Iterator[None]:
    """Keep a deferral of the checkpoint vacuum that `run_warehouse` decides inside this block
    for every read-write open of the warehouse until the block ends (a run: its steps, then
    the summary's reads and the audit anchor)."""
    path = cfg.resolve(cfg.warehouse)
    if path in _VACUUM_DEFERRED:  # an enclosing scope owns it
        yield
        return
    _VACUUM_DEFERRED[path] = False
    try:
        yield
    finally:
        _VACUUM_DEFERRED.pop(path, None)


def end_stage_cache(cfg: ArchiveConfig) -> None:
    """Keep nothing between the rest of this run's steps (a stage rebuilt its tables whole).

    A rebuild (a first clean, new match settings, a new code version) makes the stages after
    it full-size too: their peaks are a full run's, and must not carry an earlier stage's
    blocks. No-op when no warehouse is held.
    """
    held = _RUN_WAREHOUSES.get(cfg.resolve(cfg.warehouse))
    if held is not None:
        held.keep_bytes = 0


@contextmanager
def step_warehouse(
    cfg: ArchiveConfig,
    create_key: bool = False,
    trim: bool = False,
    cold: bool = False,
    read_only: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one step: to the run's database when one is held (`run_warehouse`;
    DuckDB refuses a second open of the same file), else to a warehouse opened and closed here.

    Args:
        cfg: the project configuration.
        create_key: see :func:`keyring` (only when the warehouse is opened here).
        read_only: the step only reads: a warehouse opened here is opened read-only, so steps
            of a multiprocess run can read it side by side (shard steps). A held database
            stays the run's read-write one.
        trim: at the end of a step: trim the held buffer pool to ``duckdb.stage_cache``.
        cold: start with the held buffer pool emptied, as with a connection of its own (a
            step whose peak is the run's and that reads little of what the steps before read).
    """
    held = _RUN_WAREHOUSES.get(cfg.resolve(cfg.warehouse))
    if held is not None and cold:
        held.trim(0)
    if held is None:
        con = open_warehouse(cfg, read_only=read_only, create_key=create_key)
        try:
            yield con
        finally:
            con.close()
        return
    step = held.step()
    try:
        yield step
    finally:
        step.close()
        if trim:
            held.trim()


def duckdb_threads(cfg: ArchiveConfig) -> int:
    """DuckDB's threads: ``duckdb.threads`` when set, else ``scale.workers`` (default: cores)."""
    return int(cfg.duckdb.threads or cfg.scale.resolved_workers())


def snapshot_writer(cfg: ArchiveConfig) -> Callable[[pa.Table, Path], Any] | None:
    """The table writer for snapshots: Parquet modular encryption when configured."""
    if not cfg.security.encrypt_snapshots:
        return None
    ring = keyring(cfg, create=True)
    assert ring is not None

    def write(table: Any, path: Path) -> str:
        return encrypt_parquet(table, path, ring)

    write.takes_batches = True  # type: ignore[attr-defined]  # a full snapshot a batch at a time
    return write


def snapshot_encryption_note(cfg: ArchiveConfig) -> dict[str, Any]:
    """The manifest's ``encryption`` entry for snapshots written by :func:`snapshot_writer`."""
    if not cfg.security.encrypt_snapshots:
        return {}
    ring = keyring(cfg, create=True)
    assert ring is not None
    return {"encryption": {"scheme": ENCRYPTION_SCHEME, "key_ids": [ring.current_id]}}


def snapshot_reader(cfg: ArchiveConfig) -> Callable[[Path], pa.Table] | None:
    """The table reader for snapshots (decrypts encrypted files; plain ones read as they are)."""
    ring = keyring(cfg) if cfg.security.encrypt_snapshots else None
    if ring is None:
        return None
    return lambda path: read_parquet_any(path, ring)


def publish_analyst_mart(
    cfg: ArchiveConfig, golden: dict[str, Any], ring: KeyRing | None = None
) -> dict[str, Path]:
    """Rebuild the masked analyst mart (its own encrypted DuckDB file and Parquet export).

    ``golden`` maps ``golden.<table>`` to Arrow tables (or DataFrames); masking runs on Arrow.
    """
    if not cfg.security.analyst_mart_enabled:
        return {}
    from warehouse.security.mart import (
        build_analyst_mart_arrow,
        pseudonym_secret,
        write_analyst_mart,
    )

    ring = ring or keyring(cfg, create=True)
    assert ring is not None
    mart = build_analyst_mart_arrow(golden, pseudonym_secret(ring))
    return write_analyst_mart(
        mart,
        cfg.resolve(cfg.security.analyst_mart),
        cfg.resolve(cfg.security.analyst_mart_parquet),
        ring,
        allow_unsafe_crypto=cfg.security.allow_unsafe_duckdb_crypto,
    )


def update_analyst_mart(
    cfg: ArchiveConfig,
    con: duckdb.DuckDBPyConnection,
    changed: Mapping[str, str] | None,
    states: tuple[str | None, str | None],
    run_date: date,
) -> MartPublish | None:
    """After a publish: replace the touched customers' mart rows, or rebuild the mart whole.

    ``changed`` and ``states`` are the swap's (``swap_in_golden``, ``published_state``); see
    ``warehouse.security.mart_delta``. None when the analyst mart is turned off.
    """
    if not cfg.security.analyst_mart_enabled:
        return None
    from warehouse.dormant import dormant_ids
    from warehouse.naming import EXPORTED
    from warehouse.security.mart_delta import publish_mart

    ring = keyring(cfg, create=True)
    assert ring is not None
    return publish_mart(
        con,
        tables=[f"golden.{n}" for n in EXPORTED],
        hidden=dormant_ids(con),
        changed=changed,
        states=states,
        duckdb_path=cfg.resolve(cfg.security.analyst_mart),
        parquet_dir=cfg.resolve(cfg.security.analyst_mart_parquet),
        key=ring,
        run_date=run_date,
        full_every_days=cfg.export_full_every_days,
        allow_unsafe_crypto=cfg.security.allow_unsafe_duckdb_crypto,
    )


def actor() -> str:
    """Who is acting: ``$CUSTOMER_ARCHIVE_ACTOR`` or the OS user."""
    return os.environ.get("CUSTOMER_ARCHIVE_ACTOR") or getpass.getuser()


def audit(
    cfg: ArchiveConfig,
    action: str,
    target: str,
    customers: list[str] | None = None,
    result: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the hash-chained audit log and anchor the new head in the warehouse.

    The query text of ``query`` entries is stored redacted (no literals). The head
    ``(seq, hash)`` goes to ``security.audit_head`` so a cut-off or rewritten log is detected
    (``audit-log verify``); when the warehouse cannot be opened for writing right now (another
    process holds it, or no master key on this machine) a warning says so and the next
    anchored entry covers this one.
    """
    path = cfg.resolve(cfg.security.audit_log)
    path.parent.mkdir(parents=True, exist_ok=True)
    log_ = AuditLog(path)
    log_.append(actor(), action, target, customers or [], result, details or {})
    anchor_audit_head(cfg, log_.head())


def anchor_audit_head(cfg: ArchiveConfig, head: tuple[int, str]) -> bool:
    """Record the audit log's head in the warehouse (``security.audit_head``); False if not now."""
    from warehouse.security.audit_anchor import record_audit_head

    if not cfg.resolve(cfg.warehouse).exists():
        return False
    try:
        with step_warehouse(cfg) as con:
            record_audit_head(con, head)
    except (duckdb.Error, KeyMaterialError, OSError) as exc:
        log.warning("audit head %s not anchored in the warehouse now (%s)", head[0], exc)
        return False
    return True


def run_lock_path(cfg: ArchiveConfig) -> Path:
    """The run lock's holder record beside the warehouse (``<warehouse>.lock``)."""
    return cfg.resolve(cfg.warehouse).with_suffix(".lock")


@contextmanager
def run_lock(cfg: ArchiveConfig, run_id: str | None = None) -> Iterator[None]:
    """Hold the warehouse's run lock, so pipeline runs and CLI writers exclude each other.

    Raises:
        warehouse.archive.RunLockedError: another run or writer holds the lock.
    """
    path = run_lock_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with RunLock(path, run_id=run_id):
        yield

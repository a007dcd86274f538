"""The publish and snapshot stages: swap the staged golden state in, then archive it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

from dedupe.link import return_free_memory
from expectations import blocking_failures
from warehouse import create_views
from warehouse.archive import (
    PreparedFull,
    TableWriter,
    apply_retention,
    changed_state,
    copy_offsite,
    delta_base,
    due_kind,
    list_snapshots,
    prepare_full_snapshot,
    publish_snapshot,
    warehouse_tables,
)
from warehouse.db import database_cursor
from warehouse.dormant import reactivate_resumed
from warehouse.export_changes import publish_exports
from warehouse.golden_delta import published_state
from warehouse.naming import EXPORTED
from warehouse.ops import run_deliveries
from warehouse.publish import inserted_from, swap_in_golden
from warehouse.security import AuditLog
from warehouse.security.audit_anchor import manifest_audit_head

from ..access import (
    audit,
    snapshot_encryption_note,
    snapshot_reader,
    snapshot_writer,
    update_analyst_mart,
)
from ..faults import crash_point
from .context import PublishBlocked, RunContext, StageResult, ensure_dir
from .quality import check_outcomes

log = logging.getLogger("customer_archive")

__all__ = ["PublishStats", "SnapshotStats", "beside", "snapshot_stage", "swap_stage"]


@dataclass(kw_only=True)
class PublishStats(StageResult):
    """What publishing wrote: Parquet exports (full, or change files) and the analyst mart.

    ``mart`` is ``full`` (rebuilt whole), ``delta`` (the rows of ``mart_customers`` touched
    customers replaced) or ``off``.
    """

    exported_files: int
    analyst_mart_tables: int
    export: str = "full"
    mart: str = "full"
    mart_customers: int | None = None

    _OPTIONAL = ("mart_customers",)


@dataclass(kw_only=True)
class SnapshotStats(StageResult):
    """The snapshot written (None when the golden content did not change) and retention."""

    kind: str
    storage: str | None = None
    snapshot: str | None = None
    snapshot_id: str | None = None
    offsite: str | None = None
    snapshots_deleted: int = 0
    report: str | None = None

    _OPTIONAL = ("snapshot_id", "offsite", "report", "storage")


def swap_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> PublishStats:
    """Swap the staged golden state into ``golden.*`` and export it as Parquet.

    Refuses (``PublishBlocked``) when the run's expectations have not run or a critical one
    failed, so a bad night never reaches analysts or the archive.
    """
    outcomes = check_outcomes(con, ctx.run_id)
    if not any(o.layer == "golden" for o in outcomes):
        raise PublishBlocked(f"run {ctx.run_id}: quality checks have not run; not publishing")
    failed = blocking_failures(outcomes)
    if failed:
        names = ", ".join(f"{o.layer} {o.name}" for o in failed)
        raise PublishBlocked(f"run {ctx.run_id}: critical expectations failed: {names}")
    return_free_memory()  # what the stages before freed: back to the system, not stacked on
    before = published_state(con)
    changed = swap_in_golden(con, ctx.run_id, ctx.run_date)
    crash_point("publish:swapped")
    create_views(con)
    cfg = ctx.config
    # 休眠档案: business resumed → back to the active archive (audited); the rest stay hidden
    reactivated = reactivate_resumed(con, ctx.run_date, actor=f"run {ctx.run_id}")
    if reactivated:
        audit(
            cfg,
            "dormant_reactivate",
            "dormant.registry",
            customers=reactivated,
            details={"run_id": ctx.run_id, "reason": "business resumed"},
        )
        log.info("publish    %d dormant customer(s) reactivated", len(reactivated))
    states = (before, published_state(con))
    export_dir = ensure_dir(cfg.resolve(cfg.exports_dir) / "golden")
    sources = inserted_from(con, changed)

    ahead = _snapshot_ahead(ctx, changed)

    def exports(cursor: duckdb.DuckDBPyConnection) -> list[Path]:
        files = publish_exports(
            cursor, export_dir, ctx.run_id, ctx.run_date, changed, cfg.export_full_every_days,
            states=states, sources=sources,
        )  # fmt: skip
        if ahead is not None:
            _prepare_snapshot(cursor, ctx, *ahead)
        return files

    # the Parquet exports (DuckDB's COPY: no Python) are written on a second connection
    # while the analyst mart is masked (Python) and written: the same files, beside it; after
    # a full golden build, then the full snapshot's table files (DuckDB's reads and sha256,
    # Arrow's encryption), which the snapshot stage takes over (`_snapshot_ahead`)
    with beside(con, exports) as exporting:
        # the analyst mart: the touched customers' rows replaced, or rebuilt whole (mart_delta)
        mart = update_analyst_mart(cfg, con, changed, states, ctx.run_date)
    exported = exporting.result()
    export = "changes" if any(p.parent.name.startswith("seq=") for p in exported) else "full"
    mart_mode = "off" if mart is None else mart.mode
    if mart is not None and mart.mode == "full":
        log.info("publish    analyst mart rebuilt whole: %s", mart.reason)
    log.info(
        "publish    golden tables swapped in; %d Parquet files exported (%s); analyst mart %d"
        " tables (%s%s)",
        len(exported),
        export,
        0 if mart is None else len(mart.files),
        mart_mode,
        "" if mart is None or mart.mode == "full" else f", {mart.customers} customers",
    )
    return PublishStats(
        exported_files=len(exported),
        analyst_mart_tables=0 if mart is None else len(mart.files),
        export=export,
        mart=mart_mode,
        mart_customers=None if mart is None or mart.mode == "full" else mart.customers,
    )


@dataclass(frozen=True)
class _Ahead:
    """A full snapshot's table files prepared by a publish stage for the snapshot stage."""

    run_id: str
    archive_dir: Path
    golden_state: str | None
    counts: Mapping[str, int]
    prepared: PreparedFull


_AHEAD: list[_Ahead] = []  # at most one: what the last publish stage of this process prepared
_AHEAD_LOCK = threading.Lock()


def _hand_over(ahead: _Ahead | None) -> _Ahead | None:
    """Keep ``ahead`` for the snapshot stage (None: keep nothing); return what was kept before.

    Files prepared and never taken (a run without its snapshot stage) are removed when the
    next publish hands its own over, or once this process is gone (``clean_leftovers``).
    """
    with _AHEAD_LOCK:
        before = _AHEAD.pop() if _AHEAD else None
        if ahead is not None:
            _AHEAD.append(ahead)
    return before


def _snapshot_ahead(ctx: RunContext, changed: object) -> tuple[Path, TableWriter | None] | None:
    """Where and how the publish stage writes the full snapshot's files ahead, or None.

    Only when the snapshot stage will run in this process (in-process executor), a second
    core is there (``scale.workers`` >= 2, ``scale.snapshot_ahead``), the swap put in a full
    golden build (``changed`` None) and the snapshot due is a full one (no delta base): the
    same decision ``snapshot_stage`` makes.
    """
    cfg = ctx.config
    scale = cfg.scale
    if not scale.snapshot_ahead or scale.executor != "in_process" or changed is not None:
        return None
    if scale.resolved_workers() < 2:
        return None
    archive_dir = cfg.resolve(cfg.archive_dir)
    existing = list_snapshots(archive_dir)
    if delta_base(existing, due_kind(ctx.run_date, existing), cfg.snapshots) is not None:
        return None
    stale = _hand_over(None)
    if stale is not None:
        stale.prepared.discard()
    return ensure_dir(archive_dir), snapshot_writer(cfg)


def _prepare_snapshot(
    cursor: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    archive_dir: Path,
    writer: TableWriter | None,
) -> None:
    """Write the full snapshot's table files of the published golden tables (on ``cursor``) and
    hand them to the snapshot stage. A failure is logged: that stage then writes them itself
    (and raises its own error if it fails there too)."""
    names = tuple(f"golden.{n}" for n in EXPORTED)
    try:
        tables = warehouse_tables(cursor, names)
        state = published_state(cursor)
        counts = _row_counts(cursor, tables.names)
        prepared = prepare_full_snapshot(tables, archive_dir, ctx.run_id, ctx.started_at, writer)
    except Exception as exc:
        log.warning("publish    snapshot files not prepared ahead (%r): the snapshot stage"
                    " writes them", exc)  # fmt: skip
        return
    stale = _hand_over(_Ahead(ctx.run_id, archive_dir, state, counts, prepared))
    if stale is not None:
        stale.prepared.discard()
    log.info("publish    snapshot files of %d tables written ahead", len(prepared.names))


def _row_counts(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> dict[str, int]:
    """Each table's row count."""
    return {n: int(con.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0]) for n in names}


def _prepared_for(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, archive_dir: Path, names: tuple[str, ...]
) -> PreparedFull | None:
    """The files a publish stage of this run prepared for a full snapshot of these tables, if
    the tables are still what they were (the golden state's fingerprint and every table's row
    count); files prepared for anything else are removed."""
    ahead = _hand_over(None)
    if ahead is None:
        return None
    same = (
        ahead.run_id == ctx.run_id
        and ahead.archive_dir == archive_dir
        and ahead.golden_state == published_state(con)
        and set(ahead.counts) == set(warehouse_tables(con, names).names)
        and _row_counts(con, tuple(ahead.counts)) == dict(ahead.counts)
    )
    if not same:
        log.info("snapshot   files prepared ahead are not of this state: written again")
        ahead.prepared.discard()
        return None
    return ahead.prepared


T = TypeVar("T")


@contextmanager
def beside(
    con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], T]
) -> Iterator[Future[T]]:
    """Run ``work`` in a thread on a cursor of ``con`` (its own connection to the database,
    ``con``'s database selected) while the block runs; yield its future.

    The block's end waits for ``work`` and raises its error; when the block itself fails,
    ``work`` is waited for, its own error (if any) logged, and the block's error raised. The
    cursor is closed once ``work`` is done.
    """
    cursor = database_cursor(con)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-beside") as pool:
            future = pool.submit(work, cursor)
            try:
                yield future
            except BaseException:
                wait([future])
                error = future.exception()
                if error is not None:
                    log.error("publish    the work beside the failed step failed too: %r", error)
                raise
            future.result()
    finally:
        cursor.close()


def snapshot_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> SnapshotStats:
    """Publish the golden layer as an immutable snapshot; apply retention; copy off-site."""
    cfg = ctx.config
    outcomes = check_outcomes(con, ctx.run_id)
    if not any(o.layer == "golden" for o in outcomes) or blocking_failures(outcomes):
        raise PublishBlocked(f"run {ctx.run_id}: expectations missing or failed; no snapshot")
    return_free_memory()
    source_manifest = run_deliveries(con, ctx.run_id)
    archive_dir = ensure_dir(cfg.resolve(cfg.archive_dir))
    existing = list_snapshots(archive_dir)
    kind = due_kind(ctx.run_date, existing)
    # nightly: a delta on the last full snapshot; month end, year end, first run: full
    base = delta_base(existing, kind, cfg.snapshots)
    # a delta after an incremental swap reads only the customers it replaced (and checks the
    # rest by one aggregate); otherwise the whole golden tables, each read and hashed in one scan
    names = tuple(f"golden.{n}" for n in EXPORTED)
    changed = changed_state(con, names) if base else None
    # a full snapshot's table files written ahead by this run's publish stage (`swap_stage`)
    prepared = _prepared_for(con, ctx, archive_dir, names)
    info = publish_snapshot(
        changed or warehouse_tables(con, names),
        archive_dir,
        ctx.run_id,
        ctx.started_at,
        manifest_extra={
            **snapshot_encryption_note(cfg),
            **manifest_audit_head(AuditLog(cfg.resolve(cfg.security.audit_log)).head()),
            "run_date": ctx.run_date.isoformat(),
            "source_manifest": source_manifest,
            "expectations": [
                {"name": o.name, "critical": o.critical, "success": o.success} for o in outcomes
            ],
        },
        kind=kind,
        # month-end and year-end archives are kept even when nothing changed that day
        skip_if_unchanged=kind == "daily",
        writer=snapshot_writer(cfg),
        base=base,
        reader=snapshot_reader(cfg),
        max_delta_share=cfg.snapshots.max_delta_share,
        prepared=prepared,
    )
    crash_point("snapshot:published")
    stats = SnapshotStats(kind=kind)
    if info is None:
        log.info("snapshot   golden content unchanged since the last snapshot: none written")
    else:
        stats.snapshot = str(info.path)
        stats.snapshot_id = info.snapshot_id
        stats.storage = info.storage
        log.info("snapshot   %s (%s)", info.path, info.storage)
        if cfg.offsite:
            stats.offsite = copy_offsite(info.path, cfg.offsite, reader=snapshot_reader(cfg))
            log.info("snapshot   off-site copy %s", stats.offsite)
    plan = apply_retention(cfg.resolve(cfg.archive_dir), cfg.retention, ctx.run_date)
    stats.snapshots_deleted = len(plan.delete)
    return stats

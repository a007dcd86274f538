"""Operator commands: snapshots list/verify/diff/restore, quality reports, audit samples."""

from __future__ import annotations

import sys
import uuid
import webbrowser
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from expectations.audit_sample import draw_audit_sample
from warehouse import create_views, read_table, replace_tables
from warehouse.archive import (
    SnapshotInfo,
    diff_snapshots,
    list_snapshots,
    prepare_restore,
    publish_snapshot,
    verify_snapshot,
)
from warehouse.ops import append_audit_record, latest_recorded_run
from warehouse.publish import golden_snapshot_tables
from warehouse.security import AuditLog, write_audit_worksheet
from warehouse.security.audit_anchor import manifest_audit_head

from ..access import (
    audit,
    open_warehouse,
    run_lock,
    snapshot_encryption_note,
    snapshot_reader,
    snapshot_writer,
)
from ..reporting import write_run_report
from ..settings import ArchiveConfig
from ..stages import ensure_dir


def find_snapshot(cfg: ArchiveConfig, ident: str) -> SnapshotInfo:
    """A snapshot by id, by unique id prefix, or by folder path."""
    snaps = list_snapshots(cfg.resolve(cfg.archive_dir))
    p = Path(ident)
    hits = [s for s in snaps if s.snapshot_id == ident or s.path == p.resolve()]
    if not hits:
        hits = [s for s in snaps if s.snapshot_id.startswith(ident)]
    if len(hits) != 1:
        known = ", ".join(s.snapshot_id for s in snaps[-5:]) or "none"
        raise SystemExit(
            f"snapshot {ident!r}: {'ambiguous' if hits else 'not found'} (latest: {known})"
        )
    return hits[0]


def snapshots_command(cfg: ArchiveConfig, action: str, ids: Sequence[str] = ()) -> int:
    """`customer-archive snapshots list|verify|diff|restore|full`."""
    archive_dir = cfg.resolve(cfg.archive_dir)
    if action == "list":
        snaps = list_snapshots(archive_dir)
        if not snaps:
            print(f"no snapshots in {archive_dir}")
        for s in snaps:
            customers = s.row_counts.get("golden.customers", "?")
            storage = f"delta on {s.base_id}" if s.base_id else "full"
            print(f"{s.snapshot_id}  {s.kind:<14} customers={customers:<8} {storage}  {s.path}")
        return 0
    if action == "full":
        return full_snapshot(cfg)
    if action == "verify":
        targets = [find_snapshot(cfg, i) for i in ids] or list_snapshots(archive_dir)
        bad = 0
        for s in targets:
            report = verify_snapshot(s.path, reader=snapshot_reader(cfg))
            print(f"{s.snapshot_id}: {report.summary()}")
            bad += not report.ok
        return 1 if bad else 0
    if action == "diff":
        if len(ids) != 2:
            print("snapshots diff needs two snapshot ids", file=sys.stderr)
            return 2
        a, b = (find_snapshot(cfg, i) for i in ids)
        diff = diff_snapshots(a.path, b.path, reader=snapshot_reader(cfg))
        print(f"{a.snapshot_id} → {b.snapshot_id}")
        for key, value in diff.summary().items():
            print(f"  {key}: {value}")
        for name in ("added", "removed", "merged", "changes"):
            frame = getattr(diff, name, None)
            if isinstance(frame, pd.DataFrame) and len(frame):
                print(f"\n{name} (first 20):")
                print(frame.head(20).to_string(index=False))
        return 0
    if len(ids) != 1:
        print("snapshots restore needs one snapshot id", file=sys.stderr)
        return 2
    return restore_snapshot(cfg, find_snapshot(cfg, ids[0]))


def full_snapshot(cfg: ArchiveConfig) -> int:
    """Publish a full snapshot of the current golden layer now (on demand; later deltas use it)."""
    run_id = f"full-{uuid.uuid4().hex[:8]}"
    with run_lock(cfg), open_warehouse(cfg) as con:
        tables = golden_snapshot_tables(con)
        if not tables:
            raise SystemExit("nothing published yet: run `customer-archive run` first")
        info = publish_snapshot(
            tables,
            ensure_dir(cfg.resolve(cfg.archive_dir)),
            run_id,
            datetime.now(UTC),
            {
                "reason": "full snapshot requested from the CLI",
                **snapshot_encryption_note(cfg),
                **manifest_audit_head(AuditLog(cfg.resolve(cfg.security.audit_log)).head()),
            },
            skip_if_unchanged=False,
            writer=snapshot_writer(cfg),
        )
    assert info is not None
    audit(cfg, "snapshot", info.snapshot_id, details={"storage": "full", "run_id": run_id})
    print(f"published full snapshot {info.snapshot_id} at {info.path}")
    return 0


def restore_snapshot(cfg: ArchiveConfig, snap: SnapshotInfo) -> int:
    """Rebuild the golden layer from a snapshot; the current state is snapshotted first."""
    run_id = f"restore-{uuid.uuid4().hex[:8]}"
    with run_lock(cfg), open_warehouse(cfg) as con:
        plan = prepare_restore(
            snap.path,
            cfg.resolve(cfg.archive_dir),
            golden_snapshot_tables(con),
            run_id,
            datetime.now(UTC),
            {"reason": "restore requested from the CLI", **snapshot_encryption_note(cfg)},
            reader=snapshot_reader(cfg),
            writer=snapshot_writer(cfg),
        )
        replace_tables(con, dict(plan.tables.items()))
        create_views(con)
    backup = plan.backup.snapshot_id if plan.backup else "none (warehouse had no golden layer)"
    audit(cfg, "restore", snap.snapshot_id, details={"backup": backup, "run_id": run_id})
    print(f"restored golden layer from {snap.snapshot_id}; previous state kept as {backup}")
    return 0


def latest_run_id(cfg: ArchiveConfig) -> str:
    """The id of the most recent run recorded in the warehouse."""
    with open_warehouse(cfg, read_only=True) as con:
        run_id = latest_recorded_run(con)
    if run_id is None:
        raise SystemExit("no runs recorded yet: run `customer-archive run` first")
    return run_id


def report_command(
    cfg: ArchiveConfig, run_id: str | None = None, open_browser: bool = False
) -> int:
    """`customer-archive report [--run ID] [--open]`."""
    run_id = run_id or latest_run_id(cfg)
    with open_warehouse(cfg, read_only=True) as con:
        path = write_run_report(con, cfg, run_id, data_docs=False)
    print(path)
    if open_browser:
        webbrowser.open(path.resolve().as_uri())
    return 0


def _quarter(today: datetime) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def audit_command(
    cfg: ArchiveConfig, fraction: float = 0.1, seed: str | None = None, out: str | None = None
) -> int:
    """`customer-archive audit --fraction 0.1`: a stratified worksheet, recorded in ops.audits."""
    now = datetime.now(UTC)
    seed = seed or _quarter(now)
    with open_warehouse(cfg) as con:
        customers = read_table(con, "golden.customers")
        crosswalk = read_table(con, "golden.crosswalk")
        records = read_table(con, "clean.records")
        if customers is None or crosswalk is None or records is None:
            raise SystemExit("nothing published yet: run `customer-archive run` first")
        sample = draw_audit_sample(customers, crosswalk, records, fraction, seed)
        path = (
            Path(out)
            if out
            else (ensure_dir(cfg.resolve(cfg.reports_dir) / "audits") / f"audit_{seed}.xlsx")
        )
        write_audit_worksheet(sample.worksheet, sample.strata, path)
        append_audit_record(
            con,
            {
                "audit_id": f"audit-{seed}-{now:%Y%m%dT%H%M%S}",
                "created_at": now.isoformat(timespec="seconds"),
                "seed": seed,
                "fraction": fraction,
                "customers_sampled": len(sample.customers),
                "customers_total": len(customers),
                "records": len(sample.worksheet),
                "worksheet": str(path),
            },
        )
    audit(
        cfg,
        "export",
        str(path),
        customers=sample.customers["customer_id"].astype(str).tolist(),
        details={"kind": "audit_sample", "seed": seed, "fraction": fraction},
    )
    print(
        f"audit sample {seed}: {len(sample.customers)} of {len(customers)} customers "
        f"({len(sample.worksheet)} source records) → {path}"
    )
    return 0

"""Restore round trip through the CLI: restore A after runs B and C, verify, tamper, diff."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.access import open_warehouse, snapshot_reader
from pipelines.cli import main
from pipelines.runner import run_pipeline
from pipelines.settings import ArchiveConfig, load_config
from sources.demo import write_demo
from warehouse.archive import (
    SnapshotInfo,
    content_hash,
    list_snapshots,
    verify_snapshot,
)
from warehouse.publish import golden_snapshot_tables

REPO = Path(__file__).resolve().parents[2]
NEW_COMPANY = "苏州回滚测试精密机械有限公司"
CHANGED_PHONE = "13977776666"


@dataclass
class History:
    """A project after runs A (11-24), B (11-25) and C (11-26), and their snapshots."""

    config: Path
    a: SnapshotInfo
    b: SnapshotInfo
    c: SnapshotInfo

    @property
    def cfg(self) -> ArchiveConfig:
        """The loaded project configuration."""
        return load_config(self.config)


def _write_leads(folder: Path, name: str, leads: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in leads) + "\n", encoding="utf-8"
    )
    return path


def _run(config: Path, run_date: str) -> SnapshotInfo:
    outcome = run_pipeline(config, run_date=run_date)
    assert outcome.success, outcome.errors
    snap_id = outcome.stats.snapshot.snapshot_id
    cfg = load_config(config)
    return next(s for s in list_snapshots(cfg.resolve(cfg.archive_dir)) if s.snapshot_id == snap_id)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """Run A on a 120-entity demo, then B (new leads) and C (a new company, a changed phone)."""
    root = tmp_path_factory.mktemp("restore")
    write_demo(root / "demo", entities=120, seed=5)
    shutil.move(root / "demo" / "landing", root / "landing")
    config = root / "archive.yml"
    config.write_text(
        "landing_dir: landing\n"
        f"sources_file: {REPO / 'sources' / 'sources.yml'}\n"
        "warehouse: state/warehouse.duckdb\n"
        "archive_dir: state/archive\n"
        "reports_dir: state/reports\n"
        "exports_dir: state/exports\n",
        encoding="utf-8",
    )
    a = _run(config, "2026-11-24")
    marketing = root / "landing" / "marketing"
    b_leads = [
        {"lead_id": "LB1", "company": "宁波回滚测试贸易有限公司", "mobile": "13600001111"},
        {"lead_id": "LB2", "contact": "司马相如", "mobile": "13600002222", "email": "smxr@qq.com"},
    ]
    b_file = _write_leads(marketing / "2026-11-25", "leads.jsonl", b_leads)
    b = _run(config, "2026-11-25")
    b_leads[1]["mobile"] = CHANGED_PHONE  # corrected re-export of B's file: a changed phone
    _write_leads(b_file.parent, b_file.name, b_leads)
    _write_leads(
        marketing / "2026-11-26",
        "leads.jsonl",
        [{"lead_id": "LC1", "company": NEW_COMPANY, "mobile": "13500003333"}],
    )
    c = _run(config, "2026-11-26")
    assert len({a.content_hash, b.content_hash, c.content_hash}) == 3
    return History(config, a, b, c)


def _golden_hash(cfg: ArchiveConfig) -> str:
    with open_warehouse(cfg, read_only=True) as con:
        return content_hash(golden_snapshot_tables(con))


def test_restore_a_after_b_and_c_brings_back_a(history: History, capsys) -> None:
    cfg = history.cfg
    assert _golden_hash(cfg) == history.c.content_hash
    assert (
        main(["snapshots", "restore", history.a.snapshot_id, "--config", str(history.config)]) == 0
    )
    out = capsys.readouterr().out
    assert f"restored golden layer from {history.a.snapshot_id}" in out
    # every golden table (customers, crosswalk, IDs, history …) holds exactly A's content
    assert _golden_hash(cfg) == history.a.content_hash
    # The pre-restore state is archived: it equals C's snapshot, so C is named as the backup
    # instead of writing the same content twice (warehouse.archive.prepare_restore).
    assert f"previous state kept as {history.c.snapshot_id}" in out

    # Rolling forward to C now snapshots the restored state A first, as a restore_backup.
    assert (
        main(["snapshots", "restore", history.c.snapshot_id, "--config", str(history.config)]) == 0
    )
    assert _golden_hash(cfg) == history.c.content_hash
    backups = [
        s for s in list_snapshots(cfg.resolve(cfg.archive_dir)) if s.kind == "restore_backup"
    ]
    assert len(backups) == 1
    assert backups[0].content_hash == history.a.content_hash
    assert verify_snapshot(backups[0].path, reader=snapshot_reader(cfg)).ok
    assert f"previous state kept as {backups[0].snapshot_id}" in capsys.readouterr().out


def test_snapshots_diff_prints_added_and_changed_customers(history: History, capsys) -> None:
    code = main(
        [
            "snapshots",
            "diff",
            history.a.snapshot_id,
            history.c.snapshot_id,
            "--config",
            str(history.config),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"{history.a.snapshot_id} → {history.c.snapshot_id}" in out
    assert "added:" in out and "\nadded (first 20):" in out
    assert NEW_COMPANY in out
    added = int(out.split("added:")[1].split()[0])
    assert added >= 3  # LB1, LB2's person and the new company of C

    # B → C: the changed phone shows as an attribute change of an existing customer
    main(
        [
            "snapshots",
            "diff",
            history.b.snapshot_id,
            history.c.snapshot_id,
            "--config",
            str(history.config),
        ]
    )
    out = capsys.readouterr().out
    assert "\nchanges (first 20):" in out
    assert CHANGED_PHONE in out


def test_verify_passes_then_reports_a_tampered_parquet_file(history: History, capsys) -> None:
    config = str(history.config)
    assert main(["snapshots", "verify", "--config", config]) == 0
    out = capsys.readouterr().out
    assert out.count(": OK (") == len(list_snapshots(history.cfg.resolve(history.cfg.archive_dir)))

    # the second night's snapshot is a delta on the first: its customers' added rows
    assert history.b.storage == "delta" and history.b.base_id == history.a.snapshot_id
    name = "golden.customers.add.parquet"
    target = history.b.path / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the file
    target.write_bytes(bytes(data))

    assert main(["snapshots", "verify", "--config", config]) == 1
    out = capsys.readouterr().out
    bad = [line for line in out.splitlines() if name in line]
    assert bad and "checksum_mismatch" in bad[0], out
    assert f"snapshot {history.b.snapshot_id}: " in out
    assert f"{history.a.snapshot_id}: snapshot {history.a.snapshot_id}: OK" in out

    # a damaged snapshot is refused before anything is touched
    before = _golden_hash(history.cfg)
    capsys.readouterr()
    assert main(["snapshots", "restore", history.b.snapshot_id, "--config", config]) == 4
    assert capsys.readouterr().err.startswith("archive error: ")  # one line, no traceback
    assert _golden_hash(history.cfg) == before


def test_snapshots_full_on_demand_and_list_shows_the_storage(history: History, capsys) -> None:
    config = str(history.config)
    assert main(["snapshots", "full", "--config", config]) == 0
    assert "published full snapshot" in capsys.readouterr().out
    latest = list_snapshots(history.cfg.resolve(history.cfg.archive_dir))[-1]
    assert latest.storage == "full" and latest.content_hash == _golden_hash(history.cfg)
    assert main(["snapshots", "list", "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"delta on {history.a.snapshot_id}" in out  # the second night's snapshot

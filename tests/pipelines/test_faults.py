"""Whole-pipeline fault injection: SIGKILL at every stage boundary and mid-snapshot, disk full.

After each kill, the published archive verifies, the warehouse opens with either the previous or
the complete new golden state (never a mix), and the next run equals an uninterrupted run.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.access import open_warehouse, snapshot_reader
from pipelines.runner import RunOutcome, run_pipeline
from pipelines.settings import ArchiveConfig, load_config
from sources.demo import write_demo
from tests.pipelines.conftest import write_project
from warehouse.archive import list_snapshots, load_snapshot, verify_snapshot

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_fault_child.py")
FIRST_DATE, NEXT_DATE = "2026-11-24", "2026-11-25"
WAIT_SECONDS = 600

# crash point → which golden state the warehouse must hold right after the kill, and whether the
# crashed run's snapshot is already published ("old"/"new" golden; snapshot published or not).
# Ingest runs marketing → sales → service; the new delivery is marketing's, so a kill after
# marketing has ingested it but before sales starts is "between two sources".
POINTS: dict[str, tuple[str, bool]] = {
    "ingest:marketing:after": ("old", False),
    "ingest:sales:after": ("old", False),
    "clean:before": ("old", False),
    "clean:after": ("old", False),
    "match:after": ("old", False),
    "golden:after": ("old", False),
    "quality:after": ("old", False),
    "publish:before": ("old", False),
    "publish:swapped": ("new", False),
    "publish:after": ("new", False),
    "snapshot:before": ("new", False),
    "snapshot:published": ("new", True),
}
MID_SNAPSHOT = "snapshot:mid-write"  # SIGKILL after the first Parquet file of the snapshot
# SIGKILL inside a full clean, after its first chunk is committed to the building tables (the
# project forces full cleans of 100-record chunks): old golden, the old clean layer whole
MID_CLEAN = "clean:chunk"
# SIGKILL after the golden suite passed on a FULL golden build (the project forces full
# builds): staged under the hidden golden._staged_* names, not swapped in yet: old golden
FULL_STAGED = "full-golden:quality:after"


def _write_project(root: Path) -> Path:
    """archive.yml with every path relative to ``root``, so a copied folder is its own project."""
    return write_project(root, "landing")


def add_delivery(project: Path) -> None:
    """New marketing deliveries: three new leads (two of one new company) and a changed phone.

    The phone change arrives as a corrected re-export of the earlier file at the same path (its
    previous rows are superseded).
    """
    landing = project / "landing" / "marketing"
    earlier = next(landing.glob("*/leads.jsonl"))
    lines = earlier.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["mobile"] = "13988887777"
    lines[0] = json.dumps(first, ensure_ascii=False)
    earlier.write_text("\n".join(lines) + "\n", encoding="utf-8")
    leads = [
        {"lead_id": "LF1", "company": "杭州故障注入网络科技有限公司", "mobile": "13700000019"},
        {"lead_id": "LF2", "company": "杭州故障注入网络科技", "mobile": "137-0000-0019"},
        {"lead_id": "LF3", "contact": "欧阳娜娜", "mobile": "13811112299", "email": "oyy@qq.com"},
    ]
    folder = landing / NEXT_DATE
    folder.mkdir(parents=True)
    (folder / "leads.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in leads) + "\n", encoding="utf-8"
    )


def _cfg(project: Path) -> ArchiveConfig:
    return load_config(project / "archive.yml")


def golden_state(project: Path) -> dict[str, pd.DataFrame]:
    """``golden.customers`` (minus ``updated_run_id``) and ``golden.crosswalk``, sorted."""
    cfg = _cfg(project)
    with open_warehouse(cfg, read_only=True) as con:
        customers = con.execute(
            "SELECT * EXCLUDE (updated_run_id) FROM golden.customers ORDER BY customer_id"
        ).df()
        crosswalk = con.execute("SELECT * FROM golden.crosswalk ORDER BY record_key").df()
    return {"customers": customers, "crosswalk": crosswalk}


def same_state(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> bool:
    """Whether two golden states hold exactly the same rows and values."""
    return all(a[k].shape == b[k].shape and a[k].equals(b[k]) for k in a)


def assert_same_state(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    """Fail with pandas' detailed message when two golden states differ."""
    for name in expected:
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=name)


def snapshot_customers(path: Path, project: Path) -> pd.DataFrame:
    """A snapshot's ``golden.customers`` read exactly like :func:`golden_state` reads the table."""
    tables = load_snapshot(path, verify=True, reader=snapshot_reader(_cfg(project)))
    customers = tables["golden.customers"]  # noqa: F841 - scanned by DuckDB below
    with duckdb.connect() as con:
        return con.execute(
            "SELECT * EXCLUDE (updated_run_id) FROM customers ORDER BY customer_id"
        ).df()


def archive_ids(project: Path) -> list[str]:
    """Listed snapshot ids, after asserting each one verifies (no partial snapshot is listed)."""
    cfg = _cfg(project)
    snaps = list_snapshots(cfg.resolve(cfg.archive_dir))
    for s in snaps:
        report = verify_snapshot(s.path, reader=snapshot_reader(cfg))
        assert report.ok, f"{s.snapshot_id}: {report.summary()}"
    return [s.snapshot_id for s in snaps]


def temp_folders(project: Path) -> list[Path]:
    """Leftover temp folders of interrupted snapshot writes."""
    return sorted((project / "state" / "archive").glob("*/*/.tmp-*"))


@dataclass
class FaultLab:
    """The fault server child, the base project and the two reference golden states."""

    root: Path
    server: subprocess.Popen
    base: Path
    base_snapshots: list[str]
    old: dict[str, pd.DataFrame]
    new: dict[str, pd.DataFrame] = field(default_factory=dict)
    _results: dict[str, int] = field(default_factory=dict)
    _inbox: queue.Queue = field(default_factory=queue.Queue)
    _submitted: list[str] = field(default_factory=list)

    def pending(self) -> list[str]:
        """Jobs not answered yet (answers already received are collected first)."""
        while not self._inbox.empty():
            line = self._inbox.get_nowait()
            if line is not None:
                answer = json.loads(line)
                self._results[answer["id"]] = answer["returncode"]
        return [j for j in self._submitted if j not in self._results]

    def submit(self, job_id: str, project: Path, run_date: str, **extra: object) -> None:
        """Send one job to the server (it answers in order)."""
        job = {"id": job_id, "config": str(project / "archive.yml"), "run_date": run_date}
        job.update(extra, log=str(project / "child.log"))
        assert self.server.stdin is not None
        self._submitted.append(job_id)
        self.server.stdin.write(json.dumps(job) + "\n")
        self.server.stdin.flush()

    def wait(self, job_id: str) -> int:
        """The return code of a job (``-9``: killed by SIGKILL)."""
        while job_id not in self._results:
            try:
                line = self._inbox.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                pytest.fail(f"fault server gave no answer for {job_id} in {WAIT_SECONDS} s")
            if line is None:
                pytest.fail(f"fault server exited before answering {job_id}")
            answer = json.loads(line)
            self._results[answer["id"]] = answer["returncode"]
        return self._results[job_id]

    def project(self, name: str) -> Path:
        """The project folder of a crash point."""
        return self.root / name.replace(":", "_")


def _pump(stream, inbox: queue.Queue) -> None:
    for line in stream:
        inbox.put(line)
    inbox.put(None)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    """Base run in the server, every crash job queued, the uninterrupted reference run here."""
    root = tmp_path_factory.mktemp("faults")
    base = root / "base"
    write_demo(base / "demo", entities=150, seed=11)
    shutil.move(base / "demo" / "landing", base / "landing")
    _write_project(base)
    server = subprocess.Popen(
        [sys.executable, str(CHILD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,  # its own process group: teardown can stop it and its child
    )
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(server.stdout, inbox), daemon=True).start()
    lab = FaultLab(root, server, base, [], {}, _inbox=inbox)
    try:
        # the good run happens in the server, which also warms it up for the forked children
        lab.submit("base", base, FIRST_DATE, fork=False)
        assert lab.wait("base") == 0, (base / "child.log").read_text()
        lab.base_snapshots = archive_ids(base)
        lab.old = golden_state(base)
        for name in [*POINTS, MID_SNAPSHOT, MID_CLEAN, FULL_STAGED, "reference"]:
            shutil.copytree(base, lab.project(name))
            add_delivery(lab.project(name))
        with (lab.project(MID_CLEAN) / "archive.yml").open("a", encoding="utf-8") as cfg:
            cfg.write("\nclean_incremental: false\nscale:\n  clean_chunk_records: 100\n")
        with (lab.project(FULL_STAGED) / "archive.yml").open("a", encoding="utf-8") as cfg:
            cfg.write("\ngolden_incremental: false\n")
        for point in [*POINTS, MID_CLEAN]:
            lab.submit(point, lab.project(point), NEXT_DATE, crash_at=point)
        lab.submit(FULL_STAGED, lab.project(FULL_STAGED), NEXT_DATE, crash_at="quality:after")
        lab.submit(MID_SNAPSHOT, lab.project(MID_SNAPSHOT), NEXT_DATE, kill_after_files=1)
        # meanwhile, the uninterrupted run on the same inputs, in this process
        ref = lab.project("reference")
        outcome = run_pipeline(ref / "archive.yml", run_date=NEXT_DATE)
        assert outcome.success, outcome.errors
        lab.new = golden_state(ref)
        assert not same_state(lab.old, lab.new), "the new delivery must change the golden layer"
        yield lab
    finally:
        assert server.stdin is not None
        if lab.pending():  # a test stopped early (-x): do not wait for the queued crash runs
            os.killpg(server.pid, signal.SIGKILL)
        server.stdin.close()
        server.wait(timeout=WAIT_SECONDS)


def _check_after_kill(lab: FaultLab, project: Path, state: str, published: bool) -> None:
    snaps = archive_ids(project)  # every listed snapshot verifies
    if published:
        assert snaps[:-1] == lab.base_snapshots and len(snaps) == len(lab.base_snapshots) + 1
        latest = list_snapshots(project / "state" / "archive")[-1]
        expected = lab.new["customers"]
        pd.testing.assert_frame_equal(snapshot_customers(latest.path, project), expected)
    else:
        assert snaps == lab.base_snapshots
    current = golden_state(project)  # the warehouse opens read-only
    assert same_state(current, lab.old) or same_state(current, lab.new), "golden is a mix"
    assert_same_state(current, lab.old if state == "old" else lab.new)
    holder = json.loads((project / "state" / "warehouse.lock").read_text(encoding="utf-8"))
    assert holder["pid"] != lab.server.pid  # the killed child's stale holder record is left


def _check_recovery(lab: FaultLab, project: Path) -> None:
    outcome = run_pipeline(project / "archive.yml", run_date="2026-11-25")
    assert outcome.success, outcome.errors  # the stale run lock did not block it
    assert_same_state(golden_state(project), lab.new)
    snaps = archive_ids(project)
    assert snaps[: len(lab.base_snapshots)] == lab.base_snapshots
    latest = list_snapshots(project / "state" / "archive")[-1]
    pd.testing.assert_frame_equal(snapshot_customers(latest.path, project), lab.new["customers"])
    assert not temp_folders(project)
    assert not (project / "state" / "warehouse.lock").exists()


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_at_stage_boundary_recovers(lab: FaultLab, point: str) -> None:
    project = lab.project(point)
    code = lab.wait(point)
    assert code == -9, (
        f"expected death by SIGKILL at {point}, got {code}:\n"
        + ((project / "child.log").read_text(errors="replace")[-3000:])
    )
    state, published = POINTS[point]
    _check_after_kill(lab, project, state, published)
    _check_recovery(lab, project)


def test_sigkill_in_the_middle_of_snapshot_writing_recovers(lab: FaultLab) -> None:
    project = lab.project(MID_SNAPSHOT)
    code = lab.wait(MID_SNAPSHOT)
    assert code == -9, (project / "child.log").read_text(errors="replace")[-3000:]
    leftovers = temp_folders(project)
    assert len(leftovers) == 1  # killed mid-write: the hidden temp folder holds the files
    # written so far: the first one done, and the one the second writer thread had begun
    assert 1 <= len(list(leftovers[0].glob("*.parquet"))) <= 2
    assert not (leftovers[0] / "manifest.json").exists()
    _check_after_kill(lab, project, "new", published=False)
    _check_recovery(lab, project)  # also removes the dead writer's temp folder


def test_sigkill_between_two_chunks_of_a_full_clean_recovers(lab: FaultLab) -> None:
    project = lab.project(MID_CLEAN)
    code = lab.wait(MID_CLEAN)
    assert code == -9, (project / "child.log").read_text(errors="replace")[-3000:]
    with open_warehouse(_cfg(project), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'clean'"
        ).fetchall()]  # fmt: skip
        built = con.execute("SELECT count(*) FROM clean._building_records").fetchall()[0][0]
        clean_runs = con.execute("SELECT count(*) FROM ops.clean_runs").fetchall()[0][0]
    assert built == 100  # the first chunk was committed, under the building name only
    assert "records" in tables and clean_runs == 1  # the old layer; the killed clean unlogged
    _check_after_kill(lab, project, "old", published=False)
    _check_recovery(lab, project)  # a full clean again: drops the leftovers first
    with open_warehouse(_cfg(project), read_only=True) as con:
        left = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'clean'"
            " AND starts_with(table_name, '_building_')"
        ).fetchall()[0][0]
    assert left == 0


def test_sigkill_between_a_full_golden_build_and_its_swap_recovers(lab: FaultLab) -> None:
    """A full build staged under hidden names in golden, killed before the swap: golden.*
    is the old state, no role sees the staged tables, the next run drops and rebuilds them."""
    from warehouse.security import role_database

    project = lab.project(FULL_STAGED)
    code = lab.wait(FULL_STAGED)
    assert code == -9, (project / "child.log").read_text(errors="replace")[-3000:]
    hidden = (
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'golden'"
        " AND starts_with(table_name, '_staged_') ORDER BY table_name"
    )
    with open_warehouse(_cfg(project), read_only=True) as con:
        staged = [r[0] for r in con.execute(hidden).fetchall()]
        new_customers = con.execute(
            "SELECT * EXCLUDE (updated_run_id) FROM staging.customers ORDER BY customer_id"
        ).df()
        steward = role_database(con, "steward")
        try:
            seen = {r[0] for r in steward.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            ).fetchall()}  # fmt: skip
        finally:
            steward.close()
    assert len(staged) == 7  # every golden table staged, under its hidden name only
    pd.testing.assert_frame_equal(new_customers, lab.new["customers"])  # the new state, staged
    assert "golden.customers" in seen and not any(t.startswith("golden._") for t in seen)
    _check_after_kill(lab, project, "old", published=False)  # golden.* untouched
    _check_recovery(lab, project)  # a full build again: drops the leftovers first
    with open_warehouse(_cfg(project), read_only=True) as con:
        assert con.execute(hidden).fetchall() == []  # renamed in by the swap
        views = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'staging'"
        ).fetchall()[0][0]
    assert views == 0  # the staging views of the swapped build dropped with it


@dataclass
class DiskFull:
    """A run whose snapshot write hit ENOSPC, then the next run with space again."""

    project: Path
    failed: RunOutcome
    snapshots_after_failure: list[str]
    state_after_failure: dict[str, pd.DataFrame]
    temp_after_failure: list[Path]


@pytest.fixture(scope="module")
def disk_full(lab: FaultLab, tmp_path_factory: pytest.TempPathFactory) -> DiskFull:
    """The snapshot writer raises ENOSPC on its second table file during the run of 11-25."""
    from warehouse.archive import snapshots

    project = tmp_path_factory.mktemp("diskfull") / "project"
    shutil.copytree(lab.base, project)
    add_delivery(project)
    real = snapshots._write_table_file
    written: list[Path] = []

    def full_disk(table, path: Path, writer=None) -> None:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(table, path, writer)
        written.append(path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshots, "_write_table_file", full_disk)
        failed = run_pipeline(project / "archive.yml", run_date=NEXT_DATE)
    return DiskFull(
        project, failed, archive_ids(project), golden_state(project), temp_folders(project)
    )


def test_disk_full_while_snapshotting_keeps_archive_intact(lab: FaultLab, disk_full: DiskFull):
    assert not disk_full.failed.success and not disk_full.failed.blocked
    assert "archive__snapshot" in disk_full.failed.failed_steps
    assert disk_full.snapshots_after_failure == lab.base_snapshots  # same list, all verify
    assert not disk_full.temp_after_failure  # the half-written temp folder was removed
    # The swap into golden.* happens in the publish stage, before the snapshot stage, and only
    # after every critical expectation passed: golden holds the complete, verified new state,
    # which is simply not archived yet; the next run with free space archives it.
    assert_same_state(disk_full.state_after_failure, lab.new)

    project = disk_full.project
    again = run_pipeline(project / "archive.yml", run_date="2026-11-26")
    assert again.success, again.errors
    snaps = list_snapshots(project / "state" / "archive")
    assert [s.snapshot_id for s in snaps[:-1]] == lab.base_snapshots
    pd.testing.assert_frame_equal(snapshot_customers(snaps[-1].path, project), lab.new["customers"])


def test_disk_full_error_names_the_disk(disk_full: DiskFull) -> None:
    message = "\n".join(disk_full.failed.errors)
    assert "disk full (no space left on device)" in message, message
    assert "nothing was published" in message


def test_record_redelivered_in_a_later_file_supersedes_the_old_row(
    lab: FaultLab, tmp_path: Path
) -> None:
    """Found by this suite's first delivery design: every night failed until it was fixed."""
    project = tmp_path / "redelivered"
    shutil.copytree(lab.base, project)
    landing = project / "landing" / "marketing"
    first = json.loads(
        next(landing.glob("*/leads.jsonl")).read_text(encoding="utf-8").splitlines()[0]
    )
    first["mobile"] = "13988887777"  # the department's next export carries the updated lead
    (landing / NEXT_DATE).mkdir()
    (landing / NEXT_DATE / "leads.jsonl").write_text(
        json.dumps(first, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    outcome = run_pipeline(project / "archive.yml", run_date=NEXT_DATE)
    assert outcome.success, outcome.errors
    key = f"marketing:{first['lead_id']}"
    with open_warehouse(_cfg(project), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM golden.crosswalk WHERE record_key = ?", [key])
        assert rows.fetchall() == [(1,)]
        rows = con.execute("SELECT count(*) FROM clean.records WHERE record_key = ?", [key])
        assert rows.fetchall() == [(1,)]  # the later delivery's row replaced the earlier one

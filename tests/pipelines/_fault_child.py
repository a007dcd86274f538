"""Fault-injection child: runs the pipeline in forked processes that SIGKILL themselves on cue.

The fault suite starts this script once (``python _fault_child.py``). It imports the pipeline
(Great Expectations, Dagster: seconds per fresh interpreter) once, then reads one JSON job per
line on stdin and, for each, forks a child that runs ``run_pipeline`` on the job's project with
``$CUSTOMER_ARCHIVE_CRASH_AT`` set (or with the snapshot table writer patched to SIGKILL after
``kill_after_files`` files). For each job it prints ``{"id": …, "returncode": …}`` on stdout,
with ``subprocess`` conventions: ``-9`` means the child died by SIGKILL. A job with
``"fork": false`` runs in this process (warm-up, so forked children start with warm caches).
The child's own output goes to the job's ``log`` file.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipelines.faults import ENV  # noqa: E402
from pipelines.runner import run_pipeline  # noqa: E402


def _kill_after_files(count: int) -> None:
    """Patch the snapshot table writer so the process SIGKILLs itself after ``count`` files."""
    from warehouse.archive import snapshots

    real = snapshots._write_table_file
    written = [0]

    def writer(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        written[0] += 1
        if written[0] >= count:
            os.kill(os.getpid(), signal.SIGKILL)

    snapshots._write_table_file = writer  # type: ignore[assignment]


def _run_job(job: dict[str, Any]) -> int:
    """Run the pipeline for one job in this process; 0 on success, 1 on a failed run."""
    if job.get("crash_at"):
        os.environ[ENV] = job["crash_at"]
    else:
        os.environ.pop(ENV, None)
    if job.get("kill_after_files"):
        _kill_after_files(int(job["kill_after_files"]))
    outcome = run_pipeline(job["config"], run_date=job["run_date"])
    if not outcome.success:
        print("run failed:", outcome.errors, file=sys.stderr)
    return 0 if outcome.success else 1


def _forked(job: dict[str, Any]) -> int:
    """Run one job in a forked child with its output sent to the job's log; its exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 2
        try:
            log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            code = _run_job(job)
        except BaseException:  # reported in the log and by the exit code
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _inline(job: dict[str, Any]) -> int:
    """Run one job in this process (output to its log), restoring stdout/stderr afterwards."""
    saved = os.dup(1), os.dup(2)
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        return _run_job(job)
    except Exception:  # reported in the log and by the exit code
        traceback.print_exc()
        return 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.environ.pop(ENV, None)


def serve() -> None:
    """Read JSON jobs from stdin until EOF; answer each with its id and return code."""
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        code = _forked(job) if job.get("fork", True) else _inline(job)
        print(json.dumps({"id": job["id"], "returncode": code}), flush=True)


if __name__ == "__main__":
    serve()

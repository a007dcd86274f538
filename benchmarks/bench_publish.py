"""Publish and snapshot stages alone, on a warehouse stopped just before its publish.

A prepared state is a bench project (``bench_pipeline.py``'s worker folder) whose run was
stopped right before the publish stage (``CUSTOMER_ARCHIVE_CRASH_AT=publish:before``): a full
run of the base delivery, or the nightly run after a completed full run. Each repeat copies the
state to a temporary folder, then, in a child process, runs ``swap_stage`` and
``snapshot_stage`` for the stopped run and prints their CPU seconds (user + sys of the process,
DuckDB's threads included) and wall seconds. ``--code DIR`` imports the pipeline from another
checkout (e.g. a ``git archive`` of ``main``), so two releases are compared on the same state.

    # prepare data/states/{full,nightly}-100000 from the cached bench data, then measure:
    .venv/bin/python benchmarks/bench_publish.py --prepare 100000
    .venv/bin/python benchmarks/bench_publish.py data/states/nightly-100000 --repeat 3
    .venv/bin/python benchmarks/bench_publish.py data/states/nightly-100000 --code /tmp/main

A nightly state is prepared by the code that will be measured on it only as far as its full
run's publish goes (the mart's and the snapshot cache's state): prepare one per release when
comparing releases that changed what the full publish writes (the masking code, the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_PREFIX = "PUBLISH-RESULT "


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _copy_state(state: Path, into: Path) -> Path:
    """Copy a prepared project; its ``archive.yml`` paths point at the copy."""
    target = into / state.name
    shutil.copytree(state, target, symlinks=True)
    cfg = target / "archive.yml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(state), str(target)), "utf-8")
    return target


def worker(project: Path, profile: Path | None) -> None:
    """Run publish then snapshot for the run stopped before its publish; print the figures."""
    import datetime as dt

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.publish import snapshot_stage, swap_stage

    cfg = load_config(project / "archive.yml")
    with open_warehouse(cfg) as con:
        run_id = _stopped_run(con)
    # the newest delivery folder (landing/<department>/<YYYY-MM-DD>/) is the run's date
    run_date = max(dt.date.fromisoformat(p.name) for p in (project / "landing").glob("*/*"))
    ctx = RunContext(config=cfg, run_id=run_id, run_date=run_date)
    figures: dict[str, dict[str, float]] = {}
    details: dict[str, object] = {}
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, every thread: load-proof
    for name, fn in (("publish", swap_stage), ("snapshot", snapshot_stage)):
        with open_warehouse(cfg) as con:  # one connection a stage, as the Dagster job opens
            cpu, wall = _cpu(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            result = fn(con, ctx)
            if profiler is not None:
                profiler.disable()
            figures[name] = {
                "cpu_s": round(_cpu() - cpu, 3),
                "wall_s": round(time.perf_counter() - wall, 3),
            }
            details[name] = result.as_dict()
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    print(_PREFIX + json.dumps({"stages": figures, "details": details}, default=str), flush=True)


def _stopped_run(con) -> str:
    """The run whose golden checks are stored but that published nothing (stopped before)."""
    (run_id,) = con.execute(
        "SELECT run_id FROM ops.check_results WHERE layer = 'golden'"
        " AND run_id NOT IN (SELECT run_id FROM ops.stage_stats WHERE stage = 'publish')"
        " LIMIT 1"
    ).fetchone()
    return str(run_id)


def prepare(records: int, out: Path, code: Path) -> list[Path]:
    """Prepared states of ``records`` (bench data cached by ``bench_pipeline.py``).

    ``full-<n>``: the full run of the base delivery stopped before publish; ``nightly-<n>``: a
    completed full run, then the nightly run stopped before publish.
    """
    data = _ROOT / "data" / "bench" / str(records)
    if not (data / "meta.json").exists():
        sys.exit(f"no bench data in {data}: run bench_pipeline.py --records {records} first")
    out.mkdir(parents=True, exist_ok=True)
    script = str(code / "benchmarks" / "bench_pipeline.py")
    env = {**os.environ, "CUSTOMER_ARCHIVE_CODE_VERSION": "bench"}
    stop = {**env, "CUSTOMER_ARCHIVE_CRASH_AT": "publish:before"}
    work = out / f".work-{records}"

    def worker(phase: str, environ: dict[str, str]) -> None:
        cmd = [sys.executable, script, "--workdir", str(work), "--data", str(data)]
        subprocess.run([*cmd, "--worker", phase], env=environ, capture_output=True, check=False)

    made = []
    for name, steps in (("full", [("full", stop)]),
                        ("nightly", [("full", env), ("incremental", stop)])):  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        for phase, environ in steps:
            worker(phase, environ)
        target = out / f"{name}-{records}"
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
        cfg = target / "archive.yml"
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(work), str(target)), "utf-8")
        made.append(target)
        print(f"prepared {target}", flush=True)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, nargs="?")
    parser.add_argument(
        "--prepare",
        type=int,
        metavar="RECORDS",
        help="prepare data/states/{full,nightly}-RECORDS (then measure both)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=_ROOT, help="checkout to import from")
    parser.add_argument("--profile", type=Path, help="cProfile stats of the first repeat")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.profile)
        return
    code = args.code.resolve()
    if args.prepare:
        for state in prepare(args.prepare, _ROOT / "data" / "states", code):
            measure(state, code, args.repeat, None)
        return
    if args.state is None:
        parser.error("give a prepared state (or --prepare RECORDS)")
    measure(args.state.resolve(), code, args.repeat, args.profile)


def measure(state: Path, code: Path, repeat: int, profile: Path | None) -> None:
    """Publish + snapshot on copies of ``state``, ``repeat`` times; print medians."""
    runs = []
    for k in range(repeat):
        with tempfile.TemporaryDirectory(dir=state.parent, prefix=".bench-publish-") as tmp:
            project = _copy_state(state, Path(tmp))
            env = {**os.environ, "PYTHONPATH": str(code)}
            env.setdefault("CUSTOMER_ARCHIVE_CODE_VERSION", "bench")
            cmd = [sys.executable, str(code / "benchmarks" / "bench_publish.py"),
                   "--worker", str(project)]  # fmt: skip
            if profile and k == 0:
                cmd += ["--profile", str(profile)]
            if not (code / "benchmarks" / "bench_publish.py").exists():
                cmd[1] = str(Path(__file__).resolve())
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            lines = [x for x in done.stdout.splitlines() if x.startswith(_PREFIX)]
            if done.returncode or not lines:
                sys.exit(f"worker failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            runs.append(json.loads(lines[-1][len(_PREFIX) :]))
            print(json.dumps(runs[-1]["stages"]), flush=True)
    summary = {
        stage: {
            key: statistics.median(r["stages"][stage][key] for r in runs)
            for key in ("cpu_s", "wall_s")
        }
        for stage in ("publish", "snapshot")
    }
    print(json.dumps({"state": str(state), "code": str(code), "repeat": repeat,
                      "median": summary, "details": runs[0]["details"]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

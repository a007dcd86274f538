"""Golden, quality, publish and snapshot stages alone, on a warehouse stopped before them.

A prepared state is a bench project (``bench_pipeline.py``'s worker folder) whose run was
stopped right before a stage (``CUSTOMER_ARCHIVE_CRASH_AT=<stage>:before``): ``full-<n>``, a
full run of the base delivery stopped before publish; ``nightly-<n>``, the nightly run after a
completed full run, stopped before publish; ``first-<n>``, a full run of the base delivery
stopped before its golden stage (what a first load or a full rebuild does after the match
stage). Each repeat copies the state to a temporary folder, then, in a child process, runs the
stopped run's remaining stages (golden, golden quality, publish, snapshot; or publish and
snapshot) and prints per stage its CPU seconds (user + sys of the process, DuckDB's threads
included), the CPU seconds of the stage's own thread (``main_cpu_s``: what no other core
can take; the rest is DuckDB's threads and the stage's helper threads), wall seconds, the CPU
seconds with the stage's connection closed (``cpu_closed_s``:
its checkpoint included), and resident memory in MB at its start, its own peak (the process's
peak is reset when it starts) and at its end. Great Expectations is imported before the clock
starts (a fixed cost of any validating run). ``--code DIR`` imports the pipeline from another
checkout (e.g. a ``git archive`` of ``main``), so two releases are compared on the same state.

    # prepare data/states/{full,nightly,first}-100000 from the cached bench data, then measure:
    .venv/bin/python benchmarks/bench_publish.py --prepare 100000
    .venv/bin/python benchmarks/bench_publish.py data/states/nightly-100000 --repeat 3
    .venv/bin/python benchmarks/bench_publish.py data/states/first-200000 --code /tmp/main

A nightly state is prepared by the code that will be measured on it only as far as its full
run's publish goes (the mart's and the snapshot cache's state): prepare one per release when
comparing releases that changed what the full publish writes (the masking code, the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

# this checkout's benchmarks/_common.py (the script's folder is first on sys.path, before
# the --code checkout a worker imports the pipeline from)
import _common

_ROOT = Path(__file__).resolve().parents[1]
_PREFIX = "PUBLISH-RESULT "


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    """CPU seconds of the child processes ended so far (the golden build's helpers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker(project: Path, profile: Path | None) -> None:
    """Run the stages left of the stopped run; print the figures."""
    import datetime as dt

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.golden import golden_stage
    from pipelines.stages.publish import snapshot_stage, swap_stage
    from pipelines.stages.quality import quality_stage

    cfg = load_config(project / "archive.yml")
    with open_warehouse(cfg) as con:
        run_id, first = _stopped_run(con)
    if first == "golden":
        import great_expectations  # noqa: F401 - a fixed import cost, kept out of the figures
    # the newest delivery folder (landing/<department>/<YYYY-MM-DD>/) is the run's date
    run_date = max(dt.date.fromisoformat(p.name) for p in (project / "landing").glob("*/*"))
    ctx = RunContext(config=cfg, run_id=run_id, run_date=run_date)
    figures: dict[str, dict[str, float]] = {}
    details: dict[str, object] = {}
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, every thread: load-proof
    stages = [("publish", swap_stage), ("snapshot", snapshot_stage)]
    if first == "golden":
        stages = [("golden", golden_stage), ("quality", quality_stage), *stages]
    for name, fn in stages:
        with open_warehouse(cfg) as con:  # one connection a stage, as the Dagster job opens
            start = _common.resident_mb(reset_peak=True)
            cpu, wall, helpers = _cpu(), time.perf_counter(), _children_cpu()
            main = time.thread_time()
            if profiler is not None:
                profiler.enable()
            result = fn(con, ctx)
            if profiler is not None:
                profiler.disable()
            figures[name] = {
                "cpu_s": round(_cpu() - cpu, 3),
                # this (the stage's) thread alone: the part no other core can take
                "main_cpu_s": round(time.thread_time() - main, 3),
                "wall_s": round(time.perf_counter() - wall, 3),
                "helper_cpu_s": round(_children_cpu() - helpers, 3),
            }
        end = _common.resident_mb()
        figures[name].update(
            # with the connection's close (its checkpoint: what the stage wrote, to the file)
            cpu_closed_s=round(_cpu() - cpu, 3),
            rss_start_mb=start["rss"],
            rss_peak_mb=end["hwm"],
            rss_end_mb=end["rss"],
        )
        details[name] = result.as_dict() if hasattr(result, "as_dict") else None
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    details["hashes"] = _result_hashes(cfg, details)
    print(_PREFIX + json.dumps({"stages": figures, "details": details}, default=str), flush=True)


def _result_hashes(cfg: Any, details: dict[str, Any]) -> dict[str, str]:
    """Content hashes of what the stages wrote (after the clock): every published golden
    table, each full Parquet export (values as text), each analyst mart table (its Parquet
    file, values as text) and the snapshot's manifest content hash, so two checkouts'
    results can be compared."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.access import keyring, open_warehouse
    from warehouse.archive._hashing import table_content_hash
    from warehouse.naming import EXPORTED
    from warehouse.security.mart import analyst_mart_key
    from warehouse.security.mart_delta import read_mart_parquet

    out: dict[str, str] = {}
    with open_warehouse(cfg, read_only=True) as con:
        for table in EXPORTED:
            out[f"golden.{table}"] = table_content_hash(
                con.sql(f"SELECT * FROM golden.{table}").to_arrow_table()
            )
    exports = cfg.resolve(cfg.exports_dir) / "golden"
    for table in EXPORTED:
        for path in (exports / f"{table}.parquet", exports / table):
            if path.exists():
                data = pq.read_table(path)
                text = pa.table({n: data.column(n).cast(pa.string()) for n in data.column_names})
                out[f"export.{table}"] = table_content_hash(text)
    ring = keyring(cfg)
    if ring is not None and cfg.security.analyst_mart_enabled:
        for table in EXPORTED:
            mart = read_mart_parquet(
                cfg.resolve(cfg.security.analyst_mart_parquet),
                f"mart.{table}",
                analyst_mart_key(ring),
            )
            text = pa.table({n: mart.column(n).cast(pa.string()) for n in mart.column_names})
            out[f"mart.{table}"] = table_content_hash(text)
    snapshot = (details.get("snapshot") or {}).get("snapshot")
    if snapshot:
        manifest = json.loads((Path(snapshot) / "manifest.json").read_text(encoding="utf-8"))
        out["snapshot"] = str(manifest["content_hash"])
    return out


def _stopped_run(con) -> tuple[str, str]:
    """The run stopped before its golden stage (match done, no golden) or before its publish
    (golden checks stored, nothing published), and the first stage left: ``golden`` or
    ``publish``."""
    row = con.execute(
        "SELECT run_id FROM ops.stage_stats WHERE stage = 'match'"
        " AND run_id NOT IN (SELECT run_id FROM ops.stage_stats WHERE stage = 'golden') LIMIT 1"
    ).fetchone()
    if row is not None:
        return str(row[0]), "golden"
    (run_id,) = con.execute(
        "SELECT run_id FROM ops.check_results WHERE layer = 'golden'"
        " AND run_id NOT IN (SELECT run_id FROM ops.stage_stats WHERE stage = 'publish')"
        " LIMIT 1"
    ).fetchone()
    return str(run_id), "publish"


def prepare(
    records: int, out: Path, code: Path, kinds: tuple[str, ...] = ("full", "nightly", "first")
) -> list[Path]:
    """Prepared states of ``records`` (bench data cached by ``bench_pipeline.py``).

    ``full-<n>``: the full run of the base delivery stopped before publish; ``nightly-<n>``: a
    completed full run, then the nightly run stopped before publish; ``first-<n>``: the full
    run stopped before its golden stage. The runs use ``bench_pipeline.py``'s scale defaults.
    """
    plans: dict[str, list[tuple[str, str | None]]] = {
        "full": [("full", "publish:before")],
        "nightly": [("full", None), ("incremental", "publish:before")],
        "first": [("full", "golden:before")],
    }
    made = []
    for kind in kinds:
        target = out / f"{kind}-{records}"
        _common.run_stopped(records, target, plans[kind], code=code, scale_json=None)
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
        help="prepare data/states/{full,nightly,first}-RECORDS (then measure each)",
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=["full", "nightly", "first"],
        default=["full", "nightly", "first"],
        help="which states --prepare makes",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--code",
        type=Path,
        nargs="+",
        default=[_ROOT],
        help="checkout(s) to import from; several alternate, repeat by repeat",
    )
    parser.add_argument("--profile", type=Path, help="cProfile stats of the first repeat")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.profile)
        return
    codes = [c.resolve() for c in args.code]
    if args.prepare:
        states = prepare(args.prepare, _ROOT / "data" / "states", codes[0], tuple(args.kinds))
        for state in states:
            measure(state, codes, args.repeat, None)
        return
    if args.state is None:
        parser.error("give a prepared state (or --prepare RECORDS)")
    measure(args.state.resolve(), codes, args.repeat, args.profile)


def measure(state: Path, codes: list[Path], repeat: int, profile: Path | None) -> dict:
    """The stages left on copies of ``state``, ``repeat`` times per checkout; print medians.

    With several checkouts the repeats alternate between them (A, B, A, B, …), so each pair
    is measured side by side under the same machine load.
    """
    runs: dict[Path, list[dict]] = {code: [] for code in codes}
    for k in range(repeat):
        for code in codes:
            runs[code].append(_measure_once(state, code, profile if k == 0 else None))
            print(f"{code}: {json.dumps(runs[code][-1]['stages'])}", flush=True)
    summary = {}
    for code, done in runs.items():
        stages = done[0]["stages"]
        summary[str(code)] = {
            stage: {
                key: statistics.median(r["stages"][stage][key] for r in done)
                for key in stages[stage]
            }
            for stage in stages
        }
    hashes = {str(code): done[0]["details"].get("hashes") for code, done in runs.items()}
    if len(codes) > 1:
        first = next(iter(hashes.values()))
        same = all(h == first for h in hashes.values())
        print(f"results identical across checkouts: {same}", flush=True)
        if not same:
            print(json.dumps(hashes, indent=1), flush=True)
    print(json.dumps({"state": str(state), "repeat": repeat, "load": os.getloadavg(),
                      "median": summary, "details": runs[codes[0]][0]["details"]},
                     indent=1))  # fmt: skip
    return summary


def _measure_once(state: Path, code: Path, profile: Path | None) -> dict:
    """One child process running this file's worker with ``code`` first on its import path."""
    return _common.run_on_state_copy(
        Path(__file__).resolve(), state, code, profile, prefix=_PREFIX, tmp_prefix=".bench-publish-"
    )


if __name__ == "__main__":
    main()

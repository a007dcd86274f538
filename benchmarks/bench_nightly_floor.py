"""The nightly's floor: per-stage CPU of a nightly that changes almost nothing.

A 1 % nightly grows with the warehouse twice over: 1 % of a bigger warehouse is a bigger
change, and some work reads whole tables. Comparing the 1 % nightly at 100 k and 200 k cannot
tell the two apart (both double). This script runs a nightly whose change has a **fixed size**
(``--changed`` marketing leads delivered again with the contact name changed, on
``2026-11-25``) on a saved state, so what still grows from one size to the next is what reads
the warehouse rather than the change:

1. copy ``--state`` (a run folder after the bench's first nightly: ``bench_pipeline.py``'s
   ``--worker incremental`` run kept, or ``BENCH_KEEP_WORKDIR=1``) to a scratch folder;
2. write ``landing/marketing/2026-11-25/leads.jsonl``: the first ``--changed`` leads of the
   size's 1 % delivery (``data/bench/<n>/delta``) with a changed contact name;
3. run the whole job in a child process, per stage CPU seconds as ``bench_pipeline.py``
   counts them (``_count_stage_cpu``: process CPU, DuckDB's threads included).

With ``--cold-read`` it also measures, on the state's warehouse, the CPU of a first and a
second read of each golden table (``count(*), sum(hash(row))``) in a fresh connection: the
first read of a table in a connection decrypts its blocks (DuckDB database encryption), the
second finds them in DuckDB's buffer pool. Each pipeline stage opens its own connection, so
every table a stage reads pays the first read.

    .venv/bin/python benchmarks/bench_nightly_floor.py --state RUN_DIR --records 200000 --repeat 3
    .venv/bin/python benchmarks/bench_nightly_floor.py --state RUN_DIR --cold-read

Nothing is appended to BENCHMARKS.md (the figures go to stdout as one JSON line per run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN_DATE = "2026-11-25"
_PREFIX = "FLOOR "


def changed_leads(delta_file: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` leads of a 1 % delivery with their contact name changed."""
    rows = []
    with delta_file.open(encoding="utf-8") as handle:
        for line in handle:
            if len(rows) == count:
                break
            row = json.loads(line)
            row["contact"] = f"{row.get('contact') or ''}明"
            rows.append(row)
    if len(rows) < count:
        raise ValueError(f"{delta_file} holds fewer than {count} leads")
    return rows


def worker(workdir: Path, leads: Path, stage_cache: str | None = None) -> None:
    """One nightly run on ``workdir`` with ``leads`` delivered (child-process entry point);
    ``stage_cache`` sets ``duckdb.stage_cache`` (default: the project's)."""
    import dagster as dg
    import yaml

    from benchmarks.bench_pipeline import _count_stage_cpu, _write_config
    from pipelines.runner import run_pipeline

    landing = workdir / "landing"
    target = landing / "marketing" / RUN_DATE
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(leads, target / "leads.jsonl")
    cfg_path = _write_config(workdir, landing)
    if stage_cache is not None:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        cfg.setdefault("duckdb", {})["stage_cache"] = stage_cache
        cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    stage_cpu, rss = _count_stage_cpu()
    (workdir / "dagster" / "floor").mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(workdir / "dagster" / "floor"))
    cpu, wall = time.process_time(), time.perf_counter()
    outcome = run_pipeline(cfg_path, run_date=RUN_DATE, instance=instance)
    golden = outcome.stats.golden
    result = {
        "success": outcome.success,
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "golden": None if golden is None else f"{golden.mode}, {golden.customers_rebuilt} rebuilt",
        "stages": {name: round(seconds, 2) for name, seconds in stage_cpu.items()},
        "own_peak_mb": {
            name: round(v["rss_own_peak_mb"]) for name, v in rss.items() if name != "_run"
        },
        "rss_start_mb": {
            name: round(v["rss_start_mb"]) for name, v in rss.items() if name != "_run"
        },
        "peak_rss_mb": round(max(v["peak_rss_mb"] for v in rss.values())),
    }
    print(_PREFIX + json.dumps(result), flush=True)


def _reads(con: Any, names: list[str]) -> dict[str, tuple[int, float, float]]:
    """Per table: rows, CPU of the first and of the second read in this connection."""
    out: dict[str, tuple[int, float, float]] = {}
    for name in names:
        times, rows = [], 0
        for _ in range(2):
            started = time.process_time()
            rows = con.execute(f"SELECT count(*), sum(hash(t)) FROM {name} AS t").fetchone()[0]
            times.append(time.process_time() - started)
        out[name] = (int(rows), round(times[0], 3), round(times[1], 3))
    return out


def cold_read(state: Path) -> dict[str, dict[str, tuple[int, float, float]]]:
    """First and second reads of each golden table: in the (encrypted) warehouse, and in an
    unencrypted copy of the tables (a scratch DuckDB file, each read in a fresh connection)."""
    import duckdb

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from warehouse.naming import EXPORTED

    names = [f"golden.{n}" for n in EXPORTED]
    con = open_warehouse(load_config(state / "archive.yml"), read_only=True)
    with tempfile.TemporaryDirectory(prefix="nightly-floor-") as scratch:
        plain = Path(scratch) / "plain.duckdb"
        try:
            found = {"warehouse": _reads(con, names)}
            con.execute(f"ATTACH '{plain}' AS plain")
            con.execute("CREATE SCHEMA plain.golden")
            for name in names:
                con.execute(f"CREATE TABLE plain.{name} AS SELECT * FROM {name}")
            con.execute("DETACH plain")
        finally:
            con.close()
        copy = duckdb.connect(str(plain), read_only=True)
        try:
            found["unencrypted copy"] = _reads(copy, names)
        finally:
            copy.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="a run folder after a nightly")
    parser.add_argument("--records", type=int, help="bench size of the state (its 1 %% delivery)")
    parser.add_argument("--changed", type=int, default=20, help="marketing leads changed")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cold-read", action="store_true", help="first vs second table reads")
    parser.add_argument("--stage-cache", help="duckdb.stage_cache of the runs, e.g. 0 or 512MiB")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--leads", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.leads, args.stage_cache)
        return
    if args.cold_read:
        for kind, tables in cold_read(args.state).items():
            for name, (rows, first, second) in tables.items():
                print(f"{kind:17s} {name:26s} {rows:>9,} rows  CPU s: first read {first:.3f},"
                      f" second {second:.3f}")  # fmt: skip
            print(f"{kind:17s} all: first {sum(v[1] for v in tables.values()):.3f},"
                  f" second {sum(v[2] for v in tables.values()):.3f}")  # fmt: skip
        return
    if args.records is None:
        parser.error("--records is needed to find the size's 1 % delivery")
    from benchmarks._common import OUT_ROOT

    delta = OUT_ROOT / "data" / "bench" / str(args.records) / "delta" / "marketing"
    files = sorted(delta.glob("*/leads.jsonl"))
    if not files:
        raise SystemExit(f"no marketing delivery under {delta}: run bench_pipeline.py first")
    with tempfile.TemporaryDirectory(prefix="nightly-floor-") as scratch:
        leads = Path(scratch) / "leads.jsonl"
        with leads.open("w", encoding="utf-8") as handle:
            for row in changed_leads(files[0], args.changed):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        for k in range(args.repeat):
            workdir = Path(scratch) / f"run{k}"
            shutil.copytree(args.state, workdir, symlinks=True)
            done = subprocess.run(
                [sys.executable, __file__, "--state", str(args.state), "--worker", str(workdir),
                 "--leads", str(leads),
                 *(["--stage-cache", args.stage_cache] if args.stage_cache else [])],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith(_PREFIX)]
            if done.returncode or not lines:
                raise SystemExit(f"run {k + 1} failed:\n{done.stderr[-3000:]}")
            print(lines[-1].removeprefix(_PREFIX), flush=True)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: the ingest steps of a full run (every source, in the steps' order), standalone.

Each measurement is a fresh process (``worker``) that ingests a landing folder's sources into a
new warehouse one stage call after the other, as the in-process executor runs the
``raw/<source>`` steps (by name), with ``scale.workers`` as given (1: everything in this
process; 2: later sources read ahead in a helper process, `pipelines.ingest_ahead`). It
prints wall and CPU seconds (the process's own, every thread, plus its finished children's:
the helper is waited for inside the last stage that uses it), the process's peak RSS, and
digests computed after the measurement: md5 over every ``raw.<source>`` row (``run_id`` and
``ingested_at`` left out: the clock) in ``(source_file, source_row)`` order, over
``quarantine.rows``, ``quarantine.files``, ``ops.deliveries`` (``run_id`` left out) and
``ops.raw_files`` (``run_id`` left out), and whether every raw row carries its stage's
``ingested_at``.

    .venv/bin/python benchmarks/bench_ingest_stage.py run --landing data/bench/200000/base \\
        --variant /tmp/base:2 --variant .:1 --variant .:2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_DIGESTS = {
    "quarantine.rows": "source_system, source_file, source_row, raw_content, reason",
    "quarantine.files": "source_system, source_file, source_sha256, reason",
    "ops.deliveries": "source_system, path, size, sha256, status, rows_read, mapping_sha256, note",
    "ops.raw_files": "source, source_system, source_file, source_sha256, ingest_day, n",
}


def _digests(con: object, sources: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in sources:
        out[f"raw.{name}"] = con.execute(  # type: ignore[attr-defined]
            f"""SELECT count(*), md5(string_agg(h, '' ORDER BY f, r)) FROM (
                SELECT source_file f, source_row r, md5(CAST(columns(* EXCLUDE (run_id,
                ingested_at)) AS VARCHAR)::VARCHAR) h FROM raw.{name})"""
        ).fetchone()
    for table, columns in _DIGESTS.items():
        out[table] = con.execute(  # type: ignore[attr-defined]
            f"""SELECT count(*), md5(string_agg(h, '' ORDER BY h)) FROM (
                SELECT md5(concat_ws(chr(31), {columns})) h FROM {table})"""
        ).fetchone()
    return out


def worker(code: Path, landing: Path, workers: int) -> None:
    """Ingest every source of ``landing`` into a new warehouse; print the figures as JSON."""
    sys.path.insert(0, str(code))
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages import load_sources
    from pipelines.stages.context import RunContext
    from pipelines.stages.ingest import ingest_stage

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as folder:
        root = Path(folder)
        cfg_path = root / "archive.yml"
        cfg_path.write_text(
            "\n".join(
                [
                    f"landing_dir: {landing.resolve()}",
                    f"sources_file: {code / 'sources' / 'sources.yml'}",
                    "warehouse: state/warehouse.duckdb",
                    "archive_dir: state/archive",
                    "reports_dir: state/reports",
                    "exports_dir: state/exports",
                    "scale:",
                    f"  workers: {workers}",
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        cfg = load_config(cfg_path)
        names = sorted(s.name for s in load_sources(cfg).sources if s.enabled)
        con = open_warehouse(cfg, create_key=True)
        stamps: dict[str, str] = {}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        seconds: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for name in names:  # one RunContext per step, as `ArchiveResource.run_context` gives
            ctx = RunContext(config=cfg, run_id="bench", run_date=date(2026, 11, 23))
            stamps[name] = ctx.ingested_at
            started, cpu_started = time.perf_counter(), time.process_time()
            ingest_stage(con, ctx, name)
            seconds[name] = round(time.perf_counter() - started, 2)
            cpu[name] = round(time.process_time() - cpu_started, 2)
        wall = time.perf_counter() - wall0
        own = time.process_time() - cpu0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        helper_cpu = children.ru_utime + children.ru_stime
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        helper_peak = children.ru_maxrss / 1024
        digests = _digests(con, names)
        stamped = all(
            con.execute(
                f"SELECT bool_and(ingested_at = ?) FROM raw.{name}", [stamps[name]]
            ).fetchone()[0]
            for name in names
        )
        con.close()
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "cpu_s": round(own + helper_cpu, 2),
                "own_cpu_s": round(own, 2),
                "helper_cpu_s": round(helper_cpu, 2),
                "peak_mb": round(peak, 1),
                "helper_peak_mb": round(helper_peak, 1),
                "steps_s": seconds,
                "steps_own_cpu_s": cpu,
                "stage_stamp": stamped,
                "load": os.getloadavg()[0],
                "digests": digests,
            },
            default=str,
        )
    )


def run(variants: list[tuple[Path, int]], landing: Path, repeat: int) -> None:
    """Measure every (code, workers) ``repeat`` times, interleaved; print runs and medians."""
    results: dict[tuple[str, int], list[dict]] = {(str(c), w): [] for c, w in variants}
    for _ in range(repeat):
        for code, count in results:
            out = subprocess.run(
                [sys.executable, __file__, "worker", "--code", code, "--landing", str(landing),
                 "--workers", str(count)],
                capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": code},
            )  # fmt: skip
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            results[(code, count)].append(figures)
            shown = {k: v for k, v in figures.items() if k != "digests"}
            print(code, count, json.dumps(shown), flush=True)
    reference = None
    for (code, count), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "own_cpu_s")}
        peak = statistics.median(r["peak_mb"] for r in runs)
        helper_peak = statistics.median(r["helper_peak_mb"] for r in runs)
        digests = {json.dumps(r["digests"], sort_keys=True) for r in runs}
        reference = reference or digests
        print(
            f"MEDIAN {code} workers={count}: wall {med['wall_s']:.2f} s, CPU {med['cpu_s']:.2f} s "
            f"(own {med['own_cpu_s']:.2f}), peak {peak:.0f} MB (helper {helper_peak:.0f} MB); "
            f"digests {'equal' if digests == reference and len(digests) == 1 else 'DIFFER'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    work = sub.add_parser("worker")
    work.add_argument("--code", type=Path, required=True)
    work.add_argument("--landing", type=Path, required=True)
    work.add_argument("--workers", type=int, default=1)
    bench = sub.add_parser("run")
    bench.add_argument("--landing", type=Path, required=True)
    bench.add_argument("--variant", action="append", required=True, help="CODE:WORKERS")
    bench.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.command == "worker":
        worker(args.code.resolve(), args.landing, args.workers)
    else:
        variants = [
            (Path(v.rsplit(":", 1)[0]).resolve(), int(v.rsplit(":", 1)[1])) for v in args.variant
        ]
        run(variants, args.landing.resolve(), args.repeat)


if __name__ == "__main__":
    main()

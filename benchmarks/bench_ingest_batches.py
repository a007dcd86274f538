"""Benchmark: one source's ingest (read, check, persist) of one large file, whole vs in batches.

Each measurement runs in a fresh process (``worker``) that ingests one landing folder's source
into a new DuckDB warehouse as the ingest stage does: ``ingest_source`` then
``persist_delivery`` (with ``RawStaging`` as the batch sink when the code has it and
``--batch-rows`` is given). It prints CPU seconds (user + system), peak RSS and the RSS
after imports, then a digest (md5 over ``raw.<source>`` and ``quarantine.rows`` in
``(source_file, source_row)`` order, ``run_id`` left out) computed after the measurement.

    .venv/bin/python benchmarks/bench_ingest_batches.py make --from <sales.csv> --rows 1000000 \\
        --out /tmp/x/csv1m/sales/2026-11-23/crm_customers.csv
    .venv/bin/python benchmarks/bench_ingest_batches.py run --code /tmp/base --code . \\
        --landing /tmp/x/csv1m --source sales --batch-rows 100000 --repeat 3
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_csv(origin: Path, rows: int, out: Path) -> None:
    """Write ``rows`` data rows of ``origin`` (a sales export), repeated with new ids.

    Copy k > 0 of a row has its id's leading ``KH`` replaced by ``C<k>``: no copy repeats an
    earlier row; the encoding and the line endings stay the original's.
    """
    sys.path.insert(0, str(ROOT))
    from sources.encoding import SAMPLE_BYTES, detect_encoding

    data = origin.read_bytes()
    encoding = detect_encoding(data[:SAMPLE_BYTES])
    header, *lines = data.decode(encoding).splitlines(keepends=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding=encoding, newline="") as stream:
        stream.write(header)
        written = copy = 0
        while written < rows:
            for line in lines[: rows - written]:
                stream.write(line if copy == 0 else f"C{copy}{line.removeprefix('KH')}")
            written += min(len(lines), rows - written)
            copy += 1


def worker(code: Path, landing: Path, source_name: str, batch_rows: int | None) -> None:
    """Ingest one source into a new warehouse; print the figures as one JSON line."""
    sys.path.insert(0, str(code))
    import duckdb

    from sources import CANONICAL_FIELDS, ingest_source, load_sources_config
    from warehouse import ensure_schemas
    from warehouse import raw as raw_layer

    start_rss = _rss_mb()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    config = load_sources_config(
        code / "sources" / "sources.yml", landing_dir=landing, check_files=False
    )
    source = config.source(source_name)
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "w.duckdb"))
        if os.environ.get("BENCH_DUCKDB_MEMORY"):  # e.g. 512MB; unset: DuckDB's default
            con.execute("SET memory_limit = ?", [os.environ["BENCH_DUCKDB_MEMORY"]])
        ensure_schemas(con)
        staging = None
        kwargs: dict[str, object] = {}
        if batch_rows is not None:
            staging = raw_layer.RawStaging("bench")
            kwargs = {"batch_rows": batch_rows, "sink": staging}
        result = ingest_source(source, landing, "bench", "2026-12-06T00:00:00", None, **kwargs)
        read_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        read_cpu = time.process_time() - cpu0
        extra = {"staged": staging} if staging is not None else {}
        raw_layer.persist_delivery(
            con,
            source_name,
            CANONICAL_FIELDS,
            result.rows,
            result.superseded_files,
            {
                "quarantine.rows": result.quarantined_rows,
                "quarantine.files": result.quarantined_files,
                "ops.deliveries": result.manifest_rows("bench"),
            },
            "bench",
            **extra,
        )
        if staging is not None:
            staging.close()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        digest = con.execute(
            f"""SELECT md5(string_agg(h, '' ORDER BY f, r)) FROM (
                SELECT source_file f, source_row r, md5(CAST(columns(* EXCLUDE (run_id)) AS
                VARCHAR)::VARCHAR) h FROM raw.{source_name})"""
        ).fetchone()
        quarantine = con.execute(
            """SELECT count(*), md5(string_agg(h, '' ORDER BY f, r, h)) FROM (
                SELECT source_file f, source_row r, md5(concat_ws(chr(31), source_file,
                source_row, raw_content, reason)) h FROM quarantine.rows)"""
        ).fetchone()
        kept = con.execute(f"SELECT count(*) FROM raw.{source_name}").fetchone()
        con.close()
    print(
        json.dumps(
            {
                "cpu_s": round(cpu, 2),
                "wall_s": round(wall, 2),
                "peak_mb": round(peak, 1),
                "read_cpu_s": round(read_cpu, 2),
                "read_peak_mb": round(read_peak, 1),
                "start_mb": round(start_rss, 1),
                "kept": kept[0] if kept else None,
                "quarantined": quarantine[0] if quarantine else None,
                "raw_digest": digest[0] if digest else None,
                "quarantine_digest": quarantine[1] if quarantine else None,
            }
        )
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(codes: list[Path], landing: Path, source: str, batch_rows: str, repeat: int) -> None:
    """Measure every code ``repeat`` times, interleaved; print one line per run and medians."""
    results: dict[str, list[dict[str, float]]] = {str(c): [] for c in codes}
    for _ in range(repeat):
        for code in codes:
            rows = (
                "none"
                if code != ROOT and not (code / "sources" / "batch_state.py").exists()
                else batch_rows
            )
            out = subprocess.run(
                [sys.executable, __file__, "worker", "--code", str(code), "--landing",
                 str(landing), "--source", source, "--batch-rows", rows],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            results[str(code)].append(figures)
            print(code, rows, json.dumps(figures), flush=True)
    for code, runs in results.items():
        cpu = statistics.median(r["cpu_s"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        start = statistics.median(r["start_mb"] for r in runs)
        print(f"MEDIAN {code}: cpu {cpu:.2f} s, peak {peak:.1f} MB (start {start:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make")
    make.add_argument("--from", dest="origin", type=Path, required=True)
    make.add_argument("--rows", type=int, required=True)
    make.add_argument("--out", type=Path, required=True)
    work = sub.add_parser("worker")
    work.add_argument("--code", type=Path, required=True)
    work.add_argument("--landing", type=Path, required=True)
    work.add_argument("--source", required=True)
    work.add_argument("--batch-rows", default="none")
    bench = sub.add_parser("run")
    bench.add_argument("--code", type=Path, action="append", required=True)
    bench.add_argument("--landing", type=Path, required=True)
    bench.add_argument("--source", required=True)
    bench.add_argument("--batch-rows", default="100000")
    bench.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.command == "make":
        make_csv(args.origin, args.rows, args.out)
    elif args.command == "worker":
        rows = None if args.batch_rows == "none" else int(args.batch_rows)
        worker(args.code.resolve(), args.landing, args.source, rows)
    else:
        run([c.resolve() for c in args.code], args.landing, args.source, args.batch_rows,
            args.repeat)  # fmt: skip


if __name__ == "__main__":
    main()

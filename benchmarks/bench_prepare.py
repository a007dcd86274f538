"""`dedupe.prepare_records` alone on a warehouse's `clean.records`: CPU, wall, peak, by chunk size.

Each run is a child process that reads the columns a full match reads
(`dedupe.record_columns`) from a state's warehouse (``bench_match_stage.py --prepare N
--full``; opened read-only with the state's configuration and key), resets its peak (``VmHWM``)
and prepares the records with ``chunk_records`` (``0`` = every record at once; ignored by a
checkout without the argument).
It prints CPU seconds (user + sys, this process only: DuckDB is not running), wall seconds, the
peak above the resident memory before preparing, the memory still held after, and a content
hash of the prepared frame, so variants (``--variants CHUNK:HELPERS``: chunk size, helper
processes) and checkouts can be compared; with helpers, their CPU and the largest one's peak
too. Runs alternate variant by variant (and checkout by checkout) repeat by repeat.

    .venv/bin/python benchmarks/bench_prepare.py STATES/prematch-full-200000 \\
        --variants 0:0 100000:0 100000:1 --repeat 3 --code /work/x-base .
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_PREFIX = "PREPARE-RESULT "
_FIGURES = ("cpu_s", "wall_s", "peak_above_mb", "held_mb", "helper_cpu_s", "helper_peak_mb")


def _child(state: str, chunk: int, helpers: int) -> None:
    import hashlib
    import inspect
    import resource
    import time

    import pandas as pd

    from dedupe.prepare import prepare_records, record_columns
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from warehouse import read_table, table_columns

    cfg = load_config(Path(state) / "archive.yml")
    settings = cfg.matching
    con = open_warehouse(cfg, read_only=True)
    # read as the match stage reads them (`_records_to_link`)
    columns = [c for c in table_columns(con, "clean.records") if c in record_columns(settings)]
    records = read_table(con, "clean.records", columns)
    con.close()
    kwargs = {}
    if "chunk_records" in inspect.signature(prepare_records).parameters:
        kwargs["chunk_records"] = chunk or None
    if helpers:
        kwargs["helpers"] = helpers
    Path("/proc/self/clear_refs").write_text("5")
    before = _status()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start_cpu, start = usage.ru_utime + usage.ru_stime, time.perf_counter()
    prepared = prepare_records(records, settings, **kwargs)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - start_cpu
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = _status()
    digest = hashlib.sha256()
    for column in prepared.columns:
        values = prepared[column]
        digest.update(f"{column}:{values.dtype}".encode())
        digest.update(pd.util.hash_pandas_object(values.astype(object), index=False).values)
    result = {
        "records": len(records),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "rss_before_mb": before["VmRSS"],
        "peak_above_mb": round(after["VmHWM"] - before["VmRSS"], 1),
        "held_mb": round(after["VmRSS"] - before["VmRSS"], 1),
        "helper_cpu_s": round(kids.ru_utime + kids.ru_stime, 2),
        "helper_peak_mb": round(kids.ru_maxrss / 1024, 1),
        "hash": digest.hexdigest()[:16],
    }
    print(_PREFIX + json.dumps(result), flush=True)


def _status() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":", 1)
            fields[key] = round(float(value.split()[0]) / 1024, 1)
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", nargs="?")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["0:0"],
        help="CHUNK:HELPERS pairs (chunk_records, 0 = all at once; helper processes)",
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--code", nargs="+", default=["."])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    runs: dict[tuple[str, int, int], list[dict]] = {}
    state = str(Path(args.state).resolve())
    for _ in range(args.repeat):
        for code in args.code:
            root = Path(code).resolve()
            python = root / ".venv" / "bin" / "python"
            for variant in args.variants:
                chunk, helpers = (int(x) for x in variant.split(":"))
                env = dict(os.environ, PYTHONPATH=str(root))
                out = subprocess.run(
                    [str(python), str(Path(__file__).resolve()), "--child", state,
                     str(chunk), str(helpers)],
                    cwd=root, env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                line = next(x for x in out.stdout.splitlines() if x.startswith(_PREFIX))
                result = json.loads(line[len(_PREFIX) :])
                runs.setdefault((code, chunk, helpers), []).append(result)
                print(code, chunk, helpers, result, flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")
    for (code, chunk, helpers), results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in _FIGURES}
        hashes = sorted({r["hash"] for r in results})
        print(f"{code} chunk={chunk} helpers={helpers}: median {med} hashes {hashes}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

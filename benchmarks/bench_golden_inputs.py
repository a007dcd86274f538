"""Publishing ``match.golden_inputs`` after a nightly: whole copy vs DELETE + INSERT (CPU s).

On copies of a state prepared by ``bench_publish.py --prepare RECORDS`` (the nightly run
stopped before its publish, so ``staging.golden_inputs`` is the delta view), each repeat
publishes the staged inputs one way in a transaction, commits and checkpoints (what closing
the connection does anyway), in a child process, and prints its CPU seconds (user + sys of the
process, DuckDB's threads included: load-proof). The two ways alternate.

    .venv/bin/python benchmarks/bench_golden_inputs.py data/states/nightly-100000 --repeat 3
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
from pathlib import Path

_PREFIX = "INPUTS-RESULT "


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(project: Path, way: str) -> None:
    """Publish the staged inputs ``way`` (``copy`` or ``delta``); print CPU s and row counts."""
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from warehouse.archive.tables import swap_tables
    from warehouse.golden_delta import INPUTS_TABLE, state_swap

    cfg = load_config(project / "archive.yml")
    with open_warehouse(cfg) as con:
        copies, updates = state_swap(con)
        if INPUTS_TABLE not in updates:
            sys.exit("the staged inputs are not a delta view: prepare a nightly state")
        (staged,) = con.execute("SELECT count(*) FROM staging.golden_inputs").fetchone()
        if way == "copy":
            copies, updates = {**copies, INPUTS_TABLE: "staging.golden_inputs"}, {}
        (replaced,) = con.execute("SELECT count(*) FROM staging._golden_inputs_replaced").fetchone()
        cpu = _cpu()
        swap_tables(con, copies, row_updates=updates)
        con.execute("CHECKPOINT")
        spent = _cpu() - cpu
        (published,) = con.execute(f"SELECT count(*) FROM {INPUTS_TABLE}").fetchone()
    assert published == staged
    result = {"way": way, "cpu_s": round(spent, 3), "rows": published, "replaced": replaced}
    print(_PREFIX + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=("copy", "delta"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.state, args.worker)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_publish import _copy_state

    state = args.state.resolve()
    runs: dict[str, list[dict]] = {"copy": [], "delta": []}
    for _ in range(args.repeat):
        for way in runs:
            with tempfile.TemporaryDirectory(dir=state.parent, prefix=".bench-inputs-") as tmp:
                project = _copy_state(state, Path(tmp))
                cmd = [sys.executable, __file__, str(project), "--worker", way]
                env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                lines = [x for x in done.stdout.splitlines() if x.startswith(_PREFIX)]
                if done.returncode or not lines:
                    sys.exit(f"worker failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
                runs[way].append(json.loads(lines[-1][len(_PREFIX) :]))
                print(json.dumps(runs[way][-1]), flush=True)
    medians = {way: statistics.median(r["cpu_s"] for r in rs) for way, rs in runs.items()}
    print(json.dumps({"state": str(state), "repeat": args.repeat, "median_cpu_s": medians}))


if __name__ == "__main__":
    main()

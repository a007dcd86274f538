"""The nightly match stage alone, as the pipeline runs it, on a warehouse stopped before it.

A prepared state (``--prepare N``) is a bench project (``bench_pipeline.py``'s worker folder,
the cached bench data of N records) whose full run completed and whose nightly run was stopped
right before its match stage (``CUSTOMER_ARCHIVE_CRASH_AT=match:before``): ingest and clean of
the night are done, the clean change log written. Each repeat copies the state to a temporary
folder and, in a child process, runs ``pipelines.stages.match.match_stage`` on it (one
connection, opened as a stage opens the warehouse) and prints its CPU seconds (user + sys of
the process, DuckDB's threads included), wall seconds, its own peak resident memory (the
process's peak is reset when the stage starts), the phase running at that peak (a thread reads
``VmRSS`` every 10 ms; phases are the stage's steps, see ``_PHASES``) and content hashes of
every ``match.*`` table and the match log it wrote (without timestamps and ``*_at`` columns:
when the run ran), so two checkouts' results can be compared. ``--code DIR ...`` imports the
pipeline from other checkouts (e.g. a ``git archive`` of ``main``), alternating repeat by
repeat; ``--profile FILE`` writes cProfile stats (CPU clock) of the first repeat.

    .venv/bin/python benchmarks/bench_match_stage.py --prepare 200000 --states /tmp/states
    .venv/bin/python benchmarks/bench_match_stage.py /tmp/states/prematch-200000 --repeat 3 \\
        --code /tmp/main .
    .venv/bin/python benchmarks/bench_match_stage.py /tmp/states/prematch-200000 --repeat 1 \\
        --profile /tmp/match.prof
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

# this checkout's benchmarks/_common.py (the script's folder is first on sys.path, before
# the --code checkout a worker imports the pipeline from)
import _common

_ROOT = Path(__file__).resolve().parents[1]
_PREFIX = "MATCH-STAGE-RESULT "
_PHASES = (
    ("pipelines.stages.match", "match_inputs", "plan"),
    ("pipelines.stages.match", "link", "link"),
    ("dedupe.incremental", "_prepare_change", "link: prepare change"),
    ("dedupe.incremental", "_link", "link: score + cluster"),
    ("warehouse.match_subset", "StoredSubset.reach", "link: reach (pass 1 read)"),
    ("warehouse.match_subset", "StoredSubset.grow", "link: grow (pass 2 read)"),
    ("pipelines.stages.match", "write_match", "write"),
    ("warehouse.match_state", "write_match_delta", "write: delta"),
    ("warehouse.match_state", "_changed_rows", "write: changed rows"),
)
"""(module, function, label) of the steps the peak is located in (innermost running wins;
a step missing from a checkout is skipped)."""




def _hashes(con: Any) -> dict[str, str]:
    """Content hashes of every ``match.*`` table and of the match log (``ops``)."""
    from warehouse.archive._hashing import table_content_hash

    out = {}
    tables = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
        " WHERE schema_name = 'match' OR table_name LIKE '%match%' ORDER BY 1"
    ).fetchall()
    for (name,) in tables:
        described = con.sql(f"SELECT * FROM {name} LIMIT 0")
        cols = [c for c, t in zip(described.columns, described.types, strict=True)
                if "TIMESTAMP" not in str(t) and not c.endswith("_at")]  # fmt: skip
        listed = ", ".join(f'"{c}"' for c in cols)
        table = con.sql(f"SELECT {listed} FROM {name} ORDER BY ALL").to_arrow_table()
        out[name] = f"{table.num_rows}:{table_content_hash(table)}"
    return out


def worker(project: Path, profile: Path | None, sql: bool = False) -> None:
    """Run the match stage of the stopped nightly; print the figures (`sql`: not timed here)."""
    import datetime as dt

    import great_expectations  # noqa: F401 - a fixed import cost, kept out of the figures

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.match import match_stage

    cfg = load_config(project / "archive.yml")
    with open_warehouse(cfg) as con:
        (run_id,) = con.execute(
            "SELECT run_id FROM ops.stage_stats WHERE stage = 'clean' AND run_id NOT IN"
            " (SELECT run_id FROM ops.stage_stats WHERE stage = 'match')"
        ).fetchone() or (None,)
    if run_id is None:
        sys.exit(f"{project}: no run stopped before its match stage")
    run_date = max(dt.date.fromisoformat(p.name) for p in (project / "landing").glob("*/*"))
    ctx = RunContext(config=cfg, run_id=str(run_id), run_date=run_date)
    phases = _common.StepPhases()
    phases.wrap_steps(_PHASES)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
    with open_warehouse(cfg) as con:
        start = _common.status_mb()
        Path("/proc/self/clear_refs").write_text("5")
        phases.start()
        cpu, wall = _common.process_cpu(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        stats = match_stage(con, ctx)
        if profiler is not None:
            profiler.disable()
        cpu, wall = _common.process_cpu() - cpu, time.perf_counter() - wall
        phases.stop()
        end = _common.status_mb()
        hashes = _hashes(con)
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    top = max(phases.peaks.items(), key=lambda kv: kv[1]) if phases.peaks else ("-", 0.0)
    result = {
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "rss_start_mb": round(start["VmRSS"], 1),
        "peak_mb": round(end["VmHWM"], 1),
        "rss_end_mb": round(end["VmRSS"], 1),
        "peak_phase": top[0],
        "phase_peaks_mb": {k: round(v, 1) for k, v in phases.peaks.items()},
        "phase_cpu_s": {k: round(v, 2) for k, v in phases.cpu.items()},
        "phase_start_mb": {k: round(v, 1) for k, v in phases.entered.items()},
        "stats": stats.as_dict(),
        "hashes": hashes,
    }
    print(_PREFIX + json.dumps(result, default=str), flush=True)


def main() -> None:
    _common.stage_bench_main(__doc__ or "", Path(__file__).resolve(), "match", "match.*",
                             _PREFIX, worker)


if __name__ == "__main__":
    main()

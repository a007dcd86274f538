"""The clean and golden quality suites of a full run, alone, on a warehouse stopped before publish.

A prepared state (``--prepare N``) is a bench project (``bench_pipeline.py``'s worker folder,
the cached bench data of N records) whose full run was stopped right before its publish stage
(``CUSTOMER_ARCHIVE_CRASH_AT=publish:before``): ``clean.records`` and the staged golden state
are there. Each repeat copies the state to a temporary folder and, in a child process, runs
``pipelines.stages.quality.clean_quality_stage`` then ``quality_stage`` (the golden suite)
under the stopped run's id, as the pipeline runs them after a full clean and a full golden
build, and prints the CPU seconds (user + sys of the process, DuckDB's threads included),
wall seconds and peak resident memory of the two together (the peak reset at the start) and
per suite (``phase_*``: ``clean suite``, ``golden suite``; peaks sampled), with content hashes
of the check tables they write (``ops.check_results`` without timestamps, the stored failing
keys), so two checkouts' outcomes can be compared. Great Expectations is imported and its
context created before the clock starts (a fixed cost of any validating run). ``--code DIR
...`` imports the pipeline from other checkouts (e.g. a ``git archive`` of ``main``),
alternating repeat by repeat; ``--profile FILE`` writes cProfile stats of the first repeat;
``BENCH_SUITE_CHUNK_ROWS=N`` sets the suites' rows per chunk (a checkout that has
``SUITE_CHUNK_ROWS``).

    .venv/bin/python benchmarks/bench_quality_suites.py --prepare 200000 --full --states /tmp/s
    .venv/bin/python benchmarks/bench_quality_suites.py /tmp/s/prepublish-full-200000 \\
        --repeat 3 --code /tmp/main .
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# this checkout's benchmarks/_common.py (the script's folder is first on sys.path, before
# the --code checkout a worker imports the pipeline from)
import _common

_PREFIX = "QUALITY-SUITES-RESULT "
_PHASES = (
    ("pipelines.stages.quality", "clean_quality_stage", "clean suite"),
    ("pipelines.stages.quality", "quality_stage", "golden suite"),
)


class _Stats:
    def __init__(self, outcomes: dict[str, int]) -> None:
        self.outcomes = outcomes

    def as_dict(self) -> dict[str, Any]:
        return dict(self.outcomes)


def worker(project: Path, profile: Path | None, sql: bool = False) -> None:
    """Run the clean and golden suites of the stopped full run; print the figures."""
    import datetime as dt

    from expectations._gx_runner import gx_context
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages import quality
    from pipelines.stages.context import RunContext

    gx_context()  # GX's import and context: a fixed cost, kept out of the figures
    chunk = os.environ.get("BENCH_SUITE_CHUNK_ROWS")
    if chunk and hasattr(quality, "SUITE_CHUNK_ROWS"):  # a checkout that chunks
        quality.SUITE_CHUNK_ROWS = int(chunk)  # type: ignore[attr-defined]
    cfg = load_config(project / "archive.yml")
    with open_warehouse(cfg) as con:
        (run_id,) = con.execute(
            "SELECT run_id FROM ops.check_results WHERE layer = 'golden'"
            " AND run_id NOT IN (SELECT run_id FROM ops.stage_stats WHERE stage = 'publish')"
            " LIMIT 1"
        ).fetchone()
    run_date = max(dt.date.fromisoformat(p.name) for p in (project / "landing").glob("*/*"))
    ctx = RunContext(config=cfg, run_id=str(run_id), run_date=run_date)

    def run(con: Any) -> _Stats:
        clean = quality.clean_quality_stage(con, ctx)
        golden = quality.quality_stage(con, ctx)
        return _Stats(
            {
                "clean_failed": sum(not o.success for o in clean),
                "golden_failed": sum(not o.success for o in golden),
            }
        )

    result = _common.measure_stage(
        lambda: open_warehouse(cfg),
        run,
        _PHASES,
        profile,
        "table_name IN ('check_results') OR table_name LIKE '%check_failures%'",
    )
    print(_PREFIX + json.dumps(result, default=str), flush=True)


def main() -> None:
    _common.stage_bench_main(
        __doc__ or "",
        Path(__file__).resolve(),
        "publish",
        "ops check tables",
        _PREFIX,
        worker,
    )


if __name__ == "__main__":
    main()

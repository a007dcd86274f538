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
repeat; ``--profile FILE`` writes cProfile stats (CPU clock) of the first repeat; ``--sql`` times
every DuckDB statement of the stage (``bench_clean_stage``'s connection proxy; adds overhead).

    .venv/bin/python benchmarks/bench_match_stage.py --prepare 200000 --states /tmp/states
    .venv/bin/python benchmarks/bench_match_stage.py /tmp/states/prematch-200000 --repeat 3 \\
        --code /tmp/main .
    .venv/bin/python benchmarks/bench_match_stage.py /tmp/states/prematch-200000 --repeat 1 \\
        --profile /tmp/match.prof

``--reach-cache MIB,MARGIN`` runs the reads under DuckDB's bound as a larger warehouse meets
it: `StoredSubset`'s memory limit MIB and `release_cached_blocks`' margin MARGIN (MiB), set in
each child. At 200 k the default margin (64 MiB) holds every block of ``match.pairs`` (≈ 54 MB),
so pass 2 and the write find them cached; at 1 M (≈ 380 MB) they are let go after each pass and
read (decrypted) again. ``--reach-cache 1024,13`` (the margin scaled by 200 k / 1 M) lets them
go at 200 k too (BENCHMARKS.md, "Nightly match stage: the cold reads of a 1 M night reproduced
at 200 k")."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# this checkout's benchmarks/_common.py (the script's folder is first on sys.path, before
# the --code checkout a worker imports the pipeline from)
import _common
from bench_clean_stage import _SqlTimes, _Timed


class _StatementTimes(_SqlTimes):
    """`_SqlTimes` keyed by a statement's start and end (the link's reads differ in their
    ``WHERE``, after a long column list)."""

    def add(self, sql: str, seconds: float, call: bool) -> None:
        text = " ".join(sql.split())
        super().add(text if len(text) <= 160 else f"{text[:90]} … {text[-70:]}", seconds, call)


_PREFIX = "MATCH-STAGE-RESULT "
_PHASES = (
    ("pipelines.stages.match", "match_inputs", "plan"),
    ("pipelines.stages.match", "link", "link"),
    ("dedupe.incremental", "_prepare_change", "link: prepare change"),
    ("dedupe.incremental", "_link", "link: score + cluster"),
    ("warehouse.match_subset", "StoredSubset.reach", "link: reach (pass 1 read)"),
    ("warehouse.match_subset", "StoredSubset.grow", "link: grow (pass 2 read)"),
    # the full run's link (`dedupe.link.link_compact`), step by step
    ("dedupe.prepare", "prepare_records", "link: prepare"),
    ("dedupe.link", "arrow_text_columns", "link: Arrow text"),
    ("dedupe.blocking", "generate_candidate_codes", "link: blocking"),
    ("dedupe.scoring", "levels_and_hard_codes", "link: levels + hard rules"),
    ("dedupe.scoring", "_estimate", "link: EM"),
    ("dedupe.assemble", "assemble_compact", "link: assemble"),
    ("dedupe.assemble", "cluster_pairs", "link: assemble: cluster"),
    ("pipelines.stages.match", "write_match", "write"),
    ("warehouse.match_state", "write_match_delta", "write: delta"),
    ("warehouse.match_state", "_changed_rows", "write: changed rows"),
)
"""(module, function, label) of the steps the peak is located in (innermost running wins;
a step missing from a checkout is skipped)."""


def worker(project: Path, profile: Path | None, sql: bool = False) -> None:
    """Run the match stage of the stopped nightly; print the figures (`sql`: every statement's
    CPU too)."""
    import datetime as dt

    import great_expectations  # noqa: F401 - a fixed import cost, kept out of the figures

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.match import match_stage

    _reach_cache(os.environ.get(_REACH_CACHE))
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
    times = _StatementTimes()
    result = _common.measure_stage(
        lambda: open_warehouse(cfg),
        lambda con: match_stage(_Timed(con, times) if sql else con, ctx),  # type: ignore[arg-type]
        _PHASES,
        profile,
        # every match.* table and the match log (ops)
        "schema_name = 'match' OR table_name LIKE '%match%'",
    )
    result["sql_cpu_s"] = dict(sorted(((k, round(v, 3)) for k, v in times.cpu.items()),
                                      key=lambda kv: -kv[1])[:40]) if sql else {}  # fmt: skip
    result["sql_calls"] = times.calls if sql else {}
    print(_PREFIX + json.dumps(result, default=str), flush=True)


_REACH_CACHE = "BENCH_REACH_CACHE"
"""The children's ``MIB,MARGIN`` (``--reach-cache``)."""


def _reach_cache(value: str | None) -> None:
    """Set `StoredSubset`'s default memory bound and `release_cached_blocks`' default margin
    (``MIB,MARGIN``) in this process; None: leave the code's defaults."""
    if not value:
        return
    import warehouse.match_subset as subset

    mib, margin = (int(v) for v in value.split(","))
    init = subset.StoredSubset.__init__
    defaults = list(init.__defaults__ or ())
    if not defaults:
        sys.exit("StoredSubset takes no memory bound in this checkout")
    defaults[-1] = mib
    init.__defaults__ = tuple(defaults)
    subset.release_cached_blocks.__defaults__ = (margin,)


def main() -> None:
    if "--reach-cache" in sys.argv:  # (for the children: an environment variable)
        at = sys.argv.index("--reach-cache")
        os.environ[_REACH_CACHE] = sys.argv[at + 1]
        del sys.argv[at : at + 2]
    _common.stage_bench_main(
        __doc__ or "", Path(__file__).resolve(), "match", "match.*", _PREFIX, worker, sql=True
    )


if __name__ == "__main__":
    main()

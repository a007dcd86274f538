"""The nightly clean stage alone, as the pipeline runs it, on a warehouse stopped before it.

A prepared state (``--prepare N``) is a bench project (``bench_pipeline.py``'s worker folder,
the cached bench data of N records) whose full run completed and whose nightly run (1 % new
records + the sales CRM's whole export again) was stopped right before its clean stage
(``CUSTOMER_ARCHIVE_CRASH_AT=clean:before``): the night's ingest is done. Each repeat copies
the state to a temporary folder and, in a child process, runs
``pipelines.stages.clean.clean_stage`` on it (one connection, opened as a stage opens the
warehouse) and prints its CPU seconds (user + sys of the process, DuckDB's threads included),
wall seconds, peak resident memory, CPU per step (see ``_PHASES``) and content hashes of every
``clean.*`` table, the clean change log, the clean scope and the version state (without
timestamps and ``*_at`` columns), so two checkouts' results can be compared. ``--code DIR ...``
imports the pipeline from other checkouts (e.g. a ``git archive`` of ``main``), alternating
repeat by repeat; ``--profile FILE`` writes cProfile stats (CPU clock) of the first repeat;
``--sql`` adds the CPU seconds of every DuckDB statement (a connection proxy) to the output
(each ``COMMIT`` apart: ``COMMIT #1`` is the version state's); ``BENCH_STAGE_CHECKPOINT=1``
checkpoints the state before the stage, outside the figures (a state stopped by a crash holds
the night's ingest in its WAL: the stage's first large commit would pay its checkpoint).

    .venv/bin/python benchmarks/bench_clean_stage.py --prepare 200000 --states /tmp/states
    .venv/bin/python benchmarks/bench_clean_stage.py /tmp/states/preclean-200000 --repeat 3 \\
        --code /tmp/main .
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# this checkout's benchmarks/_common.py (the script's folder is first on sys.path, before
# the --code checkout a worker imports the pipeline from)
import _common

_PREFIX = "CLEAN-STAGE-RESULT "
_PHASES = (
    ("warehouse.clean_delta", "stage_current_versions", "versions"),
    ("warehouse.versions", "create_version_views", "version views"),
    ("pipelines.stages.clean", "_incremental", "incremental"),
    ("cleaning", "date_orders", "date orders"),
    ("warehouse.clean_delta", "distinct_date_values", "distinct dates"),
    ("warehouse.clean_delta", "find_changes", "find changes"),
    ("warehouse.clean_delta", "current_rows", "current rows"),
    ("cleaning.incremental", "clean_batch", "clean batch"),
    ("warehouse.clean_delta", "shared_phones_now", "shared phones now"),
    ("warehouse.clean_delta", "shared_phone_candidates", "phone candidates"),
    ("cleaning.incremental", "switchboards", "switchboards"),
    ("warehouse.clean_delta", "flag_mismatches", "flag mismatches"),
    ("warehouse.clean_delta", "unmapped_candidates", "unmapped candidates"),
    ("warehouse.clean_delta", "apply_clean_delta", "write"),
)
"""(module, function, label) of the steps the CPU and the peak are located in (innermost
a step missing from a checkout is skipped)."""


class _SqlTimes:
    """CPU seconds (process clock: DuckDB's threads included) per SQL text, summed over its
    ``execute``/``sql`` call and the fetches of its result."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, sql: str, seconds: float, call: bool) -> None:
        key = " ".join(sql.split())[:160]
        if key.upper() == "COMMIT":  # each transaction's commit apart (the version state's first)
            key = f"COMMIT #{self.calls.get('#commits', 0) + int(call)}"
            if call:
                self.calls["#commits"] = self.calls.get("#commits", 0) + 1
        self.cpu[key] = self.cpu.get(key, 0.0) + seconds
        if call:
            self.calls[key] = self.calls.get(key, 0) + 1


class _Timed:
    """A DuckDB connection or relation whose query methods are timed under one SQL text."""

    _QUERY = frozenset({"execute", "sql", "query"})
    _FETCH = frozenset(
        {
            "fetchall",
            "fetchone",
            "fetchdf",
            "df",
            "to_df",
            "arrow",
            "to_arrow_table",
            "fetch_arrow_table",
            "fetchnumpy",
            "to_table",
        }
    )

    def __init__(self, target: Any, times: _SqlTimes, sql: str = "") -> None:
        self._target, self._times, self._sql = target, times, sql

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr) or name not in self._QUERY | self._FETCH:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            sql = str(args[0]) if name in self._QUERY and args else self._sql
            started = _common.process_cpu()
            out = attr(*args, **kwargs)
            self._times.add(sql, _common.process_cpu() - started, name in self._QUERY)
            if name in self._QUERY and out is not None:
                return _Timed(out, self._times, sql)
            return out

        return timed


def worker(project: Path, profile: Path | None, sql: bool = False) -> None:
    """Run the clean stage of the stopped nightly; print the figures (`sql`: every statement's
    CPU too)."""
    import datetime as dt

    import great_expectations  # noqa: F401 - a fixed import cost, kept out of the figures

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.clean import clean_stage
    from pipelines.stages.context import RunContext

    cfg = load_config(project / "archive.yml")
    run_id = "bench-nightly-clean"  # the stopped run's clean logs under a fixed id: comparable
    run_date = max(dt.date.fromisoformat(p.name) for p in (project / "landing").glob("*/*"))
    ctx = RunContext(config=cfg, run_id=str(run_id), run_date=run_date)
    times = _SqlTimes()

    def opened() -> Any:
        con = open_warehouse(cfg)
        if os.environ.get("BENCH_STAGE_CHECKPOINT") == "1":
            # the stopped ingest's writes are checkpointed here, outside the figures (a state
            # stopped by a crash leaves them in the WAL, the stage's first commits pay them)
            con.execute("CHECKPOINT")
        return con

    result = _common.measure_stage(
        opened,
        lambda con: clean_stage(_Timed(con, times) if sql else con, ctx),  # type: ignore[arg-type]
        _PHASES,
        profile,
        # every clean.* table, the clean log and scope, the version state
        "schema_name = 'clean' OR table_name LIKE '%clean%' OR table_name LIKE '%version%'",
    )
    result["sql_cpu_s"] = dict(sorted(((k, round(v, 3)) for k, v in times.cpu.items()),
                                      key=lambda kv: -kv[1])[:25]) if sql else {}  # fmt: skip
    result["sql_calls"] = times.calls if sql else {}
    print(_PREFIX + json.dumps(result, default=str), flush=True)


def main() -> None:
    _common.stage_bench_main(
        __doc__ or "", Path(__file__).resolve(), "clean", "clean.*", _PREFIX, worker, sql=True
    )


if __name__ == "__main__":
    main()

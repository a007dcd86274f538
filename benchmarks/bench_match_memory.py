"""Where the match stage's memory goes: resident memory per phase of one full match stage.

Runs `pipelines.stages.match.match_stage` once on a copy of a warehouse left by
`BENCH_KEEP_WORKDIR=1 benchmarks/bench_pipeline.py …` (its workdir holds `archive.yml`), with a
thread sampling the process's resident memory every 10 ms and the stage's steps (reading
`clean.records`, preparing, blocking, comparing, EM, assembling, writing) wrapped to label the
samples. Prints, per phase, the resident memory at its start and its peak, and the stage's
peak above the process's resident memory before the stage (imports and the open warehouse).

    .venv/bin/python benchmarks/bench_match_memory.py data/bench/runs/100000-0-<pid>
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * _PAGE / 2**20


class Sampler:
    """Samples resident memory in a thread; `phase(name)` labels what runs meanwhile."""

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.stack: list[str] = ["setup"]
        self.peaks: dict[str, float] = {}
        self.starts: dict[str, float] = {}
        self.order: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _label(self) -> str:
        return " > ".join(self.stack)

    def _run(self) -> None:
        while not self._stop.is_set():
            now, label = rss_mb(), self._label()
            self.peaks[label] = max(self.peaks.get(label, 0.0), now)
            time.sleep(self.every)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self, name: str):  # type: ignore[no-untyped-def]
        self.stack.append(name)
        label = self._label()
        if label not in self.starts:
            self.starts[label] = rss_mb()
            self.order.append(label)
        try:
            yield
        finally:
            now = rss_mb()
            self.peaks[label] = max(self.peaks.get(label, 0.0), now)
            self.stack.pop()


WRAPPED: list[tuple[str, str, str]] = [
    # (module, attribute, phase label)
    ("pipelines.stages.match", "match_inputs", "read clean.records"),
    ("pipelines.stages.match", "write_match", "write match.*"),
    ("dedupe.link", "prepare_records", "prepare"),
    ("dedupe.link", "generate_candidates", "blocking"),
    ("dedupe.link", "score_candidates", "score"),
    ("dedupe.scoring", "levels_and_hard", "levels"),
    ("dedupe.scoring", "_estimate", "EM"),
    ("dedupe.scoring", "evidence_rules", "evidence"),
    ("dedupe.link", "assemble", "assemble"),
    ("dedupe.assemble", "cluster_pairs", "cluster"),
    ("dedupe.assemble", "build_review_queue", "review queue"),
    ("warehouse.match_state", "replace_tables", "replace_tables"),
]


def wrap(sampler: Sampler) -> None:
    """Label the stage's steps (patched where they are looked up)."""
    for module, attr, label in WRAPPED:
        mod = importlib.import_module(module)
        func = getattr(mod, attr)

        def wrapper(*a: Any, _f: Callable = func, _l: str = label, **k: Any) -> Any:
            with sampler.phase(_l):
                return _f(*a, **k)

        setattr(mod, attr, wrapper)
    pairset = importlib.import_module("dedupe.pairset")
    to_frame = pairset.PairSet.to_frame

    def frame(self: Any, keys: Any) -> Any:
        with sampler.phase("pairs frame"):
            return to_frame(self, keys)

    pairset.PairSet.to_frame = frame


MATCH_TABLES = ("match.pairs", "match.clusters", "match.review_queue", "match.blocking_stats")


def _table_hashes(cfg: Any) -> dict[str, str]:
    """Content hash of each match table (rows sorted by their first two columns, no run id)."""
    from pipelines.access import open_warehouse
    from warehouse import read_table
    from warehouse.signatures import frame_hash

    con = open_warehouse(cfg, read_only=True)
    try:
        out = {}
        for name in MATCH_TABLES:
            frame = read_table(con, name)
            assert frame is not None, name
            frame = frame.drop(columns=[c for c in ("run_id",) if c in frame.columns])
            frame = frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)
            out[name] = frame_hash(frame)
        return out
    finally:
        con.close()


def _compare(kept: Any, now: Any) -> dict[str, bool]:
    """Per match table: whether this run wrote what the kept run wrote."""
    before, after = _table_hashes(kept), _table_hashes(now)
    return {name: before[name] == after[name] for name in MATCH_TABLES}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="a kept bench_pipeline run folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the run (e.g. 1GB)")
    parser.add_argument(
        "--compare", action="store_true",
        help="check that match.* written now equals (content hash) what the kept run wrote "
        "(that run must have been a first full run, as bench_pipeline's are)",
    )
    args = parser.parse_args()
    from pipelines.settings import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.match import match_stage

    src = load_config(args.workdir / "archive.yml")
    tmp = Path(tempfile.mkdtemp(prefix="match-mem-"))
    try:
        shutil.copy(src.resolve(src.warehouse), tmp / "warehouse.duckdb")
        cfg = load_config(args.workdir / "archive.yml", warehouse=str(tmp / "warehouse.duckdb"))
        # a first full run: no incremental plan, parameters estimated by EM
        cfg = cfg.model_copy(update={
            "match_incremental": False,
            "scale": cfg.scale.model_copy(update={"reuse_params": False}),
        })
        from pipelines.access import open_warehouse

        con = open_warehouse(cfg)
        if args.memory_limit:
            con.execute(f"SET memory_limit = '{args.memory_limit}'")
        ctx = RunContext(config=cfg, run_id="match-memory", run_date=date.today())
        sampler = Sampler()
        wrap(sampler)
        before = rss_mb()
        sampler.start()
        started, cpu = time.perf_counter(), time.process_time()
        with sampler.phase("match stage"):
            stats = match_stage(con, ctx)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        sampler.stop()
        duck = con.sql(
            "SELECT tag, round(memory_usage_bytes / 2**20) FROM duckdb_memory()"
            " WHERE memory_usage_bytes > 0 ORDER BY 2 DESC"
        ).fetchall()
        con.close()
        same = _compare(src, cfg) if args.compare else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peak = max(sampler.peaks.values())
    print(f"records {stats.records_relinked:,}, candidate pairs {stats.candidate_pairs:,}, "
          f"wall {wall:.1f} s, CPU {cpu:.1f} s")
    print(f"RSS before the stage {before:,.0f} MB; stage peak {peak:,.0f} MB "
          f"(+{peak - before:,.0f} MB); ru_maxrss "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    print(f"DuckDB buffer memory at the end (MB): {dict(duck)}")
    if same is not None:
        print("match.* identical to the kept run's:", same)
    print("| phase | RSS at start MB | peak MB | peak above stage start MB |")
    print("|---|---|---|---|")
    rows = []
    for label in sampler.order:
        start, top = sampler.starts[label], sampler.peaks.get(label, sampler.starts[label])
        print(f"| {label} | {start:,.0f} | {top:,.0f} | {top - before:+,.0f} |")
        rows.append({"phase": label, "start_mb": round(start), "peak_mb": round(top)})
    if args.json:
        args.json.write_text(json.dumps({
            "records": stats.records_relinked, "pairs": stats.candidate_pairs,
            "before_mb": round(before), "peak_mb": round(peak), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "phases": rows,
        }, indent=1))


if __name__ == "__main__":
    main()

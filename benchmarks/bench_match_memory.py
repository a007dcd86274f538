"""Where the match (or clean) stage's memory goes: resident memory per phase of one full stage.

Runs `pipelines.stages.match.match_stage` (`--stage clean`: `clean_stage`, a full clean) once
on a copy of a warehouse left by `BENCH_KEEP_WORKDIR=1 benchmarks/bench_pipeline.py …` (its
workdir holds `archive.yml`), with a thread sampling the process's resident memory every 10 ms
and the stage's steps (reading `clean.records`, preparing, blocking, comparing, EM, assembling,
writing; for the clean stage: staging, reading, cleaning, writing) wrapped to label the
samples. Prints, per phase, the resident memory at its start and its peak, the CPU seconds
(all threads of the process) and wall seconds spent inside it, and the stage's peak above the
process's resident memory before the stage (imports and the open warehouse). `--profile FILE`
also records a pyinstrument profile of the stage (pyinstrument is not a project dependency).

    .venv/bin/python benchmarks/bench_match_memory.py data/bench/runs/100000-0-<pid>
    .venv/bin/python benchmarks/bench_match_memory.py --stage clean --chunk 50000 <workdir>
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_stage_anatomy's samplers

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
        self.cpu: dict[str, float] = {}  # process CPU s (all threads) inside each phase
        self.wall: dict[str, float] = {}
        # what makes up the stage's highest sample (`parts`, read when a new peak is sampled)
        self.parts: Callable[[], dict[str, Any]] | None = None
        self.at_peak: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _label(self) -> str:
        return " > ".join(self.stack)

    def _run(self) -> None:
        while not self._stop.is_set():
            now, label = rss_mb(), self._label()
            self.peaks[label] = max(self.peaks.get(label, 0.0), now)
            if self.parts is not None and now > self.at_peak.get("rss", 0.0) + 5:
                self.at_peak = {"rss": now, "phase": label, **self.parts()}
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
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            now = rss_mb()
            self.peaks[label] = max(self.peaks.get(label, 0.0), now)
            self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - cpu
            self.wall[label] = self.wall.get(label, 0.0) + time.perf_counter() - wall
            self.stack.pop()


WRAPPED: list[tuple[str, str, str]] = [
    # (module, attribute, phase label)
    ("pipelines.stages.match", "match_inputs", "read clean.records"),
    ("pipelines.stages.match", "write_match", "write match.*"),
    ("dedupe.link", "prepare_records", "prepare"),
    ("dedupe.link", "generate_candidates", "blocking"),
    ("dedupe.link", "generate_candidate_codes", "blocking"),
    ("dedupe.link", "score_candidates", "score"),
    ("dedupe.link", "score_candidates_compact", "score"),
    ("dedupe.scoring", "levels_and_hard", "levels"),
    ("dedupe.scoring", "levels_and_hard_codes", "levels"),
    ("dedupe.scoring", "_estimate", "EM"),
    ("dedupe.scoring", "evidence_rules", "evidence"),
    ("dedupe.link", "assemble", "assemble"),
    ("dedupe.link", "assemble_compact", "assemble"),
    ("dedupe.assemble", "cluster_pairs", "cluster"),
    ("dedupe.assemble", "build_review_queue", "review queue"),
    ("warehouse.match_state", "replace_tables", "replace_tables"),
]
CLEAN_WRAPPED: list[tuple[str, str, str]] = [
    ("warehouse.clean_delta", "stage_current_versions", "stage current versions"),
    ("warehouse.clean_delta", "current_rows", "read current rows"),
    ("warehouse.clean_full", "current_slice", "read current rows"),
    ("pipelines.stages.clean", "clean_records", "clean"),
    ("pipelines.stages.clean", "clean_batch", "clean"),
    ("pipelines.stages.clean", "replace_tables", "write clean.*"),
    ("warehouse.db.ChunkedTables", "append", "write clean.*"),
    ("warehouse.clean_full", "flag_mismatches", "switchboards"),
    ("warehouse.clean_full", "update_records", "switchboards"),
]


def wrap(sampler: Sampler, steps: list[tuple[str, str, str]] = WRAPPED) -> None:
    """Label the stage's steps (patched where they are looked up; absent ones skipped, so an
    older checkout runs too)."""
    for module, attr, label in steps:
        path, _, cls = module.rpartition(".") if module.endswith("Tables") else (module, "", "")
        try:
            mod: Any = importlib.import_module(path)
        except ImportError:
            continue
        if cls:
            mod = getattr(mod, cls, None)
        func = getattr(mod, attr, None)
        if func is None:
            continue

        def wrapper(*a: Any, _f: Callable = func, _l: str = label, **k: Any) -> Any:
            with sampler.phase(_l):
                return _f(*a, **k)

        setattr(mod, attr, wrapper)
    if steps is not WRAPPED:
        return
    import pyarrow as pa

    pairset = importlib.import_module("dedupe.pairset")
    to_frame = pairset.PairSet.to_frame

    def frame(self: Any, keys: Any) -> Any:
        with sampler.phase("pairs frame"):
            return to_frame(self, keys)

    pairset.PairSet.to_frame = frame
    assemble = importlib.import_module("dedupe.assemble")
    compact = getattr(assemble, "CompactLink", None)
    if compact is not None:  # the pairs written a batch at a time (absent in older checkouts)
        batches = compact.pair_batches

        def streamed(self: Any, *a: Any, **k: Any) -> Any:
            with sampler.phase("pairs batches"):
                yield from batches(self, *a, **k)

        compact.pair_batches = streamed
    state = importlib.import_module("warehouse.match_state")
    frame_stream = getattr(state, "_frame_stream", None)
    if frame_stream is not None:  # match.prepared streamed (absent in older checkouts)

        def prepared_stream(*a: Any, **k: Any) -> Any:
            reader = frame_stream(*a, **k)

            def batches() -> Any:
                with sampler.phase("prepared batches"):
                    yield from reader

            return pa.RecordBatchReader.from_batches(reader.schema, batches())

        state._frame_stream = prepared_stream


MATCH_TABLES = ("match.pairs", "match.clusters", "match.review_queue", "match.blocking_stats",
                "match.prepared", "match.linked_records")  # fmt: skip


CLEAN_TABLES = ("clean.records", "clean.transactions", "clean.interactions", "clean.follow_up",
                "clean.unmapped_industries", "clean.date_orders")  # fmt: skip


def _table_hashes(cfg: Any, tables: tuple[str, ...] = MATCH_TABLES) -> dict[str, str]:
    """Content hash of each table (rows sorted by their first two columns, no run id; the
    `prepared_version` column of ``match.prepared`` apart: any edit of `dedupe/prepare.py`
    changes that fingerprint, not the prepared rows)."""
    from pipelines.access import open_warehouse
    from warehouse import read_table
    from warehouse.signatures import frame_hash

    con = open_warehouse(cfg, read_only=True)
    try:
        out = {}
        for name in tables:
            if name == "match.linked_records":
                out[name] = _linked_hash(con)
                continue
            frame = read_table(con, name)
            assert frame is not None, name
            if "prepared_version" in frame.columns:  # the code's fingerprint: compared apart
                versions = sorted(frame["prepared_version"].dropna().unique().tolist())
                out[f"{name} (prepared_version)"] = ",".join(versions)
            drop = ("run_id", "prepared_version")
            frame = frame.drop(columns=[c for c in drop if c in frame.columns])
            frame = frame.sort_values(list(frame.columns[:2])).reset_index(drop=True)
            out[name] = frame_hash(frame)
        if tables is MATCH_TABLES:  # the model estimated by the run (its last params row)
            out["match.params (params)"] = str(
                con.execute(
                    "SELECT params FROM match.params ORDER BY created_at DESC LIMIT 1"
                ).fetchone()
            )
        return out
    finally:
        con.close()


def _linked_hash(con: Any) -> str:
    """``match.linked_records`` as the records it holds (hash of the sorted keys) and whether
    it holds every one as ``clean.records`` holds it now: a full copy of ``clean.records``
    (before branch ``linkhash``) or the fingerprints of its rows (``match.linked_layout``
    names the columns hashed) — so the two forms compare equal when they say the same."""
    import json

    from warehouse import table_columns
    from warehouse.signatures import frame_hash

    keys = con.sql("SELECT record_key FROM match.linked_records ORDER BY record_key").df()
    if table_columns(con, "match.linked_records") == ["record_key", "fingerprint"]:
        (layout,) = con.execute("SELECT columns FROM match.linked_layout").fetchone()
        listed = ", ".join(f'"{c}"' for c, _ in json.loads(layout))
        now = f"SELECT record_key, hash({listed}) FROM clean.records"
        stored = "SELECT record_key, fingerprint FROM match.linked_records"
    else:
        listed = ", ".join(f'"{c}"' for c in table_columns(con, "clean.records"))
        now = f"SELECT {listed} FROM clean.records"
        stored = f"SELECT {listed} FROM match.linked_records"
    ((differ,),) = con.execute(
        f"SELECT count(*) FROM (({now} EXCEPT {stored}) UNION ALL ({stored} EXCEPT {now}))"
    ).fetchall()
    return f"{frame_hash(keys)} {'= clean.records' if differ == 0 else f'{differ} rows differ'}"


def _compare(kept: Any, now: Any, tables: tuple[str, ...] = MATCH_TABLES) -> dict[str, bool]:
    """Per table: whether this run wrote what the kept run wrote."""
    before, after = _table_hashes(kept, tables), _table_hashes(now, tables)
    return {name: before[name] == after[name] for name in before}


def _parts(cursor: Any) -> Callable[[], dict[str, Any]]:
    """What resident memory is made of now: heaps and mapped files (``/proc/self/status``),
    DuckDB's buffer manager (read on `cursor`, a second connection to the stage's database),
    Arrow's default pool, glibc's heap in use and freed-but-kept (MB)."""
    import duckdb
    import pyarrow as pa
    from bench_stage_anatomy import _LIBC, status_mb

    def parts() -> dict[str, Any]:
        now: dict[str, Any] = dict(status_mb())
        now["arrow_pool"] = pa.total_allocated_bytes() / 2**20
        if _LIBC is not None:
            info = _LIBC.mallinfo2()
            now["glibc_in_use"] = (info.uordblks + info.hblkhd) / 2**20
            now["glibc_free_kept"] = info.fordblks / 2**20
        try:
            ((used,),) = cursor.execute(
                "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
            ).fetchall()
            now["duckdb_buffers"] = (used or 0) / 2**20
        except duckdb.Error as exc:  # the figure is missing, and the output says so
            now["duckdb_buffers"] = f"n/a ({type(exc).__name__})"
        return now

    return parts


def _profiler() -> Any:
    """A pyinstrument profiler on the process's CPU clock (every thread's CPU seconds, charged
    to what the main thread runs: rapidfuzz's and DuckDB's threads count where they are
    called; load does not inflate it as it does wall time), sampling every 1 ms."""
    try:
        from pyinstrument import Profiler
        from pyinstrument.stack_sampler import get_stack_sampler
    except ImportError:
        raise SystemExit(
            "--profile needs pyinstrument: .venv/bin/pip install pyinstrument"
        ) from None
    get_stack_sampler().timer_func = time.process_time
    return Profiler(interval=0.001)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="a kept bench_pipeline run folder")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the run (e.g. 1GB)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="check that match.* (clean.*) written now equals (content hash) what the kept run "
        "wrote (that run must have been a first full run, as bench_pipeline's are)",
    )
    parser.add_argument("--stage", choices=["match", "clean"], default="match")
    parser.add_argument("--chunk", type=int, help="scale.clean_chunk_records (--stage clean)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile the stage with pyinstrument (not a project dependency: pip install it "
        "into the venv) and write its text report here (HTML beside it); the figures then "
        "include the profiler's overhead",
    )
    parser.add_argument("--workers", type=int, help="scale.workers for the run (default: as set)")
    parser.add_argument(
        "--code",
        type=Path,
        help="a checkout (e.g. a `git archive` of main) whose packages run the stage instead of "
        "this one's: before/after side by side with the same benchmark",
    )
    args = parser.parse_args()
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    clean = args.stage == "clean"
    from pipelines.settings import load_config
    from pipelines.stages.clean import clean_stage
    from pipelines.stages.context import RunContext
    from pipelines.stages.match import match_stage

    src = load_config(args.workdir / "archive.yml")
    tmp = Path(tempfile.mkdtemp(prefix="match-mem-"))
    try:
        shutil.copy(src.resolve(src.warehouse), tmp / "warehouse.duckdb")
        cfg = load_config(args.workdir / "archive.yml", warehouse=str(tmp / "warehouse.duckdb"))
        # a first full run: no incremental plan, parameters estimated by EM
        scale = {
            "reuse_params": False,
            **({"clean_chunk_records": args.chunk} if args.chunk else {}),
            **({"workers": args.workers} if args.workers else {}),
        }
        cfg = cfg.model_copy(
            update={
                "match_incremental": False,
                "clean_incremental": False,
                "scale": cfg.scale.model_copy(update=scale),
            }
        )
        from pipelines.access import open_warehouse

        con = open_warehouse(cfg)
        if args.memory_limit:
            con.execute(f"SET memory_limit = '{args.memory_limit}'")
        ctx = RunContext(config=cfg, run_id="match-memory", run_date=date.today())
        sampler = Sampler()
        sampler.parts = _parts(con.cursor())
        wrap(sampler, CLEAN_WRAPPED if clean else WRAPPED)
        before = rss_mb()
        sampler.start()
        profiler = _profiler() if args.profile else None
        started, cpu = time.perf_counter(), time.process_time()
        with sampler.phase(f"{args.stage} stage"):
            if profiler is not None:
                profiler.start()
            stats: Any = clean_stage(con, ctx) if clean else match_stage(con, ctx)
            if profiler is not None:
                profiler.stop()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            args.profile.write_text(profiler.output_text(unicode=True, show_all=False))
            args.profile.with_suffix(".html").write_text(profiler.output_html())
        sampler.stop()
        # before the comparison, which reads the written tables back
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        duck = con.sql(
            "SELECT tag, round(memory_usage_bytes / 2**20) FROM duckdb_memory()"
            " WHERE memory_usage_bytes > 0 ORDER BY 2 DESC"
        ).fetchall()
        con.close()
        tables = CLEAN_TABLES if clean else MATCH_TABLES
        same = _compare(src, cfg, tables) if args.compare else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peak = max(sampler.peaks.values())
    if args.code is not None:
        import dedupe

        print(f"code: {Path(dedupe.__file__).resolve().parents[1]}")
    if clean:
        print(f"records {stats.clean_records:,} ({stats.mode}), wall {wall:.1f} s, CPU {cpu:.1f} s")
    else:
        print(
            f"records {stats.records_relinked:,}, candidate pairs {stats.candidate_pairs:,}, "
            f"wall {wall:.1f} s, CPU {cpu:.1f} s"
        )
    print(
        f"RSS before the stage {before:,.0f} MB; stage peak {peak:,.0f} MB "
        f"(+{peak - before:,.0f} MB); ru_maxrss {maxrss:,.0f} MB"
    )
    print(f"DuckDB buffer memory at the end (MB): {dict(duck)}")
    print(
        "at the stage's peak sample:",
        {k: round(v) if isinstance(v, float) else v for k, v in sampler.at_peak.items()},
    )
    if same is not None:
        print(f"{args.stage} tables identical to the kept run's:", same)
    print("| phase | RSS at start MB | peak MB | peak above stage start MB | CPU s | wall s |")
    print("|---|---|---|---|---|---|")
    rows = []
    for label in sampler.order:
        start, top = sampler.starts[label], sampler.peaks.get(label, sampler.starts[label])
        pcpu, pwall = sampler.cpu.get(label, 0.0), sampler.wall.get(label, 0.0)
        print(
            f"| {label} | {start:,.0f} | {top:,.0f} | {top - before:+,.0f} | {pcpu:.2f} |"
            f" {pwall:.2f} |"
        )
        rows.append(
            {
                "phase": label,
                "start_mb": round(start),
                "peak_mb": round(top),
                "cpu_s": round(pcpu, 2),
                "wall_s": round(pwall, 2),
            }
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "stage": args.stage,
                    "chunk": args.chunk,
                    "records": stats.clean_records if clean else stats.records_relinked,
                    "pairs": None if clean else stats.candidate_pairs,
                    "before_mb": round(before),
                    "peak_mb": round(peak),
                    "maxrss_mb": round(maxrss),
                    "wall_s": round(wall, 1),
                    "cpu_s": round(cpu, 1),
                    "phases": rows,
                    "at_peak": sampler.at_peak,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()

"""What a full run's stage holds at its resident peak: DuckDB, Arrow, glibc's heap, the rest.

Runs the stages left of a prepared state (``bench_publish.py --prepare N --kinds first``: a
full run stopped before its golden stage) on a copy: ``match`` (the full link again, as a
first load does), ``golden``, ``quality``, ``publish``, ``snapshot``, one connection a stage,
in one process, as the in-process Dagster job runs them. A thread samples every 20 ms:

* ``/proc/self/status``: ``VmRSS`` and its parts ``RssAnon`` (heaps) and ``RssFile``
  (mapped files: libraries, DuckDB's mmapped reads);
* DuckDB's buffer manager: ``sum(memory_usage_bytes) FROM duckdb_memory()`` (on a cursor of
  the stage's connection; ``temporary_storage_bytes`` = what it spilled);
* Arrow's default pool: ``pyarrow.total_allocated_bytes()``;
* glibc's heap (``mallinfo2``): bytes in use (Python objects, NumPy arrays, C libraries that
  use malloc) and bytes freed but kept by the allocator (``fordblks``: the arenas not given
  back; ``return_free_memory`` trims them);
* with ``--tracemalloc``: the bytes Python's allocator traces (objects and NumPy data).

At each stage's peak (the highest ``VmRSS`` sample) the parts are printed, with the phase
running then (the stage's steps are labelled as in ``bench_match_memory.py``). The parts
overlap nothing and need not add up: the rest is other native memory (DuckDB's memory outside
its buffer manager, allocator slack of jemalloc, thread stacks).

    .venv/bin/python benchmarks/bench_stage_anatomy.py data/states/first-200000
    .venv/bin/python benchmarks/bench_stage_anatomy.py data/states/first-200000 --stages publish
    .venv/bin/python benchmarks/bench_stage_anatomy.py STATE --code /tmp/main --memory-limit 1GB
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import importlib.util
import json
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

_ROOT = Path(__file__).resolve().parents[1]
_MB = 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _Mallinfo2
    return libc


_LIBC = _glibc()


def status_mb() -> dict[str, float]:
    """``VmRSS``, ``RssAnon``, ``RssFile`` of this process (MB)."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) / 1024
    return out


class Anatomy:
    """Samples resident memory and its parts; remembers the parts at each label's peak."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.stage = "setup"
        self.stack: list[str] = []
        self.cursor: Any = None
        self.peaks: dict[str, dict[str, Any]] = {}
        self.traced: dict[str, tuple[float, list[str]]] = {}
        self.phase_peaks: dict[tuple[str, str], float] = {}  # (stage, phase) → peak VmRSS
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def parts(self) -> dict[str, Any]:
        import pyarrow as pa

        now: dict[str, Any] = dict(status_mb())
        now["arrow_pool"] = pa.total_allocated_bytes() / _MB
        if _LIBC is not None:
            info = _LIBC.mallinfo2()
            now["glibc_in_use"] = (info.uordblks + info.hblkhd) / _MB
            now["glibc_free_kept"] = info.fordblks / _MB
        if tracemalloc.is_tracing():
            now["tracemalloc"] = tracemalloc.get_traced_memory()[0] / _MB
        cursor = self.cursor
        if cursor is not None:
            try:
                ((used, spilled),) = cursor.execute(
                    "SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes)"
                    " FROM duckdb_memory()"
                ).fetchall()
                now["duckdb_buffers"] = (used or 0) / _MB
                now["duckdb_spilled"] = (spilled or 0) / _MB
            except duckdb.Error as exc:  # a closed connection between stages
                now["duckdb_buffers"] = f"n/a ({type(exc).__name__})"
        now["phase"] = " > ".join(self.stack) or "-"
        return now

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = status_mb()["VmRSS"]
            with self.lock:
                stage = self.stage
                key = (stage, " > ".join(self.stack) or "-")
                self.phase_peaks[key] = max(self.phase_peaks.get(key, 0.0), rss)
                top = self.peaks.get(stage)
                if top is None or rss > top["VmRSS"] + 5:  # a new peak: read the parts
                    self.peaks[stage] = self.parts()
                if tracemalloc.is_tracing():
                    traced = tracemalloc.get_traced_memory()[0] / _MB
                    if traced > self.traced.get(stage, (0.0, []))[0] + 20:
                        self.traced[stage] = (traced, _top_allocations())
            time.sleep(self.every)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self, name: str):  # type: ignore[no-untyped-def]
        self.stack.append(name)
        try:
            yield
        finally:
            self.stack.pop()


def _top_allocations(n: int = 8) -> list[str]:
    """The ``n`` largest traced allocation sites now (three frames each), in MB."""
    stats = tracemalloc.take_snapshot().statistics("traceback")[:n]
    out = []
    for stat in stats:
        frames = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback[:3])
        out.append(f"{stat.size / _MB:,.0f} MB ({stat.count:,} blocks) {frames}")
    return out


PHASES: list[tuple[str, str, str]] = [
    ("pipelines.stages.publish", "swap_in_golden", "swap + history"),
    ("warehouse.publish", "update_history", "history fold"),
    ("pipelines.stages.publish", "publish_exports", "exports"),
    ("pipelines.stages.publish", "update_analyst_mart", "mart"),
    ("warehouse.security.mart", "_write_parquet", "mart parquet"),
    ("pipelines.stages.publish", "publish_snapshot", "snapshot"),
    ("warehouse.archive.snapshots", "_write_and_checksum", "write file"),
    ("pipelines.stages.golden", "assign_customer_ids", "customer ids"),
]


def _wrap(anatomy: Anatomy) -> None:
    from bench_match_memory import WRAPPED  # the match stage's steps

    for module, attr, label in [*WRAPPED, *PHASES]:
        if module.endswith("Tables"):
            continue
        try:
            mod: Any = importlib.import_module(module)
        except ImportError:
            continue
        func = getattr(mod, attr, None)
        if func is None:
            continue

        def wrapper(*a: Any, _f: Any = func, _l: str = label, **k: Any) -> Any:
            with anatomy.phase(_l):
                return _f(*a, **k)

        setattr(mod, attr, wrapper)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", type=Path, help="a prepared first-<N> state (bench_publish.py)")
    parser.add_argument("--stages", nargs="+", default=["match", "golden", "quality", "publish",
                                                        "snapshot"])  # fmt: skip
    parser.add_argument("--code", type=Path, help="import the pipeline from this checkout")
    parser.add_argument("--memory-limit", help="duckdb.memory_limit for the run (e.g. 2GB)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python's heap")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(_ROOT / "benchmarks"))
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    else:
        sys.path.insert(0, str(_ROOT))
    spec = importlib.util.spec_from_file_location("_bench_publish", _ROOT / "benchmarks" /
                                                  "bench_publish.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    bench_publish: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_publish)

    import great_expectations  # noqa: F401 - a fixed import cost, kept out of the figures

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.context import RunContext
    from pipelines.stages.golden import golden_stage
    from pipelines.stages.match import match_stage
    from pipelines.stages.publish import snapshot_stage, swap_stage
    from pipelines.stages.quality import quality_stage

    functions = {"match": match_stage, "golden": golden_stage, "quality": quality_stage,
                 "publish": swap_stage, "snapshot": snapshot_stage}  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix=".anatomy-", dir=args.state.resolve().parent))
    anatomy = Anatomy()
    try:
        project = bench_publish._copy_state(args.state.resolve(), tmp)
        cfg = load_config(project / "archive.yml")
        if args.memory_limit:
            cfg = cfg.model_copy(
                update={"duckdb": cfg.duckdb.model_copy(update={"memory_limit": args.memory_limit})}
            )
        cfg = cfg.model_copy(update={"match_incremental": False})
        with open_warehouse(cfg) as con:
            run_id, first = bench_publish._stopped_run(con)
        assert first == "golden", "needs a state stopped before golden (--kinds first)"
        run_date = max(dt.date.fromisoformat(p.name) for p in (project / "landing").glob("*/*"))
        ctx = RunContext(config=cfg, run_id=run_id, run_date=run_date)
        _wrap(anatomy)
        if args.tracemalloc:
            tracemalloc.start(3)
        anatomy.start()
        figures = {}
        details: dict[str, Any] = {}
        for name in args.stages:
            with open_warehouse(cfg) as con:
                with anatomy.lock:
                    anatomy.stage = name
                    anatomy.cursor = con.cursor()
                    anatomy.peaks[name] = start = anatomy.parts()
                cpu, wall = time.process_time(), time.perf_counter()
                result = functions[name](con, ctx)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                with anatomy.lock:
                    anatomy.cursor.close()
                    anatomy.cursor = None
            end = status_mb()["VmRSS"]
            details[name] = result.as_dict() if hasattr(result, "as_dict") else None
            figures[name] = {"start": start["VmRSS"], "peak": anatomy.peaks[name], "end": end,
                             "cpu_s": round(cpu, 2), "wall_s": round(wall, 2)}  # fmt: skip
        anatomy.stop()
        # what the stages wrote (golden tables, mart, snapshot): compare two runs by these
        hashes = bench_publish._result_hashes(cfg, details) if "snapshot" in figures else {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keys = ["VmRSS", "RssAnon", "RssFile", "duckdb_buffers", "duckdb_spilled", "arrow_pool",
            "glibc_in_use", "glibc_free_kept", "tracemalloc"]  # fmt: skip
    print(f"state {args.state}, code {args.code or _ROOT}, memory_limit {args.memory_limit}")
    print("| stage | start MB | " + " | ".join(f"at peak: {k}" for k in keys)
          + " | phase at peak | end MB | CPU s |")  # fmt: skip
    print("|---" * (len(keys) + 5) + "|")
    for name, fig in figures.items():
        peak = fig["peak"]
        cells = [f"{peak[k]:,.0f}" if isinstance(peak.get(k), float) else str(peak.get(k, "–"))
                 for k in keys]  # fmt: skip
        print(f"| {name} | {fig['start']:,.0f} | " + " | ".join(cells)
              + f" | {peak['phase']} | {fig['end']:,.0f} | {fig['cpu_s']} |")  # fmt: skip
    for name, (traced, top) in anatomy.traced.items():
        print(f"{name}: traced peak {traced:,.0f} MB; largest allocation sites then:")
        for line in top:
            print(f"    {line}")
    print("peak VmRSS per phase (MB):")
    for (stage, phase), top in anatomy.phase_peaks.items():
        if stage in figures:
            print(f"    {stage}: {phase}: {top:,.0f}")
    if hashes:
        print("result hashes:", json.dumps(hashes, sort_keys=True))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()

"""A full clean stage's timeline: when each step of the stage's process ran, its wall and CPU.

Runs ``pipelines.stages.clean.clean_stage`` on a copy of a state stopped before a full run's
clean (``bench_clean_stage.py --prepare N --full``) with ``scale.clean_workers`` (and
optionally ``scale.clean_chunk_records``) set, and prints every step of the stage's process
(start, wall, process CPU: DuckDB's threads and the helpers' sender threads included),
``clean_own`` = a slice cleaned in this process, ``write_slice`` = the caller's work on a
yielded slice (wall only), ``wait_helper`` = reading a helper's answer; then the stage's
wall, its process's CPU and its helper processes' CPU (``RUSAGE_CHILDREN``). Imports the
pipeline from the checkout whose interpreter runs it (run it from each checkout's ``.venv``).

    .venv/bin/python benchmarks/clean_timeline.py data/states/preclean-full-200000 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Event = tuple[str, float, float, float]


def _wrapper(events: list[Event], t0: list[float]) -> Callable[[Any, str, str], None]:
    def wrap(owner: Any, name: str, label: str) -> None:
        func = getattr(owner, name)

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                events.append((label, wall - t0[0], time.perf_counter() - wall,
                               time.process_time() - cpu))  # fmt: skip

        setattr(owner, name, timed)

    return wrap


class _TimedClean:
    """The slice cleaner, timed when called here; pickled as the cleaner itself (helpers)."""

    def __init__(self, func: Callable[[Any], Any], events: list[Event], t0: list[float]) -> None:
        self.func, self.events, self.t0 = func, events, t0

    def __call__(self, raw: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self.func(raw)
        finally:
            self.events.append(("clean_own", wall - self.t0[0], time.perf_counter() - wall,
                                time.process_time() - cpu))  # fmt: skip

    def __reduce__(self) -> Any:
        return self.func.__reduce__()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("state", type=Path)
    parser.add_argument("workers", type=int)
    parser.add_argument("chunk", type=int, nargs="?")
    args = parser.parse_args()

    import great_expectations  # noqa: F401 - a fixed import cost, kept out of the figures

    import cleaning._slices as slices
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages import clean as stage
    from pipelines.stages.context import RunContext

    state: Path = args.state.resolve()
    tmp = Path(tempfile.mkdtemp(dir=state.parent, prefix=".timeline-"))
    target = tmp / state.name
    shutil.copytree(state, target, symlinks=True)
    cfg = target / "archive.yml"
    extra = f"scale:\n  clean_workers: {args.workers}\n"
    if args.chunk:
        extra += f"  clean_chunk_records: {args.chunk}\n"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(state), str(target)) + extra,
                   encoding="utf-8")  # fmt: skip

    events: list[Event] = []
    t0 = [time.perf_counter()]
    wrap = _wrapper(events, t0)
    for owner, name in ((stage, "date_orders"), (stage, "clear_value_memos"),
                        (stage, "create_version_views"), (stage, "switchboards"),
                        (stage, "unmapped_from_records"), (stage, "mark_deleted_at_source"),
                        (stage.delta, "distinct_date_values"),
                        (stage.delta, "stage_current_versions"),
                        (stage.ChunkedTables, "append"), (slices._Helper, "result")):  # fmt: skip
        wrap(owner, name, {"stage_current_versions": "versions", "result": "wait_helper"}.get(
            name, name))  # fmt: skip
    for name in ("stage_slices", "current_slice", "drop_slices", "phone_name_keys",
                 "flag_mismatches", "update_records", "sort_table", "unmapped_inputs",
                 "swap_in", "drop_building"):  # fmt: skip
        wrap(stage.full, name, name)
    original = slices.clean_slices

    def clean_slices(read: Any, bounds: Any, clean: Any, helpers: int = 0,
                     warm: str = "cleaning.pipeline", **more: Any) -> Iterator[Any]:  # fmt: skip
        print("slices", [b - a for a, b in bounds], "helpers", helpers, more)
        for item in original(read, bounds, _TimedClean(clean, events, t0), helpers, warm,
                             **more):  # fmt: skip
            wall = time.perf_counter()
            yield item
            events.append(("write_slice", wall - t0[0], time.perf_counter() - wall, 0.0))

    stage.clean_slices = clean_slices  # type: ignore[assignment]
    conf = load_config(cfg)
    run_date = max(dt.date.fromisoformat(p.name) for p in (target / "landing").glob("*/*"))
    ctx = RunContext(config=conf, run_id="timeline", run_date=run_date)
    try:
        with open_warehouse(conf) as con:
            before = resource.getrusage(resource.RUSAGE_SELF)
            t0[0] = time.perf_counter()
            thread0 = time.thread_time()
            stage.clean_stage(con, ctx)
            wall = time.perf_counter() - t0[0]
            main_thread = time.thread_time() - thread0
            after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        shutil.rmtree(tmp)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
    for label, start, took, cpu in events:
        if label not in ("append", "mark_deleted_at_source"):
            print(f"{start:7.2f} +{took:6.2f} s wall {cpu:6.2f} s CPU  {label}")
    own = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"TOTAL wall {wall:.2f} main-proc CPU {own:.2f} main-thread CPU {main_thread:.2f}"
          f" children CPU {helpers.ru_utime + helpers.ru_stime:.2f}"
          f" peak RSS {after.ru_maxrss / 1024:.0f} MB")  # fmt: skip
    summed: dict[str, list[float]] = {}
    for label, _, took, cpu in events:
        row = summed.setdefault(label, [0, 0.0, 0.0])
        row[0], row[1], row[2] = row[0] + 1, row[1] + took, row[2] + cpu
    for label, (n, took, cpu) in sorted(summed.items(), key=lambda kv: -kv[1][1]):
        print(f"  {label:22s} x{int(n):3d} wall {took:7.2f} CPU {cpu:7.2f}")


if __name__ == "__main__":
    main()

"""Is a nightly deterministic? The same night run again and again from one saved state.

Nights 0 and 1 of the replay generator (``sources.demo.replay``) are run once; the state they
leave is saved. Night 2 is then run ``--repeats`` times, each from a fresh copy of that state,
with ``scale.workers`` 1, 2, and 2 with the matcher's thread pools forced to finish in reverse
order (each task submitted earlier sleeps longer; ``--chunk-pairs`` makes the scoring split into
many chunks so the pools have work at small sizes). Every repeat must give the same match
tables, golden tables and set of rebuilt customers (the customers of the records whose
``match.golden_inputs`` row differs from the saved state's); a repeat that differs keeps its
project folder (``--out``) for inspection, the others are deleted.

Not compared: ``ingested_at`` (a run's wall-clock ingest time, stamped on the night's new
sightings and hashed into their golden inputs) and run ids / timestamps.

    .venv/bin/python benchmarks/bench_nightly_determinism.py --entities 3000 --repeats 2
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_SKIP = {"run_id", "updated_run_id", "created_run_id", "ingested_at", "clean_run_id",
         "created_at", "input_hash"}  # fmt: skip
_TABLES = {
    "match.pairs": "left_key, right_key",
    "match.clusters": "record_key",
    "golden.crosswalk": "record_key",
    "golden.customers": "customer_id",
}


def _reversed_pool(counter: count) -> type[ThreadPoolExecutor]:
    class Reversed(ThreadPoolExecutor):
        """Tasks submitted earlier finish later (within each group of six)."""

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            delay = 0.05 - 0.01 * (next(counter) % 6)

            def late(*a: Any, **k: Any) -> Any:
                time.sleep(delay)
                return fn(*a, **k)

            return super().submit(late, *args, **kwargs)

    return Reversed


def _project(root: Path, workers: int) -> Path:
    from tests.pipelines.conftest import write_project

    return write_project(root, "landing", ("scale:", f"  workers: {workers}"))


def _digests(cfg: Path) -> dict[str, str]:
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config

    out = {}
    with open_warehouse(load_config(cfg), read_only=True) as con:
        for table, keys in _TABLES.items():
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in _SKIP]
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {keys}").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()[:12]
    return out


def _rebuilt(cfg: Path, base: Path) -> frozenset[str]:
    """Customers of the records whose golden inputs differ from the saved state's."""
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config

    with open_warehouse(load_config(base), read_only=True) as con:
        before = con.execute("SELECT record_key, customer_id, input_hash FROM match.golden_inputs")
        old = {r[0]: r[1:] for r in before.fetchall()}
    with open_warehouse(load_config(cfg), read_only=True) as con:
        now = con.execute("SELECT record_key, customer_id, input_hash FROM match.golden_inputs")
        new = {r[0]: r[1:] for r in now.fetchall()}
    ids: set[str] = set()
    for key in old.keys() | new.keys():
        if old.get(key) != new.get(key):
            ids.update(x[0] for x in (old.get(key), new.get(key)) if x is not None)
    return frozenset(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entities", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk-pairs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("data/bench/determinism"))
    args = parser.parse_args()

    from dedupe import blocking, scoring, similarity
    from pipelines.runner import run_pipeline
    from sources.demo.replay import ReplaySettings, replay_nights

    scoring.CHUNK_PAIRS, scoring.MIN_THREAD_PAIRS = args.chunk_pairs, 1
    blocking.MIN_THREAD_RECORDS = 1
    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    base = out / "base"
    base.mkdir(parents=True)
    nights = replay_nights(
        out / "demo", ReplaySettings(nights=2, entities=args.entities, late_every=0)
    )
    for _ in range(2):
        night = next(nights)
        shutil.copytree(out / "demo" / "landing", base / "landing", dirs_exist_ok=True)
        assert run_pipeline(_project(base, 2), run_date=night.run_date).success
    night = next(nights)
    shutil.rmtree(base / "landing")
    shutil.copytree(out / "demo" / "landing", base / "landing")
    base_cfg = _project(base, 2)

    counter = count()
    first: tuple[Any, ...] | None = None
    differing = 0
    for i in range(args.repeats):
        for workers, reverse in ((1, False), (2, False), (2, True)):
            run = out / f"repeat{i}-workers{workers}{'-reversed' if reverse else ''}"
            shutil.copytree(base, run)
            pool = _reversed_pool(counter) if reverse else ThreadPoolExecutor
            scoring.ThreadPoolExecutor = similarity.ThreadPoolExecutor = pool  # type: ignore[misc]
            outcome = run_pipeline(_project(run, workers), run_date=night.run_date)
            assert outcome.success, outcome.errors
            golden, match = outcome.stats.golden, outcome.stats.match
            assert golden is not None and match is not None
            rebuilt = _rebuilt(run / "archive.yml", base_cfg)
            tables = tuple(_digests(run / "archive.yml").items())
            result = (golden.mode, golden.customers_rebuilt, len(rebuilt), hash(rebuilt),
                      match.mode, match.records_read, tables)  # fmt: skip
            same = first is None or result == first
            first = first or result
            print(f"{run.name}: match {match.mode} ({match.records_read} records read),"
                  f" golden {golden.mode} rebuilt {golden.customers_rebuilt}"
                  f" ({len(rebuilt)} from the inputs), tables {dict(result[-1])}"
                  f" -> {'same' if same else 'DIFFERS (kept)'}", flush=True)  # fmt: skip
            if same:
                shutil.rmtree(run)
            else:
                differing += 1
    print(f"{differing} of {3 * args.repeats} repeats differ from the first")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()

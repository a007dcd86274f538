"""Nightly snapshot cost: a full snapshot vs a delta on the last full one, side by side.

Takes a kept benchmark project (``BENCH_KEEP_WORKDIR=1 benchmarks/bench_pipeline.py …`` keeps
``data/bench/runs/<n>-…``; its archive holds the full run's snapshot, its warehouse the nightly
golden state) and, in fresh archive folders with the project's encryption, times (CPU and wall,
medians of ``--repeat``): the full snapshot of the first night (the base), a full snapshot of
the nightly state, and a delta of the nightly state on the base. Prints bytes on disk too.

    .venv/bin/python benchmarks/bench_snapshot.py data/bench/runs/100000-0-1234 --repeat 3
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pipelines.access import open_warehouse, snapshot_reader, snapshot_writer
    from pipelines.settings import load_config
    from warehouse.archive import list_snapshots, load_snapshot, publish_snapshot
    from warehouse.publish import golden_snapshot_tables

    cfg = load_config(args.project / "archive.yml")
    reader, writer = snapshot_reader(cfg), snapshot_writer(cfg)
    first = list_snapshots(cfg.resolve(cfg.archive_dir))[0]
    night1 = load_snapshot(first.path, verify=False, reader=reader)
    with open_warehouse(cfg, read_only=True) as con:
        night2 = golden_snapshot_tables(con)
    t0 = datetime(2026, 11, 23, 2, tzinfo=UTC)
    figures: dict[str, list[tuple[float, float, int]]] = {"base": [], "full": [], "delta": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=args.project) as tmp:
            root = Path(tmp)
            for label, tables, when, base in (
                ("base", night1, t0, None),
                ("full", night2, t0 + timedelta(days=1), None),
                ("delta", night2, t0 + timedelta(days=2), "base"),
            ):
                archive = root / ("full" if label == "full" else "chain")
                if label == "full":
                    shutil.copytree(root / "chain", archive)  # same base and cache before it
                chosen = list_snapshots(archive)[0] if base else None
                c, w = _cpu(), time.perf_counter()
                info = publish_snapshot(
                    tables, archive, label, when, writer=writer, base=chosen, reader=reader,
                    skip_if_unchanged=False,
                )
                cpu, wall = _cpu() - c, time.perf_counter() - w
                assert info is not None and info.storage == ("delta" if base else "full")
                figures[label].append((cpu, wall, _size(info.path)))
    print("| snapshot | CPU s | wall s | bytes on disk |\n|---|---|---|---|")
    for label, values in figures.items():
        cpu = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        print(f"| {label} | {cpu:.2f} | {wall:.2f} | {values[-1][2]:,} |")
    full = statistics.median(v[0] for v in figures["full"])
    delta = statistics.median(v[0] for v in figures["delta"])
    print(f"\nnightly delta / full: CPU {delta / full:.2f}")


if __name__ == "__main__":
    main()

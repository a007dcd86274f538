"""Benchmark full vs incremental vs sharded dedupe: time, peak RSS and exact equality."""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from dedupe import (
    LinkResult,
    bcubed_scores,
    link_incremental,
    link_records,
    link_sharded,
    pairwise_scores,
)


def _records(entities: int, seed: int, cache: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean demo records and truth, cached as Parquet in `cache` (cleaning 200k takes minutes)."""
    path = cache / f"clean_{entities}_{seed}.parquet" if cache else None
    truth_path = cache / f"truth_{entities}_{seed}.parquet" if cache else None
    if path is not None and truth_path is not None and path.exists() and truth_path.exists():
        return pd.read_parquet(path), pd.read_parquet(truth_path)
    from bench_dedupe import load_demo

    records, truth, _ = load_demo(entities, seed)
    if path is not None and truth_path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        records.to_parquet(path)
        truth.to_parquet(truth_path)
    return records, truth


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _timed(
    func: Callable[..., LinkResult], *args: object, **kwargs: object
) -> tuple[LinkResult, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _same(a: LinkResult, b: LinkResult) -> bool:
    """Same pairs (keys, rule, probability, decision) and the same clusters."""
    cols = ["left_key", "right_key", "rule", "probability", "decision"]
    return a.pairs[cols].equals(b.pairs[cols]) and a.clusters.equals(b.clusters)


def run(
    entities: int, seed: int, share: float, shards: int, workers: int, cache: Path | None
) -> None:
    """Print full / incremental / sharded figures for one size."""
    records, truth = _records(entities, seed, cache)
    print(f"## {entities:,} entities, {len(records):,} records", flush=True)
    full, full_s, full_cpu = _timed(link_records, records)
    full_rss = _rss_mb()
    print(
        f"full        {full_s:7.1f} s wall {full_cpu:7.1f} s CPU  peak RSS {full_rss:,.0f} MB  "
        f"pairs {len(full.pairs):,}",
        flush=True,
    )
    print(
        f"pairwise {pairwise_scores(full.clusters, truth)}; "
        f"b-cubed {bcubed_scores(full.clusters, truth)}",
        flush=True,
    )
    sample = records.sample(frac=share, random_state=seed)
    new = sample.assign(record_key="inc:" + sample["record_key"])
    everything = pd.concat([records, new], ignore_index=True)
    inc, inc_s, inc_cpu = _timed(
        link_incremental, new, records, full.pairs, None, None, full.params, previous=full
    )
    print(
        f"incremental {inc_s:7.1f} s wall {inc_cpu:7.1f} s CPU  (+{share:.0%} = {len(new):,} "
        f"records) = {inc_s / full_s:.1%} of full wall, {inc_cpu / full_cpu:.1%} of CPU",
        flush=True,
    )
    frames, frames_s, frames_cpu = _timed(
        link_incremental, new, records, full.pairs, None, None, full.params, full.prepared
    )
    print(
        f"incremental from stored frames (pipeline path) {frames_s:.1f} s wall "
        f"{frames_cpu:.1f} s CPU = {frames_s / full_s:.1%} of full",
        flush=True,
    )
    del frames
    rebuild, rebuild_s, _ = _timed(link_records, everything, params=full.params)
    print(
        f"full rebuild with same params {rebuild_s:.1f} s; incremental == rebuild: "
        f"{_same(inc, rebuild)}",
        flush=True,
    )
    del inc
    with ProcessPoolExecutor(max_workers=workers) as pool:
        sharded, sh_s, sh_cpu = _timed(
            link_sharded, everything, None, None, full.params, shards=shards, executor=pool
        )
    print(
        f"sharded ({shards} shards, {workers} workers) {sh_s:.1f} s wall "
        f"{sh_cpu:.1f} s CPU in parent; sharded == single-process: {_same(sharded, rebuild)}; "
        f"worker peak RSS {_rss_mb(resource.RUSAGE_CHILDREN):,.0f} MB",
        flush=True,
    )
    print(f"peak RSS of this process {_rss_mb():,.0f} MB\n", flush=True)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, nargs="+", default=[20_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--incremental-share", type=float, default=0.01)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="directory to cache cleaned demo records as Parquet",
    )
    args = parser.parse_args()
    for n in args.entities:
        run(n, args.seed, args.incremental_share, args.shards, args.workers, args.cache)


if __name__ == "__main__":
    main()

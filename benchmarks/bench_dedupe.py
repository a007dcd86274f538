"""Benchmark the dedupe stage on generated data with truth: pairs, recall, P/R/F1, timings."""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import pandas as pd
import yaml

from dedupe import (
    bcubed_scores,
    blocking_recall,
    link_incremental,
    link_records,
    pairwise_scores,
)

_ROOT = Path(__file__).resolve().parents[1]


def _mapping(source: str) -> dict[str, list[str]]:
    config = yaml.safe_load((_ROOT / "sources" / "sources.yml").read_text(encoding="utf-8"))
    for entry in config["sources"]:
        if entry["name"] == source:
            return {k: v if isinstance(v, list) else [v] for k, v in entry["columns"].items()}
    raise KeyError(source)


def _raw_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rename a department export to canonical fields (first alias present wins)."""
    out = pd.DataFrame(index=frame.index)
    for field, aliases in _mapping(source).items():
        header = next((a for a in aliases if a in frame.columns), None)
        if header is not None:
            out[field] = frame[header].astype("string")
    out["source_system"] = source
    out["record_key"] = source + ":" + out["source_record_id"]
    return out


def load_demo(entities: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Generate, map and clean demo data; return (clean records, truth, cleaning seconds)."""
    from cleaning import clean_records
    from sources.demo import generate_demo_data

    demo = generate_demo_data(entities, seed)
    raw = pd.concat(
        [_raw_frame(getattr(demo, s), s) for s in ("sales", "service", "marketing")],
        ignore_index=True,
    )
    started = time.perf_counter()
    records = clean_records(raw).records
    seconds = time.perf_counter() - started
    truth = demo.truth.assign(
        record_key=demo.truth["source_system"] + ":" + demo.truth["source_record_id"].astype(str)
    )[["record_key", "entity_id"]]
    return records, truth, seconds


def run(entities: int, seed: int, incremental_share: float, incremental: bool = True) -> None:
    """Print the benchmark report for one size."""
    records, truth, clean_s = load_demo(entities, seed)
    print(f"## {entities:,} entities, {len(records):,} records (cleaning {clean_s:.1f}s)")
    started = time.perf_counter()
    result = link_records(records)
    link_s = time.perf_counter() - started
    print(result.blocking_stats.to_string(index=False))
    print(
        f"candidate pairs {len(result.pairs):,}; blocking recall "
        f"{blocking_recall(result.pairs, truth):.4f}; review queue {len(result.review_queue):,}"
    )
    print(f"pairwise {pairwise_scores(result.clusters, truth)}")
    print(f"b-cubed  {bcubed_scores(result.clusters, truth)}")
    print(
        f"dedupe full run {link_s:.2f}s; EM iterations {result.params.iterations}; "
        f"λ={result.params.prior:.3f}"
    )
    if not incremental:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB\n")
        return
    sample = records.sample(frac=incremental_share, random_state=seed)
    new = sample.assign(record_key="inc:" + sample["record_key"])
    base = records
    started = time.perf_counter()
    inc = link_incremental(new, base, result.pairs, None, None, result.params, previous=result)
    inc_s = time.perf_counter() - started
    started = time.perf_counter()
    full = link_records(pd.concat([base, new], ignore_index=True), params=result.params)
    full_s = time.perf_counter() - started

    def part(c: pd.DataFrame) -> set[frozenset[str]]:
        return set(c.groupby("cluster_key")["record_key"].apply(frozenset))

    same = part(inc.clusters) == part(full.clusters)
    print(
        f"incremental (+{incremental_share:.0%}) {inc_s:.2f}s = {inc_s / link_s:.1%} of full; "
        f"full rebuild with same params {full_s:.2f}s; same clusters: {same}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB\n")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, nargs="+", default=[20_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--incremental-share", type=float, default=0.01)
    parser.add_argument(
        "--no-incremental",
        action="store_true",
        help="only the full link (large sizes: skip the incremental run and the rebuild)",
    )
    args = parser.parse_args()
    for n in args.entities:
        run(n, args.seed, args.incremental_share, not args.no_incremental)


if __name__ == "__main__":
    main()

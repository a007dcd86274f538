"""The match stage alone, full vs nightly (stored link), on the pipeline benchmark's clean records.

Needs ``data/bench/<n>/clean_records.parquet`` (written by ``bench_pipeline.py``). 1 % of the
records (random, seeded) are held back: the full link (``link_records`` + ``write_match_tables``)
runs over the rest, then the nightly link (``rematch_plan`` → ``link_stored`` → write) adds them,
each step in its own process (its own peak RSS). Prints CPU seconds per step and peak RSS, and
checks the nightly pairs and clusters against a full rebuild with the same params.

Usage::

    .venv/bin/python benchmarks/bench_match_nightly.py --records 100000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT_ROOT


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(step: str, data: Path, work: Path) -> None:
    import duckdb
    import numpy as np
    import pandas as pd

    from dedupe import (
        ModelParams,
        StoredLink,
        link_records,
        link_stored,
        prepared_version,
        stored_pair_set,
    )
    from warehouse import replace_tables
    from warehouse.match_state import (
        latest_params_row,
        match_state,
        rematch_plan,
        write_match_tables,
    )

    state = match_state("{}", None)
    records = pd.read_parquet(data / "clean_records.parquet")
    new = np.random.default_rng(1).random(len(records)) < 0.01
    base_db, night_db = work / "base.duckdb", work / "night.duckdb"
    row = {"run_id": step, "created_at": pd.Timestamp.now(), **state}
    if step == "full":
        base_db.unlink(missing_ok=True)
        con = duckdb.connect(str(base_db))
        replace_tables(con, {"clean.records": records[~new]})
        started = time.process_time()
        result = link_records(records[~new])
        write_match_tables(
            con, {"match.pairs": result.pairs, "match.clusters": result.clusters,
                  "match.review_queue": result.review_queue},
            {**row, "params": result.params.to_json()}, result.prepared, prepared_version(),
        )  # fmt: skip
        cpu = time.process_time() - started
        replace_tables(con, {"clean.records": records})  # night 1: 1 % new records
        print(f"full: {cpu:.1f} CPU s ({len(result.pairs)} pairs), peak RSS {_rss():.0f} MB")
        return
    if step == "nightly":
        shutil.copy(base_db, night_db)
        con = duckdb.connect(str(night_db))
        started = time.process_time()
        plan = rematch_plan(con, state, prepared_version())
        assert plan is not None and plan.stored is not None
        read = time.process_time()
        s = plan.stored
        result = link_stored(
            plan.changed,
            StoredLink(s.prepared, stored_pair_set(s.pairs, s.rule_names, s.hard_names),
                       s.labels, s.steward_pairs),
            None, None, ModelParams.from_json(plan.params_json),
        )  # fmt: skip
        linked = time.process_time()
        assert result.prepared is not None and result.refreshed is not None
        write_match_tables(
            con, {"match.pairs": result.pairs, "match.clusters": result.clusters,
                  "match.review_queue": result.review_queue},
            {**row, "params": result.params.to_json()}, result.prepared[result.refreshed],
            prepared_version(), "changed", plan.changed["record_key"],
        )  # fmt: skip
        done = time.process_time()
        print(f"nightly: {done - started:.1f} CPU s (read {read - started:.1f}, link"
              f" {linked - read:.1f}, write {done - linked:.1f}; {len(plan.changed)} records"
              f" relinked, {int(result.refreshed.sum())} prepared rows refreshed), peak RSS"
              f" {_rss():.0f} MB")
        return
    con = duckdb.connect(str(night_db), read_only=True)
    latest = latest_params_row(con)
    assert latest is not None
    full = link_records(records, params=ModelParams.from_json(latest.params_json))
    pairs = con.sql("SELECT * FROM match.pairs ORDER BY left_key, right_key").df()
    expected = full.pairs.sort_values(["left_key", "right_key"], ignore_index=True)
    differ = [
        c
        for c in expected.columns
        if not pairs[c].astype(str).equals(expected[c].astype(str).replace({"<NA>": "nan"}))
    ]
    same = not differ or f"differ in {differ}"
    clusters = con.sql("SELECT * FROM match.clusters ORDER BY record_key").df()
    grouped = clusters.merge(full.clusters, on="record_key", suffixes=("", "_full"))
    print(f"nightly == full rebuild: pairs {same}, clusters"
          f" {bool((grouped['cluster_key'] == grouped['cluster_key_full']).all())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--step", choices=["full", "nightly", "check"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = OUT_ROOT / "data" / "bench" / str(args.records)
    work = OUT_ROOT / "data" / "bench_match" / str(args.records)
    work.mkdir(parents=True, exist_ok=True)
    if args.step:
        _child(args.step, data, work)
        return
    for step in ("full", "nightly", "check"):
        subprocess.run(
            [sys.executable, __file__, "--records", str(args.records), "--step", step],
            check=True,
        )


if __name__ == "__main__":
    main()

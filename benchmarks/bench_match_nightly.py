"""The match stage alone, full vs nightly (stored link), on the pipeline benchmark's clean records.

Needs ``data/bench/<n>/clean_records.parquet`` (written by ``bench_pipeline.py``). `--base`
records of it (all by default; a seeded random sample otherwise) make the warehouse, of which
`--changed` records (1 % by default; random, seeded) are held back: the full link
(``link_records`` + ``write_match_tables``) runs over the rest, then the nightly link adds them,
each step in its own process (its own peak RSS), from the same base warehouse:

* ``whole``: ``rematch_plan`` → ``link_stored`` → ``write_match_tables`` (every row of
  ``match.pairs`` / ``clusters`` / ``review_queue`` assembled and rewritten: the route before
  the delta write);
* ``delta``: ``rematch_plan`` → ``link_stored_delta`` → ``write_match_delta`` (only the
  affected records' rows assembled, deleted and inserted; every stored prepared record read);
* ``subset``: ``rematch_plan(subset=True)`` → ``link_subset_delta`` → ``write_match_delta``
  (only the records the change reaches read: what the match stage runs).

Prints CPU seconds per step and peak RSS, and checks each nightly's ``match.*`` tables against
a full rebuild with the same params (same pairs with every column, clusters, review queue).

Usage::

    .venv/bin/python benchmarks/bench_match_nightly.py --records 100000
    .venv/bin/python benchmarks/bench_match_nightly.py --records 100000 --base 50000 --changed 1000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT_ROOT

STEPS = ("full", "whole", "delta", "subset", "check")


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _records(
    data: Path, base: int | None, changed: int | None
) -> tuple[pd.DataFrame, np.ndarray]:
    records = pd.read_parquet(data / "clean_records.parquet")
    if base is not None and base < len(records):
        keep = np.random.default_rng(2).permutation(len(records))[:base]
        records = records.iloc[np.sort(keep)].reset_index(drop=True)
    rng = np.random.default_rng(1)
    if changed is None:
        new = rng.random(len(records)) < 0.01
    else:
        new = np.zeros(len(records), dtype=bool)
        new[rng.permutation(len(records))[:changed]] = True
    return records, new


def _child(step: str, data: Path, work: Path, base: int | None, changed: int | None) -> None:
    import duckdb

    from dedupe import (
        MatchSettings,
        ModelParams,
        link_records,
        link_stored,
        link_stored_delta,
        link_subset_delta,
        prepared_version,
    )
    from pipelines.stages.match import stored_link
    from warehouse import replace_tables
    from warehouse.match_state import (
        latest_params_row,
        match_state,
        rematch_plan,
        write_match_delta,
        write_match_tables,
    )

    state = match_state("{}", None)
    records, new = _records(data, base, changed)
    base_db = work / "base.duckdb"
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
        replace_tables(con, {"clean.records": records})  # night 1: the held-back records
        print(f"full: {cpu:.2f} CPU s ({len(records[~new])} records, {len(result.pairs)}"
              f" pairs), peak RSS {_rss():.0f} MB")  # fmt: skip
        return
    if step == "subset":
        db = work / f"{step}.duckdb"
        shutil.copy(base_db, db)
        con = duckdb.connect(str(db))
        started = time.process_time()
        plan = rematch_plan(
            con, state, prepared_version(), MatchSettings().match_threshold, subset=True
        )
        assert plan is not None and plan.reach is not None
        read = time.process_time()
        params = ModelParams.from_json(plan.params_json)
        row["params"] = plan.params_json
        delta = link_subset_delta(plan.changed, plan.reach, None, None, params)
        linked = time.process_time()
        written = write_match_delta(
            con, delta.records,
            {"match.pairs": delta.pairs, "match.clusters": delta.clusters,
             "match.review_queue": delta.review_queue},
            row, delta.prepared[delta.refreshed], prepared_version(),
            plan.changed["record_key"], delta.dropped,
        )  # fmt: skip
        done = time.process_time()
        total = con.sql("SELECT count(*) FROM match.prepared").fetchall()[0][0]
        print(f"nightly subset: {done - started:.2f} CPU s (plan {read - started:.2f}, read +"
              f" link {linked - read:.2f}, write {done - linked:.2f}; {len(plan.changed)}"
              f" records relinked, {len(delta.prepared)} of {total} prepared records read"
              f" ({delta.bare} as a bare key),"
              f" {len(delta.records)} affected), peak RSS {_rss():.0f} MB")  # fmt: skip
        return
    if step in ("whole", "delta"):
        db = work / f"{step}.duckdb"
        shutil.copy(base_db, db)
        con = duckdb.connect(str(db))
        started = time.process_time()
        # the delta reads the strong stored pairs up front, the others on demand
        strong_at = MatchSettings().match_threshold if step == "delta" else None
        plan = rematch_plan(con, state, prepared_version(), strong_at)
        assert plan is not None and plan.stored is not None
        read = time.process_time()
        stored = stored_link(plan.stored)
        params = ModelParams.from_json(plan.params_json)
        row["params"] = plan.params_json
        if step == "whole":
            result = link_stored(plan.changed, stored, None, None, params)
            linked = time.process_time()
            assert result.prepared is not None and result.refreshed is not None
            write_match_tables(
                con, {"match.pairs": result.pairs, "match.clusters": result.clusters,
                      "match.review_queue": result.review_queue},
                row, result.prepared[result.refreshed], prepared_version(), "changed",
                plan.changed["record_key"],
            )  # fmt: skip
            what = f"{len(result.pairs)} pairs rewritten"
        else:
            delta = link_stored_delta(plan.changed, stored, None, None, params)
            linked = time.process_time()
            written = write_match_delta(
                con, delta.records,
                {"match.pairs": delta.pairs, "match.clusters": delta.clusters,
                 "match.review_queue": delta.review_queue},
                row, delta.prepared[delta.refreshed], prepared_version(),
                plan.changed["record_key"], delta.dropped,
            )  # fmt: skip
            what = (
                f"{len(delta.records)} affected records, pairs deleted/inserted"
                f" {written.deleted['match.pairs']}/{written.inserted['match.pairs']} of"
                f" {con.sql('SELECT count(*) FROM match.pairs').fetchall()[0][0]}"
            )
        done = time.process_time()
        print(f"nightly {step}: {done - started:.2f} CPU s (read {read - started:.2f}, link"
              f" {linked - read:.2f}, write {done - linked:.2f}; {len(plan.changed)} records"
              f" relinked, {what}), peak RSS {_rss():.0f} MB")  # fmt: skip
        return
    con = duckdb.connect(str(base_db), read_only=True)
    latest = latest_params_row(con)
    assert latest is not None
    full = link_records(records, params=ModelParams.from_json(latest.params_json))
    con.close()
    expected = duckdb.connect()
    replace_tables(expected, {"match.pairs": full.pairs, "match.clusters": full.clusters,
                              "match.review_queue": full.review_queue})  # fmt: skip
    order = {"match.pairs": "left_key, right_key", "match.clusters": "record_key",
             "match.review_queue": "left_key, right_key"}  # fmt: skip
    for route in ("whole", "delta", "subset"):
        got = duckdb.connect(str(work / f"{route}.duckdb"), read_only=True)
        same = {
            name: got.sql(f"SELECT * FROM {name} ORDER BY {keys}").df().equals(
                expected.sql(f"SELECT * FROM {name} ORDER BY {keys}").df()
            )
            for name, keys in order.items()
        }
        print(f"nightly {route} == full rebuild: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="the bench data set")
    parser.add_argument("--base", type=int, help="records of it to use (default: all)")
    parser.add_argument("--changed", type=int, help="records held back (default: 1 %%)")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = OUT_ROOT / "data" / "bench" / str(args.records)
    work = OUT_ROOT / "data" / "bench_match" / f"{args.records}-{args.base}-{args.changed}"
    work.mkdir(parents=True, exist_ok=True)
    if args.step:
        _child(args.step, data, work, args.base, args.changed)
        return
    for step in STEPS:
        command = [sys.executable, __file__, "--records", str(args.records), "--step", step]
        for flag, value in (("--base", args.base), ("--changed", args.changed)):
            if value is not None:
                command += [flag, str(value)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()

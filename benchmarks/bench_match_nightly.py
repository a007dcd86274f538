"""The match stage alone, full vs nightly (stored link), on the pipeline benchmark's clean records.

Needs ``data/bench/<n>/clean_records.parquet`` (written by ``bench_pipeline.py`` or
``bench_splink.prepare_input``). `--base` records of it (all by default; a seeded random sample
otherwise) make the warehouse, of which `--changed` records (1 % by default; random, seeded) are
held back: the full link (``link_records`` + ``write_match_tables``) runs over the rest, then
the nightly link adds them, each step in its own process (its own peak RSS), from the same base
warehouse:

* ``whole``: ``rematch_plan`` → ``link_stored`` → ``write_match_tables`` (every row of
  ``match.pairs`` / ``clusters`` / ``review_queue`` assembled and rewritten: the route before
  the delta write);
* ``delta``: ``rematch_plan`` → ``link_stored_delta`` → ``write_match_delta`` (only the
  affected records' rows assembled and written; every stored prepared record read);
* ``subset``: ``rematch_plan(subset=True)`` → ``link_subset_delta`` → ``write_match_delta``
  (only the records the change reaches read: what the match stage runs).

``--baseline DIR`` runs the ``subset`` step a second time with the code of DIR (an exported
commit: ``git archive <ref> | tar -x -C DIR``) first on the import path, each variant
``--repeat`` times, interleaved, and prints both side by side (medians): CPU seconds of the
nightly, its peak RSS, the records read and the ``match.pairs`` rows deleted / inserted.
``--append`` adds that table to BENCHMARKS.md.

The ``check`` step compares each nightly's ``match.*`` tables with a full rebuild with the same
params (same pairs with every column, clusters, review queue).

Usage::

    .venv/bin/python benchmarks/bench_match_nightly.py --records 100000
    .venv/bin/python benchmarks/bench_match_nightly.py --records 100000 --base 50000 --changed 1000
    git archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_match_nightly.py --records 100000 --steps subset \\
        --baseline /tmp/base --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if os.environ.get("BENCH_CODE_DIR"):  # the baseline's code first (see --baseline)
    sys.path.insert(0, os.environ["BENCH_CODE_DIR"])
sys.path.insert(1 if os.environ.get("BENCH_CODE_DIR") else 0,
                str(Path(__file__).resolve().parents[1]))  # fmt: skip

from benchmarks._common import (
    OUT_ROOT,
    append_section,
    command_line,
    emit_result,
    machine_facts,
    md_table,
    median,
    peak_rss_mb,
    run_child,
    section_header,
)

STEPS = ("full", "whole", "delta", "subset", "check")


def _records(
    data: Path, base: int | None, changed: int | None, modified: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the stored records, the night's records): `changed` records held back (new on the
    night) and `modified` others whose contact changed (new phone, no email) on the night."""
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
    night = records.copy()
    if modified:
        at = np.random.default_rng(3).permutation(np.nonzero(~new)[0])[:modified]
        night.loc[at, "phone"] = [f"+86139{i:08d}" for i in range(len(at))]
        night.loc[at, ["email", "email_domain"]] = None
    return records[~new], night


def _fresh_copy(base: Path, db: Path) -> None:
    """`base` copied to `db`, without the write-ahead log a killed earlier run may have left
    beside `db` (DuckDB would replay it onto the copy: a nightly already applied)."""
    db.with_name(db.name + ".wal").unlink(missing_ok=True)
    shutil.copy(base, db)


def _memory_limit() -> str:
    """DuckDB's ``memory_limit`` of a pipeline run on this machine (``auto``)."""
    from pipelines.settings import DuckDBSettings

    return DuckDBSettings().resolved_memory_limit() or "2GiB"


def _subset(work: Path, db_name: str) -> dict[str, Any]:
    """The nightly subset link over a copy of the base warehouse, its figures."""
    import duckdb

    from dedupe import MatchSettings, ModelParams, link_subset_delta, prepared_version
    from warehouse.match_state import match_state, rematch_plan, write_match_delta

    state = match_state("{}", None)
    row = {"run_id": "subset", "created_at": pd.Timestamp.now(), **state}
    db = work / db_name
    _fresh_copy(work / "base.duckdb", db)
    # DuckDB as a pipeline run opens the warehouse (`pipelines.access.open_warehouse`): its
    # buffer pool bounded by `memory_limit: auto`, finished work's memory given back
    con = duckdb.connect(str(db), config={"memory_limit": _memory_limit(),
                                          "allocator_background_threads": True})  # fmt: skip
    rss = peak_rss_mb()
    started = time.process_time()
    threshold = MatchSettings().match_threshold
    plan = rematch_plan(con, state, prepared_version(), threshold, subset=True)
    assert plan is not None and plan.reach is not None
    read = time.process_time()
    params = ModelParams.from_json(plan.params_json)
    row["params"] = plan.params_json
    delta = link_subset_delta(plan.changed, plan.reach, None, None, params)
    linked = time.process_time()
    # (a baseline without `LinkDelta.partial` writes every pair of the affected records)
    within = delta.prepared["record_key"] if getattr(delta, "partial", False) else None
    written = write_match_delta(
        con, delta.records,
        {"match.pairs": delta.pairs, "match.clusters": delta.clusters,
         "match.review_queue": delta.review_queue},
        row, delta.prepared[delta.refreshed], prepared_version(),
        plan.changed["record_key"], delta.dropped, *([] if within is None else [within]),
    )  # fmt: skip
    done = time.process_time()
    total = con.sql("SELECT count(*) FROM match.prepared").fetchall()[0][0]
    return {
        "cpu": done - started, "plan": read - started, "link": linked - read,
        "write": done - linked, "relinked": len(plan.changed), "read": len(delta.prepared),
        "bare": int(getattr(delta, "bare", 0)), "stored": int(total),
        "affected": len(delta.records),
        "pairs_deleted": written.deleted["match.pairs"],
        "pairs_inserted": written.inserted["match.pairs"],
        "clusters_written": written.inserted["match.clusters"],
        "rss_before": rss, "rss": peak_rss_mb(),
    }  # fmt: skip


def _child(step: str, data: Path, work: Path, args: argparse.Namespace) -> None:
    import duckdb

    from dedupe import (
        MatchSettings,
        ModelParams,
        link_records,
        link_stored,
        link_stored_delta,
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

    if step.startswith("subset"):
        result = _subset(work, f"{step}.duckdb")
        print(f"nightly {step}: {result['cpu']:.2f} CPU s (plan {result['plan']:.2f}, read +"
              f" link {result['link']:.2f}, write {result['write']:.2f}; {result['relinked']}"
              f" records relinked, {result['read']} of {result['stored']} prepared records"
              f" read ({result['bare']} as a bare key), {result['affected']} affected, pairs"
              f" deleted/inserted {result['pairs_deleted']}/{result['pairs_inserted']}),"
              f" peak RSS {result['rss']:.0f} MB")  # fmt: skip
        emit_result(result)
        return
    state = match_state("{}", None)
    stored, records = _records(data, args.base, args.changed, args.modified)
    base_db = work / "base.duckdb"
    row = {"run_id": step, "created_at": pd.Timestamp.now(), **state}
    if step == "full":
        base_db.unlink(missing_ok=True)
        con = duckdb.connect(str(base_db))
        replace_tables(con, {"clean.records": stored})
        started = time.process_time()
        result = link_records(stored)
        write_match_tables(
            con, {"match.pairs": result.pairs, "match.clusters": result.clusters,
                  "match.review_queue": result.review_queue},
            {**row, "params": result.params.to_json()}, result.prepared, prepared_version(),
        )  # fmt: skip
        cpu = time.process_time() - started
        # night 1: the held-back records and the modified ones
        replace_tables(con, {"clean.records": records})
        print(f"full: {cpu:.2f} CPU s ({len(stored)} records, {len(result.pairs)}"
              f" pairs), peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip
        return
    if step in ("whole", "delta"):
        db = work / f"{step}.duckdb"
        _fresh_copy(base_db, db)
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
            whole = link_stored(plan.changed, stored, None, None, params)
            linked = time.process_time()
            assert whole.prepared is not None and whole.refreshed is not None
            write_match_tables(
                con, {"match.pairs": whole.pairs, "match.clusters": whole.clusters,
                      "match.review_queue": whole.review_queue},
                row, whole.prepared[whole.refreshed], prepared_version(), "changed",
                plan.changed["record_key"],
            )  # fmt: skip
            what = f"{len(whole.pairs)} pairs rewritten"
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
              f" relinked, {what}), peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip
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
    routes = sorted(p.stem for p in work.glob("*.duckdb") if p.stem != "base")
    failed = []
    del full
    for route in routes:
        # compared inside DuckDB (every column, both ways): two frames of 14 M pairs each at
        # 1 M records do not fit beside the full link
        expected.execute(f"ATTACH '{work / f'{route}.duckdb'}' AS got (READ_ONLY)")
        same = {}
        for name in order:
            cols = ", ".join(f'"{c}"' for c in
                             expected.sql(f"SELECT * FROM got.{name} LIMIT 0").columns)  # fmt: skip
            differ = expected.execute(
                f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM {name} EXCEPT ALL"
                f"  SELECT {cols} FROM got.{name})),"
                f" (SELECT count(*) FROM (SELECT {cols} FROM got.{name} EXCEPT ALL"
                f"  SELECT {cols} FROM {name}))"
            ).fetchall()[0]
            same[name] = differ == (0, 0)
        expected.execute("DETACH got")
        print(f"nightly {route} == full rebuild: {same}")
        if not all(same.values()):
            failed.append(route)
    if failed:
        raise SystemExit(f"not equal to a full rebuild: {failed}")


def _side_by_side(
    args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], facts: dict[str, Any]
) -> str:
    """The medians of each variant of the subset step as a markdown table."""
    columns = [
        ("CPU s", "cpu"), ("plan CPU s", "plan"), ("read + link CPU s", "link"),
        ("write CPU s", "write"), ("peak RSS MB", "rss"), ("records read", "read"),
        ("as a bare key", "bare"), ("affected", "affected"),
        ("pairs deleted", "pairs_deleted"), ("pairs inserted", "pairs_inserted"),
        ("cluster rows written", "clusters_written"),
    ]  # fmt: skip
    rows = []
    for variant, results in runs.items():
        cells: list[object] = [variant, len(results)]
        for _, key in columns:
            value = median([float(r[key]) for r in results])
            cells.append(int(value) if key not in ("cpu", "plan", "link", "write", "rss")
                         else value)  # fmt: skip
        rows.append(cells)
    first = next(iter(runs.values()))[0]
    load = ", ".join(f"{x:.2f}" for x in machine_facts()["load_avg"])
    return md_table(["code", "runs", *[c for c, _ in columns]], rows) + (
        f"\n\n{first['relinked']:,} records relinked of {first['stored']:,} stored"
        f" (`--records {args.records}`"
        + (f" `--base {args.base}`" if args.base else "")
        + (f" `--changed {args.changed}`" if args.changed else "")
        + (f" `--modified {args.modified}`" if args.modified else "")
        + f"); load average at the end {load}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="the bench data set")
    parser.add_argument("--base", type=int, help="records of it to use (default: all)")
    parser.add_argument("--changed", type=int, help="records held back (default: 1 %%)")
    parser.add_argument(
        "--modified",
        type=int,
        default=0,
        help="records whose contact changes on the night (default: none)",
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=STEPS,
        default=list(STEPS),
        help="steps to run (default: all; the full link is made when missing)",
    )
    parser.add_argument(
        "--baseline", type=Path, help="a source tree of the code to compare the subset step with"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each subset variant")
    parser.add_argument(
        "--append", action="store_true", help="append the side-by-side table to BENCHMARKS.md"
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = OUT_ROOT / "data" / "bench" / str(args.records)
    work = (
        OUT_ROOT
        / "data"
        / "bench_match"
        / (f"{args.records}-{args.base}-{args.changed}-{args.modified}")
    )
    work.mkdir(parents=True, exist_ok=True)
    if args.step:
        _child(args.step, data, work, args)
        return
    facts = machine_facts()
    for stale in [*work.glob("*.duckdb"), *work.glob("*.duckdb.wal")]:
        if not stale.name.startswith("base."):
            stale.unlink()
    steps = list(args.steps)
    if "full" not in steps and not (work / "base.duckdb").exists():
        steps.insert(0, "full")
    variants = {"this": None} if args.baseline is None else {
        "baseline": args.baseline.resolve(), "this": None}  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for step in STEPS:
        if step not in steps:
            continue
        rounds = args.repeat if step == "subset" else 1
        for _ in range(rounds):
            for variant, code in variants.items() if step == "subset" else [("this", None)]:
                name = step if variant == "this" else f"{step}-{variant}"
                command = [__file__, "--records", str(args.records), "--step", name]
                for flag, value in (
                    ("--base", args.base),
                    ("--changed", args.changed),
                    ("--modified", args.modified),
                ):
                    if value is not None:
                        command += [flag, str(value)]
                if step != "subset":
                    subprocess.run([sys.executable, *command], check=True)
                    continue
                saved = dict(os.environ)
                if code is not None:  # its own code, this checkout's data and results
                    os.environ.update(BENCH_CODE_DIR=str(code), BENCH_OUT=str(OUT_ROOT))
                try:
                    runs[variant].append(run_child(command))
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
    if any(runs.values()):
        table = _side_by_side(args, {v: r for v, r in runs.items() if r}, facts)
        print(table)
        if args.append:
            facts["code"] = facts.get("code", "") + (
                f" vs the baseline tree {args.baseline}" if args.baseline else ""
            )
            append_section(
                section_header(
                    "Nightly match stage: reached records and rows written", command_line(), facts
                )
                + table
            )


if __name__ == "__main__":
    main()

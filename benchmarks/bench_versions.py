"""Version step over a replay: the stored state folded by key vs a resolution over every sighting.

Night 0 is the demo delivery; every later night the replay generator delivers a full sales
re-export and service/marketing deltas (with late and repeated files, as ``bench_nightly``).
Each night is ingested, then the version step runs twice side by side on the same warehouse:
``update_version_state`` (what a nightly run does: only the sightings new since the last run)
and the resolution over every live sighting that the nightly clean ran before
(``current_versions_sql`` materialized), with their process CPU seconds; the two results are
compared (same rows). Raw sightings grow with every re-export; the goal is a flat nightly cost.

    .venv/bin/python benchmarks/bench_versions.py --records 100000 --nights 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    OUT_ROOT,
    append_section,
    command_line,
    machine_facts,
    md_table,
    median,
    section_header,
)
from benchmarks.bench_nightly import RECORDS_PER_ENTITY, _write_config


def _live_files_by_grouping_raw(con: Any, raw: str, withdrawn: str | None) -> None:
    """The version step's live-file list as it was computed before the per-file index
    ``ops.raw_files``: a GROUP BY over every active raw row (same output as the index read)."""
    from sources.versions import delivery_date_sql

    anti = (
        f" ANTI JOIN {withdrawn} AS w ON w.path = f.source_file AND w.sha256 = f.source_sha256"
        " AND w.source_system = f.source_system"
        if withdrawn
        else ""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _bench_live AS
        SELECT f.source_file, f.source_sha256, f.ingest_day,
               {delivery_date_sql("f.source_file", "f.ingest_day")} AS d, sum(f.n) AS n
        FROM (SELECT source_system, source_file, source_sha256,
                     substr(ingested_at, 1, 10) AS ingest_day, count(*) AS n
              FROM {raw} WHERE active GROUP BY ALL) AS f{anti}
        GROUP BY ALL"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _bench_dates AS SELECT d, lead(d) OVER (ORDER BY d)"
        " AS next_d FROM (SELECT DISTINCT d FROM _bench_live WHERE d IS NOT NULL)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="source records of night 0")
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=OUT_ROOT / "data" / "bench_versions")
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()

    from datetime import date

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages import load_sources
    from pipelines.stages.context import RunContext
    from pipelines.stages.ingest import ingest_stage
    from sources.demo.replay import ReplaySettings, replay_nights
    from warehouse.version_state import CURRENT_TABLE, _stage_live_files, update_version_state
    from warehouse.versions import current_versions_sql

    facts = machine_facts()
    settings = ReplaySettings(
        nights=args.nights,
        entities=max(50, round(args.records / RECORDS_PER_ENTITY)),
        seed=args.seed,
        change_share=0.01,
        new_share=0.005,
        delete_share=0.002,
        late_every=7,
        repeat_every=5,
    )
    shutil.rmtree(args.workdir, ignore_errors=True)
    cfg_path = _write_config(args.workdir / "run", args.workdir / "demo" / "landing")
    cfg = load_config(cfg_path)
    rows: list[list[object]] = []
    figures: list[dict[str, Any]] = []
    for night in replay_nights(args.workdir / "demo", settings):
        ctx = RunContext(config=cfg, run_id=f"n{night.night}", run_date=date.fromisoformat(
            night.run_date))  # fmt: skip
        with open_warehouse(cfg, create_key=True) as con:
            sources = load_sources(cfg).sources
            for source in sources:
                ingest_stage(con, ctx, source.name)
            raw_rows = sum(
                con.execute(f"SELECT count(*) FROM raw.{s.name}").fetchall()[0][0] for s in sources
            )
            started = time.process_time()
            stats = update_version_state(con, sources)
            state_cpu = time.process_time() - started
            # the live-file list alone: from the per-file index (what the step does) vs the
            # GROUP BY over every active raw row it did before (3 repetitions each, median)
            withdrawn = (
                "ops.withdrawn_deliveries"
                if con.execute(
                    "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ops'"
                    " AND table_name = 'withdrawn_deliveries'"
                ).fetchall()[0][0]
                else None
            )
            index_cpu, group_cpu = [], []
            for _ in range(3):
                started = time.process_time()
                for s in sources:
                    _stage_live_files(con, s.name, withdrawn)
                index_cpu.append(time.process_time() - started)
                started = time.process_time()
                for s in sources:
                    _live_files_by_grouping_raw(con, f"raw.{s.name}", withdrawn)
                group_cpu.append(time.process_time() - started)
            started = time.process_time()
            sql = current_versions_sql(con, sources)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _bench_full AS {sql}")
            full_cpu = time.process_time() - started
            names = [r[0] for r in con.execute("DESCRIBE _bench_full").fetchall()]
            cols = ", ".join(f'"{c}"' for c in names)
            differing = con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM _bench_full EXCEPT ALL"
                f" SELECT {cols} FROM {CURRENT_TABLE})"
            ).fetchall()[0][0]
            current = con.execute("SELECT count(*) FROM _bench_full").fetchall()[0][0]
        figure = {
            "night": night.night,
            "late": len(night.late),
            "raw_rows": raw_rows,
            "current": current,
            "mode": stats.mode,
            "sightings_read": stats.sightings_read,
            "keys_folded": stats.keys_folded,
            "keys_recomputed": stats.keys_recomputed,
            "state_cpu": round(state_cpu, 3),
            "full_cpu": round(full_cpu, 3),
            "live_index_cpu": round(median(index_cpu), 4),
            "live_group_cpu": round(median(group_cpu), 4),
            "differing_rows": differing,
        }
        figures.append(figure)
        print("BENCH-VERSIONS " + json.dumps(figure), flush=True)
        rows.append([
            night.night, "yes" if night.late else "", raw_rows, stats.sightings_read,
            stats.keys_folded, stats.keys_recomputed, round(state_cpu, 2), round(full_cpu, 2),
            round(median(index_cpu) * 1000, 1), round(median(group_cpu) * 1000, 1), differing,
        ])  # fmt: skip
    nightly = [f for f in figures if f["night"] > 0]
    text = section_header(
        f"Version step over {args.nights} nights at {args.records:,} source records",
        command_line(),
        facts,
    )
    text += md_table(
        ["night", "late file", "raw sightings", "read (new)", "records folded",
         "records resolved again", "version state CPU s", "whole resolution CPU s",
         "live files: index CPU ms", "live files: raw GROUP BY CPU ms", "rows differing"],
        rows,
    )  # fmt: skip
    live_index = median([f["live_index_cpu"] for f in nightly]) * 1000
    live_group = median([f["live_group_cpu"] for f in nightly]) * 1000
    text += (
        f"\n\nNightly medians: version state {median([f['state_cpu'] for f in nightly]):.2f}"
        f" CPU s, whole resolution {median([f['full_cpu'] for f in nightly]):.2f} CPU s;"
        f" live-file list from the index {live_index:.1f} CPU ms vs {live_group:.1f} CPU ms by a"
        " GROUP BY over the raw rows.\n"
    )
    print(text)
    if not args.no_append:
        append_section(text)


if __name__ == "__main__":
    main()

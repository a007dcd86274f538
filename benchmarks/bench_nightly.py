"""Multi-night replay benchmark: N nights of realistic deliveries, then a full rebuild to compare.

Night 0 is the demo delivery (a full run); every later night the replay generator
(``sources.demo.replay``) delivers a full sales re-export and service/marketing deltas with new,
changed and deleted records, and now and then a late or repeated file. Each night runs the whole
pipeline (``run_pipeline`` with the night as run date) in this process; after the last night a
fresh warehouse is built from the same landing folder in one run (the full rebuild, starting from
the nightly warehouse's match model as a full relink with ``scale.reuse_params`` does) and the two
golden states are compared: same clusters, same golden values, unchanged entities kept their
``customer_id``, history holds every change with date and delivery.

    .venv/bin/python benchmarks/bench_nightly.py --records 100000 --nights 30
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
    peak_rss_mb,
    section_header,
    write_project_config,
)

RECORDS_PER_ENTITY = 2.4  # the demo generator's average source records per customer


def _write_config(workdir: Path, landing: Path, compact_every_days: int | None = None) -> Path:
    duckdb: dict[str, Any] = {"temp_directory": str(workdir / "state" / "duckdb_tmp")}
    if compact_every_days is not None:
        duckdb["compact_every_days"] = compact_every_days
    return write_project_config(workdir, landing, duckdb=duckdb)


def _run(cfg: Path, run_date: str) -> dict[str, Any]:
    import dagster as dg

    from pipelines.runner import run_pipeline

    started, cpu = time.perf_counter(), time.process_time()
    outcome = run_pipeline(cfg, run_date=run_date, instance=dg.DagsterInstance.ephemeral())
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu  # every thread of this process (the run is in-process)
    by_stage = outcome.stats.by_stage()
    stages = {k: (v.seconds or 0.0) for k, v in by_stage.items()}
    return {
        "success": outcome.success,
        "errors": outcome.errors,
        "wall": wall,
        "cpu": cpu,
        "stages": stages,
        **{name: by_stage[name].as_dict() if name in by_stage else {}
           for name in ("clean", "match", "golden")},
    }  # fmt: skip


def _seed_match_model(source: Path, target: Path) -> None:
    """Start the rebuild with the nightly warehouse's match model (scale.reuse_params)."""
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from warehouse import ensure_schemas, read_table, replace_tables

    with open_warehouse(load_config(source), read_only=True) as con:
        params = read_table(con, "match.params")
    assert params is not None
    source_cfg, target_cfg = load_config(source), load_config(target)
    key = target_cfg.resolve(target_cfg.security.key_file)
    if not key.exists():  # the same master key (a fresh project would generate its own)
        key.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_cfg.resolve(source_cfg.security.key_file), key)
    with open_warehouse(target_cfg) as con:
        ensure_schemas(con)
        replace_tables(con, {"match.params": params.tail(1)})


def _state(cfg_path: Path) -> dict[str, Any]:
    """Clusters (as record-key sets) → golden values, and record → customer id."""
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from warehouse import read_table
    from warehouse.settings import SURVIVING_ATTRIBUTES

    with open_warehouse(load_config(cfg_path), read_only=True) as con:
        cw = read_table(con, "golden.crosswalk")
        customers = read_table(con, "golden.customers")
        versions = con.sql(
            "SELECT change, count(*) AS n, count(valid_from) AS dated, count(delivery) AS delivered"
            " FROM history.record_versions GROUP BY 1"
        ).df()
        touched = con.sql(
            "SELECT record_key FROM history.record_versions GROUP BY 1 HAVING count(*) > 1"
        ).df()
    assert cw is not None and customers is not None
    columns = [*SURVIVING_ATTRIBUTES, "lifecycle", "tier", "record_count", "source_count"]
    values = customers.set_index("customer_id")[columns].astype("string").fillna("\x00")
    members = cw.groupby("customer_id")["record_key"].agg(frozenset)
    clusters = {keys: tuple(values.loc[cid]) for cid, keys in members.items()}
    return {
        "clusters": clusters,
        "ids": dict(zip(cw["record_key"], cw["customer_id"], strict=True)),
        "versions": versions,
        "touched": set(touched["record_key"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="source records of night 0")
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--change-share", type=float, default=0.01)
    parser.add_argument("--workdir", type=Path, default=OUT_ROOT / "data" / "bench_nightly")
    parser.add_argument("--no-rebuild", action="store_true", help="skip the full-rebuild check")
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument(
        "--compact-every-days", type=int, default=None,
        help="duckdb.compact_every_days of the nightly project (default: the project's)",
    )  # fmt: skip
    args = parser.parse_args()

    from sources.demo.replay import ReplaySettings, replay_nights

    facts = machine_facts()  # at the start: the code version and load the replay ran with

    entities = max(50, round(args.records / RECORDS_PER_ENTITY))
    settings = ReplaySettings(
        nights=args.nights,
        entities=entities,
        seed=args.seed,
        change_share=args.change_share,
        new_share=args.change_share / 2,
        delete_share=args.change_share / 5,
        late_every=7,
        repeat_every=5,
    )
    shutil.rmtree(args.workdir, ignore_errors=True)
    data = args.workdir / "demo"
    cfg = _write_config(args.workdir / "nightly", data / "landing", args.compact_every_days)
    runs: list[dict[str, Any]] = []
    nights = []
    first_ids: dict[str, str] = {}
    for night in replay_nights(data, settings):
        run = _run(cfg, night.run_date)
        run["night"], run["date"] = night.night, night.run_date
        run["delivered"] = {
            "new": sum(night.new.values()),
            "changed": sum(night.changed.values()),
            "deleted": sum(night.deleted.values()),
            "late": len(night.late),
            "repeated": len(night.repeated),
        }
        runs.append(run)
        nights.append(night)
        print(
            f"night {night.night:>2} {night.run_date}: {'ok' if run['success'] else 'FAILED'} "
            f"wall {run['wall']:.1f} s  CPU {run['cpu']:.1f} s  clean={run['clean'].get('mode')} "
            f"relinked={run['match'].get('records_relinked')} delivered={run['delivered']}",
            flush=True,
        )
        if not run["success"]:
            print("  errors:", run["errors"], flush=True)
        if night.night == 0:
            first_ids = _state(cfg)["ids"]

    result: dict[str, Any] = {
        "records": args.records,
        "entities": entities,
        "nights": args.nights,
        "all_succeeded": all(r["success"] for r in runs),
        "night0_wall": runs[0]["wall"],
        "nightly_wall_median": median([r["wall"] for r in runs[1:]]),
        "nightly_wall_max": max((r["wall"] for r in runs[1:]), default=float("nan")),
        "nightly_cpu_median": median([r["cpu"] for r in runs[1:]]),
        "nightly_cpu_total": sum(r["cpu"] for r in runs[1:]),
        "peak_rss_mb": peak_rss_mb(),
    }
    stage_names = sorted({k for r in runs for k in r["stages"]})
    if not args.no_rebuild:
        rebuild_cfg = _write_config(args.workdir / "rebuild", data / "landing")
        _seed_match_model(cfg, rebuild_cfg)
        full = _run(rebuild_cfg, nights[-1].run_date)
        result["rebuild_wall"] = full["wall"]
        result["rebuild_success"] = full["success"]
        nightly, rebuilt = _state(cfg), _state(rebuild_cfg)
        same_clusters = set(nightly["clusters"]) == set(rebuilt["clusters"])
        differing = sum(
            1 for k, v in rebuilt["clusters"].items() if nightly["clusters"].get(k) != v
        )
        result["same_clusters"] = same_clusters
        result["clusters_with_other_values"] = differing
        result["clusters"] = len(rebuilt["clusters"])
        # entities (night-0 customers) none of whose records changed keep their customer_id
        by_customer: dict[str, list[str]] = {}
        for key, cid in first_ids.items():
            by_customer.setdefault(cid, []).append(key)
        unchanged = [
            cid
            for cid, keys in by_customer.items()
            if not any(k in nightly["touched"] for k in keys)
        ]
        kept = sum(all(nightly["ids"].get(k) == cid for k in by_customer[cid]) for cid in unchanged)
        result["unchanged_customers"] = len(unchanged)
        result["unchanged_kept_id"] = kept
        versions = nightly["versions"]
        result["history"] = {
            r.change: {
                "versions": int(r.n),
                "with_date": int(r.dated),
                "with_delivery": int(r.delivered),
            }
            for r in versions.itertuples()
        }
        stage_names = sorted(set(stage_names) | set(full["stages"]))
        result["rebuild_stages"] = full["stages"]
    result["stage_medians"] = {
        s: median([r["stages"].get(s, 0.0) for r in runs[1:]]) for s in stage_names
    }
    result["night0_stages"] = runs[0]["stages"]
    print("BENCH-NIGHTLY " + json.dumps(result, default=str), flush=True)

    rows = [
        [
            s,
            runs[0]["stages"].get(s, 0.0),
            result["stage_medians"][s],
            result.get("rebuild_stages", {}).get(s, float("nan")),
        ]
        for s in stage_names
    ]
    rows.append(
        ["whole run (wall)", runs[0]["wall"], result["nightly_wall_median"],
         result.get("rebuild_wall", float("nan"))]
    )  # fmt: skip
    text = section_header(
        f"Nightly replay: {args.nights} nights at {args.records:,} source records",
        command_line(),
        facts,
    )
    text += md_table(["stage (s)", "night 0 (full)", "nightly median", "full rebuild at end"], rows)
    ratio = result["nightly_wall_median"] / runs[0]["wall"]
    failed = [r["date"] for r in runs if not r["success"]]
    text += (
        f"\n\nRuns failed: {', '.join(failed) or 'none'}. Nightly median "
        f"{result['nightly_wall_median']:.1f} s = {ratio:.2f}× night 0 (a full run of the base "
        f"delivery; the rebuild at the end also ingests every night's files); max night "
        f"{result['nightly_wall_max']:.1f} s; peak RSS of the whole replay "
        f"{result['peak_rss_mb']:.0f} MB.\n"
    )
    if "same_clusters" in result:
        text += (
            f"After the last night vs a full rebuild from the same deliveries: same clusters: "
            f"{result['same_clusters']} ({result['clusters']:,} clusters), clusters whose golden "
            f"values differ: {result['clusters_with_other_values']}; customers none of whose "
            f"records changed keeping their customer_id: {result['unchanged_kept_id']:,} of "
            f"{result['unchanged_customers']:,}; history versions: "
            + ", ".join(
                f"{k} {v['versions']:,} ({v['with_date']:,} dated, "
                f"{v['with_delivery']:,} with delivery)"
                for k, v in result["history"].items()
            )
            + ".\n"
        )
    print(text)
    if not args.no_append:
        append_section(text)


if __name__ == "__main__":
    main()

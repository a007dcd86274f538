"""End-to-end pipeline benchmark: generated exports with truth → whole Dagster job → figures.

For each size (source records across the three departments) the script

1. generates demo exports with truth once and caches them under ``data/bench/<n>/``: a base
   delivery (99 % of every department's rows, ``2026-11-23``) and a second delivery with the other
   1 % (``2026-11-24``), so the incremental scenario adds genuinely new records. A source declared
   ``delivery: full`` in sources.yml (the sales CRM) delivers its whole export again on the
   second night (base rows + its 1 % new rows, as a CRM does), since a full delivery holding only
   the new rows would mean every other record was deleted at source;
2. runs the whole job (``pipelines.runner.run_pipeline``) on the base delivery in a fresh
   warehouse, in a child process so each run has its own heap and peak RSS;
3. drops the 1 % delivery into the same landing folder and runs the job again (the nightly
   incremental run), again in a child process;
4. prints per-stage wall time, peak RSS and rows/s plus pairwise and B-cubed P/R/F1, takes the
   median over ``--repeat`` full runs (``--nightly-repeat`` nightly runs after each, every one
   from a copy of the state the full run left), and appends a dated section to ``BENCHMARKS.md``.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py --records 10000 100000 --repeat 3
    .venv/bin/python benchmarks/bench_pipeline.py --records 1000000 --repeat 1
    .venv/bin/python benchmarks/bench_pipeline.py --records 1000000 --repeat 3 --nightly-repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    OUT_ROOT,
    RESULT_PREFIX,
    ROOT,
    append_section,
    command_line,
    emit_result,
    machine_facts,
    md_table,
    median,
    peak_rss_mb,
    resident_mb,
    section_header,
    write_project_config,
)

RECORDS_PER_ENTITY = 2.4  # the demo generator's average (docs of sources.demo)
BASE_DATE = "2026-11-23"
# ticket rows per service XLSX file (a sheet holds 1,048,576 rows, the title and header take 3;
# beyond that xlsxwriter drops rows silently), so a 10 M export comes as several files
XLSX_MAX_ROWS = 1_000_000
# entities per generator batch (≈ 2.4 M source records, ≈ 3.5 GB of generator memory)
GEN_BATCH_ENTITIES = 1_000_000
DELTA_DATE = "2026-11-24"
STAGES = (
    "ingest",
    "clean",
    "match",
    "golden",
    "quality",
    "publish",
    "snapshot",
    "report",
    "orchestration",
)


# --------------------------------------------------------------------------- data preparation


def _split_table(table: Any, delta: np.ndarray) -> tuple[Any, Any]:
    """Split a demo SourceTable into (base rows, delta rows) by a boolean mask."""
    from sources.demo.records import SourceTable

    def take(mask: np.ndarray) -> SourceTable:
        idx = np.flatnonzero(mask)
        return SourceTable(
            frame=table.frame.iloc[idx].reset_index(drop=True),
            entity=[table.entity[i] for i in idx],
            date_cells=None if table.date_cells is None else [table.date_cells[i] for i in idx],
            number_cells=(
                None if table.number_cells is None else [table.number_cells[i] for i in idx]
            ),
        )

    return take(~delta), take(delta)


def _write_delivery(
    tables: dict[str, Any], landing: Path, date: str, suffix: str = ""
) -> dict[str, int]:
    """Write one delivery of the three departments' exports the way their systems do.

    ``suffix`` goes at the end of every file name (more files of the same delivery).
    """
    from sources.demo.writers import write_marketing_jsonl, write_sales_csv, write_service_xlsx

    day = dt.date.fromisoformat(date)
    service = tables["service"]
    parts = -(-len(service.frame) // XLSX_MAX_ROWS) or 1
    service_rows = 0
    for part in range(parts):  # an XLSX sheet holds 1,048,576 rows: larger exports are split
        rows = np.zeros(len(service.frame), dtype=bool)
        rows[part * XLSX_MAX_ROWS : (part + 1) * XLSX_MAX_ROWS] = True
        chunk = service if parts == 1 else _split_table(service, rows)[1]
        name = f"tickets{suffix}.xlsx" if part == 0 else f"tickets{suffix}_{part + 1}.xlsx"
        service_rows += write_service_xlsx(
            chunk,
            landing / "service" / date / name,
            title=f"客服工单导出（{day.year}年{day.month}月）",
            created=dt.datetime.combine(day, dt.time(8, 0)),
        )
    return {
        "sales": write_sales_csv(
            tables["sales"], landing / "sales" / date / f"crm_customers{suffix}.csv"
        ),
        "service": service_rows,
        "marketing": write_marketing_jsonl(
            tables["marketing"], landing / "marketing" / date / f"leads{suffix}.jsonl"
        ),
    }


def _batch_ids(tables: dict[str, Any], truth: Any, batch: int) -> tuple[dict[str, Any], Any]:
    """Make a later generator batch's record and entity ids distinct from every other batch's.

    The batch number goes after the id's letters (``KH10000001`` → ``KH310000001``,
    ``E0000015`` → ``E30000015``): the same shape of id, never one of batch 0 (one digit more).
    """
    from sources.demo.generator import _ID_COLUMN

    def tag(values: Any) -> Any:
        text = pd.Series(values, dtype=object).astype(str)
        return (
            text.str.extract(r"^([A-Za-z]*)", expand=False)
            + str(batch)
            + text.str.replace(r"^[A-Za-z]*", "", regex=True)
        ).to_numpy(dtype=object)

    for source, table in tables.items():
        column = _ID_COLUMN[source]
        table.frame[column] = tag(table.frame[column].to_numpy())
    truth = truth.copy()
    truth["source_record_id"] = tag(truth["source_record_id"].to_numpy())
    truth["entity_id"] = tag(truth["entity_id"].to_numpy())
    return tables, truth


def _generate_batch(
    folder: Path, batch: int, entities: int, seed: int, delta_share: float
) -> dict[str, Any]:
    """Generate one batch and write it as files of the base and delta deliveries (plus its
    truth as ``truth_<batch>.csv``); return its counts and seconds."""
    from sources.demo.generator import _generate

    started = time.perf_counter()
    generated = _generate(entities, seed + 1000 * batch)
    tables, truth = generated.tables, generated.data.truth
    del generated
    if batch:
        tables, truth = _batch_ids(tables, truth, batch)
    gen_s = time.perf_counter() - started
    rng = np.random.default_rng(seed + 1 + 1000 * batch)
    base_tables: dict[str, Any] = {}
    delta_tables: dict[str, Any] = {}
    for source, table in tables.items():
        mask = rng.random(len(table.frame)) < delta_share
        base_tables[source], delta_tables[source] = _split_table(table, mask)
    del tables
    started = time.perf_counter()
    suffix = f"_{batch + 1}" if batch else ""
    base = _write_delivery(base_tables, folder / "base", BASE_DATE, suffix)
    delta = _write_delivery(delta_tables, folder / "delta", DELTA_DATE, suffix)
    truth.to_csv(folder / f"truth_{batch}.csv", index=False, lineterminator="\n")
    write_s = time.perf_counter() - started
    print(
        f"  generated batch {batch + 1} ({entities:,} entities): {gen_s:.0f} s generating, "
        f"{write_s:.0f} s writing, peak RSS {peak_rss_mb():,.0f} MB",
        flush=True,
    )
    result = {
        "base_counts": base,
        "delta_counts": delta,
        "generate_seconds": gen_s,
        "write_seconds": write_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    # written last: a batch with this file is complete (an interrupted generation resumes)
    (folder / f"batch_{batch}.json").write_text(json.dumps(result), encoding="utf-8")
    return result


def prepare_data(records: int, seed: int, delta_share: float, jobs: int = 1) -> dict[str, Any]:
    """Generate (or reuse) the cached base + delta deliveries and truth for one size.

    Args:
        records: wanted number of source records (entities = records / 2.4).
        seed: generator seed.
        delta_share: share of every department's rows held back for the second delivery.
        jobs: generator batches generated side by side (processes).

    Beyond ``GEN_BATCH_ENTITIES`` entities the generator runs in independent batches (seed +
    1000 × batch, ids made distinct by ``_batch_ids``) written as extra files of the same
    deliveries, so its memory stays that of one batch: the generator holds ≈ 1.4 KB per record
    (≈ 14 GB for 10 M records in one go). Batches share the generator's name and address pools,
    so people and companies of different batches can share a name, as in a larger country.

    Returns:
        The cache's metadata: folder, record counts per delivery, generation seconds.
    """
    folder = OUT_ROOT / "data" / "bench" / str(records)
    meta_file = folder / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("seed") == seed and meta.get("delta_share") == delta_share:
            meta["cached"] = True
            meta["folder"] = str(folder)  # a cache copied from another checkout names its origin
            return meta
    entities = max(1, round(records / RECORDS_PER_ENTITY))
    batches = -(-entities // GEN_BATCH_ENTITIES)
    plan = {"records": records, "seed": seed, "delta_share": delta_share, "batches": batches}
    plan_file = folder / "plan.json"
    if not plan_file.exists() or json.loads(plan_file.read_text(encoding="utf-8")) != plan:
        shutil.rmtree(folder, ignore_errors=True)  # else: resume, keeping the finished batches
        folder.mkdir(parents=True)
        plan_file.write_text(json.dumps(plan), encoding="utf-8")
    sizes = [entities // batches + (1 if b < entities % batches else 0) for b in range(batches)]
    base_counts: dict[str, int] = {}
    delta_counts: dict[str, int] = {}
    finished = {
        b: json.loads((folder / f"batch_{b}.json").read_text(encoding="utf-8"))
        for b in range(batches)
        if (folder / f"batch_{b}.json").exists()
    }
    args = [(folder, b, sizes[b], seed, delta_share) for b in range(batches) if b not in finished]
    if jobs > 1 and len(args) > 1:  # batches are independent: generate them side by side
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        # each worker in its own session: the kernel's autogroup scheduler shares the CPU
        # between sessions, so workers of one session would only split one session's share
        with ProcessPoolExecutor(
            min(jobs, len(args)), mp_context=context, initializer=os.setsid
        ) as pool:
            done = list(pool.map(_generate_batch, *zip(*args, strict=True)))
    else:
        done = [_generate_batch(*a) for a in args]
    done += list(finished.values())
    gen_s = sum(d["generate_seconds"] for d in done)
    write_s = sum(d["write_seconds"] for d in done)
    for d in done:
        for counts, key in ((base_counts, "base_counts"), (delta_counts, "delta_counts")):
            for k, v in d[key].items():
                counts[k] = counts.get(k, 0) + v
    with (folder / "truth.csv").open("wb") as out:
        for b in range(batches):
            part = folder / f"truth_{b}.csv"
            with part.open("rb") as src:
                if b:
                    src.readline()  # one header
                shutil.copyfileobj(src, out)
    for b in range(batches):
        (folder / f"truth_{b}.csv").unlink()
        (folder / f"batch_{b}.json").unlink()
    plan_file.unlink()
    meta = {
        "records": records,
        "entities": entities,
        "seed": seed,
        "delta_share": delta_share,
        "base_records": sum(base_counts.values()),
        "delta_records": sum(delta_counts.values()),
        "base_counts": base_counts,
        "delta_counts": delta_counts,
        "generate_seconds": round(gen_s, 2),
        "write_seconds": round(write_s, 2),
        "generator_batches": batches,
        "folder": str(folder),
    }
    meta_file.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    meta["cached"] = False
    return meta


def _full_redelivery(meta: dict[str, Any]) -> None:
    """Make each ``delivery: full`` source's second delivery its whole export (base + new rows).

    The cached CSV of the second night gets the base rows in front of its own (same writer, same
    header), once; marked in meta.json so a cached folder is converted only once.
    """
    folder = Path(meta["folder"])
    if meta.get("full_redelivery"):
        return
    from sources.config import load_sources_config

    sources_file = ROOT / "sources" / "sources.yml"
    for source in load_sources_config(sources_file, folder / "base", check_files=False).sources:
        if source.delivery != "full":
            continue
        if source.format != "csv":
            raise RuntimeError(f"{source.name}: full re-delivery supports CSV exports only")
        for delta in sorted((folder / "delta").glob(f"{source.name}/{DELTA_DATE}/*.csv")):
            base = folder / "base" / source.name / BASE_DATE / delta.name
            base_bytes, delta_bytes = base.read_bytes(), delta.read_bytes()
            if not base_bytes.endswith(b"\n"):
                base_bytes += b"\n"
            if not delta_bytes.startswith(base_bytes):  # not converted by another benchmark
                new_lines = delta_bytes.splitlines(True)[1:]
                delta.write_bytes(base_bytes + b"".join(new_lines))
        # every base file of the source is delivered again (one file per generator batch)
        meta["redelivered_records"] = meta.get("redelivered_records", 0) + meta["base_counts"].get(
            source.name, 0
        )
    meta["full_redelivery"] = True
    saved = {k: v for k, v in meta.items() if k != "cached"}
    (folder / "meta.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")


def _write_config(workdir: Path, landing: Path, scale: dict[str, Any] | None = None) -> Path:
    """A project config whose state lives under ``workdir`` (same shape as the test projects).

    ``scale`` (from the command line, see ``scale_settings``) may set ``match_shards``,
    ``executor``, ``max_concurrent`` and ``workers`` (the ``scale`` section) and
    ``memory_limit``, ``temp_directory`` and ``threads`` (the ``duckdb`` section); the temp
    folder defaults to ``state/duckdb_tmp`` in the run's folder.
    """
    scale = scale or {}
    temp = scale.get("temp_directory") or str(workdir / "state" / "duckdb_tmp")
    return write_project_config(
        workdir,
        landing,
        duckdb={
            "temp_directory": temp,
            "memory_limit": scale.get("memory_limit"),
            "threads": scale.get("threads"),
        },
        scale={
            k: scale.get(k)
            for k in (
                "match_shards",
                "executor",
                "max_concurrent",
                "workers",
                "clean_workers",
                "golden_workers",
            )
        },
    )


def scale_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's scale-out settings from the command line (None = the project's default)."""
    executor = args.executor or ("multiprocess" if args.shards and args.shards > 1 else None)
    return {
        "match_shards": args.shards,
        "executor": executor,
        "max_concurrent": args.max_concurrent if executor == "multiprocess" else None,
        "workers": args.workers,
        "clean_workers": args.clean_workers,
        "golden_workers": args.golden_workers,
        "memory_limit": args.memory_limit,
        "threads": args.duckdb_threads,
        "temp_directory": str(args.temp_dir) if args.temp_dir else None,
    }


def settings_label(scale: dict[str, Any]) -> str:
    """A short text of the non-default scale settings (for headings and result files)."""
    parts = [f"{k}={v}" for k, v in scale.items() if v is not None and k != "temp_directory"]
    return ", ".join(parts) or "defaults (in-process, 1 shard, DuckDB memory_limit auto)"


# --------------------------------------------------------------------------- worker (child)


def worker(
    workdir: Path,
    data: Path,
    phase: str,
    profile: Path | None,
    scale: dict[str, Any] | None = None,
    landing_direct: bool = False,
) -> None:
    """Run one pipeline run in this process and emit its figures (child-process entry point).

    ``landing_direct`` reads the cached base delivery in place instead of copying it into the
    run's folder (full runs without a nightly run after them: at 10 M the copy is GBs).
    """
    from pipelines.runner import evaluate_against_truth, run_pipeline
    from pipelines.settings import load_config

    landing = workdir / "landing"
    if phase == "full":
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        if landing_direct:
            landing = data / "base"
        else:
            shutil.copytree(data / "base", landing)
        run_date = BASE_DATE
    else:
        shutil.copytree(data / "delta", landing, dirs_exist_ok=True)
        run_date = DELTA_DATE
    cfg_path = _write_config(workdir, landing, scale)
    profiler = None
    if profile is not None:
        try:
            from pyinstrument import Profiler
        except ImportError:  # profiling tool lives in the benchmark venv (make bench-splink)
            version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
            sys.path.append(str(OUT_ROOT / ".venv-bench" / "lib" / version / "site-packages"))
            from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    import dagster as dg

    stage_cpu, stage_rss = _count_stage_cpu()
    # A persistent instance in the run's folder (one per phase): the multiprocess executor's
    # step processes share it, and the parent reads its event log (the steps reached) when the
    # run is killed by the memory or time limit.
    (workdir / "dagster" / phase).mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str(workdir / "dagster" / phase))
    cpu_started = _cpu_seconds()
    started = time.perf_counter()
    outcome = run_pipeline(cfg_path, run_date=run_date, instance=instance)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    if profiler is not None:
        profiler.stop()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(profiler.output_html(), encoding="utf-8")
        profile.with_suffix(".txt").write_text(
            profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8"
        )
    accuracy = None
    if outcome.success:
        accuracy = evaluate_against_truth(load_config(cfg_path), data / "truth.csv")
    elif outcome.stats.match is not None:  # publishing blocked: score the match stage's clusters
        accuracy = _match_accuracy(load_config(cfg_path), data / "truth.csv")
    stages = {
        name: {"seconds": s.seconds, "peak_rss_mb": s.peak_rss_mb}
        for name, s in outcome.stats.by_stage().items()
    }
    steps = _step_seconds(instance, outcome.run_id)
    if "golden_expectations" in steps:
        stages["quality"] = {"seconds": round(steps["golden_expectations"], 3)}
    if "clean_expectations" in steps:
        stages["quality:clean"] = {"seconds": round(steps["clean_expectations"], 3)}
    raw_checks = [v for k, v in steps.items() if k.startswith("raw_expectations_")]
    if raw_checks:
        stages["quality:raw"] = {"seconds": round(sum(raw_checks), 3)}
    for name, cpu_s in stage_cpu.items():
        stages.setdefault(name, {})["cpu_seconds"] = round(cpu_s, 2)
    run_peak = max(stage_rss.pop("_run")["peak_rss_mb"], resident_mb()["hwm"])
    for name, resident in stage_rss.items():
        stages.setdefault(name, {}).update(resident)
    snapshot_s = float(stages.get("snapshot", {}).get("seconds") or 0)
    report = steps.get("archive__snapshot", 0.0) - snapshot_s
    if report > 0:
        stages["report"] = {"seconds": round(report, 3)}
    stages["orchestration"] = {"seconds": round(wall - sum(steps.values()), 3)}
    clean, match, golden = outcome.stats.clean, outcome.stats.match, outcome.stats.golden
    modes = {
        "clean": clean.mode if clean else None,
        "match": f"{match.mode}, {match.records_relinked} records linked" if match else None,
        "golden": f"{golden.mode}, {golden.customers_rebuilt} of {golden.golden_customers}"
        " customers rebuilt"
        if golden
        else None,
    }
    # also human-readable in the parent's log, so a later failure loses no figures
    print(
        f"{phase} run: wall {wall:.1f} s, CPU {cpu:.1f} s, modes {json.dumps(modes)}, "
        f"stages {json.dumps(stages)}",
        flush=True,
    )
    emit_result(
        {
            "phase": phase,
            "success": outcome.success,
            "blocked": outcome.blocked,
            "errors": outcome.errors,
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": max(run_peak, peak_rss_mb()),
            "stages": stages,
            "modes": modes,
            "clean_records": clean.clean_records if clean else None,
            "candidate_pairs": match.candidate_pairs if match else None,
            "accuracy": accuracy,
            "steps": step_windows(instance, outcome.run_id),
            "disk_mb": disk_use(workdir, scale),
        }
    )


def _count_stage_cpu() -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Wrap the stage functions the Dagster definitions call so each adds its CPU seconds.

    Process CPU (``time.process_time``: every thread, DuckDB's included) plus the finished child
    processes' (clean and golden helpers) around each stage call;
    the in-process executor runs one step at a time, so the figures do not overlap. Keys follow
    the stage table (``ingest``, ``clean``, …, ``quality:raw``, ``quality:clean``, ``quality``).
    The second mapping holds each stage's resident memory (``ingest:<source>`` per source): at
    its start, its own peak (the process's peak is reset when it starts), at its end, and the
    process's peak so far (``peak_rss_mb``, which replaces the stage's ``ru_maxrss`` figure:
    the reset lowers that too); ``_run`` keeps the process's peak across the resets.
    """
    import functools

    import pipelines.assets as assets
    import pipelines.checks as checks

    cpu: dict[str, float] = {}
    rss: dict[str, dict[str, float]] = {"_run": {"peak_rss_mb": 0.0}}
    names = {
        assets: {
            "ingest_stage": "ingest",
            "clean_stage": "clean",
            "match_stage": "match",
            "golden_stage": "golden",
            "swap_stage": "publish",
            "snapshot_stage": "snapshot",
        },
        checks: {
            "raw_quality_stage": "quality:raw",
            "clean_quality_stage": "quality:clean",
            "quality_stage": "quality",
        },
    }
    for module, table in names.items():
        for attr, key in table.items():
            fn = getattr(module, attr)

            @functools.wraps(fn)
            def timed(*args: Any, _fn: Any = fn, _key: str = key, **kwargs: Any) -> Any:
                name = f"{_key}:{args[2]}" if _key == "ingest" and len(args) > 2 else _key
                before = resident_mb()
                rss["_run"] = {"peak_rss_mb": max(rss["_run"]["peak_rss_mb"], before["hwm"])}
                at_start = resident_mb(reset_peak=True)
                started, children = time.process_time(), _children_cpu()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    own = time.process_time() - started
                    helpers = _children_cpu() - children
                    cpu[_key] = cpu.get(_key, 0.0) + own + helpers
                    if helpers > 0:
                        cpu[f"{_key}:helpers"] = cpu.get(f"{_key}:helpers", 0.0) + helpers
                    after = resident_mb()
                    rss[name] = {
                        "rss_start_mb": at_start["rss"],
                        "rss_own_peak_mb": after["hwm"],
                        "rss_end_mb": after["rss"],
                        # the process's peak so far (resetting the peak also resets ru_maxrss)
                        "peak_rss_mb": max(rss["_run"]["peak_rss_mb"], after["hwm"]),
                    }

            setattr(module, attr, timed)
    return cpu, rss


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished child processes (a stage's clean or
    golden helpers, which it waits for before it returns)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads, e.g. DuckDB's), plus
    its finished child processes (the cleaning worker pool of ``scale.workers``)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _match_accuracy(cfg: Any, truth_csv: Path) -> dict[str, Any]:
    """Pairwise/B-cubed scores of ``match.clusters`` (used when publishing was blocked)."""
    import pandas as pd

    from dedupe import bcubed_scores, pairwise_scores
    from pipelines.access import open_warehouse
    from warehouse import read_table

    truth = pd.read_csv(truth_csv, dtype=str)
    truth["record_key"] = truth["source_system"] + ":" + truth["source_record_id"]
    with open_warehouse(cfg, read_only=True) as con:
        clusters = read_table(con, "match.clusters")
    if clusters is None:
        return {"error": "match.clusters is missing"}
    pred = clusters[["record_key", "cluster_key"]]
    tru = truth[truth["record_key"].isin(pred["record_key"])][["record_key", "entity_id"]]
    pw, b3 = pairwise_scores(pred, tru), bcubed_scores(pred, tru)
    return {
        "source": "match.clusters (publishing blocked)",
        "pairwise": {"precision": pw.precision, "recall": pw.recall, "f1": pw.f1},
        "bcubed": {"precision": b3.precision, "recall": b3.recall, "f1": b3.f1},
    }


def _step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Wall seconds of every Dagster step of a run, from its event log (start → end)."""
    import dagster as dg

    ends = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    start: dict[str, float] = {}
    out: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            start[event.step_key] = record.timestamp
        elif event.event_type in ends and event.step_key in start:
            out[event.step_key] = record.timestamp - start[event.step_key]
    return out


def step_windows(instance: Any, run_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Start/end (epoch seconds) and outcome of every step of a run, from its event log.

    A step that started but has no end event was running when the run stopped (``end`` None,
    ``status`` "running"). ``run_id`` None = the instance's latest run (after a kill).
    """
    import dagster as dg

    if run_id is None:
        runs = instance.get_runs(limit=1)
        if not runs:
            return {}
        run_id = runs[0].run_id
    out: dict[str, dict[str, Any]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            out[event.step_key] = {"start": record.timestamp, "end": None, "status": "running"}
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key in out:
            out[event.step_key].update(end=record.timestamp, status="success")
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key in out:
            out[event.step_key].update(end=record.timestamp, status="failure")
    return out


def stage_of_step(step_key: str) -> str:
    """The stage-table name of a Dagster step key (``raw__sales`` → ``ingest``, …)."""
    rules = (
        ("raw_expectations", "quality:raw"),
        ("clean_expectations", "quality:clean"),
        ("golden_expectations", "quality"),
        ("raw__", "ingest"),
        ("clean__", "clean"),
        ("match", "match"),
        ("staging__", "golden"),
        ("golden__", "publish"),
        ("publish", "publish"),
        ("archive__", "snapshot"),
    )
    for prefix, stage in rules:
        if step_key.startswith(prefix):
            return stage
    return step_key.split("[", 1)[0]


def disk_paths(workdir: Path, scale: dict[str, Any] | None) -> dict[str, Path]:
    """The run's folders whose disk use is reported: warehouse, DuckDB spill, Dagster storage
    (the multiprocess executor's pickles between steps), archive + exports, everything."""
    state = workdir / "state"
    temp = Path((scale or {}).get("temp_directory") or state / "duckdb_tmp")
    return {
        "warehouse": state / "warehouse.duckdb",
        "warehouse_wal": state / "warehouse.duckdb.wal",
        "duckdb_temp": temp,
        "dagster": workdir / "dagster",
        "archive": state / "archive",
        "exports": state / "exports",
        "run_folder": workdir,
    }


def disk_use(workdir: Path, scale: dict[str, Any] | None) -> dict[str, float]:
    """Disk use (MB) of the run's folders right now."""
    from benchmarks.tree_watch import du

    return {k: round(du(p) / 1e6, 1) for k, p in disk_paths(workdir, scale).items()}


# --------------------------------------------------------------------------- parent


def _stage_keys(runs: list[dict[str, Any]]) -> list[str]:
    """Stage names in pipeline order (ingest:<source> folded into 'ingest:*')."""
    keys: list[str] = []
    for run in runs:
        for k in run["stages"]:
            if k not in keys:
                keys.append(k)

    def order(k: str) -> tuple[int, str]:
        head = k.split(":", 1)[0]
        return (STAGES.index(head) if head in STAGES else len(STAGES), k)

    return sorted(keys, key=order)


def _median_of(runs: list[dict[str, Any]], stage: str, field: str) -> float:
    values = [r["stages"][stage][field] for r in runs if r["stages"].get(stage, {}).get(field)]
    return median([float(v) for v in values])


def _scores(run: dict[str, Any]) -> dict[str, float]:
    acc = run.get("accuracy") or {}
    out: dict[str, float] = {}
    for kind in ("pairwise", "bcubed"):
        for m in ("precision", "recall", "f1"):
            out[f"{kind}_{m}"] = float(acc.get(kind, {}).get(m, float("nan")))
    return out


def _resident_table(full: list[dict], inc: list[dict]) -> str:
    """Markdown of each stage's resident memory at start, own peak and end (full, nightly)."""
    fields = ("rss_start_mb", "rss_own_peak_mb", "rss_end_mb")
    rows = [
        [
            stage,
            *[_median_of(full, stage, f) for f in fields],
            *[_median_of(inc, stage, f) for f in fields],
        ]
        for stage in _stage_keys(full + inc)
        if any(r["stages"].get(stage, {}).get("rss_own_peak_mb") for r in full + inc)
    ]
    if not rows:
        return ""
    return md_table(
        [
            "stage",
            "full: start",
            "full: own peak",
            "full: end",
            "nightly: start",
            "nightly: own peak",
            "nightly: end",
        ],
        rows,
    )


def _tree_table(runs: list[dict]) -> str:
    """Per stage, the whole process tree (worker + Dagster step processes): wall, CPU, peak RSS
    and peak disk of the run folder (medians over runs), from the tree samples."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.get("stage_tree", {}) if k not in keys]
    first = runs[0].get("stage_tree", {})  # stages in the order the first run started them
    keys.sort(key=lambda k: (first.get(k, {}).get("started_s", float("inf")), k))

    def med(stage: str, field: str) -> float:
        return median(
            [float(r["stage_tree"][stage][field]) for r in runs if stage in r.get("stage_tree", {})]
        )

    rows: list[list[object]] = []
    for k in keys:
        states = {r["stage_tree"][k]["status"] for r in runs if k in r.get("stage_tree", {})}
        rows.append(
            [
                k,
                med(k, "seconds"),
                med(k, "tree_cpu_s"),
                med(k, "tree_peak_rss_mb"),
                med(k, "peak_disk_mb"),
                ", ".join(sorted(states)),
            ]
        )
    trees = [r["tree"] for r in runs if r.get("tree")]
    outside = median(
        [
            float(r["tree"]["tree_cpu_s"])
            - sum(v["tree_cpu_s"] for v in r.get("stage_tree", {}).values())
            for r in runs
            if r.get("tree")
        ]
    )
    rows.append(
        ["outside the steps (start-up, Dagster, step processes' start)", "", outside, "", "", ""]
    )
    disk = [r.get("disk_mb", {}) for r in runs]
    rows.append(
        [
            "**whole run**",
            median([float(t["wall_s"]) for t in trees]),
            median([float(t["tree_cpu_s"]) for t in trees]),
            median([float(t["peak_tree_rss_mb"]) for t in trees]),
            median(
                [float(t.get("peak_disk_mb", {}).get("run_folder", float("nan"))) for t in trees]
            ),
            f"PSS peak {median([float(t['peak_tree_pss_mb']) for t in trees]):,.0f} MB; "
            f"at the end: warehouse {median([float(d.get('warehouse', 0)) for d in disk]):,.0f} MB,"
            f" DuckDB temp {median([float(d.get('duckdb_temp', 0)) for d in disk]):,.0f} MB, "
            f"Dagster storage {median([float(d.get('dagster', 0)) for d in disk]):,.0f} MB",
        ]
    )
    return md_table(
        [
            "stage (process tree)",
            "wall s",
            "tree CPU s",
            "tree peak RSS MB",
            "run folder peak disk MB",
            "status",
        ],
        rows,
    )


def _killed_report(meta: dict[str, Any], run: dict[str, Any]) -> str:
    """Markdown for a run the watchdog killed (or that failed): how far it got."""
    reached = [k for k, w in run.get("steps", {}).items() if w["status"] != "success"]
    done = [k for k, w in run.get("steps", {}).items() if w["status"] == "success"]
    return "\n".join(
        [
            f"### {meta['records']:,} source records ({meta['entities']:,} entities; base "
            f"delivery {meta['base_records']:,} records): **{run['phase']} run stopped** — "
            f"{run.get('killed') or run.get('failed')}",
            "",
            f"Settings: {settings_label(run.get('settings') or {})}. Data generation "
            f"{meta['generate_seconds']} s + writing files {meta['write_seconds']} s. "
            f"Steps finished: {', '.join(done) or 'none'}; running when stopped: "
            f"{', '.join(reached) or 'none'}.",
            "",
            _tree_table([run]),
        ]
    )


def _count(value: object) -> str:
    """A count with thousands separators, or "–" when the run stopped before it was known."""
    return f"{value:,}" if isinstance(value, int) else "–"


def _size_report(meta: dict[str, Any], full: list[dict], inc: list[dict]) -> tuple[str, dict]:
    """Markdown for one size plus its summary figures."""
    if any(r.get("killed") or r.get("failed") for r in full):
        run = next(r for r in full if r.get("killed") or r.get("failed"))
        tree = run.get("tree", {})
        return _killed_report(meta, run), {
            "records": meta["records"],
            "base_records": meta["base_records"],
            "full_s": float("nan"),
            "full_rss_mb": float("nan"),
            "full_cpu_s": float("nan"),
            "tree_rss_mb": float(tree.get("peak_tree_rss_mb", float("nan"))),
            "killed": True,
        }
    n = meta["base_records"]
    stage_rows = []
    for stage in _stage_keys(full + inc):
        f_s = _median_of(full, stage, "seconds")
        i_s = _median_of(inc, stage, "seconds")
        stage_rows.append(
            [
                stage,
                f_s,
                n / f_s if f_s == f_s and f_s > 0 else float("nan"),
                _median_of(full, stage, "peak_rss_mb"),
                i_s,
                i_s / f_s if f_s == f_s and f_s > 0 else float("nan"),
                _median_of(inc, stage, "peak_rss_mb"),
                _median_of(full, stage, "cpu_seconds"),
                _median_of(inc, stage, "cpu_seconds"),
            ]
        )
    full_wall = median([r["wall_seconds"] for r in full])
    inc_wall = median([r["wall_seconds"] for r in inc])
    full_rss = median([r["peak_rss_mb"] for r in full])
    inc_rss = median([r["peak_rss_mb"] for r in inc])
    stage_rows.append(
        [
            "**whole run**",
            full_wall,
            n / full_wall,
            full_rss,
            inc_wall,
            inc_wall / full_wall,
            inc_rss,
            "",
            "",
        ]
    )
    # under the multiprocess executor the steps run in processes the worker's getrusage does
    # not see: the whole tree's CPU seconds (sampled) are the run's CPU there
    multi = (full[0].get("settings") or {}).get("executor") == "multiprocess"

    def run_cpu(r: dict[str, Any]) -> float:
        if multi and r.get("tree"):
            return float(r["tree"]["tree_cpu_s"])
        return float(r.get("cpu_seconds", float("nan")))

    full_cpu = median([run_cpu(r) for r in full])
    inc_cpu = median([run_cpu(r) for r in inc])
    stage_rows.append(
        [
            "**whole run, CPU s** (user+sys" + (", process tree)" if multi else ")"),
            full_cpu,
            n / full_cpu,
            "",
            inc_cpu,
            inc_cpu / full_cpu,
            "",
            full_cpu,
            inc_cpu,
        ]
    )
    scores_full = {k: median([_scores(r)[k] for r in full]) for k in _scores(full[0])}
    scores_inc = {k: median([_scores(r)[k] for r in inc]) for k in _scores(inc[0])} if inc else {}
    lines = [
        f"### {meta['records']:,} source records ({meta['entities']:,} entities; "
        f"base delivery {n:,} records, +{meta['delta_records']:,} in the 1 % delivery; "
        f"{meta.get('redelivered_records', 0):,} unchanged rows re-delivered in the full "
        "re-export of the `delivery: full` source)",
        "",
        f"Data generation {meta['generate_seconds']} s + writing files "
        f"{meta['write_seconds']} s (not in the run times; cached under data/bench/). "
        f"Runs: {len(full)} full + {len(inc)} incremental, medians shown. "
        f"Clean records {_count(full[0].get('clean_records'))}, candidate pairs "
        f"{_count(full[0].get('candidate_pairs'))}. Success: "
        f"{all(r['success'] for r in full + inc)}.",
        "",
        md_table(
            [
                "stage",
                "full s",
                "rows/s",
                "peak RSS MB",
                "incremental s",
                "incr/full",
                "incr. peak RSS MB",
                "full CPU s",
                "incr. CPU s",
            ],
            stage_rows,
        ),
        "",
        f"Settings: {settings_label(full[0].get('settings') or {})}. The whole process tree "
        "(full run):",
        "",
        _tree_table(full),
        "",
        md_table(
            ["run", "pairwise P", "pairwise R", "pairwise F1", "B³ P", "B³ R", "B³ F1"],
            [
                ["full (base delivery)", *scores_full.values()],
                *([["after incremental", *scores_inc.values()]] if scores_inc else []),
            ],
        ),
    ]
    resident = _resident_table(full, inc)
    if resident:
        lines += [
            "",
            "Resident memory per stage, MB (medians): at the stage's start, the "
            "stage's own peak (the process's peak reset when it starts), at its end.",
            "",
            resident,
        ]
    blocked = [r for r in full + inc if r.get("blocked")]
    if blocked:
        lines += [
            "",
            f"{len(blocked)} run(s) were blocked by a critical expectation (nothing "
            "published); their P/R/F1 are of `match.clusters`.",
        ]
    errors = sorted({e for r in full + inc for e in r.get("errors", [])})
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    summary = {
        "records": meta["records"],
        "base_records": n,
        "full_s": full_wall,
        "full_rss_mb": full_rss,
        "full_cpu_s": full_cpu,
        "incremental_s": inc_wall,
        "incremental_rss_mb": inc_rss,
        "pairwise_f1": scores_full["pairwise_f1"],
        "bcubed_f1": scores_full["bcubed_f1"],
        "tree_rss_mb": median([float(r["tree"]["peak_tree_rss_mb"]) for r in full]),
        "tree_cpu_s": median([float(r["tree"]["tree_cpu_s"]) for r in full]),
        "disk_mb": median(
            [float(r["tree"].get("peak_disk_mb", {}).get("run_folder", 0)) for r in full]
        ),
    }
    return "\n".join(lines), summary


def _growth_table(summaries: list[dict]) -> str:
    """How time and memory grow between consecutive sizes (1.0 per ×10 would be linear)."""
    rows = []
    summaries = [x for x in summaries if not x.get("killed")]
    for a, b in itertools.pairwise(summaries):
        factor = b["base_records"] / a["base_records"]
        rows.append(
            [
                f"{a['records']:,} → {b['records']:,}",
                factor,
                b["full_s"] / a["full_s"],
                (b["full_s"] / a["full_s"]) / factor,
                b["full_cpu_s"] / a["full_cpu_s"],
                b["full_rss_mb"] / a["full_rss_mb"],
                b["tree_rss_mb"] / a["tree_rss_mb"],
                b["disk_mb"] / a["disk_mb"] if a.get("disk_mb") else float("nan"),
            ]
        )
    header = [
        "sizes",
        "records ×",
        "wall ×",
        "wall × / records ×",
        "CPU ×",
        "peak RSS ×",
        "tree peak RSS ×",
        "disk ×",
    ]
    return md_table(header, rows)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="full runs per size (default 3 below 1 M, 1 from 1 M)",
    )
    parser.add_argument(
        "--nightly-repeat",
        type=int,
        default=1,
        help="nightly runs after each full run, each from a copy of the state "
        "the full run left (the median is reported); 0 = none, as "
        "--no-incremental",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--delta-share", type=float, default=0.01)
    parser.add_argument("--no-incremental", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the first full run with pyinstrument (benchmarks/profiles/)",
    )
    parser.add_argument(
        "--profile-incremental",
        action="store_true",
        help="profile the first incremental run instead (…_incremental.html)",
    )
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    scale = parser.add_argument_group("scale-out settings (written into each run's archive.yml)")
    scale.add_argument("--shards", type=int, help="scale.match_shards (default: the project's, 1)")
    scale.add_argument(
        "--executor",
        choices=["in_process", "multiprocess"],
        help="scale.executor (default: multiprocess when --shards > 1)",
    )
    scale.add_argument(
        "--max-concurrent",
        type=int,
        default=2,
        help="scale.max_concurrent under the multiprocess executor",
    )
    scale.add_argument("--workers", type=int, help="scale.workers (default: the machine's cores)")
    scale.add_argument(
        "--clean-workers", type=int, help="scale.clean_workers (default: the project's)"
    )
    scale.add_argument(
        "--golden-workers", type=int, help="scale.golden_workers (default: the project's)"
    )
    scale.add_argument("--memory-limit", help="duckdb.memory_limit, e.g. 6GB")
    scale.add_argument("--duckdb-threads", type=int, help="duckdb.threads")
    scale.add_argument(
        "--temp-dir",
        type=Path,
        help="duckdb.temp_directory (default: state/duckdb_tmp in the run folder)",
    )
    watch = parser.add_argument_group("watching each run's process tree")
    watch.add_argument(
        "--sample-every",
        type=float,
        default=1.0,
        help="seconds between readings of the tree's RSS/PSS/CPU (disk: 10 s)",
    )
    watch.add_argument(
        "--max-tree-rss-gb",
        type=float,
        help="kill a run whose process tree's RSS exceeds this; it is reported "
        "as killed, with the stages it reached",
    )
    watch.add_argument("--deadline", help="UTC HH:MM: kill a run still going then")
    parser.add_argument(
        "--gen-jobs",
        type=int,
        default=1,
        help="generator batches (sizes beyond 2.4 M records) generated side by side",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="generate (or find) the cached data of each size and stop",
    )
    parser.add_argument("--worker", choices=["full", "incremental"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scale-json", help=argparse.SUPPRESS)
    parser.add_argument("--landing-direct", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(
            args.workdir,
            args.data,
            args.worker,
            args.profile_file,
            json.loads(args.scale_json) if args.scale_json else None,
            args.landing_direct,
        )
        return
    facts = machine_facts()
    command = command_line()
    print(f"machine: {facts}", flush=True)
    sections, summaries = [], []
    for records in args.records:
        meta = prepare_data(records, args.seed, args.delta_share, args.gen_jobs)
        if not args.no_incremental:
            _full_redelivery(meta)
        print(
            f"\n== {records:,} records: data {'cached' if meta['cached'] else 'generated'} "
            f"({meta['base_records']:,} + {meta['delta_records']:,})",
            flush=True,
        )
        if args.prepare_only:
            print(json.dumps({k: v for k, v in meta.items()}), flush=True)
            continue
        repeats = args.repeat if args.repeat is not None else (3 if records < 1_000_000 else 1)
        try:
            full, inc = _run_size(args, meta, records, repeats)
        except RuntimeError as exc:  # keep what the other sizes measured; say what failed
            print(exc, flush=True)
            sections.append(f"### {records:,} source records: FAILED\n\n```\n{exc}\n```")
            continue
        text, summary = _size_report(meta, full, inc)
        print("\n" + text, flush=True)
        sections.append(text)
        summaries.append(summary)
    if args.prepare_only:
        return
    body = section_header("Pipeline end to end", command, facts) + "\n\n".join(sections)
    if len(summaries) > 1:
        body += "\n\nGrowth (full run):\n\n" + _growth_table(summaries)
        print("\n" + _growth_table(summaries))
    if not args.no_append:
        append_section(body)


def _run_size(
    args: argparse.Namespace, meta: dict[str, Any], records: int, repeats: int
) -> tuple[list[dict], list[dict]]:
    """Full (+ incremental) runs of one size, each in a child process watched as a tree."""
    full: list[dict] = []
    inc: list[dict] = []
    scale = scale_settings(args)
    for k in range(repeats):
        workdir = OUT_ROOT / "data" / "bench" / "runs" / f"{records}-{k}-{os.getpid()}"
        base = [
            __file__,
            "--workdir",
            str(workdir),
            "--data",
            meta["folder"],
            "--scale-json",
            json.dumps(scale),
        ]
        if args.no_incremental:
            base.append("--landing-direct")
        extra: list[str] = []
        profiles = OUT_ROOT / "benchmarks" / "profiles"
        if args.profile and k == 0:
            extra = ["--profile-file", str(profiles / f"pipeline_{records}.html")]
        inc_extra: list[str] = []
        if args.profile_incremental and k == 0:
            inc_extra = ["--profile-file", str(profiles / f"pipeline_{records}_incremental.html")]
        full.append(run_watched([*base, "--worker", "full", *extra], workdir, "full", args, scale))
        _save_result(full[-1], records, k, "full")
        print(
            f"  full #{k + 1}: {full[-1]['wall_seconds']} s, "
            f"peak {full[-1]['peak_rss_mb']} MB (tree {full[-1]['tree']['peak_tree_rss_mb']} "
            f"MB), {_scores(full[-1])}",
            flush=True,
        )
        if full[-1].get("killed"):
            print(f"  full #{k + 1} KILLED: {full[-1]['killed']}", flush=True)
            _drop_workdir(workdir)
            break
        nightly = 0 if args.no_incremental else max(0, args.nightly_repeat)
        if nightly:
            saved = workdir.with_name(workdir.name + "-after-full")
            if nightly > 1:  # every nightly starts from the same state the full run left
                shutil.rmtree(saved, ignore_errors=True)
                shutil.copytree(workdir, saved, symlinks=True)
            for j in range(nightly):
                if j:
                    shutil.rmtree(workdir)
                    shutil.copytree(saved, workdir, symlinks=True)
                inc.append(
                    run_watched(
                        [*base, "--worker", "incremental", *(inc_extra if j == 0 else [])],
                        workdir,
                        "incremental",
                        args,
                        scale,
                    )
                )
                _save_result(inc[-1], records, k, f"incremental{j}")
                print(
                    f"  incremental #{k + 1}.{j + 1}: {inc[-1]['wall_seconds']} s, "
                    f"peak {inc[-1]['peak_rss_mb']} MB",
                    flush=True,
                )
            shutil.rmtree(saved, ignore_errors=True)
        _drop_workdir(workdir)
    return full, inc


def _drop_workdir(workdir: Path) -> None:
    if os.environ.get("BENCH_KEEP_WORKDIR"):  # keep the run's warehouse for profiling stages
        print(f"  kept {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def _save_result(result: dict[str, Any], records: int, k: int, phase: str) -> None:
    """Keep every run's figures as JSON under data/bench/results/ (growth tables across runs)."""
    folder = OUT_ROOT / "data" / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{records}-{phase}-{k}-{stamp}.json"
    (folder / name).write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")


def run_watched(
    argv: list[str], workdir: Path, phase: str, args: argparse.Namespace, scale: dict[str, Any]
) -> dict[str, Any]:
    """Run one worker as a watched process tree: its result plus the tree's figures.

    The tree (the worker, Dagster's forkserver and step processes, process pools) is sampled
    every ``--sample-every`` seconds (RSS, PSS, CPU) and its folders' disk use every 10 s;
    ``--max-tree-rss-gb`` / ``--deadline`` kill it. Per stage, the samples inside the stage's
    step windows give the tree's peak RSS, CPU seconds and peak disk. A killed or failed run
    returns what it reached (steps from the Dagster event log in the run's folder) with
    ``killed`` / ``failed`` set instead of raising.
    """
    from benchmarks.tree_watch import parse_deadline, watch

    logs = OUT_ROOT / "data" / "bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stem = f"{workdir.name}-{phase}"
    out_file = logs / f"{stem}.out"
    out_file.unlink(missing_ok=True)
    deadline = parse_deadline(args.deadline, dt.datetime.now(dt.UTC)) if args.deadline else None
    max_rss = int(args.max_tree_rss_gb * 1e9) if args.max_tree_rss_gb else None
    status, summary, samples = watch(
        [sys.executable, *argv],
        logs / f"{stem}.rss.log",
        max_rss,
        deadline,
        args.sample_every,
        stdout=out_file,
        disk=disk_paths(workdir, scale),
        cwd=ROOT,
    )
    result: dict[str, Any] | None = None
    tail: list[str] = []
    for line in out_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print("    | " + line, flush=True)
            tail = [*tail[-29:], line]
    if result is None:
        result = _partial_result(workdir, phase, summary, status, tail)
    result["tree"] = summary
    result["settings"] = scale
    result["stage_tree"] = stage_tree_figures(samples, result.get("steps") or {})
    result["samples"] = [
        [
            round(x.at, 1),
            round(x.rss / 1e6),
            round(x.pss / 1e6),
            round(x.cpu_s, 1),
            {k: round(v / 1e6) for k, v in x.disk.items()},
        ]
        for x in samples
    ]
    return result


def _partial_result(
    workdir: Path, phase: str, summary: dict[str, Any], status: int, tail: list[str]
) -> dict[str, Any]:
    """What a killed or failed worker reached: its steps from the Dagster event log."""
    steps: dict[str, Any] = {}
    instance_dir = workdir / "dagster" / phase
    if instance_dir.exists():
        import dagster as dg

        try:
            with dg.DagsterInstance.local_temp(str(instance_dir)) as instance:
                steps = step_windows(instance)
        except Exception as exc:
            tail.append(f"(could not read the Dagster event log: {exc!r})")
    return {
        "phase": phase,
        "success": False,
        "blocked": False,
        "killed": summary.get("killed"),
        "failed": None if summary.get("killed") else f"exit {status}: " + " / ".join(tail[-5:]),
        "errors": [],
        "wall_seconds": summary["wall_s"],
        "cpu_seconds": summary["tree_cpu_s"],
        "peak_rss_mb": float("nan"),
        "stages": {},
        "modes": {},
        "clean_records": None,
        "candidate_pairs": None,
        "accuracy": None,
        "steps": steps,
        "disk_mb": {k: round(v, 1) for k, v in summary.get("peak_disk_mb", {}).items()},
    }


def stage_tree_figures(samples: list[Any], steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per stage: wall seconds (its steps' windows merged), and from the tree samples inside
    those windows the peak RSS (MB), CPU seconds and peak disk use of the run folder (MB)."""
    if not samples:
        return {}
    last = samples[-1].at
    windows: dict[str, list[tuple[float, float]]] = {}
    status: dict[str, str] = {}
    for key, w in steps.items():
        stage = stage_of_step(key)
        windows.setdefault(stage, []).append((w["start"], w["end"] or last))
        if w["status"] != "success" or status.get(stage, "success") != "success":
            status[stage] = w["status"] if w["status"] != "success" else status[stage]
        else:
            status[stage] = "success"
    times = [x.at for x in samples]
    cpus = [x.cpu_s for x in samples]
    out: dict[str, Any] = {}
    for stage, spans in windows.items():
        merged: list[list[float]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        inside = [x for x in samples if any(a <= x.at <= b for a, b in merged)]
        disk = [x.disk.get("run_folder", 0) for x in inside if x.disk]
        out[stage] = {
            "started_s": round(merged[0][0] - samples[0].at, 1),  # since the run started
            "seconds": round(sum(b - a for a, b in merged), 2),
            "tree_cpu_s": round(
                sum(
                    float(np.interp(b, times, cpus) - np.interp(a, times, cpus)) for a, b in merged
                ),
                1,
            ),
            "tree_peak_rss_mb": round(max((x.rss for x in inside), default=0) / 1e6),
            # disk is read every 10 s: a short stage may hold no reading (NaN, shown as –)
            "peak_disk_mb": round(max(disk) / 1e6) if disk else float("nan"),
            "status": status.get(stage, "success"),
        }
    return out


if __name__ == "__main__":
    main()

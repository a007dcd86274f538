"""Benchmark: clean_records on N rows (a realistic 10 k raw frame replicated), time and peak RSS.

``--workdir W`` instead runs the whole full clean stage (``pipelines.stages.clean.clean_stage``)
on copies of the warehouse a kept ``bench_pipeline.py`` run left (``BENCH_KEEP_WORKDIR=1``),
each run in a fresh interpreter (cold caches, as in a run), for one or more code trees side by
side (``--code DIR``: a ``git archive`` export; its modules are imported first), alternating,
and prints the median CPU seconds (the stage's process and its helper processes) and wall
seconds, and whether every ``clean.*`` table equals (content hash) what the kept run wrote::

    .venv/bin/python benchmarks/bench_cleaning.py --workdir data/bench/runs/100000-0-123 \
        --code /tmp/main_export --code . --workers 1 --workers 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cleaning import CleaningOptions, CleanResult, clean_records

_NAMES = ["星辰", "浦江", "华信", "锦帆", "臺灣", "ＡＣＭＥ", "瑞达", "东方"]
_FORMS = [
    "科技有限公司",
    "贸易有限公司",
    "(上海)实业有限公司",
    "股份有限公司上海分公司",
    " Co., Ltd.",
]
_ADDR = ["北京市海淀区中关村大街", "沪浦东新区张江路", "广东深圳南山区科技园", "杭州市滨江区网商路",
         "朝阳区建国路", "四川省成都市武侯区", "江苏苏州工业园区"]  # fmt: skip
_IND = ["IT", "信息技术", "软件", "制造", "零售", "金融服务", "互联网金融", "其他", "教育培训行业"]
_DATES = ["2024-03-{d:02d}", "2024/3/{d}", "2024年3月{d}日", "{d:02d}/03/2024", "4536{e}"]


def _frame(n: int, seed: int = 7) -> pd.DataFrame:
    """A raw frame with realistic distinct-value counts and dirt."""
    r = random.Random(seed)
    rows = []
    for i in range(n):
        d = r.randint(1, 28)
        rows.append(
            {
                "record_key": f"crm:{i}",
                "source_system": r.choice(["crm", "svc", "fin"]),
                "source_record_id": str(i),
                "source_row": str(i + 1),
                "customer_name": f"{r.choice(_NAMES)}{i % 3001}{r.choice(_FORMS)}",
                "contact_name": r.choice(["张伟经理", "王女士", "李娜", "Mr. John Smith", None]),
                "phone": r.choice(
                    [
                        f"1{r.randint(3, 9)}{r.randint(0, 999999999):09d}",
                        f"010-6{r.randint(0, 9999999):07d}转{r.randint(1, 99)}",
                        "400-800-1234",
                        "12345",
                        None,
                    ]
                ),
                "email": r.choice([f"user{i}@qq.com", f"u{i}@corp{i % 97}.com.cn", "bad@", None]),
                "address": f"{r.choice(_ADDR)}{i % 300}号",
                "industry": r.choice(_IND),
                "credit_code": r.choice(["914403001922038216", "91440300708461136X", None]),
                "registered_date": r.choice(_DATES).format(d=d, e=d % 10),
                "txn_amount": r.choice(["1.2万", "12,345.00", "¥8800", None]),
                "txn_id": r.choice([f"T{i}", None]),
            }
        )
    return pd.DataFrame(rows, dtype="string")


_STAGE = Path(__file__).resolve().parent.parent / "data" / "bench" / "stage1m"
_SOURCES = {"sales": "销售部", "service": "客服部", "marketing": "市场部"}
_TABLES = ("records", "transactions", "interactions", "follow_up", "unmapped_industries")


def _stage_raw(per_source: int) -> pd.DataFrame:
    """Active raw rows of the exported 1 M run, as clean_stage reads them (0 = all rows)."""
    frames = []
    for name in _SOURCES:
        frame = pd.read_parquet(_STAGE / f"raw.{name}.parquet")
        frame = frame[frame["active"]].drop(columns=["active", "run_id"])
        frames.append(frame.iloc[:per_source] if per_source else frame)
    return pd.concat(frames, ignore_index=True)


def _differences(result: CleanResult) -> list[str]:
    """Tables/columns where ``result`` differs from the exported clean layer of the 1 M run.

    Compared as Arrow columns cast to the exported types (pandas string flavours differ
    between a DuckDB export and a pandas frame; values and nulls must be equal).
    """
    problems = []
    for table in _TABLES:
        expected = pq.read_table(_STAGE / f"clean.{table}.parquet")
        got = pa.Table.from_pandas(getattr(result, table), preserve_index=False)
        if got.column_names != expected.column_names or got.num_rows != expected.num_rows:
            problems.append(f"{table}: shape {got.shape} != {expected.shape}")
            continue
        for name, field in zip(expected.column_names, expected.schema, strict=True):
            if not got.column(name).cast(field.type).equals(expected.column(name)):
                problems.append(f"{table}.{name}")
    return problems


def _stage_once(workdir: Path, workers: int, compare: bool, chunk: int | None) -> dict[str, Any]:
    """One full clean stage on a copy of ``workdir``'s warehouse (this interpreter's code)."""
    from bench_match_memory import CLEAN_TABLES, _table_hashes

    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages.clean import clean_stage
    from pipelines.stages.context import RunContext

    src = load_config(workdir / "archive.yml")
    tmp = Path(tempfile.mkdtemp(prefix="bench-clean-"))
    try:
        shutil.copy(src.resolve(src.warehouse), tmp / "warehouse.duckdb")
        cfg = load_config(workdir / "archive.yml", warehouse=str(tmp / "warehouse.duckdb"))
        scale = cfg.scale.model_copy(
            update={"clean_workers": workers, **({"clean_chunk_records": chunk} if chunk else {})}
        )
        cfg = cfg.model_copy(
            update={"match_incremental": False, "clean_incremental": False, "scale": scale}
        )
        con = open_warehouse(cfg)
        ctx = RunContext(config=cfg, run_id="bench-clean", run_date=date.today())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, cpu = time.perf_counter(), time.process_time()
        stats = clean_stage(con, ctx)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        helper_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        con.close()
        same = None
        if compare:
            before, now = _table_hashes(src, CLEAN_TABLES), _table_hashes(cfg, CLEAN_TABLES)
            same = all(before[t] == now[t] for t in CLEAN_TABLES)
        return {
            "records": stats.clean_records,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu + helper_cpu, 2),
            "helper_cpu_s": round(helper_cpu, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "identical": same,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stage_side_by_side(args: argparse.Namespace) -> None:
    """Alternate runs of every (code tree, workers) and print the medians as a table."""
    variants = [(Path(c).resolve(), w) for c in args.code or ["."] for w in args.workers or [1]]
    runs: dict[tuple[Path, int], list[dict[str, Any]]] = {v: [] for v in variants}
    here = Path(__file__).resolve()
    for k in range(args.repeat):
        for code, workers in variants:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code), str(here.parent)]))
            load = os.getloadavg()[0]
            out = subprocess.run(
                [sys.executable, str(here), "--workdir", str(args.workdir.resolve()), "--once",
                 "--workers", str(workers), *(["--compare"] if args.compare else []),
                 *(["--chunk", str(args.chunk)] if args.chunk else [])],
                env=env, cwd=code, capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode:
                raise SystemExit(f"{code} workers={workers} failed:\n{out.stderr}")
            run = {**json.loads(out.stdout.strip().splitlines()[-1]), "load": round(load, 1)}
            runs[(code, workers)].append(run)
            print(f"run {k + 1} {code.name} workers={workers}: {run}", flush=True)
    print("| code | workers | CPU s (median) | wall s (median) | runs CPU / wall | load | "
          "identical |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for (code, workers), rs in runs.items():
        cpus, walls = [r["cpu_s"] for r in rs], [r["wall_s"] for r in rs]
        print(
            f"| {code.name} | {workers} | {statistics.median(cpus):.2f} | "
            f"{statistics.median(walls):.2f} | "
            f"{', '.join(f'{c:.1f}/{w:.1f}' for c, w in zip(cpus, walls, strict=True))} | "
            f"{min(r['load'] for r in rs)}–{max(r['load'] for r in rs)} | "
            f"{set(r['identical'] for r in rs)} |"
        )


def main() -> None:
    """Run the benchmark and print a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--workdir", type=Path, help="a kept bench_pipeline run folder: time its full clean stage"
    )
    parser.add_argument(
        "--code",
        action="append",
        help="with --workdir: a code tree to run (repeatable; default: this one)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        help="with --workdir: scale.clean_workers (repeatable; default 1)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="with --workdir: runs of each")
    parser.add_argument(
        "--chunk",
        type=int,
        help="with --workdir: scale.clean_chunk_records (default: the config's)",
    )
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=10_000)
    parser.add_argument(
        "--stage1m",
        action="store_true",
        help="clean the exported raw layer of the 1 M run (data/bench/stage1m)",
    )
    parser.add_argument(
        "--per-source",
        type=int,
        default=0,
        help="with --stage1m: first N rows of each source (0 = all)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="with --stage1m and all rows: compare with the exported clean "
        "layer; with --workdir: with the clean.* tables the kept run wrote",
    )
    args = parser.parse_args()  # fmt: skip
    if args.workdir and args.once:
        workers = (args.workers or [1])[0]
        print(json.dumps(_stage_once(args.workdir, workers, args.compare, args.chunk)))
        return
    if args.workdir:
        _stage_side_by_side(args)
        return
    options = CleaningOptions()
    if args.stage1m:
        raw = _stage_raw(args.per_source)
        options = CleaningOptions(date_order=dict.fromkeys(_SOURCES, "auto"), departments=_SOURCES)
    else:
        base = _frame(args.base)
        reps = max(1, args.rows // args.base)
        raw = pd.concat([base] * reps, ignore_index=True)
        raw["record_key"] = (
            raw["source_system"] + ":" + pd.Series(range(len(raw))).astype(str)
        ).astype("string")
    start, cpu_start = time.perf_counter(), time.process_time()
    result = clean_records(raw, options)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stats = {
        "rows": len(result.records),
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(cpu, 1),
        "rows_per_s": round(len(raw) / elapsed),
        "peak_rss_mb": round(peak_mb),
        "transactions": len(result.transactions),
        "follow_up": len(result.follow_up),
    }
    if args.stage1m and args.compare and not args.per_source:
        stats["differences"] = _differences(result)
    print(json.dumps(stats, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""The sharded full match step by step, each step in its own process: peak RSS and CPU of each.

Runs the three steps of the sharded match graph (`pipelines/sharding.py`) without Dagster, on
the pipeline benchmark's clean records (``data/bench/<n>/clean_records.parquet``, or
``--records-file``; ``--make-records FILE`` ingests and cleans the cached base delivery of
``--records`` into FILE first), each in a fresh process, one after the other:

* ``prepare``: `prepare_sharded` (prepare every record, place the decisions, estimate the
  model on the full candidate set unless ``--reuse-params``) and hand the shards their input:
  code with `dedupe.shard.write_shard_files` writes one file per shard (what `match_prepare`
  does now); older code pickles the whole setup once, as Dagster pickled the ``ShardPlan``
  that every shard step loaded;
* ``shard s`` for every shard: load its input (its own file, or the whole setup) and score
  it (`score_shard`, or `shard_pairs` over every record); the result is pickled;
* ``finish``: `finish_sharded` over every shard's pairs; prints content hashes of the pairs,
  clusters and review queue.

``--code DIR`` runs every step with the code of DIR (an exported commit with its own
``.venv``), so the same script measures before and after. Per step: peak RSS (the process's
``ru_maxrss``), CPU seconds (user + system, all threads), wall seconds, records loaded.

    .venv/bin/python benchmarks/bench_match_shards.py --records 200000 --shards 10
    .venv/bin/python benchmarks/bench_match_shards.py --records 200000 --code /tmp/base
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _usage() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": own.ru_utime + own.ru_stime, "peak_rss_mb": own.ru_maxrss / 1024}


def _frame_hash(frame: Any) -> str:
    import pandas as pd

    rows = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=False)
    digest = hashlib.sha256(rows.to_numpy().tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def _prepare(work: Path, records_file: Path, shards: int, reuse: bool) -> dict[str, Any]:
    import pandas as pd

    import dedupe.shard as shard_mod
    from dedupe import MatchSettings

    records = pd.read_parquet(records_file)
    count = len(records)
    # handed over (the call holds the only reference), as `match_prepare` hands them over
    handed = [records]
    del records
    settings = MatchSettings()
    params = None
    if reuse:
        params_file = work.parent / f"params-{count}.json"
        if not params_file.exists():
            raise RuntimeError(f"--reuse-params needs {params_file} (a run without it writes it)")
        from dedupe import ModelParams

        params = ModelParams.from_json(params_file.read_text(encoding="utf-8"))
    started = time.perf_counter()
    setup = shard_mod.prepare_sharded(handed.pop(), settings, None, params)
    prepared_s = time.perf_counter() - started
    (work.parent / f"params-{count}.json").write_text(setup.params.to_json(), "utf-8")
    (work / "params.pkl").write_bytes(pickle.dumps(setup.params, protocol=5))
    files = hasattr(shard_mod, "write_shard_files")
    if files:
        shard_mod.write_shard_files(setup.prepared, settings, shards, work / "shards")
    if hasattr(shard_mod, "finishing_frame"):
        # as `match_prepare` does: match.prepared's rows staged in a file, and only the
        # columns assembling reads handed to the finishing step
        from warehouse.match_state import prepared_batches

        shard_mod.write_prepared_file(
            prepared_batches(setup.prepared, "bench"), work / "prepared.arrows"
        )
        setup.prepared = shard_mod.finishing_frame(setup.prepared)
    with (work / "setup.pkl").open("wb") as fh:
        pickle.dump(setup, fh, protocol=5)
    return {"records": len(setup.prepared), "files": files, "prepare_sharded_s": prepared_s}


def _shard(work: Path, shard: int, shards: int) -> dict[str, Any]:
    import dedupe.shard as shard_mod
    from dedupe import MatchSettings

    settings = MatchSettings()
    params = pickle.loads((work / "params.pkl").read_bytes())
    if hasattr(shard_mod, "write_shard_files"):
        frame = shard_mod.read_shard_file(work / "shards" / f"shard_{shard:04d}.pkl")
        loaded = len(frame)
        pairs, stats = shard_mod.score_shard(frame, settings, params, shard, shards)
    else:
        with (work / "setup.pkl").open("rb") as fh:
            setup = pickle.load(fh)
        loaded = len(setup.prepared)
        pairs, stats = shard_mod.shard_pairs(setup.prepared, settings, params, shard, shards)
    with (work / f"result_{shard:04d}.pkl").open("wb") as fh:
        pickle.dump((pairs, stats), fh, protocol=5)
    return {"records_loaded": loaded, "pairs": len(pairs)}


def _finish(work: Path, shards: int) -> dict[str, Any]:
    import dedupe.shard as shard_mod
    from dedupe import MatchSettings

    with (work / "setup.pkl").open("rb") as fh:
        setup = pickle.load(fh)
    results = [pickle.loads((work / f"result_{s:04d}.pkl").read_bytes()) for s in range(shards)]
    if hasattr(shard_mod, "finish_compact"):
        # as `match_finish` runs it: the pairs stay numbers (written a batch at a time)
        compact = shard_mod.finish_compact(setup, MatchSettings(), results)
        del setup
        staged = work / "prepared.arrows"
        if staged.exists():
            # the review queue's fields from the staged rows, and the rows streamed through
            # as the write streams them into match.prepared
            shard_mod.fill_review_fields(
                compact.review_queue,
                compact.prepared["record_key"],
                lambda at, columns: shard_mod.prepared_rows(staged, at, columns),
            )
            for _ in shard_mod.read_prepared_file(staged):
                pass
        step = _usage()
        result = compact.to_result()  # the frame of every pair, for the content hashes only
        del compact
    else:
        result = shard_mod.finish_sharded(setup, MatchSettings(), results)
        step = _usage()
    return {
        # the step's own peak, before the content hashes below (which build more frames)
        "step_peak_rss_mb": step["peak_rss_mb"],
        "step_cpu_s": step["cpu_s"],
        "pairs": len(result.pairs),
        "clusters": int(result.clusters["cluster_key"].nunique()),
        "hash_pairs": _frame_hash(result.pairs),
        "hash_clusters": _frame_hash(result.clusters),
        "hash_review": _frame_hash(result.review_queue),
        "hash_params": hashlib.sha256(result.params.to_json().encode()).hexdigest()[:16],
    }


def _make_records(records: int, out: Path) -> dict[str, Any]:
    """Ingest and clean the cached base delivery of `records` (as `bench_splink.prepare_input`
    does) into `out`, leaving the shared cache folder as it is."""
    sys.path.insert(0, str(HERE.parent))
    import pandas as pd

    from benchmarks.bench_pipeline import prepare_data
    from cleaning import CleaningOptions, clean_records
    from sources import ingest_source, load_sources_config

    folder = Path(prepare_data(records, 42, 0.01)["folder"])
    cfg = load_sources_config(HERE.parent / "sources" / "sources.yml", landing_dir=folder / "base")
    raw = pd.concat(
        [
            ingest_source(s, cfg.landing_dir, "bench", "2026-11-23T02:00:00").rows
            for s in cfg.sources
        ],
        ignore_index=True,
    )
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in cfg.sources},
        departments={s.name: s.department for s in cfg.sources},
    )
    clean = clean_records(raw, options).records
    clean.to_parquet(out, index=False)
    return {"records": len(clean), **_usage()}


def _child(args: argparse.Namespace) -> None:
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    started = time.perf_counter()
    work = Path(args.work)
    if args.step == "prepare":
        out = _prepare(work, Path(args.records_file), args.shards, args.reuse_params)
    elif args.step == "finish":
        out = _finish(work, args.shards)
    else:
        out = _shard(work, int(args.step), args.shards)
    out.update(_usage(), wall_s=time.perf_counter() - started)
    print("BENCH-RESULT " + json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--records-file", help="clean records (default data/bench/<n>/…)")
    parser.add_argument("--make-records", help="write the clean records of --records here")
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument(
        "--reuse-params",
        action="store_true",
        help="score with the params a previous run of this size wrote",
    )
    parser.add_argument("--code", help="run the steps with this exported commit's code")
    parser.add_argument("--work", default=None, help="scratch folder (removed afterwards)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        _child(args)
        return
    if args.make_records:
        print(json.dumps(_make_records(args.records, Path(args.make_records))))
        return
    sys.path.insert(0, str(HERE.parent))
    from benchmarks._common import OUT_ROOT, machine_facts, median, run_child

    cached = OUT_ROOT / "data" / "bench" / str(args.records) / "clean_records.parquet"
    records_file = Path(args.records_file or cached)
    code = Path(args.code).resolve() if args.code else HERE.parent
    python = str(code / ".venv" / "bin" / "python")
    work = Path(args.work or f"/tmp/bench_match_shards_{args.records}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(json.dumps(machine_facts()), flush=True)
    common = [
        "--records-file",
        str(records_file),
        "--shards",
        str(args.shards),
        "--work",
        str(work),
        "--code",
        str(code),
    ]
    if args.reuse_params:
        common.append("--reuse-params")
    steps: dict[str, dict[str, Any]] = {}
    for step in ["prepare", *map(str, range(args.shards)), "finish"]:
        steps[step] = run_child(
            [str(HERE / "bench_match_shards.py"), "--step", step, *common], cwd=code, python=python
        )
        print(step, json.dumps(steps[step]), flush=True)
        if step == "prepare":
            disk = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
            steps[step]["disk_mb"] = disk / 1e6
    shard_rows = [steps[str(s)] for s in range(args.shards)]
    summary = {
        "code": str(code),
        "records": steps["prepare"]["records"],
        "prepare": steps["prepare"],
        "shard_peak_rss_mb_max": max(r["peak_rss_mb"] for r in shard_rows),
        "shard_peak_rss_mb_median": median([r["peak_rss_mb"] for r in shard_rows]),
        "shard_cpu_s_sum": sum(r["cpu_s"] for r in shard_rows),
        "shard_records_loaded_max": max(r["records_loaded"] for r in shard_rows),
        "shard_records_loaded_sum": sum(r["records_loaded"] for r in shard_rows),
        "finish": steps["finish"],
    }
    print("SUMMARY " + json.dumps(summary), flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

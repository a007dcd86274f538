"""Accuracy benchmark: `customer-archive run` on labelled data, every error pair classified.

Runs the whole pipeline (`customer-archive run`, a child process, as a user would) on

- `demo`: the demo generator (`customer-archive demo`, default 5,000 entities, seed 42) with the
  project's own source mappings (`sources/sources.yml`);
- `cn_2k`, `cn_20k`: the external labelled corpus (`../shared/corpus/`, see its README) with a
  plain mapping of its three exports (`benchmarks/configs/cn_corpus/`);

then reads `golden.crosswalk` and `match.pairs` back and prints, per data set, pairwise and
B-cubed precision/recall/F1 (records missing from the crosswalk count as singletons), every
missed and false pair classified by the stage that decided it (`dedupe.evaluate`), the split by
hard case (`entities.csv:hard_case`) with false-merge rates, and the match stage's time.

    .venv/bin/python benchmarks/bench_accuracy.py [--sets demo cn_2k cn_20k] [--append]

`--append` adds the summary table to BENCHMARKS.md. Each run works in a scratch folder
(`--work`, default a temporary folder) that is removed afterwards unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BENCHMARKS_MD, ROOT, machine_facts, md_table
from dedupe.evaluate import AccuracyReport, evaluate_links, format_report

CONFIGS = ROOT / "benchmarks" / "configs"
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()
CLI = Path(sys.executable).with_name("customer-archive")
# export file of each corpus source → landing/<source>/<date>/<file>
CORPUS_FILES = {
    "sales_crm": "sales_crm.csv",
    "service_tickets": "service_tickets.xlsx",
    "marketing_leads": "marketing_leads.jsonl",
}
DELIVERY_DATE = "2026-12-01"


def _stage_seconds(con: duckdb.DuckDBPyConnection, stage: str) -> float:
    row = con.execute(
        "SELECT stats FROM ops.stage_stats WHERE stage = ? ORDER BY recorded_at DESC LIMIT 1",
        [stage],
    ).fetchone()
    return float(json.loads(row[0]).get("seconds", float("nan"))) if row else float("nan")


def _thresholds(config: Path) -> tuple[float, float]:
    """Match and review thresholds of the run: the config's `matching:` section over defaults."""
    import yaml

    from dedupe.settings import MatchSettings

    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    settings = MatchSettings(**(data.get("matching") or {}))
    return settings.match_threshold, settings.review_threshold


def prepare_demo(work: Path, entities: int, seed: int) -> tuple[Path, Path, Path | None]:
    """Generate the demo exports into `work` and lay out its config; (config, truth, cases)."""
    subprocess.run(
        [str(CLI), "demo", "--entities", str(entities), "--seed", str(seed), "--out", str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.copy(ROOT / "sources" / "sources.yml", work / "sources.yml")
    shutil.copy(CONFIGS / "demo" / "archive.yml", work / "archive.yml")
    return work / "archive.yml", work / "truth.csv", None


def prepare_corpus(work: Path, folder: Path) -> tuple[Path, Path, Path | None]:
    """Lay a corpus folder out as deliveries under `work/landing`; (config, truth, cases)."""
    for source, name in CORPUS_FILES.items():
        target = work / "landing" / source / DELIVERY_DATE
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / name, target / name)
    for name in ("archive.yml", "sources.yml"):
        shutil.copy(CONFIGS / "cn_corpus" / name, work / name)
    cases = folder / "entities.csv"
    return work / "archive.yml", folder / "truth.csv", cases if cases.exists() else None


def run_and_evaluate(
    config: Path, truth_csv: Path, cases_csv: Path | None
) -> tuple[AccuracyReport, dict[str, float]]:
    """`customer-archive run` on `config`, then the error-analysis report against the truth."""
    started = time.perf_counter()
    proc = subprocess.run(
        [str(CLI), "run", "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"customer-archive run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    con = duckdb.connect(str(config.parent / "warehouse.duckdb"), read_only=True)
    try:
        crosswalk = con.execute(
            "SELECT source_system, source_record_id, customer_id FROM golden.crosswalk"
        ).df()
        pairs = con.execute(
            "SELECT left_key, right_key, rule, probability, hard_rule, steward_decision, decision"
            " FROM match.pairs"
        ).df()
        times = {
            "run_s": wall,
            "match_s": _stage_seconds(con, "match"),
            "clean_s": _stage_seconds(con, "clean"),
        }
    finally:
        con.close()
    truth = pd.read_csv(truth_csv, dtype=str)
    truth["record_key"] = truth["source_system"] + ":" + truth["source_record_id"]
    crosswalk["record_key"] = crosswalk["source_system"] + ":" + crosswalk["source_record_id"]
    clusters = crosswalk[["record_key", "customer_id"]].rename(
        columns={"customer_id": "cluster_key"}
    )
    # records missing from the crosswalk count as singletons
    missing = truth.loc[~truth["record_key"].isin(clusters["record_key"]), ["record_key"]]
    missing = missing.assign(cluster_key="missing:" + missing["record_key"])
    clusters = pd.concat([clusters, missing], ignore_index=True)
    cases = pd.read_csv(cases_csv, dtype=str) if cases_csv is not None else None
    match_threshold, review_threshold = _thresholds(config)
    report = evaluate_links(
        clusters,
        truth[["record_key", "entity_id"]],
        pairs,
        match_threshold=match_threshold,
        review_threshold=review_threshold,
        cases=cases,
    )
    times["customers"] = float(clusters["cluster_key"].nunique())
    times["entities"] = float(truth["entity_id"].nunique())
    return report, times


def main() -> None:
    """Run the selected data sets and print (and optionally append) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["demo", "cn_2k", "cn_20k"])
    parser.add_argument("--entities", type=int, default=5000, help="demo entities")
    parser.add_argument("--seed", type=int, default=42, help="demo seed")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    parser.add_argument("--append", action="store_true", help="append results to BENCHMARKS.md")
    parser.add_argument(
        "--errors",
        type=Path,
        default=None,
        help="write every error pair (CSV per set) into this folder",
    )
    args = parser.parse_args()
    facts = machine_facts()
    base = args.work or Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    rows = []
    for name in args.sets:
        work = base / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if name == "demo":
            config, truth, cases = prepare_demo(work, args.entities, args.seed)
        else:
            folder = args.corpus / name
            if not folder.exists():
                print(f"{name}: {folder} not found, skipped")
                continue
            config, truth, cases = prepare_corpus(work, folder)
        report, times = run_and_evaluate(config, truth, cases)
        print(
            format_report(
                report,
                f"== {name}: run {times['run_s']:.1f} s, match stage {times['match_s']:.1f} s, "
                f"{int(times['customers'])} customers / {int(times['entities'])} true",
            ),
            flush=True,
        )
        if args.errors is not None:
            args.errors.mkdir(parents=True, exist_ok=True)
            report.missed_pairs.to_csv(args.errors / f"{name}_missed.csv", index=False)
            report.false_pairs.to_csv(args.errors / f"{name}_false.csv", index=False)
        pw, b3 = report.pairwise, report.bcubed
        missed = sum(report.missed.values()) or 1
        rows.append(
            [
                name,
                report.records,
                pw.precision,
                pw.recall,
                pw.f1,
                b3.precision,
                b3.recall,
                b3.f1,
                ", ".join(f"{k} {v / missed:.0%}" for k, v in report.missed.items() if v),
                ", ".join(f"{k} {v}" for k, v in report.false.items() if v) or "–",
                times["match_s"],
            ]
        )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = md_table(
        [
            "set",
            "records",
            "pw P",
            "pw R",
            "pw F1",
            "B³ P",
            "B³ R",
            "B³ F1",
            "missed pairs by class",
            "false pairs by class",
            "match s",
        ],
        rows,
    )
    print()
    print(table)
    if args.append:
        with BENCHMARKS_MD.open("a", encoding="utf-8") as fh:
            fh.write(
                f"\n### Accuracy with error analysis ({facts['started']}, code {facts['code']}, "
                f"{facts['cores']} cores)\n\n`make bench-accuracy` "
                "(`benchmarks/bench_accuracy.py`: `customer-archive run`, then "
                "`dedupe.evaluate` on golden.crosswalk and match.pairs)\n\n" + table + "\n"
            )
    if args.work is None and not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

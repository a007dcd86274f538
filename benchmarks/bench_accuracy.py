"""Accuracy benchmark: `customer-archive run` on labelled data, every error pair classified.

Runs the whole pipeline (`customer-archive run`, a child process, as a user would) on

- `demo`: the demo generator (`customer-archive demo`, default 5,000 entities, seed 42) with the
  project's own source mappings (`sources/sources.yml`);
- `cn_2k`, `cn_20k`: the external labelled corpus (`../shared/corpus/`, see its README) with a
  plain mapping of its three exports (`benchmarks/configs/cn_corpus/`);
- `cn_2k+derived`, `cn_20k+derived`: the same corpus plus a **derived department**
  (`derive_department`): a fourth source that re-delivers a sample of another source's customers
  (every 5th record of `sales_crm`) under other headers and another format — a VAT-invoice list
  in Parquet (发票号码 / 购买方名称 / 购买方地址、电话 / 开户行及账号 / 开票日期 / 价税合计), the
  name copied (a share with ASCII brackets or a space inserted), address and phone combined in
  one cell (the source mapping's `split:`); its truth is the base record's entity in the corpus
  truth. Scored on all records and, separately, on the original departments' records only
  (`orig` rows): a department added must not degrade the others' linking;

then reads `golden.crosswalk` and `match.pairs` back and prints, per data set, pairwise and
B-cubed precision/recall/F1 (records missing from the crosswalk count as singletons), every
missed and false pair classified by the stage that decided it (`dedupe.evaluate`), the split by
hard case (`entities.csv:hard_case`) with false-merge rates, and the match stage's time.

    .venv/bin/python benchmarks/bench_accuracy.py [--sets demo cn_2k cn_20k cn_20k+derived]
        [--match-seed N] [--append]

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
DERIVED_SUFFIX = "+derived"
# the derived department: which source it re-delivers, how often, and its source mapping
DERIVED_SOURCE = "finance"
DERIVED_BASE = "sales_crm"
DERIVED_EVERY = 5
DERIVED_MAPPING = {
    "name": DERIVED_SOURCE,
    "department": "财务部",
    "path": f"{DERIVED_SOURCE}/**/*.parquet",
    "format": "parquet",
    "date_order": "auto",
    "columns": {
        "source_record_id": "发票号码",
        "customer_name": "购买方名称",
        "txn_id": "发票号码",
        "txn_date": "开票日期",
        "txn_amount": "价税合计",
    },
    "split": [
        {"column": "购买方地址、电话", "kind": "address_phone"},
        {"column": "开户行及账号", "kind": "bank_account"},
    ],
}


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


def _base_export(work: Path, source: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The source's delivered export as text cells (read as ingest reads it: its mapping's
    format, encoding and header row) and the mapping's canonical field → header."""
    from sources.config import load_sources_config
    from sources.readers import read_delivery

    config = load_sources_config(work / "sources.yml", work / "landing", check_files=False)
    spec = next(s for s in config.sources if s.name == source)
    path = next((work / "landing" / source / DELIVERY_DATE).iterdir())
    columns = {k: v for k, v in spec.columns.items() if isinstance(v, str)}
    return read_delivery(path, spec).data, columns


def derive_department(work: Path, truth_csv: Path, seed: int = 12) -> Path:
    """Add the derived department to a corpus layout in `work`; returns the extended truth.

    Every `DERIVED_EVERY`-th record of `DERIVED_BASE` (with a name) becomes an invoice: the
    name copied (20 % with ASCII brackets, 10 % with a space after two characters), address
    and phone joined in one cell, a bank and account, an invoice date, the amount. Only the
    base source's *mapping* is read (which header holds the name, address, phone, amount):
    nothing of the corpus' values.
    """
    import numpy as np
    import yaml

    rng = np.random.default_rng(seed)
    base, columns = _base_export(work, DERIVED_BASE)
    pick = base.iloc[::DERIVED_EVERY]
    pick = pick[pick[columns["customer_name"]].notna()].reset_index(drop=True)
    n = len(pick)

    def noisy(name: str) -> str:
        r = rng.random()
        if r < 0.2:
            return name.replace("（", "(").replace("）", ")")
        if r < 0.3:
            return f"{name[:2]} {name[2:]}"
        return name

    def text(value: object) -> str:
        return value if isinstance(value, str) else ""

    banks = ["中国工商银行", "招商银行", "中国建设银行", "交通银行"]
    invoices = pd.DataFrame(
        {
            "发票号码": [f"{44000000 + i:08d}" for i in range(n)],
            "购买方名称": [noisy(x) for x in pick[columns["customer_name"]]],
            "购买方地址、电话": [
                f"{text(a)} {text(p)}"
                for a, p in zip(pick[columns["address"]], pick[columns["phone"]], strict=True)
            ],
            "开户行及账号": [
                f"{banks[i % 4]}{'分行' if i % 3 else '支行'} {rng.integers(10**15, 10**16)}"
                for i in range(n)
            ],
            "开票日期": (
                pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 600, n), unit="D")
            ).strftime("%Y年%m月%d日"),
            "价税合计": pick[columns["txn_amount"]].to_numpy(),
        }
    )
    target = work / "landing" / DERIVED_SOURCE / DELIVERY_DATE
    target.mkdir(parents=True, exist_ok=True)
    invoices.to_parquet(target / "invoices.parquet", index=False)
    mapping = yaml.safe_load((work / "sources.yml").read_text(encoding="utf-8"))
    mapping["sources"].append(DERIVED_MAPPING)
    (work / "sources.yml").write_text(
        yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    truth = pd.read_csv(truth_csv, dtype=str)
    base_truth = truth[truth["source_system"] == DERIVED_BASE].set_index("source_record_id")
    derived = pd.DataFrame(
        {
            "source_system": DERIVED_SOURCE,
            "source_record_id": invoices["发票号码"],
            "entity_id": base_truth["entity_id"]
            .reindex(pick[columns["source_record_id"]].astype(str))
            .to_numpy(),
        }
    )
    out = work / "truth_derived.csv"
    pd.concat([truth, derived], ignore_index=True).to_csv(out, index=False)
    return out


def set_match_seed(config: Path, seed: int) -> None:
    """Write `matching.seed` into the project config (the u sample's seed; see
    docs/dedupe.md: accuracy is read over several seeds, not one)."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    data["matching"] = {**(data.get("matching") or {}), "seed": seed}
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def run_and_evaluate(
    config: Path,
    truth_csv: Path,
    cases_csv: Path | None,
    only: list[str] | None = None,
    rerun: bool = True,
) -> tuple[AccuracyReport, dict[str, float]]:
    """`customer-archive run` on `config` (unless not `rerun`: the warehouse it left is read),
    then the error-analysis report against the truth (its records of the `only` sources when
    given: the records of the other sources are left out of the scores)."""
    started = time.perf_counter()
    if rerun:
        proc = subprocess.run(
            [str(CLI), "run", "--config", str(config)],
            cwd=config.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"customer-archive run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
    wall = time.perf_counter() - started
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
    if only is not None:
        truth = truth[truth["source_system"].isin(only)]
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
    parser.add_argument(
        "--match-seed",
        type=int,
        default=None,
        help="matching.seed of the runs (the random-pair sample u is estimated on)",
    )
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
        derived = name.endswith(DERIVED_SUFFIX)
        work = base / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if name == "demo":
            config, truth, cases = prepare_demo(work, args.entities, args.seed)
        else:
            folder = args.corpus / name.removesuffix(DERIVED_SUFFIX)
            if not folder.exists():
                print(f"{name}: {folder} not found, skipped")
                continue
            config, truth, cases = prepare_corpus(work, folder)
        if derived:
            truth = derive_department(work, truth)
        if args.match_seed is not None:
            set_match_seed(config, args.match_seed)
        report, times = run_and_evaluate(config, truth, cases)
        scopes = [(name, report)]
        if derived:
            # the original departments' records alone, from the same run
            original = run_and_evaluate(config, truth, cases, list(CORPUS_FILES), rerun=False)
            scopes.append((f"{name} orig", original[0]))
        for label, scoped in scopes:
            print(
                format_report(
                    scoped,
                    f"== {label}: run {times['run_s']:.1f} s, match stage "
                    f"{times['match_s']:.1f} s, {int(times['customers'])} customers / "
                    f"{int(times['entities'])} true",
                ),
                flush=True,
            )
            if args.errors is not None:
                args.errors.mkdir(parents=True, exist_ok=True)
                stem = label.replace(" ", "_")
                scoped.missed_pairs.to_csv(args.errors / f"{stem}_missed.csv", index=False)
                scoped.false_pairs.to_csv(args.errors / f"{stem}_false.csv", index=False)
            pw, b3 = scoped.pairwise, scoped.bcubed
            missed = sum(scoped.missed.values()) or 1
            rows.append(
                [
                    label,
                    scoped.records,
                    pw.precision,
                    pw.recall,
                    pw.f1,
                    b3.precision,
                    b3.recall,
                    b3.f1,
                    ", ".join(f"{k} {v / missed:.0%}" for k, v in scoped.missed.items() if v),
                    ", ".join(f"{k} {v}" for k, v in scoped.false.items() if v) or "–",
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

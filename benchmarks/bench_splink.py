"""Our dedupe stage side by side with Splink 5 (DuckDB backend) on the same cleaned records.

The parent (main venv) ingests the cached demo deliveries of ``bench_pipeline.py`` with the real
source mappings, runs our clean stage once and writes ``clean.records`` plus the truth to Parquet.
Each matcher then runs in its own child process (own heap, own peak RSS):

* ours: ``dedupe.link_records(records)`` with default ``MatchSettings`` (main venv);
* Splink: ``.venv-bench/bin/python`` (``make bench-splink`` builds it from
  ``benchmarks/requirements-splink.txt``; Splink is a benchmark-only dependency).

Both write ``record_key, cluster_key`` to Parquet and the parent scores both with the same
pairwise and B-cubed functions (``dedupe.pairwise_scores`` / ``dedupe.bcubed_scores``).

Splink configuration (a competent, documented model, equivalent to ours where Splink can be):

* input columns prepared in SQL as our ``dedupe.prepare`` does: ``name_key`` falls back to the
  contact's name for individuals without a name, a contact equal to the name is nulled, email
  lower-cased, credit code upper-cased, ``name_prefix`` = first two characters of ``name_key``;
* blocking rules for predictions = ours: ``phone``, ``email``, ``credit_code``, ``name_key``,
  ``name_prefix + city``;
* comparisons with levels (null / exact / Jaro-Winkler thresholds / else):
  ``name_key`` JW 0.92 / 0.80 with term-frequency adjustment on the exact level,
  ``contact_name`` JW 0.90, ``phone`` exact, ``email`` (Splink's EmailComparison: exact, exact
  username, JW), ``city`` exact, ``district`` exact, ``credit_code`` exact / JW 0.95 (a typo);
* λ from deterministic rules (credit code, phone, email) at recall 0.7; u by random sampling
  (``max_pairs`` 5e6, fixed seed); m by EM over three blocking-rule sessions (``name_key``,
  ``phone``, ``email``), each session leaving its own fields fixed;
* predictions at match probability ≥ 0.60 (our review band), clusters via
  ``cluster_pairwise_predictions_at_threshold`` at 0.95 (our default match threshold).

Note: DuckDB's ``jaro_winkler`` counts UTF-8 bytes, so on Chinese names Splink's fuzzy levels
are coarser than ours (rapidfuzz on characters); that is how Splink behaves out of the box.

Usage::

    make bench-splink            # builds .venv-bench, then 10 k and 100 k records
    .venv/bin/python benchmarks/bench_splink.py --records 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    OUT_ROOT,
    ROOT,
    append_section,
    command_line,
    emit_result,
    machine_facts,
    md_table,
    peak_rss_mb,
    run_child,
    section_header,
)

BENCH_PYTHON = OUT_ROOT / ".venv-bench" / "bin" / "python"
MATCH_THRESHOLD = 0.95
REVIEW_THRESHOLD = 0.60
BLOCKING = [("phone",), ("email",), ("credit_code",), ("name_key",), ("name_prefix", "city")]


# --------------------------------------------------------------------------- shared input


def prepare_input(records: int, seed: int) -> tuple[Path, Path, dict[str, Any]]:
    """Ingest + clean the cached base delivery once; write records and truth to Parquet.

    Returns:
        (records parquet, truth parquet, facts about the input and the clean stage)
    """
    import pandas as pd

    from benchmarks.bench_pipeline import prepare_data
    from cleaning import CleaningOptions, clean_records
    from sources import ingest_source, load_sources_config

    meta = prepare_data(records, seed, 0.01)
    folder = Path(meta["folder"])
    rec_file, truth_file = folder / "clean_records.parquet", folder / "truth_keys.parquet"
    facts_file = folder / "clean_facts.json"
    if rec_file.exists() and truth_file.exists() and facts_file.exists():
        return rec_file, truth_file, json.loads(facts_file.read_text(encoding="utf-8"))
    cfg = load_sources_config(ROOT / "sources" / "sources.yml", landing_dir=folder / "base")
    started = time.perf_counter()
    raw = pd.concat(
        [
            ingest_source(s, cfg.landing_dir, "bench", "2026-11-23T02:00:00").rows
            for s in cfg.sources
        ],
        ignore_index=True,
    )
    ingest_s = time.perf_counter() - started
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in cfg.sources},
        departments={s.name: s.department for s in cfg.sources},
    )
    started = time.perf_counter()
    clean = clean_records(raw, options).records
    clean_s = time.perf_counter() - started
    clean.to_parquet(rec_file, index=False)
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    truth["record_key"] = truth["source_system"] + ":" + truth["source_record_id"]
    truth[["record_key", "entity_id"]].to_parquet(truth_file, index=False)
    facts = {
        "records": len(clean),
        "ingest_seconds": round(ingest_s, 2),
        "clean_seconds": round(clean_s, 2),
    }
    facts_file.write_text(json.dumps(facts), encoding="utf-8")
    return rec_file, truth_file, facts


# --------------------------------------------------------------------------- child: ours


def run_ours(records_file: Path, out: Path) -> None:
    """Child process: our link_records on the cleaned records; clusters to Parquet."""
    import pandas as pd

    from dedupe import link_records

    records = pd.read_parquet(records_file)
    base_rss = peak_rss_mb()
    started = time.perf_counter()
    result = link_records(records)
    seconds = time.perf_counter() - started
    result.clusters[["record_key", "cluster_key"]].to_parquet(out, index=False)
    emit_result(
        {
            "seconds": round(seconds, 2),
            "peak_rss_mb": peak_rss_mb(),
            "input_rss_mb": base_rss,
            "pairs": len(result.pairs),
            "matched_pairs": int((result.pairs["decision"] == "match").sum()),
        }
    )


# --------------------------------------------------------------------------- child: Splink


def _splink_input_sql(path: Path) -> str:
    """SQL preparing the Splink input the way our dedupe.prepare prepares ours."""
    return f"""
        WITH r AS (
            SELECT record_key,
                   NULLIF(trim(name_key), '') AS name_key0,
                   NULLIF(trim(contact_name), '') AS contact0,
                   lower(customer_type) AS customer_type,
                   NULLIF(phone, '') AS phone,
                   lower(NULLIF(email, '')) AS email,
                   NULLIF(city, '') AS city,
                   NULLIF(district, '') AS district,
                   upper(NULLIF(credit_code, '')) AS credit_code
            FROM read_parquet('{path}')
        ), n AS (
            SELECT *,
                   CASE WHEN name_key0 IS NULL AND customer_type = 'individual'
                             AND length(contact0) >= 2 THEN contact0
                        ELSE name_key0 END AS name_key
            FROM r
        )
        SELECT record_key, name_key,
               CASE WHEN contact0 = name_key THEN NULL ELSE contact0 END AS contact_name,
               phone, email, city, district, credit_code,
               substr(name_key, 1, 2) AS name_prefix
        FROM n
    """


def run_splink(records_file: Path, out: Path) -> None:
    """Child process (.venv-bench): Splink 5 dedupe_only with the configuration in the docstring."""
    import logging

    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    con.execute(f"CREATE TABLE input AS {_splink_input_sql(records_file)}")
    base_rss = peak_rss_mb()
    started = time.perf_counter()
    db_api = DuckDBAPI(con)
    frame = db_api.register(con.table("input"), table_name="records")
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        comparisons=[
            cl.JaroWinklerAtThresholds("name_key", [0.92, 0.80]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("contact_name", [0.90]),
            cl.ExactMatch("phone"),
            cl.EmailComparison("email"),
            cl.ExactMatch("city"),
            cl.ExactMatch("district"),
            cl.JaroWinklerAtThresholds("credit_code", [0.95]),
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in BLOCKING],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    linker = Linker(frame, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("credit_code"), block_on("phone"), block_on("email")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    for cols in (("name_key",), ("phone",), ("email",)):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
    train_s = time.perf_counter() - started
    predictions = linker.inference.predict(threshold_match_probability=REVIEW_THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=MATCH_THRESHOLD
    )
    rel = clusters.as_duckdbpyrelation()
    rel.select("record_key, CAST(cluster_id AS VARCHAR) AS cluster_key").write_parquet(str(out))
    seconds = time.perf_counter() - started
    n_pred = con.sql(f"SELECT count(*) FROM {predictions.physical_name}").fetchall()[0][0]
    n_match = con.sql(
        f"SELECT count(*) FROM {predictions.physical_name} "
        f"WHERE match_probability >= {MATCH_THRESHOLD}"
    ).fetchall()[0][0]
    emit_result(
        {
            "seconds": round(seconds, 2),
            "train_seconds": round(train_s, 2),
            "peak_rss_mb": peak_rss_mb(),
            "input_rss_mb": base_rss,
            "pairs": int(n_pred),
            "matched_pairs": int(n_match),
        }
    )


# --------------------------------------------------------------------------- parent


def _score(clusters_file: Path, truth_file: Path) -> dict[str, float]:
    """Pairwise and B-cubed P/R/F1 of a clusters file against the truth (our scorers for both)."""
    import pandas as pd

    from dedupe import bcubed_scores, pairwise_scores

    pred = pd.read_parquet(clusters_file).astype({"cluster_key": "string"})
    truth = pd.read_parquet(truth_file)
    truth = truth[truth["record_key"].isin(pred["record_key"])]
    pw, b3 = pairwise_scores(pred, truth), bcubed_scores(pred, truth)
    return {
        "pairwise_p": pw.precision,
        "pairwise_r": pw.recall,
        "pairwise_f1": pw.f1,
        "bcubed_p": b3.precision,
        "bcubed_r": b3.recall,
        "bcubed_f1": b3.f1,
    }


def compare(records: int, seed: int) -> str:
    """Run both matchers on one size and return the markdown section for it."""
    rec_file, truth_file, facts = prepare_input(records, seed)
    folder = rec_file.parent
    results: dict[str, dict[str, Any]] = {}
    for side, python in (("ours", sys.executable), ("splink", str(BENCH_PYTHON))):
        out = folder / f"clusters_{side}.parquet"
        print(f"  {side} …", flush=True)
        results[side] = run_child(
            [__file__, "--side", side, "--input", str(rec_file), "--out", str(out)],
            python=python,
        )
        results[side].update(_score(out, truth_file))
        print(f"  {side}: {results[side]}", flush=True)
    ours, spl = results["ours"], results["splink"]
    rows = [
        [
            name,
            r["seconds"],
            r["peak_rss_mb"],
            r["peak_rss_mb"] - r["input_rss_mb"],
            r["matched_pairs"],
            r["pairwise_p"],
            r["pairwise_r"],
            r["pairwise_f1"],
            r["bcubed_p"],
            r["bcubed_r"],
            r["bcubed_f1"],
        ]
        for name, r in (("ours (dedupe.link_records)", ours), ("Splink 5.0.0 (DuckDB)", spl))
    ]
    return "\n".join(
        [
            f"### {facts['records']:,} cleaned records ({records:,}-record demo base delivery)",
            "",
            md_table(
                [
                    "matcher",
                    "seconds",
                    "peak RSS MB",
                    "RSS above input MB",
                    "pairs ≥ 0.95",
                    "pairwise P",
                    "pairwise R",
                    "pairwise F1",
                    "B³ P",
                    "B³ R",
                    "B³ F1",
                ],
                rows,
            ),
            "",
            f"Speed ratio Splink/ours: **{spl['seconds'] / ours['seconds']:.2f}×** "
            f"(>1 means ours is faster); memory ratio Splink/ours "
            f"{spl['peak_rss_mb'] / ours['peak_rss_mb']:.2f}×; pairwise F1 ours − Splink "
            f"{ours['pairwise_f1'] - spl['pairwise_f1']:+.4f}, B³ F1 ours − Splink "
            f"{ours['bcubed_f1'] - spl['bcubed_f1']:+.4f}. Splink training (λ, u, 3 EM "
            f"sessions) took {spl['train_seconds']} s of its {spl['seconds']} s; "
            f"ours estimates u and m inside link_records. Scored pairs: ours "
            f"{ours['pairs']:,} candidate pairs (all scored), Splink {spl['pairs']:,} "
            f"predictions ≥ {REVIEW_THRESHOLD}. *RSS above input* = peak minus the RSS after "
            "loading the input (0 when the loading peak was never exceeded).",
        ]
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument("--side", choices=["ours", "splink"], help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "ours":
        run_ours(args.input, args.out)
        return
    if args.side == "splink":
        run_splink(args.input, args.out)
        return
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} is missing: run `make bench-splink` to create it")
    facts = machine_facts()
    command = command_line()
    sections = []
    for records in args.records:
        print(f"== {records:,} records", flush=True)
        sections.append(compare(records, args.seed))
        print(sections[-1], flush=True)
    body = section_header("Dedupe vs Splink (same cleaned input, same run)", command, facts)
    body += "\n\n".join(sections)
    if not args.no_append:
        append_section(body)


if __name__ == "__main__":
    main()

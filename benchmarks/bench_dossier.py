"""Dossier PDF rendering: seconds per dossier with and without the batch font subset.

Generates a small demo, runs the pipeline once into a temporary project, then renders the
same customers' dossiers alternately with the full font and with the batch subset
(``warehouse.packages.SUBSET_FROM``), ``--repeat`` rounds, and appends the medians to
BENCHMARKS.md (``make bench-dossier``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    append_section,
    command_line,
    machine_facts,
    md_table,
    median,
    section_header,
    write_project_config,
)


def main() -> int:
    """Run the benchmark and append the result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=40)
    parser.add_argument("--dossiers", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    a = parser.parse_args()

    import warehouse.packages as packages
    from pipelines.access import open_warehouse
    from pipelines.runner import run_pipeline
    from pipelines.settings import load_config
    from sources.demo import write_demo
    from warehouse.dossier import find_cjk_font

    facts = machine_facts()
    work = Path(tempfile.mkdtemp(prefix="bench-dossier-"))
    write_demo(work / "demo", entities=a.entities, seed=3)
    cfg_path = write_project_config(work, work / "demo" / "landing")
    if not run_pipeline(cfg_path, run_date="2026-11-24").success:
        raise SystemExit("pipeline run failed")
    with open_warehouse(load_config(cfg_path), read_only=True) as con:
        tables = packages.golden_frames(con)
    ids = sorted(tables["customers"]["customer_id"])[: a.dossiers]  # type: ignore[index]
    font = find_cjk_font()
    timings: dict[str, list[float]] = {"full font": [], "batch subset": []}
    for _ in range(a.repeat):
        for label, subset_from in (("full font", 10**9), ("batch subset", 3)):
            packages.SUBSET_FROM = subset_from
            out = Path(tempfile.mkdtemp(dir=work))
            started = time.perf_counter()
            written = packages.write_dossiers(tables, ids, out, date(2026, 11, 30), font)
            timings[label].append((time.perf_counter() - started) / len(written))
    rows = [
        [label, len(ids), f"{median(values):.3f}", ", ".join(f"{v:.3f}" for v in values)]
        for label, values in timings.items()
    ]
    text = section_header("Dossier PDFs (fpdf2)", command_line(), facts) + md_table(
        ["font", "dossiers", "median s / dossier", "rounds"], rows
    )
    text += f"\n\nFont: `{font.path}`. Load average at the end: {machine_facts()['load_avg']}.\n"
    print(text)
    if not a.no_append:
        append_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Growth tables from the per-run results `bench_pipeline.py` keeps under data/bench/results/.

`bench_pipeline.py` writes every run's figures (settings, per-stage figures of the whole process
tree, disk use, whether the watchdog stopped it) as one JSON file. Runs of different sizes are
often separate invocations (the 10 M rehearsal runs alone, under its own watchdog); this script
puts them side by side:

1. one row per (size, settings): wall, the process tree's CPU seconds, peak RSS and PSS, the
   run folder's peak disk use and the warehouse, DuckDB spill and Dagster storage at the end,
   or how far a stopped run got;
2. per stage and size, the tree's CPU seconds and peak RSS;
3. growth between consecutive sizes of the same settings (× per × records; 1.0 = linear).

Usage::

    .venv/bin/python benchmarks/bench_growth.py                 # print
    .venv/bin/python benchmarks/bench_growth.py --append        # and append to BENCHMARKS.md
    .venv/bin/python benchmarks/bench_growth.py --since 2026-12-06T08:00
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
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
    section_header,
)
from benchmarks.bench_pipeline import settings_label


def load_results(folder: Path, since: str | None = None) -> list[dict[str, Any]]:
    """Every full run's result under ``folder`` (file names: <records>-full-<k>-<stamp>.json)."""
    runs = []
    for path in sorted(folder.glob("*-full-*.json")):
        records, _, _, stamp = path.stem.split("-", 3)
        if since and stamp < since.replace("-", "").replace(":", ""):
            continue
        run = json.loads(path.read_text(encoding="utf-8"))
        run["records"] = int(records)
        run["stamp"] = stamp
        runs.append(run)
    return runs


def group_runs(runs: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Runs by (settings label, records), sizes ascending within each settings."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        key = (settings_label(run.get("settings") or {}), run["records"])
        groups.setdefault(key, []).append(run)
    return dict(sorted(groups.items()))


def _stopped(run: dict[str, Any]) -> str | None:
    return run.get("killed") or run.get("failed")


def _med(runs: list[dict[str, Any]], get: Any) -> float:
    values = []
    for r in runs:
        try:
            values.append(float(get(r)))
        except (KeyError, TypeError, ValueError):
            continue
    return median(values)


def summary_table(groups: dict[tuple[str, int], list[dict[str, Any]]]) -> str:
    """One row per (settings, size): medians over its finished runs (or the stopped run)."""
    rows = []
    for (label, records), runs in groups.items():
        done = [r for r in runs if not _stopped(r)]
        use = done or runs
        status = "finished" if done else f"stopped: {_stopped(runs[-1])}"
        reached = ""
        if not done:
            steps = runs[-1].get("steps") or {}
            running = [k for k, w in steps.items() if w["status"] != "success"]
            reached = f" (running: {', '.join(running) or '–'})"
        rows.append(
            [
                f"{records:,}",
                label,
                len(use),
                status + reached,
                _med(use, lambda r: r["tree"]["wall_s"]),
                _med(use, lambda r: r["tree"]["tree_cpu_s"]),
                _med(use, lambda r: r["tree"]["peak_tree_rss_mb"]),
                _med(use, lambda r: r["tree"]["peak_tree_pss_mb"]),
                _med(use, lambda r: r["tree"]["peak_disk_mb"]["run_folder"]),
                _med(use, lambda r: r["tree"]["peak_disk_mb"]["warehouse"]),
                _med(use, lambda r: r["tree"]["peak_disk_mb"]["duckdb_temp"]),
                _med(use, lambda r: r["tree"]["peak_disk_mb"]["dagster"]),
            ]
        )
    return md_table(
        [
            "records",
            "settings",
            "runs",
            "status",
            "wall s",
            "tree CPU s",
            "tree peak RSS MB",
            "tree peak PSS MB",
            "peak disk MB (run folder)",
            "warehouse MB",
            "DuckDB spill MB",
            "Dagster storage MB",
        ],
        rows,
    )


def stage_table(groups: dict[tuple[str, int], list[dict[str, Any]]], label: str) -> str:
    """Per stage (rows) and size (columns): tree CPU s / peak RSS MB, for one settings label."""
    sizes = [(rec, runs) for (lab, rec), runs in groups.items() if lab == label]
    stages: list[str] = []
    for _, runs in sizes:
        for r in runs:
            for k, _ in sorted(
                (r.get("stage_tree") or {}).items(), key=lambda kv: kv[1].get("started_s", 0)
            ):
                if k not in stages:
                    stages.append(k)
    rows = []
    for stage in stages:
        cells: list[object] = [stage]
        for _, runs in sizes:
            done = [r for r in runs if not _stopped(r)] or runs
            inside = [r for r in done if stage in (r.get("stage_tree") or {})]
            if not inside:
                cells.append("–")
                continue
            cpu = _med(inside, lambda r, s=stage: r["stage_tree"][s]["tree_cpu_s"])
            rss = _med(inside, lambda r, s=stage: r["stage_tree"][s]["tree_peak_rss_mb"])
            state = {r["stage_tree"][stage]["status"] for r in inside} - {"success"}
            cells.append(f"{cpu:,.0f} s / {rss:,.0f} MB" + (" (stopped)" if state else ""))
        rows.append(cells)
    cells = ["outside the steps (Dagster, step process start-up)"]
    for _, runs in sizes:
        done = [r for r in runs if not _stopped(r)] or runs
        cells.append(f"{_med(done, _outside_cpu):,.0f} s")
    rows.append(cells)
    return md_table(["stage: tree CPU s / peak RSS MB", *(f"{rec:,}" for rec, _ in sizes)], rows)


def _outside_cpu(run: dict[str, Any]) -> float:
    """The tree's CPU seconds outside every step's window (start-up, Dagster between steps)."""
    inside = sum(v["tree_cpu_s"] for v in (run.get("stage_tree") or {}).values())
    return float(run["tree"]["tree_cpu_s"]) - inside


def growth_table(groups: dict[tuple[str, int], list[dict[str, Any]]]) -> str:
    """Consecutive finished sizes of the same settings: how CPU, RSS and disk grow."""
    rows = []
    by_label: dict[str, list[tuple[int, list[dict[str, Any]]]]] = {}
    for (label, records), runs in groups.items():
        done = [r for r in runs if not _stopped(r)]
        if done:
            by_label.setdefault(label, []).append((records, done))
    for label, sizes in by_label.items():
        for (ra, a), (rb, b) in itertools.pairwise(sizes):
            factor = rb / ra
            cpu = _med(b, lambda r: r["tree"]["tree_cpu_s"]) / _med(
                a, lambda r: r["tree"]["tree_cpu_s"]
            )
            rss = _med(b, lambda r: r["tree"]["peak_tree_rss_mb"]) / _med(
                a, lambda r: r["tree"]["peak_tree_rss_mb"]
            )
            disk = _med(b, lambda r: r["tree"]["peak_disk_mb"]["run_folder"]) / _med(
                a, lambda r: r["tree"]["peak_disk_mb"]["run_folder"]
            )
            rows.append([f"{ra:,} → {rb:,}", label, factor, cpu, cpu / factor, rss, disk])
    return md_table(
        [
            "sizes",
            "settings",
            "records ×",
            "tree CPU ×",
            "CPU × / records ×",
            "tree peak RSS ×",
            "peak disk ×",
        ],
        rows,
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=OUT_ROOT / "data" / "bench" / "results")
    parser.add_argument("--since", help="only runs started at or after (UTC, 2026-12-06T08:00)")
    parser.add_argument("--append", action="store_true", help="append to BENCHMARKS.md")
    args = parser.parse_args()
    groups = group_runs(load_results(args.results, args.since))
    if not groups:
        sys.exit(f"no results under {args.results}")
    parts = [
        "Per size and settings (the whole process tree; medians over finished runs):",
        "",
        summary_table(groups),
    ]
    for label in dict.fromkeys(lab for lab, _ in groups):
        parts += ["", f"Per stage, settings {label}:", "", stage_table(groups, label)]
    parts += ["", "Growth:", "", growth_table(groups)]
    text = "\n".join(parts)
    print(text)
    if args.append:
        append_section(
            section_header("Growth by size (bench_growth.py)", command_line(), machine_facts())
            + text
        )


if __name__ == "__main__":
    main()

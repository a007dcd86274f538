"""Start-up time of `customer-archive sql "SELECT 1"`: wall-time medians and the heaviest imports.

Builds a tiny project (config + encrypted warehouse with one table) in a temporary folder,
then runs, interleaved so that machine load hits every command alike, ``--repeat`` times each:

* ``python -c pass`` (the interpreter alone),
* ``python -c "import duckdb, pyarrow"`` (the floor any query needs),
* this checkout's ``customer-archive sql "SELECT 1"``,
* optionally a baseline checkout's CLI (``--baseline /work/main``: its ``.venv``) on the same
  project, to measure the change side by side.

It prints a Markdown section (medians, min, load average, code version) and the ten heaviest
imports of the ``sql`` path (``python -X importtime``), and checks that Dagster and Great
Expectations are not among them; ``--append`` adds the section to BENCHMARKS.md.

    .venv/bin/python benchmarks/bench_cli_startup.py --repeat 15 --baseline /work/main
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import code_version, machine_facts

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("dagster", "great_expectations", "pandas", "scipy")


def make_project(root: Path) -> Path:
    """A config whose encrypted warehouse holds one small table (no pipeline run needed)."""
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config

    cfg_path = root / "archive.yml"
    cfg_path.write_text(
        "warehouse: state/warehouse.duckdb\nsecurity:\n  key_file: state/archive.key\n"
        "  audit_log: state/audit.jsonl\n",
        encoding="utf-8",
    )
    with open_warehouse(load_config(cfg_path), create_key=True) as con:
        con.execute("CREATE SCHEMA golden; CREATE TABLE golden.customers AS SELECT 1 AS id")
    return cfg_path


# Users' Pythons cache byte code; a sandbox that sets PYTHONDONTWRITEBYTECODE makes every
# start compile each module again (~0.8 s here), which is not what a user waits for.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=CHILD_ENV)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def heaviest_imports(python: str, cfg: Path, top: int = 10) -> tuple[list[tuple[str, float]], set]:
    """The ``top`` imports of the sql path by cumulative time, and the heavy frameworks loaded."""
    done = subprocess.run(
        [
            python,
            "-X",
            "importtime",
            "-m",
            "pipelines.cli",
            "sql",
            "--config",
            str(cfg),
            "SELECT 1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    rows = []
    loaded = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        module = name.strip()
        if module.split(".")[0] in HEAVY:
            loaded.add(module.split(".")[0])
        if name.startswith(" ") and len(name) - len(name.lstrip()) <= 3:  # top-level imports
            rows.append((module, int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top], loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout (.venv)")
    parser.add_argument("--append", action="store_true", help="append to BENCHMARKS.md")
    args = parser.parse_args()

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_project(Path(tmp))
        sql = ["sql", "--config", str(cfg), "SELECT 1"]
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "python -c 'import duckdb, pyarrow'": [python, "-c", "import duckdb, pyarrow"],
            'customer-archive sql "SELECT 1" (this checkout)': [
                str(REPO / ".venv/bin/customer-archive"),
                *sql,
            ],
        }
        if args.baseline:
            commands[f'customer-archive sql "SELECT 1" ({args.baseline})'] = [
                str(args.baseline / ".venv/bin/customer-archive"),
                *sql,
            ]
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm-up: byte-code caches, page cache
            _time(cmd, REPO)
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                times[name].append(_time(cmd, REPO))
        load_after = os.getloadavg()
        top, loaded = heaviest_imports(str(REPO / ".venv/bin/python"), cfg)

    facts = machine_facts()
    lines = [
        f'## CLI start-up: `customer-archive sql "SELECT 1"` '
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, issue #18)",
        "",
        f"`.venv/bin/python benchmarks/bench_cli_startup.py --repeat {args.repeat}"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + f"`; code {code_version()}; {facts.get('cpu', '?')}, {facts.get('cores', '?')} cores; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        "(the machine is shared: compare the rows, measured interleaved).",
        "",
        "| command | median s | min s |",
        "|---|---|---|",
    ]
    for name, values in times.items():
        lines.append(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} |")
    lines += [
        "",
        "Heaviest imports of the `sql` path (`python -X importtime`, cumulative s): "
        + ", ".join(f"{m} {s:.2f}" for m, s in top),
        "",
        f"Frameworks loaded by `sql`: {sorted(loaded) or 'none of ' + ', '.join(HEAVY)}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with (REPO / "BENCHMARKS.md").open("a", encoding="utf-8") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()

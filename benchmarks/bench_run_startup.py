"""Fixed start-up cost of `customer-archive run`: CPU and wall medians per component.

Each component is timed in a fresh interpreter (byte code cached, as users run it), after the
components a run loads before it, so each figure is what that component adds:

* ``python -c pass`` — the interpreter;
* ``import pandas`` / ``import dagster`` (after pandas) / ``import great_expectations``
  (after pandas and dagster) / ``import pipelines.runner`` (the CLI's run path, after those);
* the GX ephemeral context (``expectations._gx_runner.gx_context``);
* Dagster's ephemeral instance (``DagsterInstance.ephemeral()``);
* the job's definitions built for the demo configuration (``build_definitions``);
* ``customer-archive run`` up to its first stage, as a whole: ``import pipelines.runner`` +
  definitions + instance + GX context in one process.

Runs are interleaved ``--repeat`` times so machine load hits every component alike.

    .venv/bin/python benchmarks/bench_run_startup.py --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import code_version, machine_facts

REPO = Path(__file__).resolve().parents[1]
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

_TIMER = """
import json, resource, sys, time
def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
{setup}
c0, w0 = _cpu(), time.perf_counter()
{body}
print(json.dumps({{"cpu": _cpu() - c0, "wall": time.perf_counter() - w0,
                   "modules": sorted(m for m in ("great_expectations", "dagster", "pandas",
                                                 "scipy", "sqlalchemy", "altair")
                                     if m in sys.modules)}}))
"""

RUN_PATH = "import pipelines.runner"
DEFS = "from pipelines.build import build_definitions; build_definitions({cfg!r})"
COMPONENTS: dict[str, tuple[str, str]] = {
    "interpreter (python -c pass)": ("", "pass"),
    "import pandas": ("", "import pandas"),
    "import dagster (after pandas)": ("import pandas", "import dagster"),
    "import great_expectations (after pandas, dagster)": (
        "import pandas, dagster",
        "import great_expectations",
    ),
    "GX as the suites import it (after pandas, dagster; scipy.stats deferred)": (
        "import pandas, dagster; from expectations._gx_import import import_gx",
        "import_gx()",
    ),
    "import pipelines.runner (after pandas, dagster)": ("import pandas, dagster", RUN_PATH),
    "GX ephemeral context": (
        "import great_expectations; from expectations._gx_runner import gx_context",
        "gx_context()",
    ),
    "Dagster ephemeral instance": ("import dagster as dg", "dg.DagsterInstance.ephemeral()"),
    "definitions (build_definitions)": (RUN_PATH, DEFS),
    "run start-up as a whole (imports, definitions, instance, GX context)": (
        "",
        RUN_PATH + "\n" + DEFS + "\nimport dagster as dg\ndg.DagsterInstance.ephemeral()\n"
        "from expectations._gx_runner import gx_context\ngx_context()",
    ),
}


def _demo_config(root: Path) -> Path:
    cfg = root / "archive.yml"
    cfg.write_text(
        f"landing_dir: {root / 'landing'}\nsources_file: {REPO / 'sources/sources.yml'}\n"
        f"warehouse: {root / 'warehouse.duckdb'}\narchive_dir: {root / 'archive'}\n",
        encoding="utf-8",
    )
    return cfg


def _measure(python: str, setup: str, body: str) -> dict:
    code = _TIMER.format(setup=setup, body=body)
    done = subprocess.run(
        [python, "-c", code], cwd=REPO, capture_output=True, text=True, env=CHILD_ENV
    )
    if done.returncode != 0:
        raise SystemExit(f"{body!r} failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--python", default=str(REPO / ".venv/bin/python"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _demo_config(Path(tmp))
        components = {
            name: (setup, body.format(cfg=str(cfg)) if "{cfg" in body else body)
            for name, (setup, body) in COMPONENTS.items()
        }
        for setup, body in components.values():  # warm-up: byte code, page cache
            _measure(args.python, setup, body)
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {name: [] for name in components}
        for _ in range(args.repeat):
            for name, (setup, body) in components.items():
                runs[name].append(_measure(args.python, setup, body))
        load_after = os.getloadavg()
    facts = machine_facts()
    lines = [
        f"`{Path(args.python).parent.parent.parent.name}`: code {code_version()}; "
        f"{facts.get('cpu', '?')}, {facts.get('cores', '?')} cores; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; medians of {args.repeat}",
        "",
        "| component | CPU s | wall s | heavy modules loaded |",
        "|---|---|---|---|",
    ]
    for name, values in runs.items():
        cpu = statistics.median(v["cpu"] for v in values)
        wall = statistics.median(v["wall"] for v in values)
        lines.append(f"| {name} | {cpu:.2f} | {wall:.2f} | {', '.join(values[-1]['modules'])} |")
    print(f"## Run start-up ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

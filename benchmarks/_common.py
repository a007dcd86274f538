"""Shared benchmark helpers: machine facts, peak RSS, medians, child processes, markdown rows."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Where results, cached data and the benchmark venv live: the checkout itself, or (when the code
# measured is an exported commit, see BENCHMARKS.md) the checkout named by $BENCH_OUT.
OUT_ROOT = Path(os.environ.get("BENCH_OUT", str(ROOT))).resolve()
BENCHMARKS_MD = OUT_ROOT / "BENCHMARKS.md"
RESULT_PREFIX = "BENCH-RESULT "


def machine_facts() -> dict[str, Any]:
    """Cores, RAM, CPU model, Python version and the load average right now.

    Returns:
        A dict with ``started`` (now), ``code``, ``cores``, ``ram_gib``, ``cpu``, ``python``,
        ``platform`` and ``load_avg``.
    """
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "code": code_version(),
        "cores": os.cpu_count() or 0,
        "ram_gib": round(ram_gib, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_avg": tuple(round(x, 2) for x in os.getloadavg()),
    }


def code_version() -> str:
    """The measured code: ``$BENCH_CODE_VERSION`` or the git commit (``-dirty`` if edited)."""
    if os.environ.get("BENCH_CODE_VERSION"):
        return os.environ["BENCH_CODE_VERSION"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("-dirty" if dirty else "")


def write_project_config(
    workdir: Path,
    landing: Path,
    *,
    duckdb: dict[str, Any] | None = None,
    scale: dict[str, Any] | None = None,
) -> Path:
    """Write ``workdir/archive.yml``: read ``landing``, keep all state under ``workdir/state``.

    The same shape as the test projects' config. ``duckdb`` and ``scale`` add those sections
    (keys whose value is ``None`` are left out, so the project's defaults apply).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # a copy beside the config: a state kept for later benchmarks does not name the checkout
    # (or worktree) that made it, which may be gone by then
    shutil.copyfile(ROOT / "sources" / "sources.yml", workdir / "sources.yml")
    lines = [
        f"landing_dir: {landing}",
        "sources_file: sources.yml",
        "warehouse: state/warehouse.duckdb",
        "archive_dir: state/archive",
        "reports_dir: state/reports",
        "exports_dir: state/exports",
    ]
    for section, values in (("duckdb", duckdb), ("scale", scale)):
        kept = {k: v for k, v in (values or {}).items() if v is not None}
        if kept:
            lines.append(f"{section}:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in kept.items()]
    cfg = workdir / "archive.yml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def resident_mb(reset_peak: bool = False) -> dict[str, float]:
    """This process's resident memory now (``rss``) and its peak since the last reset (``hwm``).

    With ``reset_peak`` the peak is reset first (``/proc/self/clear_refs``, Linux ≥ 4.0), so the
    next reading is the peak of what ran since: a stage's own peak, not the run's so far.
    """
    status = Path("/proc/self/status")
    if not status.exists():
        return {"rss": float("nan"), "hwm": float("nan")}
    if reset_peak:
        # where not allowed, the peak stays the process's (the figures say so: own = so far)
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
    fields = dict(
        line.split(":", 1) for line in status.read_text().splitlines() if line.startswith("Vm")
    )
    kib = {k: float(v.split()[0]) for k, v in fields.items() if k in ("VmRSS", "VmHWM")}
    return {"rss": round(kib["VmRSS"] / 1024, 1), "hwm": round(kib["VmHWM"] / 1024, 1)}


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN when empty)."""
    return float(statistics.median(values)) if values else float("nan")


def emit_result(payload: dict[str, Any]) -> None:
    """Print one JSON result line a parent process picks up with :func:`run_child`."""
    print(RESULT_PREFIX + json.dumps(payload, ensure_ascii=False, default=str), flush=True)


def run_child(argv: list[str], cwd: Path = ROOT, python: str | None = None) -> dict[str, Any]:
    """Run a benchmark worker in its own process (own heap, own peak RSS) and return its result.

    The worker's other output is passed through; its last ``BENCH-RESULT`` line is the result.

    Args:
        argv: the script and its arguments.
        cwd: working directory of the child.
        python: interpreter (default: this one).

    Returns:
        The worker's result dict.

    Raises:
        RuntimeError: when the worker fails or prints no result line.
    """
    cmd = [python or sys.executable, *argv]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    result: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print("    | " + line, flush=True)
    if proc.returncode != 0 or result is None:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise RuntimeError(
            f"benchmark worker failed (exit {proc.returncode}): {shlex.join(cmd)}\n{tail}"
        )
    return result


def copy_state(state: Path, into: Path) -> Path:
    """Copy a prepared bench project into `into`; its ``archive.yml`` paths point at the copy."""
    target = into / state.name
    shutil.copytree(state, target, symlinks=True)
    cfg = target / "archive.yml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(state), str(target)), "utf-8")
    return target


def run_on_state_copy(
    script: Path, state: Path, code: Path, profile: Path | None, *, prefix: str, tmp_prefix: str
) -> dict[str, Any]:
    """Run ``script --worker <copy of state>`` in a child process importing the pipeline from
    ``code`` (a checkout: ``PYTHONPATH``), and return the JSON of its last `prefix` line.

    The copy lives in a temporary folder beside `state` (same disk), removed afterwards; the
    child's code version is ``bench`` unless ``CUSTOMER_ARCHIVE_CODE_VERSION`` is set, so two
    checkouts compared on one state see the same version. Exits with the worker's output
    when it fails or prints no result.
    """
    with tempfile.TemporaryDirectory(dir=state.parent, prefix=tmp_prefix) as tmp:
        project = copy_state(state, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(code)}
        env.setdefault("CUSTOMER_ARCHIVE_CODE_VERSION", "bench")
        cmd = [sys.executable, str(script), "--worker", str(project)]
        if profile:
            cmd += ["--profile", str(profile)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        lines = [x for x in done.stdout.splitlines() if x.startswith(prefix)]
        if done.returncode or not lines:
            sys.exit(f"worker failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return json.loads(lines[-1][len(prefix) :])


def md_row(cells: Sequence[object]) -> str:
    """One markdown table row; floats get 2–3 significant decimals."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            if v != v:  # NaN
                return "–"
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    return "| " + " | ".join(fmt(c) for c in cells) + " |"


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table from a header and rows."""
    lines = [md_row(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [md_row(r) for r in rows]
    return "\n".join(lines)


def section_header(title: str, command: str, facts: dict[str, Any]) -> str:
    """The dated heading of a BENCHMARKS.md section with the command and machine facts."""
    load = ", ".join(f"{x:.2f}" for x in facts["load_avg"])
    return "\n".join(
        [
            f"## {title} — started {facts['started']}",
            "",
            f"Command: `{command}`",
            "",
            f"Code: `{facts['code']}`. "
            f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['ram_gib']} GiB RAM, "
            f"Python {facts['python']}, {facts['platform']}; load average at start {load} "
            "(the machine is shared with other engineers' test runs).",
            "",
            "",
        ]
    )


def append_section(text: str, path: Path = BENCHMARKS_MD) -> None:
    """Append a section to BENCHMARKS.md (created with a title when absent)."""
    if not path.exists():
        path.write_text("# Benchmarks\n\n", encoding="utf-8")
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text.rstrip() + "\n")


def command_line() -> str:
    """The command that started this process, relative to the repository root."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):  # a script outside the repository keeps its path
        script = script.resolve().relative_to(ROOT)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def process_cpu() -> float:
    """CPU seconds of this process so far (user + system, every thread: DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_mb() -> dict[str, float]:
    """``VmRSS`` (resident now) and ``VmHWM`` (its peak) of this process, MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            name, value = line.split(":", 1)
            fields[name] = float(value.split()[0]) / 1024
    return fields


class StepPhases:
    """The pipeline step running now (a stack of labels): CPU per step, the RSS when each step
    was first entered, and the highest ``VmRSS`` sampled (every 10 ms) while it ran."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.peaks: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.thread_cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.entered: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        func = getattr(owner, attr)

        def wrapper(*args: Any, _f: Callable[..., Any] = func, **kwargs: Any) -> Any:
            self.stack.append(label)
            self.entered.setdefault(label, status_mb()["VmRSS"])
            started = process_cpu()
            own, clock = time.thread_time(), time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + process_cpu() - started
                self.thread_cpu[label] = self.thread_cpu.get(label, 0.0) + time.thread_time() - own
                self.wall[label] = self.wall.get(label, 0.0) + time.perf_counter() - clock
                self.stack.pop()

        setattr(owner, attr, wrapper)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            label = self.stack[-1] if self.stack else "-"
            rss = status_mb()["VmRSS"]
            self.peaks[label] = max(self.peaks.get(label, 0.0), rss)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def wrap_steps(self, steps: Sequence[tuple[str, str, str]]) -> None:
        """Wrap each ``(module, function, label)`` step, also where it was imported by name; a
        step missing from the checkout measured is skipped."""
        for module_name, name, label in steps:
            module = importlib.import_module(module_name)
            owner: Any = module
            *outer, attr = name.split(".")
            for part in outer:
                owner = getattr(owner, part, None)
            if owner is None or not hasattr(owner, attr):
                continue
            original = getattr(owner, attr)
            self.wrap(owner, attr, label)
            if owner is not module:
                continue
            for other in list(sys.modules.values()):
                if other is not module and getattr(other, attr, None) is original:
                    setattr(other, attr, getattr(owner, attr))


def run_stopped(
    records: int,
    target: Path,
    steps: Sequence[tuple[str, str | None]],
    *,
    code: Path = ROOT,
    scale_json: str | None = "{}",
) -> Path:
    """A bench project in `target`: ``bench_pipeline.py``'s worker runs the cached bench data
    (``$BENCH_OUT/data/bench/<records>``) phase by phase, each ``(phase, crash point)`` of
    `steps` (``full`` / ``incremental``; ``"<stage>:before"`` kills the run there through
    ``CUSTOMER_ARCHIVE_CRASH_AT``, None runs it to the end).

    A step with a crash point must end killed by it (SIGKILL), one without must succeed: a run
    that fails, or ends before it reaches its crash point, raises with the child's stderr (a
    state stopped somewhere else would measure the wrong stages).

    Args:
        code: the checkout whose ``bench_pipeline.py`` (and pipeline) runs.
        scale_json: the runs' ``scale`` settings (``--scale-json``); None for the script's
            defaults.
    """
    data = OUT_ROOT / "data" / "bench" / str(records)
    if not (data / "meta.json").exists():
        sys.exit(f"no bench data in {data}: run bench_pipeline.py --records {records} first")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CUSTOMER_ARCHIVE_CODE_VERSION": "bench"}
    cmd = [sys.executable, str(code / "benchmarks" / "bench_pipeline.py"),
           "--workdir", str(target), "--data", str(data)]  # fmt: skip
    if scale_json is not None:
        cmd += ["--scale-json", scale_json]
    for phase, crash_at in steps:
        environ = env if crash_at is None else {**env, "CUSTOMER_ARCHIVE_CRASH_AT": crash_at}
        done = subprocess.run(
            [*cmd, "--worker", phase], env=environ, capture_output=True, text=True, check=False
        )
        wanted = 0 if crash_at is None else -signal.SIGKILL
        if done.returncode != wanted:
            where = "to the end" if crash_at is None else f"until {crash_at}"
            raise RuntimeError(
                f"the {phase} run of {target} did not run {where} (exit {done.returncode}):\n"
                + done.stderr[-3000:]
            )
    return target


def prepare_stopped_state(records: int, states: Path, stage: str, full: bool = False) -> Path:
    """``states/pre<stage>-<records>``: a full run of the cached bench data (``BENCH_OUT``),
    then its nightly run stopped right before `stage` (``CUSTOMER_ARCHIVE_CRASH_AT``).

    `full`: ``states/pre<stage>-full-<records>``, the full run itself stopped before `stage`.
    """
    stop = f"{stage}:before"
    if full:
        return run_stopped(records, states / f"pre{stage}-full-{records}", [("full", stop)])
    steps = [("full", None), ("incremental", stop)]
    return run_stopped(records, states / f"pre{stage}-{records}", steps)


def compare_stage_runs(
    script: Path,
    state: Path,
    codes: list[Path],
    repeat: int,
    profile: Path | None,
    *,
    prefix: str,
    stage: str,
    tables: str,
) -> None:
    """One stage on copies of `state`, `repeat` times per checkout (alternating, each run a
    child process of `script`'s worker): each run's figures, whether every run's `tables`
    hashes are equal, and the medians per checkout."""
    runs: dict[Path, list[dict[str, Any]]] = {code: [] for code in codes}
    for k in range(repeat):
        for code in codes:
            # one profile per checkout: <profile>-<checkout folder name>.<suffix>
            named = None if profile is None or k else profile.with_name(
                f"{profile.stem}-{code.name}{profile.suffix}")  # fmt: skip
            run = run_on_state_copy(
                script, state, code, named, prefix=prefix, tmp_prefix=f".bench-{stage}-"
            )
            runs[code].append(run)
            print(f"{code}: CPU {run['cpu_s']} s (main thread {run.get('main_cpu_s')} s),"
                  f" wall {run['wall_s']} s, peak"
                  f" {run['peak_mb']} MB in {run['peak_phase']!r}; phases"
                  f" {json.dumps(run['phase_peaks_mb'])}; RSS at first start"
                  f" {json.dumps(run['phase_start_mb'])}; CPU {json.dumps(run['phase_cpu_s'])};"
                  f" calling thread CPU {json.dumps(run.get('phase_thread_cpu_s', {}))};"
                  f" wall {json.dumps(run.get('phase_wall_s', {}))}",
                  flush=True)  # fmt: skip
            for text, cpu in run.get("sql_cpu_s", {}).items():
                print(f"  sql {cpu:8.3f} s x{run['sql_calls'].get(text, 0)}  {text}")
    hashes = [run["hashes"] for done in runs.values() for run in done]
    print(f"{tables} identical across runs and checkouts: {all(h == hashes[0] for h in hashes)}")
    if not all(h == hashes[0] for h in hashes):
        print(json.dumps(hashes, indent=1))
    for code, done in runs.items():
        cpu = [r["cpu_s"] for r in done]
        main = [r.get("main_cpu_s", 0.0) for r in done]
        wall = [r["wall_s"] for r in done]
        peak = [r["peak_mb"] for r in done]
        print(
            f"{code}: {len(done)} runs, CPU s median {statistics.median(cpu):.2f}"
            f" ({min(cpu):.2f}-{max(cpu):.2f}), main-thread CPU s median"
            f" {statistics.median(main):.2f} ({min(main):.2f}-{max(main):.2f}), wall s median"
            f" {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}),"
            f" peak MB median {statistics.median(peak):.0f}"
            f" ({min(peak):.0f}-{max(peak):.0f}), stats {json.dumps(done[0]['stats'])}"
        )
    print(f"load average at the end: {os.getloadavg()}")


def stage_bench_main(
    doc: str,
    script: Path,
    stage: str,
    tables: str,
    prefix: str,
    worker: Callable[[Path, Path | None, bool], None],
    sql: bool = False,
) -> None:
    """The command line of a one-stage bench (``bench_match_stage``, ``bench_clean_stage``):
    ``--prepare RECORDS`` makes a state stopped before `stage`; a state and ``--code``
    checkouts compare the stage's runs; ``--worker`` is the child; ``--sql`` (where `sql`)
    times every DuckDB statement (``BENCH_STAGE_SQL=1`` for the children)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("state", type=Path, nargs="?")
    parser.add_argument(
        "--prepare",
        type=int,
        metavar="RECORDS",
        help=f"prepare STATES/pre{stage}-RECORDS from the cached bench data",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"with --prepare: stop the full run before its {stage} stage"
        f" (STATES/pre{stage}-full-RECORDS), not the nightly",
    )
    parser.add_argument(
        "--states",
        type=Path,
        default=ROOT / "data" / "states",
        help="where --prepare puts the state",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--code",
        type=Path,
        nargs="+",
        default=[ROOT],
        help="checkout(s) to import from; several alternate, repeat by repeat",
    )
    parser.add_argument("--profile", type=Path, help="cProfile stats of the first repeat")
    if sql:
        parser.add_argument(
            "--sql",
            action="store_true",
            help="time every DuckDB statement (a connection proxy; adds overhead)",
        )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.profile, os.environ.get("BENCH_STAGE_SQL") == "1")
        return
    if args.prepare:
        state = prepare_stopped_state(args.prepare, args.states.resolve(), stage, args.full)
        print(f"prepared {state}", flush=True)
        return
    if args.state is None:
        parser.error("give a prepared state (or --prepare RECORDS)")
    if sql and args.sql:
        os.environ["BENCH_STAGE_SQL"] = "1"  # the workers inherit it
    compare_stage_runs(
        script,
        args.state.resolve(),
        [c.resolve() for c in args.code],
        args.repeat,
        args.profile,
        prefix=prefix,
        stage=stage,
        tables=tables,
    )


_CODE_COLUMNS = frozenset({"prepared_version"})
"""Columns naming the code that wrote a row, not a result: `match.prepared`'s fingerprint of
the preparing modules' bytes (`dedupe.incremental.prepared_version`) differs between two
checkouts whose `dedupe/prepare.py` differs, even when every prepared value is the same."""


def table_hashes(con: Any, where: str) -> dict[str, str]:
    """``rows:content hash`` of each table `where` selects (a condition on ``duckdb_tables()``:
    ``schema_name``, ``table_name``), timestamp columns, ``*_at`` and `_CODE_COLUMNS` left
    out: comparable across runs and checkouts."""
    from warehouse.archive._hashing import table_content_hash

    out = {}
    tables = con.execute(
        f"SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE {where} ORDER BY 1"
    ).fetchall()
    for (name,) in tables:
        described = con.sql(f"SELECT * FROM {name} LIMIT 0")
        cols = [c for c, t in zip(described.columns, described.types, strict=True)
                if "TIMESTAMP" not in str(t) and not c.endswith("_at")
                and c not in _CODE_COLUMNS]  # fmt: skip
        listed = ", ".join(f'"{c}"' for c in cols)
        table = con.sql(f"SELECT {listed} FROM {name} ORDER BY ALL").to_arrow_table()
        out[name] = f"{table.num_rows}:{table_content_hash(table)}"
    return out


def measure_stage(
    open_warehouse: Callable[[], Any],
    run_stage: Callable[[Any], Any],
    steps: Sequence[tuple[str, str, str]],
    profile: Path | None,
    hashes_where: str,
) -> dict[str, Any]:
    """Run one stage on a warehouse (`run_stage(con)` → its stats) with its `steps` timed and
    sampled, under cProfile when `profile`; its CPU, wall, peak (``VmHWM`` reset at the start),
    the step at the peak, per-step figures, stats and the `hashes_where` tables' hashes."""
    phases = StepPhases()
    phases.wrap_steps(steps)
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
    with open_warehouse() as con:
        start = status_mb()
        Path("/proc/self/clear_refs").write_text("5")
        phases.start()
        cpu, wall, main = process_cpu(), time.perf_counter(), time.thread_time()
        if profiler is not None:
            profiler.enable()
        stats = run_stage(con)
        if profiler is not None:
            profiler.disable()
        cpu, wall = process_cpu() - cpu, time.perf_counter() - wall
        main = time.thread_time() - main
        phases.stop()
        end = status_mb()
        hashes = table_hashes(con, hashes_where)
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    top = max(phases.peaks.items(), key=lambda kv: kv[1]) if phases.peaks else ("-", 0.0)
    return {
        "cpu_s": round(cpu, 2),
        "main_cpu_s": round(main, 2),
        "wall_s": round(wall, 2),
        "rss_start_mb": round(start["VmRSS"], 1),
        "peak_mb": round(end["VmHWM"], 1),
        "rss_end_mb": round(end["VmRSS"], 1),
        "peak_phase": top[0],
        "phase_peaks_mb": {k: round(v, 1) for k, v in phases.peaks.items()},
        "phase_cpu_s": {k: round(v, 2) for k, v in phases.cpu.items()},
        "phase_thread_cpu_s": {k: round(v, 2) for k, v in phases.thread_cpu.items()},
        "phase_wall_s": {k: round(v, 2) for k, v in phases.wall.items()},
        "phase_start_mb": {k: round(v, 1) for k, v in phases.entered.items()},
        "stats": stats.as_dict(),
        "hashes": hashes,
    }

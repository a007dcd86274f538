"""Run a command under a memory and time watchdog; log the whole process tree's memory.

A large benchmark on a shared machine must not take the machine down. This starts the command
in its own session (process group), samples every ``--every`` seconds the resident memory of the
whole tree (the command, its children, Dagster's executor and forkserver processes, process
pools: every process in the group or descending from the command), appends one line per sample
to ``--log``, and kills the whole group (SIGTERM, then SIGKILL after 10 s) when the tree's RSS
exceeds ``--max-rss-gb`` or the wall clock passes ``--deadline`` (UTC ``HH:MM``), whichever
comes first.

RSS summed over processes counts pages the processes share (forked children, the forkserver's
imported modules) once per process, so it overstates the tree's real footprint; PSS (shared
pages split between their sharers, from ``/proc/<pid>/smaps_rollup``) is logged beside it. The
limit applies to the RSS sum: the conservative figure.

Usage::

    .venv/bin/python benchmarks/tree_watch.py --max-rss-gb 12 --deadline 09:35 \\
        --log data/bench/watch.log -- .venv/bin/python benchmarks/bench_pipeline.py ...

Exit status: the command's, or 137 when the watchdog killed it (the reason is the log's last
line and is printed on stderr). The final line of the log is a JSON summary (peaks, reason).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sample:
    """One reading of the tree: when, how many processes, RSS and PSS sums (bytes), the tree's
    CPU seconds so far, and the disk use of the watched paths (bytes, when read this time)."""

    at: float
    processes: int
    rss: int
    pss: int
    cpu_s: float = 0.0
    disk: dict[str, int] = field(default_factory=dict)
    by_process: dict[int, tuple[str, int]] = field(default_factory=dict)


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, rss bytes) of a process from /proc/<pid>/stat, or None when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return int(fields[1]), int(fields[2]), int(fields[21]) * PAGE


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (``state`` first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: split after the last ')'
    return text[text.rfind(")") + 2 :].split()


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(start time, user + system clock ticks) of a process, or None when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return int(fields[19]), int(fields[11]) + int(fields[12])


TICKS = os.sysconf("SC_CLK_TCK")


class TreeCPU:
    """CPU seconds of every process ever seen in a tree (its last reading per process).

    A process that ends between two readings loses its CPU since the last one, and one that
    lives less than a sampling interval is not seen at all, so this undercounts by about
    (processes started) × (interval); the run's own ``getrusage`` figures are exact.
    """

    def __init__(self) -> None:
        self._ticks: dict[tuple[int, int], int] = {}

    def update(self, pids: list[int]) -> float:
        """Read the given processes; return the tree's CPU seconds so far."""
        for pid in pids:
            got = _cpu_ticks(pid)
            if got is not None:
                self._ticks[(pid, got[0])] = got[1]
        return sum(self._ticks.values()) / TICKS


def du(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (a file or a folder; 0 when missing)."""
    try:
        if path.is_file():
            return path.stat().st_blocks * 512
    except OSError:
        return 0
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(folder) / name).lstat().st_blocks * 512
    return total


def _pss(pid: int) -> int:
    """Proportional set size of a process in bytes (0 when unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return "?"
    return " ".join(raw.decode(errors="replace").split())[:80]


def tree_pids(root: int) -> list[int]:
    """The root process, every process of its process group and every descendant of either."""
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                stats[int(entry)] = st
    members = {pid for pid, (_, pgid, _) in stats.items() if pgid == root}
    members.add(root)
    grew = True
    while grew:  # descendants that left the group (setsid) still count
        before = len(members)
        members |= {pid for pid, (ppid, _, _) in stats.items() if ppid in members}
        grew = len(members) > before
    return sorted(pid for pid in members if pid in stats)


def sample(root: int, cpu: TreeCPU | None = None) -> Sample:
    """Memory (and, given a ``TreeCPU``, CPU seconds) of the whole tree right now."""
    pids = tree_pids(root)
    rss = pss = 0
    by: dict[int, tuple[str, int]] = {}
    for pid in pids:
        st = _stat(pid)
        if st is None:
            continue
        rss += st[2]
        pss += _pss(pid)
        by[pid] = (_name(pid), st[2])
    cpu_s = cpu.update(list(by)) if cpu is not None else 0.0
    return Sample(time.time(), len(by), rss, pss, cpu_s, {}, by)


def kill_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the group and every descendant, then SIGKILL what is left after ``grace``."""
    root = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = tree_pids(root)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(root, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGTERM:
            deadline = time.time() + grace
            while time.time() < deadline and (proc.poll() is None or len(tree_pids(root)) > 0):
                time.sleep(0.5)


def parse_deadline(text: str, now: dt.datetime) -> dt.datetime:
    """``HH:MM`` (UTC) today, or tomorrow when that has already passed."""
    hours, minutes = (int(x) for x in text.split(":"))
    at = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    return at if at > now else at + dt.timedelta(days=1)


def watch(
    command: list[str],
    log: Path,
    max_rss: int | None,
    deadline: dt.datetime | None,
    every: float,
    stdout: Path | None = None,
    disk: dict[str, Path] | None = None,
    disk_every: float = 10.0,
    cwd: Path | None = None,
) -> tuple[int, dict[str, Any], list[Sample]]:
    """Run ``command`` under the watchdog.

    Args:
        command: the program and its arguments (started in a new session).
        log: a tab-separated line per sample is appended here, then a JSON summary line.
        max_rss: kill the tree when the sum of its processes' RSS exceeds this (bytes).
        deadline: kill the tree at this UTC time.
        every: seconds between samples.
        stdout: the command's stdout and stderr go here (default: inherited).
        disk: named paths whose disk use is read every ``disk_every`` seconds.
        disk_every: seconds between disk readings (a walk of the folders).
        cwd: the command's working directory.

    Returns:
        (exit status — 137 when killed —, summary dict, every sample).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(stdout, "ab") if stdout else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, start_new_session=True, stdout=out, stderr=out, cwd=cwd)
    started = time.time()
    cpu = TreeCPU()
    samples: list[Sample] = []
    peak_top: list[tuple[str, int]] = []
    peak_rss = 0
    disk_peak: dict[str, int] = {}
    disk_at = 0.0
    reason = None
    with log.open("a", encoding="utf-8") as fh:
        limit = f"{max_rss / 1e9:.1f} GB" if max_rss else "none"
        fh.write(
            f"# {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} pid {proc.pid} "
            f"limit {limit} deadline {deadline} cmd {command}\n"
        )
        fh.write("utc\telapsed_s\tprocesses\trss_mb\tpss_mb\tcpu_s\tdisk_mb\tlargest\n")
        while True:
            s = sample(proc.pid, cpu)
            if disk and (s.at - disk_at >= disk_every or proc.poll() is not None):
                disk_at = s.at
                s.disk = {name: du(path) for name, path in disk.items()}
                for name, used in s.disk.items():
                    disk_peak[name] = max(disk_peak.get(name, 0), used)
            samples.append(s)
            top = sorted(s.by_process.values(), key=lambda x: -x[1])[:3]
            if s.rss > peak_rss:
                peak_rss, peak_top = s.rss, top
            disk_text = ",".join(f"{k}={v / 1e6:.0f}" for k, v in s.disk.items())
            fh.write(
                f"{dt.datetime.now(dt.UTC).strftime('%H:%M:%S')}\t{s.at - started:.0f}\t"
                f"{s.processes}\t{s.rss / 1e6:.0f}\t{s.pss / 1e6:.0f}\t{s.cpu_s:.1f}\t"
                f"{disk_text}\t" + "; ".join(f"{n[:60]} {r / 1e6:.0f}" for n, r in top) + "\n"
            )
            fh.flush()
            if proc.poll() is not None:
                break
            if max_rss and s.rss > max_rss:
                reason = f"tree RSS {s.rss / 1e9:.2f} GB > limit {max_rss / 1e9:.1f} GB"
            elif deadline is not None and dt.datetime.now(dt.UTC) >= deadline:
                reason = f"deadline {deadline.strftime('%H:%M')} UTC reached"
            if reason:
                fh.write(f"# killing: {reason}\n")
                fh.flush()
                kill_tree(proc)
                proc.wait()
                break
            # sleep in small steps so a finished command is noticed quickly
            until = time.time() + every
            while time.time() < until and proc.poll() is None:
                time.sleep(min(0.2, every))
        status = 137 if reason else proc.returncode
        summary: dict[str, Any] = {
            "exit": status,
            "killed": reason,
            "wall_s": round(time.time() - started, 1),
            "tree_cpu_s": round(samples[-1].cpu_s, 1) if samples else 0.0,
            "peak_tree_rss_mb": round(peak_rss / 1e6),
            "peak_tree_pss_mb": round(max((x.pss for x in samples), default=0) / 1e6),
            "peak_processes": max((x.processes for x in samples), default=0),
            "largest_at_peak": [[n, round(r / 1e6)] for n, r in peak_top],
            "peak_disk_mb": {k: round(v / 1e6) for k, v in disk_peak.items()},
        }
        fh.write("# summary " + json.dumps(summary) + "\n")
    if out:
        out.close()
    return status, summary, samples


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-rss-gb", type=float, required=True)
    parser.add_argument("--deadline", help="UTC HH:MM: kill the tree then")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--stdout", type=Path, help="the command's output (default: inherited)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    deadline = parse_deadline(args.deadline, dt.datetime.now(dt.UTC)) if args.deadline else None
    status, summary, _ = watch(
        command, args.log, int(args.max_rss_gb * 1e9), deadline, args.every, args.stdout
    )
    if summary["killed"]:
        print(f"watchdog: killed: {summary['killed']}", file=sys.stderr)
    print("watchdog: " + json.dumps(summary), file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()

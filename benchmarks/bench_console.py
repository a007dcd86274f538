"""Steward console page answer times on the cn_20k corpus (51 k source records).

Runs ``customer-archive run`` with ``benchmarks/configs/cn_corpus`` on ``../shared/corpus/cn_20k``
(once; ``--reuse`` keeps an existing warehouse), serves the console with uvicorn on a loopback
port and times each page kind over HTTP (queue, queue with a filter, customer page, search by
name / traditional name / pinyin / phone / e-mail, decisions), ``--repeat`` requests per kind on
varied customers and queries. Prints medians and p95 and appends a table to BENCHMARKS.md.

    .venv/bin/python benchmarks/bench_console.py [--work data/bench_console] [--reuse]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import opencc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BENCHMARKS_MD, machine_facts, md_table
from benchmarks.bench_accuracy import CLI, CORPUS, prepare_corpus
from dedupe.prepare import pinyin

GOAL_MS = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _published(work: Path, reuse: bool) -> Path:
    config = work / "archive.yml"
    if reuse and (work / "warehouse.duckdb").exists():
        return config
    work.mkdir(parents=True, exist_ok=True)
    config, _, _ = prepare_corpus(work, CORPUS / "cn_20k")
    started = time.perf_counter()
    subprocess.run([str(CLI), "run", "--config", str(config)], cwd=work, check=True,
                   capture_output=True)  # fmt: skip
    print(f"pipeline run on cn_20k: {time.perf_counter() - started:.0f} s")
    return config


def main(argv: list[str] | None = None) -> int:
    """Benchmark entry point (see the module docstring)."""
    import duckdb
    import uvicorn

    from console import create_app
    from pipelines.cli.console import console_backend
    from pipelines.settings import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("data/bench_console"))
    parser.add_argument("--reuse", action="store_true", help="keep an existing warehouse")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    config = _published(args.work.resolve(), args.reuse)
    cfg = load_config(config)

    with duckdb.connect(str(cfg.resolve(cfg.warehouse)), read_only=True) as con:
        sample = con.execute(
            "SELECT c.customer_id, c.customer_name, c.phone, c.email FROM golden.customers c "
            "JOIN (SELECT customer_id FROM golden.crosswalk GROUP BY 1 HAVING count(*) > 1) m "
            "USING (customer_id) WHERE c.email IS NOT NULL AND c.phone IS NOT NULL "
            "AND c.customer_name IS NOT NULL "
            "ORDER BY hash(c.customer_id) LIMIT ?",
            [args.repeat],
        ).fetchall()
        sources = [r[0] for r in con.execute(
            "SELECT DISTINCT split_part(left_key, ':', 1) FROM match.review_queue"
        ).fetchall()]  # fmt: skip
    s2t = opencc.OpenCC("s2t")
    rng = random.Random(7)

    backend = console_backend(cfg, "bench")
    app = create_app(backend)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    timings: dict[str, list[float]] = {}
    with httpx2.Client(base_url=base, timeout=60) as client:
        started = time.perf_counter()
        client.get("/queue").raise_for_status()  # loads the steward copy and the search keys
        load_s = time.perf_counter() - started
        kinds = {
            "queue (next pair)": lambda i: f"/queue?pos={i}",
            "queue, source filter": lambda i: f"/queue?source={sources[i % len(sources)]}",
            "customer page": lambda i: f"/customer/{sample[i][0]}",
            "search: name": lambda i: f"/search?q={sample[i][1]}",
            "search: traditional name": lambda i: f"/search?q={s2t.convert(sample[i][1])}",
            "search: pinyin prefix": lambda i: f"/search?q={pinyin(sample[i][1])[:8]}",
            "search: phone digits": lambda i: f"/search?q={sample[i][2][-8:]}",
            "search: e-mail": lambda i: f"/search?q={sample[i][3]}",
            "decisions": lambda i: "/decisions",
        }
        order = [(kind, i) for kind in kinds for i in range(len(sample))]
        rng.shuffle(order)
        for kind, i in order:
            t0 = time.perf_counter()
            response = client.get(kinds[kind](i))
            elapsed = (time.perf_counter() - t0) * 1000
            response.raise_for_status()
            timings.setdefault(kind, []).append(elapsed)
    server.should_exit = True
    thread.join(timeout=10)

    facts = machine_facts()
    rows = []
    for kind, values in timings.items():
        values.sort()
        med = statistics.median(values)
        p95 = values[max(0, round(0.95 * len(values)) - 1)]
        ok = "yes" if med < GOAL_MS else "NO"
        rows.append([kind, len(values), f"{med:.1f}", f"{p95:.1f}", ok])
        print(f"{kind:<28} n={len(values):<4} median {med:7.1f} ms   p95 {p95:7.1f} ms")
    print(f"first request (steward copy + search keys): {load_s:.1f} s; load {facts['load_avg']}")
    if not args.no_append:
        table = md_table(["page", "requests", "median ms", "p95 ms", f"< {GOAL_MS:.0f} ms"], rows)
        text = (
            f"\n## Steward console page times on cn_20k (51 k records)\n\n"
            f"`{' '.join(['python', 'benchmarks/bench_console.py', *(argv or sys.argv[1:])])}`"
            f" — code {facts['code']}, {facts['started']}, {facts['cores']} cores, "
            f"{facts['cpu']}, load average {facts['load_avg']}. Over HTTP on loopback (uvicorn, "
            f"one client, requests of all kinds shuffled); first request, which copies the "
            f"steward's tables and builds the search keys: {load_s:.1f} s.\n\n{table}\n"
        )
        with BENCHMARKS_MD.open("a", encoding="utf-8") as out:
            out.write(text)
    return 0 if all(r[-1] == "yes" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

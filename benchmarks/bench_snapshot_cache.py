"""Peak memory and CPU of a nightly delta's work over its base's digest cache.

A nightly delta snapshot (``warehouse.archive._nightly``) finds the base rows of the changed
customers in the base's cached row records (``archive/.delta-cache``, 48 bytes a row), checks
the other rows' guard sum and merges the added digests into the sorted cache to get each
table's content hash. This script runs that part alone over a real cache (no warehouse, no
DuckDB): ``--customers`` random customers of the base are the scope, ``--changed`` of their
rows get a new digest (the rest are unchanged), and it prints the process's peak RSS before and
after, the CPU seconds and an md5 of every table's content hash (equal across code versions
means equal results).

    .venv/bin/python benchmarks/bench_snapshot_cache.py RUN_DIR/state/archive
    .venv/bin/python benchmarks/bench_snapshot_cache.py RUN_DIR/state/archive --code BASE_CHECKOUT

``RUN_DIR``: a run folder kept by ``bench_pipeline.py`` (``BENCH_KEEP_WORKDIR=1``) after a
full run. ``--code`` imports the archive code from another checkout (run in a fresh process
per code version: the figures are the process's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    """The process's peak resident set (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=Path, help="an archive folder holding .delta-cache")
    parser.add_argument("--code", type=Path, default=_ROOT, help="checkout to import from")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.3, help="share of scope rows changed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    import numpy as np
    import pyarrow as pa

    from warehouse.archive import _nightly
    from warehouse.archive._digest_cache import guard_total, read_cache

    index = json.loads((args.archive / ".delta-cache" / ".index.json").read_text("utf-8"))
    before = _peak_mb()
    cached = read_cache(args.archive, index["snapshot_id"], index["content_hash"])
    rng = np.random.default_rng(args.seed)
    keys = np.unique(np.asarray(cached["golden.customers"].rows["k"]))
    scope = np.sort(rng.choice(keys, min(args.customers, len(keys)), replace=False))
    scope = scope.astype(np.uint32)
    chunked = hasattr(_nightly, "_scope_rows")
    started = time.process_time()
    hashes: dict[str, str] = {}
    for name, rows in sorted(cached.items()):
        if chunked:
            inside, base = _nightly._scope_rows(rows.rows, scope)
        else:  # the code before the cache was read in chunks
            inside = np.flatnonzero(_nightly._in_keys(np.asarray(rows.rows["k"]), scope))
            base = rows.rows[inside]
        guard_total(base["g"])
        digests = np.array(base["d"])
        change = rng.random(len(digests)) < args.changed
        new = rng.integers(0, 256, (int(change.sum()), 32), dtype=np.uint8)
        digests[change] = new.view("S32").ravel()
        current = pa.table({"row": np.arange(len(digests))})
        state = (digests, np.zeros(len(digests), np.uint64), np.asarray(base["k"]))
        extra = (base,) if chunked else ()
        hashes[name] = _nightly._compare(rows, inside, current, state, *extra)[1]
    cpu = time.process_time() - started
    digest = hashlib.md5(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    rows_total = sum(len(r.rows) for r in cached.values())
    print(json.dumps({
        "code": str(args.code), "cached_rows": rows_total, "scope_customers": len(scope),
        "peak_mb_before": round(before), "peak_mb_after": round(_peak_mb()),
        "cpu_seconds": round(cpu, 2), "content_hashes_md5": digest,
    }))  # fmt: skip


if __name__ == "__main__":
    main()

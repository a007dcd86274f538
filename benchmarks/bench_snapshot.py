"""Nightly snapshot cost: full vs delta (whole tables) vs delta read from the changed customers.

Takes a kept benchmark project (``BENCH_KEEP_WORKDIR=1 benchmarks/bench_pipeline.py …`` keeps
``data/bench/runs/<n>-…``; its archive's first snapshot is the full run's golden state, its
warehouse holds the nightly golden state and the nightly's staged delta, i.e. the customers its
swap replaced). For each ``--scale`` it builds, in an in-memory DuckDB, the base and the nightly
golden tables with the untouched customers subsampled (``0.5``) or copied under new ids
(``2``): the change stays the nightly's, the warehouse grows. Then, in fresh archive folders
with the project's encryption, it times (CPU and wall, medians of ``--repeat``, reading the
tables from DuckDB included):

* ``full``: a full snapshot of the nightly state;
* ``delta, whole tables``: a delta on the base given every table (what a run without a scope,
  e.g. after a full golden build, does);
* ``delta, changed customers``: a delta given the customers the swap replaced (a nightly run).

``--code DIR`` imports the archive code from another checkout (e.g. ``git archive main``) to
compare releases; variants it lacks are skipped.

    .venv/bin/python benchmarks/bench_snapshot.py data/bench/runs/100000-0-1234 --repeat 3
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _scaled(con, names, tables, touched_sql: str, scale: float, prefix: str) -> None:
    """``<prefix>.<table>``: ``tables`` with untouched customers subsampled or copied."""
    for name, table in tables.items():
        target = f"{prefix}.{name.split('.', 1)[1]}"
        con.register("_t", table)
        if scale < 1:
            keep = round(1 / scale)
            con.execute(
                f"CREATE TABLE {target} AS SELECT * FROM _t WHERE ({touched_sql})"
                f" OR hash(customer_id) % {keep} = 0"
            )
        else:
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM _t")
            for copy in range(1, int(scale)):  # copies of the untouched customers only
                con.execute(
                    f"INSERT INTO {target} SELECT * REPLACE (customer_id || '~{copy}' AS"
                    f" customer_id) FROM _t WHERE NOT ({touched_sql})"
                )
        con.unregister("_t")
    del names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, nargs="+", default=[1.0])
    parser.add_argument("--code", type=Path, default=_ROOT, help="checkout to import from")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("warehouse.archive").setLevel(logging.INFO)  # whole-table fallbacks show
    sys.path.insert(0, str(args.code.resolve()))
    import duckdb

    from pipelines.access import open_warehouse, snapshot_reader, snapshot_writer
    from pipelines.settings import load_config
    from warehouse.archive import list_snapshots, load_snapshot, publish_snapshot
    from warehouse.archive.tables import read_tables_arrow
    from warehouse.naming import EXPORTED

    scoped = importlib.util.find_spec("warehouse.archive._scoped") is not None
    print(f"archive code from {sys.modules['warehouse.archive'].__file__}; scoped: {scoped}")
    names = [f"golden.{n}" for n in EXPORTED]
    cfg = load_config(args.project / "archive.yml")
    reader, writer = snapshot_reader(cfg), snapshot_writer(cfg)
    night1 = load_snapshot(list_snapshots(cfg.resolve(cfg.archive_dir))[0].path, reader=reader)
    with open_warehouse(cfg, read_only=True) as wh:
        night2 = read_tables_arrow(wh, names)
        touched = []
        for table, column in (
            ("staging._golden_touched", "customer_id"),
            ("staging._golden_changed", "customer_id"),
            ("staging._history_scope", "customer_id"),
            ("staging.id_events", "customer_id"),
            ("staging.id_events", "other_customer_id"),
        ):
            touched += [r[0] for r in wh.execute(f"SELECT {column} FROM {table}").fetchall()]
    touched_ids = sorted({t for t in touched if t is not None})
    print(f"nightly: {len(touched_ids)} customers replaced by the swap")
    t0 = datetime(2026, 11, 23, 2, tzinfo=UTC)
    rows: list[str] = []
    for scale in args.scale:
        con = duckdb.connect()
        con.execute("CREATE SCHEMA golden; CREATE SCHEMA base")
        con.execute(
            "CREATE TABLE touched AS SELECT unnest(?::VARCHAR[]) AS customer_id", [touched_ids]
        )
        inside = "customer_id IN (SELECT customer_id FROM touched)"
        _scaled(con, names, night1, inside, scale, "base")
        _scaled(con, names, night2, inside, scale, "golden")
        base_tables = read_tables_arrow(con, [f"base.{n.split('.')[1]}" for n in names])
        base_tables = {f"golden.{k.split('.')[1]}": v for k, v in base_tables.items()}
        total = sum(t.num_rows for t in base_tables.values())
        variants = ["full", "delta, whole tables"] + (
            ["delta, changed customers"] if scoped else []
        )
        figures: dict[str, list[tuple[float, float, int]]] = {v: [] for v in variants}
        for _ in range(args.repeat):
            for variant in variants:
                with tempfile.TemporaryDirectory(dir=args.project) as tmp:
                    archive = Path(tmp)
                    publish_snapshot(base_tables, archive, "base", t0, writer=writer)
                    base = None if variant == "full" else list_snapshots(archive)[0]
                    c, w = _cpu(), time.perf_counter()
                    if variant == "delta, changed customers":
                        from warehouse.archive import customers_changed

                        tables = customers_changed(
                            con, tuple(names), "SELECT customer_id FROM touched"
                        )
                    else:
                        tables = read_tables_arrow(con, names)
                    info = publish_snapshot(
                        tables,
                        archive,
                        "night",
                        t0 + timedelta(days=1),
                        writer=writer,
                        base=base,
                        reader=reader,
                        skip_if_unchanged=False,
                    )
                    cpu, wall = _cpu() - c, time.perf_counter() - w
                    assert info is not None and info.storage == (
                        "full" if base is None else "delta"
                    )
                    figures[variant].append((cpu, wall, _size(info.path)))
        for variant, values in figures.items():
            cpu = statistics.median(v[0] for v in values)
            wall = statistics.median(v[1] for v in values)
            rows.append(
                f"| {scale:g} | {total:,} | {variant} | {cpu:.2f} | {wall:.2f} |"
                f" {values[-1][2]:,} |"
            )
        con.close()
    print("| scale | golden rows | snapshot | CPU s | wall s | bytes on disk |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

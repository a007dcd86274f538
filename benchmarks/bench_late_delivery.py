"""A late full delivery and the nightly match's changed-record search, at the bench data's size.

On ``data/bench/<n>`` (``bench_pipeline.py``'s cached exports: ``base/`` and the 1 % ``delta/``)
the ingest, clean and match stages run one by one (no golden, no publish):

* night 0: the base delivery (full clean, full link);
* night 1: the delta (a full sales re-export with 1 % changed, service/marketing deltas);
* night 2: a **late** copy of the base sales export (the same values in another row order, so
  not byte-identical) in an older date folder, as a department re-sending an old export.

Per night: records cleaned and relinked, CPU seconds of the clean and match stages. Before each
nightly match the changed-record search of ``rematch_plan`` is timed both ways on the same
state (median of ``--repeat``): narrowed by the clean change log, and comparing every row
(``clean.records EXCEPT match.linked_records``); both must find the same records. Run with
``PYTHONPATH`` set to an export of older code to measure it (the search is then only timed
the whole-table way).

    .venv/bin/python benchmarks/bench_late_delivery.py --records 100000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import OUT_ROOT, machine_facts, median, write_project_config

SALES = "crm_customers.csv"


def _config(work: Path) -> Path:
    return write_project_config(work, work / "landing")


def _search(con, repeat: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """``rematch_plan``'s changed-record search, with the log and comparing every row."""
    import warehouse.match_state as match_state
    from warehouse.db import table_columns

    cols = table_columns(con, "clean.records")
    if not hasattr(match_state, "_changed_records"):  # older code: the EXCEPT only
        listed = ", ".join(f'"{c}"' for c in cols)
        sql = (
            f"SELECT count(*) FROM (SELECT {listed} FROM clean.records"
            f" EXCEPT SELECT {listed} FROM match.linked_records)"
        )
        cpu = []
        for _ in range(repeat):
            started = time.process_time()
            (found,) = con.execute(sql).fetchall()[0]
            cpu.append(time.process_time() - started)
        return {"whole_cpu": median(cpu), "found": int(found)}
    out: dict[str, object] = {}
    # fingerprints (branch linkhash) or, before, the full copy's columns
    how = match_state._linked_format(con) if hasattr(match_state, "_linked_format") else cols
    real = match_state.clean_changes_since
    for name, since in (("logged", real), ("whole", lambda con, run: None)):
        match_state.clean_changes_since = since
        cpu, keys = [], None
        try:
            for _ in range(repeat):
                started = time.process_time()
                frame = match_state._changed_records(con, how)
                cpu.append(time.process_time() - started)
                assert frame is not None
                found = set(frame["record_key"])
                assert keys is None or keys == found
                keys = found
        finally:
            match_state.clean_changes_since = real
        out[f"{name}_cpu"] = median(cpu)
        out[f"{name}_keys"] = keys
    assert out["logged_keys"] == out["whole_keys"], "the log missed a changed record"
    out["found"] = len(out.pop("logged_keys"))  # type: ignore[arg-type]
    out.pop("whole_keys")
    return out


def _night(cfg_path: Path, night: int, run_date: str, repeat: int) -> dict[str, object]:
    from pipelines.access import open_warehouse
    from pipelines.settings import load_config
    from pipelines.stages import load_sources
    from pipelines.stages.clean import clean_stage
    from pipelines.stages.context import RunContext
    from pipelines.stages.ingest import ingest_stage
    from pipelines.stages.match import match_stage

    cfg = load_config(cfg_path)
    ctx = RunContext(config=cfg, run_id=f"night{night}", run_date=date.fromisoformat(run_date))
    row: dict[str, object] = {"night": night}
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            ingest_stage(con, ctx, source.name)
        started = time.process_time()
        clean = clean_stage(con, ctx)
        row.update(clean_cpu=time.process_time() - started, clean_mode=clean.mode,
                   cleaned=clean.cleaned)  # fmt: skip
        if night:
            row.update(_search(con, repeat))
        started = time.process_time()
        match = match_stage(con, ctx)
        row.update(match_cpu=time.process_time() - started, match_mode=match.mode,
                   relinked=match.records_relinked)  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_late_delivery"))
    args = parser.parse_args()
    data = OUT_ROOT / "data" / "bench" / str(args.records)
    if not (data / "base").is_dir():
        raise SystemExit(f"{data} is missing: run benchmarks/bench_pipeline.py first")
    facts = machine_facts()
    print(f"code {facts['code']}; load at start {facts['load_avg']}")
    shutil.rmtree(args.workdir, ignore_errors=True)
    landing = args.workdir / "landing"
    shutil.copytree(data / "base", landing)
    cfg = _config(args.workdir)
    rows = [_night(cfg, 0, "2026-11-23", args.repeat)]
    shutil.copytree(data / "delta", landing, dirs_exist_ok=True)
    rows.append(_night(cfg, 1, "2026-11-24", args.repeat))
    (base,) = (data / "base" / "sales").glob(f"*/{SALES}")
    late = landing / "sales" / "2026-11-20" / SALES
    late.parent.mkdir(parents=True)
    frame = pd.read_csv(base, encoding="gb18030", dtype=str, keep_default_na=False)
    frame.iloc[::-1].to_csv(late, index=False, encoding="gb18030")  # same values, new bytes
    rows.append(_night(cfg, 2, "2026-11-25", args.repeat))
    print(f"load at end {machine_facts()['load_avg']}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

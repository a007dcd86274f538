"""A nightly match stage after steward decisions: a copy of a stopped state with N decisions.

Issue #15: a run after new steward decisions used to relink every record. This makes the state
to measure it on: a copy of a state stopped before its nightly match stage
(``bench_match_stage.py --prepare``) with `N` decisions recorded as ``review decide`` records
them (`pipelines.cli.stewardship.record_decision`): half ``no-match`` on pairs the last link
merged (first by key), half ``match`` on the review queue's most likely pairs. Then
``bench_match_stage.py`` times the stage on it, e.g. against a ``git archive`` of ``main``:

    .venv/bin/python benchmarks/bench_steward_decisions.py /tmp/states/prematch-200000 \\
        /tmp/states/decided-200000 --decisions 20
    .venv/bin/python benchmarks/bench_match_stage.py /tmp/states/decided-200000 --repeat 3 \\
        --code /tmp/main .
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def decide(state: Path, decisions: int) -> list[tuple[str, str, str]]:
    """Record `decisions` steward decisions in the state's warehouse; the pairs decided."""
    from pipelines.access import open_warehouse
    from pipelines.cli.stewardship import record_decision
    from pipelines.settings import load_config

    cfg = load_config(state / "archive.yml")
    splits = decisions // 2
    with open_warehouse(cfg) as con:
        merged = con.execute(
            "SELECT left_key, right_key FROM match.pairs WHERE decision = 'match'"
            " ORDER BY left_key, right_key LIMIT ?",
            [splits],
        ).fetchall()
        joined = con.execute(
            "SELECT left_key, right_key FROM match.review_queue"
            " ORDER BY probability DESC, left_key, right_key LIMIT ?",
            [decisions - splits],
        ).fetchall()
        pairs = [(a, b, "no-match") for a, b in merged] + [(a, b, "match") for a, b in joined]
        for left, right, decision in pairs:
            record_decision(con, left, right, decision, "bench")
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("state", type=Path, help="a state stopped before its match stage")
    parser.add_argument("out", type=Path, help="the copy to make (replaced)")
    parser.add_argument("--decisions", type=int, default=20)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    shutil.copytree(args.state, args.out, symlinks=True)
    cfg = args.out / "archive.yml"  # its paths point at the copy (as _common.copy_state does)
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace(str(args.state.resolve()), str(args.out.resolve())), "utf-8")
    for left, right, decision in decide(args.out.resolve(), args.decisions):
        print(f"{decision:9} {left} {right}")
    print(f"decided {args.out}")


if __name__ == "__main__":
    main()

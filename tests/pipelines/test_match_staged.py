"""The full match stage writes ``match.prepared`` and ``match.linked_records`` beside the link
(`StagedWrites`, renamed into place by the write): the same tables, rows, order and column
types as when the write stores them itself."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from dedupe.link import CompactLink
from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.clean import clean_stage
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from pipelines.stages.match import StagedWrites, link, match_inputs, match_stage, write_match
from tests.pipelines.conftest import write_project
from warehouse import read_table
from warehouse.match_state import PREPARED_TABLE, stage_prepared, staging_table

_STAGED = "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '_staged_')"
TABLES = ("match.prepared", "match.linked_records", "match.linked_layout", "match.pairs",
          "match.clusters", "match.review_queue", "match.blocking_stats")  # fmt: skip


def _cleaned(root: Path, demo_dir: Path) -> tuple[Path, RunContext]:
    """A project of the demo exports, ingested and cleaned, not matched."""
    root.mkdir()
    cfg = load_config(write_project(root, demo_dir / "landing"))
    ctx = RunContext(config=cfg, run_id="run-1", run_date=date(2026, 12, 7))
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            ingest_stage(con, ctx, source.name)
        clean_stage(con, ctx)
    return root, ctx


def _match_tables(ctx: RunContext) -> dict[str, tuple[list[tuple[str, str]], pd.DataFrame]]:
    """Each match table's column types and rows in stored order; no staging table left."""
    with open_warehouse(ctx.config, read_only=True) as con:
        assert not con.execute(_STAGED).fetchall()
        out = {}
        for name in TABLES:
            types = [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {name}").fetchall()]
            frame = read_table(con, name)
            assert frame is not None, name
            out[name] = (types, frame)
        return out


def test_staged_full_match_writes_what_the_unstaged_write_writes(
    tmp_path: Path, demo_dir: Path
) -> None:
    root, staged_ctx = _cleaned(tmp_path / "staged", demo_dir)
    # the same cleaned warehouse (clean.records in the same stored order) matched both ways
    shutil.copytree(root, tmp_path / "plain")
    plain_ctx = RunContext(
        config=load_config(tmp_path / "plain" / "archive.yml"), run_id="run-1",
        run_date=staged_ctx.run_date,
    )
    with open_warehouse(staged_ctx.config) as con:
        staged_stats = match_stage(con, staged_ctx)
    assert staged_stats.mode == "full" and staged_stats.candidate_pairs > 0
    with open_warehouse(plain_ctx.config) as con:  # the write stores every table itself
        inputs = match_inputs(con, plain_ctx)
        assert inputs.plan is None
        result = link(inputs, plain_ctx)
        assert isinstance(result, CompactLink) and result.prepared is not None
        result.labels = None
        plain_stats = write_match(con, plain_ctx, inputs, result)
    assert staged_stats == plain_stats
    staged, plain = _match_tables(staged_ctx), _match_tables(plain_ctx)
    for name in TABLES:
        assert staged[name][0] == plain[name][0], name
        pd.testing.assert_frame_equal(staged[name][1], plain[name][1], check_dtype=True)


def test_staged_tables_are_dropped_when_the_link_fails(tmp_path: Path, demo_dir: Path) -> None:
    _, ctx = _cleaned(tmp_path / "p", demo_dir)
    with open_warehouse(ctx.config) as con:
        inputs = match_inputs(con, ctx)
        with pytest.raises(RuntimeError, match="link failed"), StagedWrites(con) as staging:
            staging.prepared(inputs.records.head(20).reset_index(drop=True))
            staging.tables()  # written: both staging tables exist now
            assert con.execute(
                f"SELECT count(*) FROM {staging_table(PREPARED_TABLE)}"
            ).fetchall() == [(20,)]
            raise RuntimeError("link failed")
        assert not con.execute(_STAGED).fetchall()
        # the previous match.* (none: the first run) is untouched
        assert read_table(con, PREPARED_TABLE) is None


def test_a_staged_table_and_its_records_are_not_both_taken(tmp_path: Path, demo_dir: Path) -> None:
    from warehouse.match_state import write_match_tables

    _, ctx = _cleaned(tmp_path / "p", demo_dir)
    with open_warehouse(ctx.config) as con:
        frame = pd.DataFrame({"record_key": ["a"]})
        name = stage_prepared(con, frame, "v1")
        with pytest.raises(ValueError, match="given twice"):
            write_match_tables(con, {}, {"run_id": "r"}, frame, "v1",
                               staged={PREPARED_TABLE: name})  # fmt: skip

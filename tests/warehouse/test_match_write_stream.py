"""`write_match_tables` from a compact link (pairs and prepared records streamed) writes the
same tables as from frames."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from dedupe.link import link_compact
from tests.dedupe.synth import make_records
from warehouse import read_table, replace_tables
from warehouse.match_state import write_match_tables

TABLES = ("match.pairs", "match.clusters", "match.prepared", "match.linked_records")


def _tables(streamed: bool, parts: int = 1, rows: int = 150) -> dict[str, pd.DataFrame]:
    records, _ = make_records(300, seed=5)
    con = duckdb.connect(config={"threads": 2})
    replace_tables(con, {"clean.records": records})
    compact = link_compact(records)
    row = {"run_id": "r", "created_at": pd.Timestamp("2026-01-01"), "params": "{}"}
    if streamed:
        write_match_tables(
            con, {"match.clusters": compact.clusters}, row, compact.prepared, "v1",
            pair_batches=(
                compact.pair_reader(rows=rows) if parts == 1
                else compact.pair_readers(parts, rows=rows)
            ),
        )  # fmt: skip
        # the streams' views are gone once written
        assert not con.sql(
            "SELECT * FROM duckdb_views() WHERE view_name LIKE '_stream%'"
        ).fetchall()
    else:
        result = compact.to_result()
        write_match_tables(
            con, {"match.pairs": result.pairs, "match.clusters": result.clusters}, row,
            result.prepared, "v1",
        )  # fmt: skip
    out = {}
    for name in TABLES:
        frame = read_table(con, name)
        assert frame is not None
        out[name] = frame
    return out


def test_streamed_pairs_and_prepared_records_equal_the_frames() -> None:
    streamed, frames = _tables(True), _tables(False)
    assert len(streamed["match.pairs"]) > 300
    for name in TABLES:
        pd.testing.assert_frame_equal(streamed[name], frames[name], check_dtype=True)


@pytest.mark.parametrize("parts", [2, 3])
def test_pairs_in_several_streams_are_written_in_pair_order(parts: int) -> None:
    """The UNION ALL of consecutive streams (one per DuckDB thread) stores the same rows in
    the same order as one stream: `read_table` reads them back in insertion order."""
    several, one = _tables(True, parts, rows=40), _tables(True, rows=40)
    assert len(one["match.pairs"]) > 3 * 2 * 40  # more than one batch in every part
    for name in TABLES:
        pd.testing.assert_frame_equal(several[name], one[name], check_dtype=True)


def test_pair_readers_split_the_pairs_in_whole_batches() -> None:
    records, _ = make_records(300, seed=5)
    compact = link_compact(records)
    readers = compact.pair_readers(2, rows=100)
    sizes = [[len(b) for b in reader] for reader in readers]
    assert len(readers) == 2
    assert sum(map(sum, sizes)) == len(compact)
    assert all(n == 100 for n in sizes[0]) and all(n <= 100 for n in sizes[1])


def test_match_pairs_cannot_come_twice() -> None:
    records, _ = make_records(20, seed=5)
    compact = link_compact(records)
    con = duckdb.connect()
    with pytest.raises(ValueError, match="given twice"):
        write_match_tables(
            con, {"match.pairs": compact.to_result().pairs}, {"run_id": "r"}, None,
            pair_batches=compact.pair_reader(),
        )  # fmt: skip

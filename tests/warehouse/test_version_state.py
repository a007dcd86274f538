"""The stored current versions, updated by key batch after batch, equal a resolution over all
sightings: late dates that open a gap, late and same-date files that sort before the stored
newest sighting, deletion markers, records missing from a full delivery and coming back."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pytest

from sources.versions import current_records_sql
from tests.sources.test_versions import _raw, _source
from warehouse.raw import index_raw_rows
from warehouse.version_state import CURRENT_TABLE, update_version_state

FLAG = '{"删除标记": "Y"}'


def _d(day: int, name: str = "a") -> str:
    return f"crm/2030-01-0{day}/{name}.csv"


# each scenario: the batches delivered one run after the other, and the source's settings
SCENARIOS: dict[str, tuple[dict[str, Any], list[list[dict[str, Any]]]]] = {
    "a late full date opens a gap between two sightings": (
        {"delivery": "full"},
        [
            [{"key": "K1", "file": _d(1), "phone": "1"}, {"key": "K2", "file": _d(1)}],
            [{"key": "K1", "file": _d(3), "phone": "1"}, {"key": "K2", "file": _d(3)}],
            [{"key": "K2", "file": _d(2)}],  # K1 missing on the 2nd: deleted, then restored
        ],
    ),
    "a late file older than the newest sighting never wins": (
        {"delivery": "full"},
        [
            [{"key": "K1", "file": _d(2), "phone": "new"}],
            [{"key": "K1", "file": _d(1), "phone": "old"}, {"key": "K3", "file": _d(1)}],
        ],
    ),
    "a late older export and a re-export: unchanged values keep their first arrival": (
        {"delivery": "full"},
        [
            [{"key": "K1", "file": _d(3), "phone": "1"}, {"key": "K2", "file": _d(3)}],
            [{"key": "K1", "file": _d(4), "phone": "1"}, {"key": "K2", "file": _d(4)}],
            [
                {"key": "K1", "file": _d(1), "phone": "1"},  # late, same values
                {"key": "K2", "file": _d(1), "phone": "old"},  # late, older values
                {"key": "K1", "file": _d(5), "phone": "1"},
                {"key": "K2", "file": _d(5)},
                {"key": "K3", "file": _d(5)},
            ],
            [
                {"key": "K3", "file": _d(2)},
                # two new files of one night: the version starts on the 6th, arrived on the 7th
                {"key": "K1", "file": _d(7), "phone": "7"},
                {"key": "K1", "file": _d(6), "phone": "7"},
            ],
        ],
    ),
    "same date: an earlier updated_at arriving later sorts first": (
        {"delivery": "delta"},
        [
            [{"key": "K1", "file": _d(1, "b"), "phone": "b", "updated_at": "2029-12-31"}],
            [{"key": "K1", "file": _d(1, "c"), "phone": "c", "updated_at": "2029-12-01"}],
            [{"key": "K1", "file": _d(1, "d"), "phone": "d", "updated_at": "2030-01-01"}],
        ],
    ),
    "deletion markers, a record only ever deleted, then delivered": (
        {"deleted_flag": "删除标记"},
        [
            [{"key": "K1", "file": _d(1), "phone": "1"}, {"key": "K2", "file": _d(1)}],
            [
                {"key": "K1", "file": _d(2), "extra": FLAG},
                {"key": "K9", "file": _d(2), "extra": FLAG},
            ],
            [{"key": "K1", "file": _d(3), "phone": "1"}],
            [
                {"key": "K9", "file": _d(4), "phone": "9"},
                {"key": "K2", "file": _d(4), "extra": FLAG},
            ],
        ],
    ),
    "missing from full deliveries, back with the same values, unchanged re-exports": (
        {"delivery": "full"},
        [
            [{"key": "K1", "file": _d(1)}, {"key": "K2", "file": _d(1), "phone": "2"}],
            [{"key": "K1", "file": _d(2)}],
            [{"key": "K1", "file": _d(3)}, {"key": "K2", "file": _d(3), "phone": "2"}],
            [{"key": "K1", "file": _d(4), "phone": "changed"}],
            [{"key": "K1", "file": _d(5), "phone": "changed"}, {"key": "K2", "file": _d(5, "b")}],
        ],
    ),
}


def _state(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.sql(
        f"SELECT * EXCLUDE (version_source) FROM {CURRENT_TABLE} ORDER BY record_key"
    ).df()


def _expected(con: duckdb.DuckDBPyConnection, source: Any) -> pd.DataFrame:
    sql = current_records_sql("raw.crm", source)
    return con.sql(
        f"SELECT * REPLACE (version_no::BIGINT AS version_no) FROM ({sql}) ORDER BY record_key"
    ).df()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_batch_folded_equals_a_full_resolution(name: str) -> None:
    settings, batches = SCENARIOS[name]
    source = _source(**settings)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for step, batch in enumerate(batches, start=1):
        rows = [{"ingested_at": f"2030-02-0{step}T00:00:{i:02d}", "run": f"r{step}", **r}
                for i, r in enumerate(batch)]  # fmt: skip
        frame = _raw(rows)  # noqa: F841 - read by DuckDB
        if step == 1:
            con.execute("CREATE TABLE raw.crm AS SELECT * FROM frame")
        else:
            con.execute("INSERT INTO raw.crm BY NAME SELECT * FROM frame")
        # what the ingest keeps with every append: the per-file index of the rows appended
        index_raw_rows(con, "crm", f"(SELECT * FROM raw.crm WHERE run_id = 'r{step}')")
        stats = update_version_state(con, [source])
        assert stats.mode == ("full" if step == 1 else "incremental"), stats.full_sources
        assert stats.sightings_read >= len(batch)
        expected = _expected(con, source)
        stored = _state(con)[list(expected.columns)]
        pd.testing.assert_frame_equal(stored, expected, obj=f"{name}, batch {step}")


def _ingest_batches(
    con: duckdb.DuckDBPyConnection, source: Any, batches: list, index: bool
) -> None:
    for step, batch in enumerate(batches, start=1):
        rows = [{"ingested_at": f"2030-02-0{step}T00:00:{i:02d}", "run": f"r{step}", **r}
                for i, r in enumerate(batch)]  # fmt: skip
        frame = _raw(rows)  # noqa: F841 - read by DuckDB
        con.execute("CREATE TABLE IF NOT EXISTS raw.crm AS SELECT * FROM frame LIMIT 0")
        con.execute("INSERT INTO raw.crm BY NAME SELECT * FROM frame")
        if index:
            index_raw_rows(con, "crm", f"(SELECT * FROM raw.crm WHERE run_id = 'r{step}')")
        update_version_state(con, [source])


def test_raw_rows_erased_in_place_rebuild_the_index_and_the_state() -> None:
    settings, batches = SCENARIOS[
        "missing from full deliveries, back with the same values, unchanged re-exports"
    ]
    source = _source(**settings)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    _ingest_batches(con, source, batches, index=True)
    # an erasure deletes the person's raw rows and leaves a tombstone (no index update)
    con.execute("DELETE FROM raw.crm WHERE record_key = 'crm:K2'")
    con.execute("CREATE SCHEMA security")
    con.execute("CREATE TABLE security.tombstones AS SELECT 'C1' AS customer_id")
    stats = update_version_state(con, [source])
    assert stats.full_sources == ["crm: settings changed"]
    expected = _expected(con, source)
    assert "crm:K2" not in set(expected["record_key"])
    pd.testing.assert_frame_equal(_state(con)[list(expected.columns)], expected)
    indexed = con.execute("SELECT sum(n) FROM ops.raw_files WHERE source = 'crm'").fetchall()[0][0]
    assert indexed == con.execute("SELECT count(*) FROM raw.crm WHERE active").fetchall()[0][0]


def test_a_warehouse_without_the_index_is_indexed_once_then_folds() -> None:
    settings, batches = SCENARIOS["a late full date opens a gap between two sightings"]
    source = _source(**settings)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    _ingest_batches(con, source, batches[:2], index=True)
    con.execute("DROP TABLE ops.raw_files")  # as written before the index existed
    stats = update_version_state(con, [source])
    assert stats.full_sources == ["crm: no raw file index"]
    stats = update_version_state(con, [source])
    assert (stats.mode, stats.sightings_read) == ("incremental", 0)
    expected = _expected(con, source)
    pd.testing.assert_frame_equal(_state(con)[list(expected.columns)], expected)

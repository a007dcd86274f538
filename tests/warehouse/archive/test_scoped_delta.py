"""Nightly deltas that read only the changed customers' rows from the warehouse."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from warehouse.archive import (
    changed_state,
    content_hash,
    customers_changed,
    list_snapshots,
    load_snapshot,
    publish_snapshot,
    read_tables_arrow,
    verify_snapshot,
)
from warehouse.archive._digest_cache import CACHE_DIR, read_changed

START = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
NAMES = ("golden.customers", "golden.transactions", "golden.customer_ids")


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    """A warehouse with golden-like tables: 300 customers, their facts and ID events."""
    db = duckdb.connect()
    db.execute("CREATE SCHEMA golden")
    db.execute(
        "CREATE TABLE golden.customers AS SELECT 'C' || lpad(i::VARCHAR, 4, '0') AS customer_id,"
        " '138' || lpad((i * 7)::VARCHAR, 8, '0') AS phone, (i % 3) * 1.5 AS revenue,"
        " DATE '2020-01-01' + i::INTEGER AS since, NULL::VARCHAR AS note"  # empty text column
        " FROM range(300) AS r(i)"
    )
    db.execute(  # duplicate fact rows: rows are a multiset
        "CREATE TABLE golden.transactions AS SELECT 'C' || lpad((i % 300)::VARCHAR, 4, '0')"
        " AS customer_id, (i % 7) * 10.0 AS amount FROM range(900) AS r(i)"
    )
    db.execute(
        "CREATE TABLE golden.customer_ids AS SELECT customer_id, 'created' AS event"
        " FROM golden.customers"
    )
    return db


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    return read_tables_arrow(con, NAMES)


def _night(con: duckdb.DuckDBPyConnection, n: int, archive: Path, touched: list[str]):
    """Publish night ``n`` as a delta on the first snapshot, reading only ``touched``."""
    base = list_snapshots(archive)[0]
    ids = ", ".join(f"('{c}')" for c in touched) or "(NULL)"
    state = customers_changed(con, NAMES, f"SELECT * FROM (VALUES {ids}) AS v(customer_id)")
    return publish_snapshot(state, archive, f"r{n}", START + timedelta(days=n), base=base)


def _change(con: duckdb.DuckDBPyConnection, n: int) -> list[str]:
    """A night's changes, as a golden swap makes them (DELETE + INSERT by customer)."""
    changed = [f"C{10 * n:04d}", f"C{10 * n + 1:04d}", f"C{10 * n + 2:04d}"]
    con.execute(f"UPDATE golden.customers SET phone = '139{n}' WHERE customer_id = '{changed[0]}'")
    con.execute(f"DELETE FROM golden.customers WHERE customer_id = '{changed[1]}'")
    con.execute(f"DELETE FROM golden.transactions WHERE customer_id = '{changed[1]}'")
    con.execute(  # a duplicate of an existing fact row
        f"INSERT INTO golden.transactions SELECT * FROM golden.transactions"
        f" WHERE customer_id = '{changed[2]}' LIMIT 1"
    )
    new = f"N{n:04d}"
    con.execute(
        f"INSERT INTO golden.customers VALUES ('{new}', '1', 0.5, DATE '2026-01-01',"
        f" {'NULL' if n < 2 else repr('text later')})"
    )
    con.execute(f"INSERT INTO golden.customer_ids VALUES ('{new}', 'created')")
    return [*changed, new]


def test_scoped_deltas_equal_full_snapshots_over_nights(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="warehouse.archive")
    first = publish_snapshot(_tables(con), tmp_path, "r0", START)
    assert first is not None and first.storage == "full"
    for n in range(1, 5):
        touched = _change(con, n)
        info = _night(con, n, tmp_path, touched)
        assert info is not None and info.storage == "delta"
        expected = content_hash(_tables(con))
        assert info.content_hash == expected  # what a full snapshot would record
        loaded = load_snapshot(info.path)  # verifies the parts, the base and the hashes
        assert content_hash(loaded) == expected
        for name, table in _tables(con).items():
            assert loaded[name].schema == table.schema
        manifest = json.loads((info.path / "manifest.json").read_text("utf-8"))
        added = sum(e["rows"] for e in manifest["files"].values() if e["part"] == "add")
        assert 0 < added <= 4 * n + 2  # only changed rows: the unchanged ones are not stored
    assert "reading it" not in caplog.text  # no table was read whole
    # the customers that differ from the base are kept for the next night's delta
    assert len(read_changed(tmp_path, first.snapshot_id)) >= 4 * 4


def test_a_change_outside_the_named_customers_is_found(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="warehouse.archive")
    publish_snapshot(_tables(con), tmp_path, "r0", START)
    touched = _change(con, 1)
    # a row of a customer nobody named changes (an edit outside the run): the aggregate check
    # of the untouched rows sees it, the table is compared whole, the delta stays exact
    con.execute("UPDATE golden.transactions SET amount = -1 WHERE customer_id = 'C0299'")
    info = _night(con, 1, tmp_path, touched[:1])
    assert "golden.transactions differs from the base outside the run's customers" in caplog.text
    assert info is not None and info.storage == "delta"
    assert info.content_hash == content_hash(_tables(con))
    assert content_hash(load_snapshot(info.path)) == content_hash(_tables(con))
    assert verify_snapshot(info.path).ok


def test_an_old_cache_is_rebuilt_from_the_base(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    first = publish_snapshot(_tables(con), tmp_path, "r0", START)
    assert first is not None
    index = tmp_path / CACHE_DIR / ".index.json"
    old = json.loads(index.read_text("utf-8"))
    old.pop("format")  # the cache of an earlier release
    index.write_text(json.dumps(old), "utf-8")
    touched = _change(con, 1)
    info = _night(con, 1, tmp_path, touched)
    assert info is not None and info.content_hash == content_hash(_tables(con))
    assert json.loads(index.read_text("utf-8"))["format"] == 2  # kept for the next night


def test_changed_state_needs_a_staged_delta(con: duckdb.DuckDBPyConnection) -> None:
    # after a full golden build the swap replaced whole tables: there is no scope to read
    assert changed_state(con, NAMES) is None


def test_a_column_typed_later_widens(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    publish_snapshot(_tables(con), tmp_path, "r0", START)  # note: all NULL, typed Arrow null
    con.execute("UPDATE golden.customers SET note = 'x' WHERE customer_id = 'C0005'")
    info = _night(con, 1, tmp_path, ["C0005"])
    assert info is not None and info.storage == "delta"
    loaded = load_snapshot(info.path)
    assert loaded["golden.customers"].schema.field("note").type == pa.large_string()
    assert content_hash(loaded) == content_hash(_tables(con))
    assert date(2020, 1, 6) in loaded["golden.customers"]["since"].to_pylist()


def _golden_types(con: duckdb.DuckDBPyConnection) -> None:
    """A table with every golden column type, NULLs, an empty text column, quotes, Chinese."""
    con.execute(
        "CREATE TABLE golden.addresses AS SELECT 'C' || lpad(i::VARCHAR, 4, '0') AS customer_id,"
        " CASE WHEN i % 5 = 0 THEN NULL ELSE '上海市''' || i END AS city, i::BIGINT * 3 AS n,"
        " i::UBIGINT AS u, i % 2 = 0 AS flag, CASE WHEN i % 4 = 0 THEN NULL ELSE i / 7 END AS x,"
        " DATE '2024-02-28' + i::INTEGER AS day, NULL::VARCHAR AS empty FROM range(50) AS r(i)"
    )


def test_a_whole_table_read_and_hashed_in_one_scan_equals_read_then_hashed(
    con: duckdb.DuckDBPyConnection,
) -> None:
    from warehouse.archive import warehouse_tables
    from warehouse.archive._hashing import row_state

    _golden_types(con)
    names = (*NAMES, "golden.addresses", "golden.missing")
    source = warehouse_tables(con, names)
    assert source.names == (*NAMES, "golden.addresses")  # tables that do not exist are left out
    expected = read_tables_arrow(con, source.names)
    for name in source.names:
        table, state = source.read_whole(name)
        assert table.equals(expected[name])  # typed as a whole-table read types it
        assert state is not None
        digests, guards, keys = row_state(expected[name])
        assert (state[0] == digests).all() and (state[1] == guards).all()
        assert keys is not None and state[2] is not None and (state[2] == keys).all()


def test_a_full_snapshot_read_from_the_warehouse_equals_one_of_its_tables(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    from warehouse.archive import warehouse_tables

    _golden_types(con)
    names = (*NAMES, "golden.addresses")
    from_frames = publish_snapshot(read_tables_arrow(con, names), tmp_path / "a", "r0", START)
    cache_a = (tmp_path / "a" / CACHE_DIR / ".t0.npy").read_bytes()
    direct = publish_snapshot(warehouse_tables(con, names), tmp_path / "b", "r0", START)
    assert from_frames is not None and direct is not None
    assert (
        direct.content_hash
        == from_frames.content_hash
        == content_hash(
            _tables(con)
            | {"golden.addresses": read_tables_arrow(con, ["golden.addresses"])["golden.addresses"]}
        )
    )
    assert verify_snapshot(direct.path).ok
    assert (tmp_path / "b" / CACHE_DIR / ".t0.npy").read_bytes() == cache_a  # same delta cache
    touched = _change(con, 1)  # and a nightly delta on it stays exact
    info = _night(con, 1, tmp_path / "b", touched)  # (its delta holds the tables of NAMES)
    assert info is not None and info.content_hash == content_hash(_tables(con))


def test_deltas_read_the_cache_a_chunk_at_a_time_with_the_same_hashes(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chunks of 7 cached rows: every table's base rows span many chunks, dropped rows and
    # added digests fall in every one of them, and the content hash is still what a full
    # snapshot records (the hash is taken as the chunks are merged, the cache never whole)
    from warehouse.archive import _nightly

    monkeypatch.setattr(_nightly, "_CHUNK_ROWS", 7)
    reads: list[int] = []
    whole = _nightly.row_chunks

    def counted(rows, size=None):  # type: ignore[no-untyped-def]
        for start, chunk in whole(rows, size):
            assert not isinstance(chunk, np.memmap)  # read from the file, not the mapping
            reads.append(len(chunk))
            yield start, chunk

    monkeypatch.setattr(_nightly, "row_chunks", counted)
    first = publish_snapshot(_tables(con), tmp_path, "r0", START)
    assert first is not None
    for n in range(1, 4):
        info = _night(con, n, tmp_path, _change(con, n))
        assert info is not None and info.storage == "delta"
        assert info.content_hash == content_hash(_tables(con))
        assert content_hash(load_snapshot(info.path)) == content_hash(_tables(con))
    assert reads and max(reads) == 7


def test_sorted_digests_hashed_in_batches_equal_one_array(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from warehouse.archive import _nightly
    from warehouse.archive._hashing import hash_from_sorted, hash_from_sorted_batches

    rng = np.random.default_rng(7)
    schema = pa.schema([("customer_id", pa.string()), ("n", pa.int64())])
    cached = np.sort(rng.integers(0, 256, (200, 32), dtype=np.uint8).view("S32").ravel())
    cached[50:53] = cached[50]  # equal rows: a multiset
    rows = np.zeros(len(cached), dtype=[("d", "S32"), ("k", "<u4")])
    rows["d"] = cached
    new = rng.integers(0, 256, (30, 32), dtype=np.uint8).view("S32").ravel()
    added = np.sort(np.concatenate([new, cached[[0, 50, 199]]]))
    dropped = np.array([0, 3, 50, 51, 120, 199])
    kept = np.delete(cached, dropped)
    expected = hash_from_sorted(schema, np.insert(kept, np.searchsorted(kept, added), added))
    for size in (1, 5, 64, 1000):
        monkeypatch.setattr(_nightly, "_CHUNK_ROWS", size)
        merged = list(_nightly._merged_digests(rows, dropped, added))
        assert hash_from_sorted_batches(schema, merged) == expected
        assert hash_from_sorted_batches(schema, [np.empty(0, "S32"), *merged]) == expected
    assert hash_from_sorted_batches(schema, []) == hash_from_sorted(schema, np.empty(0, "S32"))

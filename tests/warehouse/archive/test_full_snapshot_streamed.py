"""A full snapshot of warehouse tables: read, hashed and written a row batch at a time (or, for
a writer that takes whole tables only, one table at a time), with the same content."""

from __future__ import annotations

import weakref
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.archive import content_hash, load_snapshot, publish_snapshot, warehouse_tables
from warehouse.archive._nightly import RowState
from warehouse.archive._scoped import WarehouseTables
from warehouse.archive.tables import read_tables_arrow
from warehouse.parquet_batches import TableBatches
from warehouse.security.encryption import encrypt_parquet, read_encrypted_parquet
from warehouse.security.keys import KeyRing

T0 = datetime(2026, 11, 24, 2, 0, 0)
NAMES = tuple(f"golden.t{i}" for i in range(5))


class _Watched(WarehouseTables):
    """Reads as the warehouse does; records how many tables read so far are still alive."""

    def read_whole(self, name: str) -> tuple[pa.Table, RowState | None]:
        alive = [ref for ref in _REFS if ref() is not None]
        _ALIVE.append(len(alive))
        table, state = super().read_whole(name)
        _REFS.append(weakref.ref(table))
        return table, state


_REFS: list[weakref.ref] = []
_ALIVE: list[int] = []


class _Batched(WarehouseTables):
    """Reads in batches of 300 rows; records each batch's rows, never reads a table whole."""

    def read_whole(self, name: str) -> tuple[pa.Table, RowState | None]:
        raise AssertionError(f"{name} read whole")

    def read_batches(self, name: str, rows: int = 300) -> tuple[TableBatches, list[RowState]]:
        parts, states = super().read_batches(name, 300)

        def counted():  # type: ignore[no-untyped-def]
            for batch in parts:
                _BATCHES.append((name, batch.num_rows))
                yield batch

        return TableBatches(parts.schema, counted()), states


_BATCHES: list[tuple[str, int]] = []


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    for i, name in enumerate(NAMES):
        con.execute(
            f"CREATE TABLE {name} AS SELECT 'C' || (r % 37)::VARCHAR AS customer_id,"
            f" r * {i + 1} AS amount, CASE WHEN r % 5 = 0 THEN NULL ELSE 'x' || r END AS note"
            " FROM range(2000) AS t(r)"
        )
    # a text column empty in every row (typed null in a whole-table read), a table without
    # a customer key, and an empty table
    con.execute("ALTER TABLE golden.t1 ADD COLUMN never VARCHAR")
    con.execute("CREATE TABLE golden.plain AS SELECT r AS n, 'v' || r AS v FROM range(700) t(r)")
    con.execute("CREATE TABLE golden.none (customer_id VARCHAR, v VARCHAR)")
    # deleted rows: gaps in the row ids (ranges with fewer rows than a batch, one with none)
    con.execute("DELETE FROM golden.t2 WHERE (amount // 3) % 400 < 150 OR amount // 3 >= 1900")
    return con


ALL = (*NAMES, "golden.plain", "golden.none")


def _whole_only(table: pa.Table, path: Path) -> None:
    """A writer that takes whole tables only (no ``takes_batches``)."""
    assert isinstance(table, pa.Table)
    pq.write_table(table, path, compression="zstd")


def test_full_snapshot_reads_writes_and_lets_go_one_table_at_a_time(tmp_path: Path) -> None:
    con = _warehouse()
    plain = warehouse_tables(con, NAMES)
    watched = _Watched(plain.con, plain.names, plain.columns)
    _REFS.clear()
    _ALIVE.clear()
    info = publish_snapshot(watched, tmp_path / "a", "r1", T0, writer=_whole_only)
    assert info is not None and info.storage == "full"
    # when a table is read, at most one earlier one is still held (the one being written)
    assert len(_ALIVE) == len(NAMES) and max(_ALIVE) <= 1, _ALIVE
    # the same snapshot as one published from the tables read whole beforehand
    whole = publish_snapshot(read_tables_arrow(con, NAMES), tmp_path / "b", "r1", T0)
    assert whole is not None
    assert info.content_hash == whole.content_hash
    loaded = load_snapshot(info.path)
    assert content_hash(loaded) == info.content_hash
    for name in NAMES:
        assert loaded[name].equals(load_snapshot(whole.path)[name]), name


@pytest.mark.parametrize("encrypted", [False, True])
def test_full_snapshot_in_row_batches_equals_the_tables_read_whole(
    tmp_path: Path, encrypted: bool
) -> None:
    con = _warehouse()
    plain = warehouse_tables(con, ALL)
    batched = _Batched(plain.con, plain.names, plain.columns)
    ring = KeyRing(bytes(range(32)))
    writer = None
    if encrypted:

        def writer(table: pa.Table | TableBatches, path: Path) -> str:
            return encrypt_parquet(table, path, ring)

        writer.takes_batches = True  # type: ignore[attr-defined]
    _BATCHES.clear()
    info = publish_snapshot(batched, tmp_path / "a", "r1", T0, writer=writer)
    assert info is not None and info.storage == "full"
    # every table read 300 rows at a time (the last batch shorter); the empty one: none
    assert {n for n, _ in _BATCHES} == set(ALL) - {"golden.none"}
    assert max(rows for _, rows in _BATCHES) == 300
    assert sum(rows for n, rows in _BATCHES if n == "golden.t0") == 2000
    # the same snapshot (content hash, every table, every column type) as the tables read whole
    whole = publish_snapshot(read_tables_arrow(con, ALL), tmp_path / "b", "r1", T0)
    assert whole is not None
    assert info.content_hash == whole.content_hash
    read = (lambda p: read_encrypted_parquet(p, ring)) if encrypted else None
    loaded = load_snapshot(info.path, reader=read)
    assert content_hash(loaded) == info.content_hash
    for name in ALL:
        assert loaded[name].equals(load_snapshot(whole.path)[name]), name
    assert loaded["golden.t1"].schema.field("never").type == pa.null()
    # a nightly delta on it finds its cache (the rows of each table, as a whole read gives)
    con.execute("UPDATE golden.t0 SET amount = -1 WHERE customer_id = 'C3'")
    later = datetime(2026, 11, 25, 2, 0, 0)
    delta = publish_snapshot(
        warehouse_tables(con, ALL), tmp_path / "a", "r2", later, writer=writer,
        base=info, reader=read,
    )  # fmt: skip
    assert delta is not None and delta.storage == "delta"
    fresh = publish_snapshot(read_tables_arrow(con, ALL), tmp_path / "c", "r2", later)
    assert fresh is not None and delta.content_hash == fresh.content_hash


def test_a_file_written_in_batches_reads_back_as_the_table(tmp_path: Path) -> None:
    table = pa.table(
        {"k": pa.array(np.arange(1000)), "s": pa.array([f"v{i}" for i in range(1000)])}
    )
    parts = TableBatches(table.schema, (table.slice(i, 250) for i in range(0, 1000, 250)))
    ring = KeyRing(bytes(range(32)))
    encrypt_parquet(parts, tmp_path / "x.parquet", ring)
    assert read_encrypted_parquet(tmp_path / "x.parquet", ring).equals(table)
    # one row group a batch
    plain = TableBatches(table.schema, (table.slice(i, 250) for i in range(0, 1000, 250)))
    from warehouse.parquet_batches import write_parquet

    write_parquet(plain, tmp_path / "y.parquet", compression="zstd")
    assert pq.ParquetFile(tmp_path / "y.parquet").metadata.num_row_groups == 4
    assert pq.read_table(tmp_path / "y.parquet").equals(table)


def test_batches_of_a_table_and_of_a_view_equal_the_whole_read() -> None:
    from warehouse.archive.tables import read_table_batches

    con = _warehouse()
    con.execute("CREATE VIEW golden.v AS SELECT * FROM golden.t1 WHERE amount % 3 = 0")
    for name in ("golden.t1", "golden.t2", "golden.v", "golden.none"):
        whole = read_tables_arrow(con, [name])[name]
        parts = read_table_batches(con, name, 300)
        tables = list(parts)
        assert all(t.num_rows <= 300 for t in tables) and all(t.num_rows for t in tables), name
        assert parts.schema == whole.schema, name
        joined = pa.concat_tables(tables) if tables else whole.schema.empty_table()
        assert joined.equals(whole), name  # rows in the order of one scan

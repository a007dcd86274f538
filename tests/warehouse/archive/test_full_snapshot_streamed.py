"""A full snapshot of warehouse tables holds at most two of them at a time, same content."""

from __future__ import annotations

import weakref
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.archive import content_hash, load_snapshot, publish_snapshot, warehouse_tables
from warehouse.archive._nightly import RowState
from warehouse.archive._scoped import WarehouseTables
from warehouse.archive.tables import read_tables_arrow

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


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    for i, name in enumerate(NAMES):
        con.execute(
            f"CREATE TABLE {name} AS SELECT 'C' || (r % 37)::VARCHAR AS customer_id,"
            f" r * {i + 1} AS amount, CASE WHEN r % 5 = 0 THEN NULL ELSE 'x' || r END AS note"
            " FROM range(2000) AS t(r)"
        )
    return con


def test_full_snapshot_reads_writes_and_lets_go_one_table_at_a_time(tmp_path: Path) -> None:
    con = _warehouse()
    plain = warehouse_tables(con, NAMES)
    watched = _Watched(plain.con, plain.names, plain.columns)
    _REFS.clear()
    _ALIVE.clear()
    info = publish_snapshot(watched, tmp_path / "a", "r1", T0)
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

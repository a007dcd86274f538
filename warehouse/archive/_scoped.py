"""The current golden state as a nightly delta reads it: changed customers' rows + one check.

A nightly run replaces the golden rows of the customers it touched (DELETE + INSERT by
``customer_id``). For the snapshot that follows, :func:`changed_state` names those customers
(by 32-bit key) and :meth:`ChangedState.read` reads, per table, only their current rows plus,
in one DuckDB aggregate over the table, the count and guard-hash sum of all the other rows.
The delta compares the latter with the base's cached rows of the other customers: equal, the
untouched rows are the base's; not equal (something else changed the tables), it reads the
whole table instead. Nothing here trusts the touched set for correctness.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from warehouse.archive._digest_cache import guard_total
from warehouse.archive._hashing import (
    KEY_COLUMN,
    guard_sql,
    key_sql,
    row_state_select,
    split_row_state,
)
from warehouse.archive._nightly import RowState
from warehouse.archive.tables import as_pandas_written, read_table_batches, table_schema
from warehouse.db import table_exists
from warehouse.parquet_batches import TableBatches

_KEYS = "_snapshot_changed_keys"
# the tables of customers whose golden rows the swap of this run replaced (warehouse.publish
# and warehouse.golden_delta): touched, re-classified, history scope, ID events
_SCOPE_SOURCES = (
    ("staging._golden_touched", ("customer_id",)),
    ("staging._golden_changed", ("customer_id",)),
    ("staging._history_scope", ("customer_id",)),
    ("staging.id_events", ("customer_id", "other_customer_id")),
)


@dataclass(frozen=True)
class ScopedRows:
    """One table now: the rows of the changed customers and a summary of all the others.

    Attributes:
        rows: current rows whose customer key is in the scope, typed like a whole-table read.
        other_rows: how many rows are outside the scope.
        other_guard_sum: their guard hashes summed mod 2**64.
        state: ``row_state(rows)``, computed in the scan that read them.
    """

    rows: pa.Table
    other_rows: int
    other_guard_sum: int
    state: RowState | None = None


@dataclass(frozen=True)
class WarehouseTables:
    """The warehouse tables of a snapshot, read whole from the warehouse when needed.

    Attributes:
        con: the warehouse connection.
        names: the ``schema.table`` names the snapshot holds (those that exist).
        columns: each table's ``(column, type)`` pairs in order.
    """

    con: duckdb.DuckDBPyConnection
    names: tuple[str, ...]
    columns: dict[str, list[tuple[str, str]]]

    def read_whole(self, name: str) -> tuple[pa.Table, RowState | None]:
        """A whole table, typed as ``read_tables_arrow`` types it, and its row state.

        One scan reads the rows and hashes them (``row_state_select``); the state equals
        ``row_state`` of the table read, without handing the rows back to DuckDB.
        """
        columns = [c for c, _t in self.columns.get(name, [])]
        if not columns:
            return as_pandas_written(self.con.sql(f"SELECT * FROM {name}").to_arrow_table()), None
        result = self.con.sql(f"SELECT *, {row_state_select(columns)} FROM {name}")
        table, state = split_row_state(result.to_arrow_table())
        return as_pandas_written(table), state

    def read_batches(
        self, name: str, rows: int | None = None
    ) -> tuple[TableBatches, list[RowState]]:
        """``read_whole`` a batch of ``rows`` rows at a time (the last one shorter).

        The batches are typed as ``read_whole`` types the whole table (a text column empty
        in every row is ``null`` in every batch) and together equal it, row for row; each
        batch's row state is appended to the returned list as the batch is read (their
        concatenation is ``read_whole``'s state). The connection is busy until the last
        batch is read.
        """
        columns = [c for c, _t in self.columns.get(name, [])]
        if not columns:
            raise ValueError(f"{name} has no columns to read in batches")
        states: list[RowState] = []

        def split(result: pa.Table) -> pa.Table:
            table, state = split_row_state(result)
            states.append(state)
            return table

        parts = read_table_batches(self.con, name, rows, row_state_select(columns), split)
        return parts, states


@dataclass(frozen=True)
class ChangedState(WarehouseTables):
    """The warehouse tables of a snapshot and the customers a run changed in them.

    Attributes:
        touched: sorted 32-bit keys of the customers this run's swap replaced.
    """

    touched: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, dtype=np.uint32))

    def read(self, name: str, keys: np.ndarray) -> ScopedRows | None:
        """``name``'s rows of the customers with these keys; None if it has no ``customer_id``."""
        described = self.columns.get(name, [])
        columns = [c for c, _t in described]
        if KEY_COLUMN not in columns:
            return None
        key_table = pa.table({"k": pa.array(np.asarray(keys, dtype=np.uint32), pa.uint32())})
        self.con.register(_KEYS, key_table)
        try:
            # the whole table's count and guard sum (no key per row); the scope's rows come
            # with their row state, and the others' figures are the difference
            texts = [c for c, t in described if t.upper().startswith("VARCHAR")]
            counts = ", ".join(f'count("{c}")' for c in texts)
            summary = self.con.execute(
                f"SELECT count(*), sum({guard_sql(columns)}::HUGEINT)"
                f"{', ' + counts if counts else ''} FROM {name}"
            ).fetchall()[0]
            result = self.con.sql(
                f"SELECT *, {row_state_select(columns)} FROM {name}"
                f" WHERE {key_sql()} IN (SELECT k FROM {_KEYS})"
            ).to_arrow_table()
        finally:
            self.con.unregister(_KEYS)
        all_rows, all_sum, *non_null = summary
        rows, state = split_row_state(result)
        rows = _typed_like_whole(as_pandas_written(rows), dict(zip(texts, non_null, strict=True)))
        other_sum = (int(all_sum or 0) - guard_total(state[1])) % (1 << 64)
        return ScopedRows(rows, int(all_rows) - rows.num_rows, other_sum, state)


def _typed_like_whole(rows: pa.Table, non_null: dict[str, int]) -> pa.Table:
    """Text columns typed as a whole-table read types them: ``null`` only when empty throughout."""
    for i, field in enumerate(rows.schema):
        if field.name not in non_null:
            continue
        wanted = pa.null() if non_null[field.name] == 0 else pa.large_string()
        if field.type != wanted:
            column = rows.column(i).cast(wanted)
            rows = rows.set_column(i, pa.field(field.name, wanted), column)
    return rows


def changed_state(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> ChangedState | None:
    """The customers this run's swap replaced, or None when it replaced whole tables.

    Args:
        con: the warehouse, after the swap of this run.
        names: the tables the snapshot holds.

    Returns:
        A :class:`ChangedState`, or None when the staged golden state was a full one.
    """
    from warehouse.golden_delta import staged_delta

    if staged_delta(con) is None:
        return None
    selects = [
        f"SELECT {key_sql(column)} AS k FROM {table} WHERE {column} IS NOT NULL"
        for table, columns in _SCOPE_SOURCES
        if table_exists(con, table)
        for column in columns
        if column in {c for c, _t in table_schema(con, table) or []}
    ]
    return _state(con, names, _keys_of(con, selects))


def customers_changed(
    con: duckdb.DuckDBPyConnection, names: tuple[str, ...], customers_sql: str
) -> ChangedState:
    """A :class:`ChangedState` for the customers a query returns (one ``customer_id`` column).

    Args:
        con: the warehouse.
        names: the tables the snapshot holds.
        customers_sql: ``SELECT customer_id FROM …`` of the customers whose rows changed.
    """
    select = f"SELECT {key_sql()} AS k FROM ({customers_sql}) WHERE customer_id IS NOT NULL"
    return _state(con, names, _keys_of(con, [select]))


def warehouse_tables(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> WarehouseTables:
    """The tables of ``names`` that exist, to snapshot whole (a full snapshot).

    Args:
        con: the warehouse.
        names: the tables the snapshot holds.
    """
    present, described = _described(con, names)
    return WarehouseTables(con, present, described)


def _state(
    con: duckdb.DuckDBPyConnection, names: tuple[str, ...], keys: np.ndarray
) -> ChangedState:
    """The state over the tables of ``names`` that exist, their columns read in one query."""
    present, described = _described(con, names)
    return ChangedState(con, present, described, touched=keys)


def _described(
    con: duckdb.DuckDBPyConnection, names: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, list[tuple[str, str]]]]:
    described: dict[str, list[tuple[str, str]]] = {}
    rows = con.execute(
        "SELECT schema_name || '.' || table_name, column_name, data_type FROM duckdb_columns()"
        " WHERE NOT internal ORDER BY schema_name, table_name, column_index"
    ).fetchall()
    for table, column, kind in rows:
        if table in names:
            described.setdefault(str(table), []).append((str(column), str(kind)))
    present = tuple(n for n in names if n in described)
    return present, described


def _keys_of(con: duckdb.DuckDBPyConnection, selects: list[str]) -> np.ndarray:
    if not selects:
        return np.empty(0, dtype=np.uint32)
    found = con.sql(" UNION ".join(selects)).to_arrow_table()["k"]
    return np.unique(found.to_numpy().astype(np.uint32))

"""Golden tables for publishing: read as Arrow, and swap staged tables in inside DuckDB."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse import parquet_batches
from warehouse.db import table_exists, to_duckdb_arrow
from warehouse.parquet_batches import TableBatches

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_FRAME_VIEW = "_publish_frame"


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid table name {name!r}: expected schema.identifier")
    return name


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_tables_arrow(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> dict[str, pa.Table]:
    """Read whole tables as Arrow (no pandas copy); tables that do not exist are left out.

    The result equals ``pa.Table.from_pandas(warehouse.read_table(con, name))`` for the golden
    column types (VARCHAR, BIGINT, INTEGER, DOUBLE, BOOLEAN, DATE, TIMESTAMP), so snapshots,
    their content hashes and the analyst mart stay as they were: text is ``large_string``,
    and an all-null text column has the Arrow ``null`` type (what pandas infers for it).

    Args:
        con: a connection.
        names: ``schema.table`` names.

    Returns:
        Name → Arrow table, in the order given.
    """
    out: dict[str, pa.Table] = {}
    for name in names:
        if table_exists(con, _checked(name)):
            out[name] = as_pandas_written(con.sql(f"SELECT * FROM {name}").to_arrow_table())
    return out


def read_table_batches(
    con: duckdb.DuckDBPyConnection,
    name: str,
    rows: int | None = None,
    extra: str = "",
    split: Callable[[pa.Table], pa.Table] | None = None,
) -> TableBatches:
    """``read_tables_arrow`` of one table, ``rows`` rows at a time (the last batch shorter;
    default ``parquet_batches.BATCH_ROWS``).

    Each batch is typed as the whole table read at once is (``as_pandas_written``: a text
    column empty in EVERY row is ``null`` in every batch, found first by one query that
    stops at each column's first value), and the batches together equal it row for row.
    A table is read by ranges of ``rows`` row ids (fewer rows where rows were deleted), each
    a query of its own: memory holds one batch (DuckDB's Arrow reader gathers the whole
    result first); a view through that reader.
    ``extra`` adds select items (e.g. each row's hash) that ``split`` takes off each raw
    batch before it is typed.
    """
    _checked(name)
    rows = rows or parquet_batches.BATCH_ROWS
    schema_name, _, table_name = name.partition(".")
    is_table = bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema_name, table_name],
        ).fetchall()[0][0]
    )
    schema = con.sql(f"SELECT * FROM {name} LIMIT 0").to_arrow_table().schema
    texts = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_string_view(f.type)
    ]
    empty: set[str] = set()
    if texts:
        found = con.execute(
            "SELECT " + ", ".join(_has_value_sql(name, c) for c in texts)
        ).fetchall()[0]
        empty = {c for c, has in zip(texts, found, strict=True) if not has}
    target = pa.schema(
        [
            pa.field(f.name, pa.null() if f.name in empty else pa.large_string())
            if f.name in texts
            else f
            for f in schema
        ]
    )

    def typed(result: pa.Table) -> pa.Table:
        table = split(result) if split is not None else result
        arrays = [
            pa.nulls(len(table)) if f.name in empty else table.column(f.name).cast(f.type)
            for f in target
        ]
        return pa.Table.from_arrays(arrays, schema=target)

    def batches() -> Iterator[pa.Table]:
        select = f"SELECT *{', ' + extra if extra else ''} FROM {name}"
        if is_table:
            # ranges of row ids, each read on its own: DuckDB's Arrow reader would gather the
            # whole result in memory first (DuckDB 2.0); a range is a scan of its row groups,
            # in row id order (the order of a scan of the whole table)
            (top,) = con.execute(f"SELECT max(rowid) FROM {name}").fetchall()[0]
            for low in range(0, -1 if top is None else int(top) + 1, rows):
                part = con.sql(f"{select} WHERE rowid >= {low} AND rowid < {low + rows}")
                result = part.to_arrow_table()
                if result.num_rows:
                    yield typed(result)
            return
        held: list[pa.RecordBatch] = []
        count = 0
        # a view: DuckDB hands over at most a row group (122,880 rows) a batch
        for batch in con.sql(select).to_arrow_reader(min(rows, 122_880)):
            held.append(batch)
            count += batch.num_rows
            while count >= rows:
                whole = pa.Table.from_batches(held)
                yield typed(whole.slice(0, rows))
                rest = whole.slice(rows)
                held, count = rest.to_batches(), rest.num_rows
        if count:
            yield typed(pa.Table.from_batches(held))

    return TableBatches(target, batches())


def _has_value_sql(table: str, column: str) -> str:
    """SQL of whether ``column`` holds a value in any row of ``table`` (``count(column) > 0``).

    An ``EXISTS`` stops at the first value, where a ``count`` reads the whole column: the
    check reads a block of a column that has values, and all of one only when it is empty.
    """
    return f"EXISTS (SELECT 1 FROM {table} WHERE {_quoted(column)} IS NOT NULL)"


def as_pandas_written(table: pa.Table) -> pa.Table:
    """Text columns typed as a DuckDB → pandas → Arrow round trip types them.

    Args:
        table: a table read from DuckDB as Arrow.

    Returns:
        The same values; text columns ``large_string``, all-null text columns ``null``.
    """
    for i, field in enumerate(table.schema):
        kind = field.type
        if not (pa.types.is_string(kind) or pa.types.is_string_view(kind)):
            continue
        column = table.column(i)
        if column.null_count == len(column):
            typed = pa.chunked_array([pa.nulls(len(column))], type=pa.null())
        else:
            typed = column.cast(pa.large_string())
        table = table.set_column(i, pa.field(field.name, typed.type), typed)
    return table


def swap_tables(
    con: duckdb.DuckDBPyConnection,
    copies: Mapping[str, str],
    frames: Mapping[str, pd.DataFrame | pa.Table] | None = None,
    appends: Mapping[str, str] | None = None,
    row_updates: Mapping[str, tuple[str, pd.DataFrame | pa.Table | str]] | None = None,
    renames: Mapping[str, str] | None = None,
    drop_views: Sequence[str] = (),
) -> None:
    """Replace tables from other tables inside DuckDB, and from frames, in ONE transaction.

    ``CREATE OR REPLACE TABLE target AS SELECT * FROM source`` copies inside the database (no
    round trip through Python); a rename replaces a table by another of its schema without
    writing a row (``DROP`` + ``ALTER TABLE … RENAME``, after every other write, so those may
    read the source first). Either every table is replaced or, on any error or crash, none is
    (DuckDB's DDL is transactional: a ROLLBACK restores both names).

    Args:
        con: a read-write connection.
        copies: target → source table (``{"golden.customers": "staging.customers"}``).
        frames: target → rows to write (pandas or Arrow), replacing the target.
        appends: target → source table whose rows are appended to the existing target.
        row_updates: target → (SQL condition, rows): the target's rows matching the condition
            are replaced by the rows (inserted by column name); rows given as a table name
            are copied from that table inside DuckDB.
        renames: target → source table of the same schema, renamed to the target's name (the
            target dropped first, if it exists).
        drop_views: views dropped (if they exist), e.g. those reading a renamed source.

    Raises:
        ValueError: a table name is not ``schema.identifier``, a target is both replaced
            (copies, frames, renames) and appended to or updated: a table the transaction
            created empty by a CTAS loses a large insert in DuckDB 2.0.0 (docs/warehouse.md),
            a target both renamed and copied or written, or a rename's source is in another
            schema than its target.
        duckdb.Error: a statement failed; every table keeps its previous content.
    """
    frames = frames or {}
    appends = appends or {}
    row_updates = row_updates or {}
    renames = renames or {}
    both = sorted({*copies, *frames, *renames} & {*appends, *row_updates})
    if both:
        raise ValueError(f"swap_tables: {both} both replaced and appended to or updated")
    twice = sorted(set(renames) & {*copies, *frames})
    if twice:
        raise ValueError(f"swap_tables: {twice} both renamed and copied or written")
    moved = [t for t, src in renames.items() if _checked(t).split(".")[0] != src.split(".")[0]]
    if moved:
        raise ValueError(f"swap_tables: {moved} renamed from another schema")
    names = [*copies.keys(), *copies.values(), *frames, *appends.keys(), *appends.values()]
    names += [*renames.keys(), *renames.values(), *drop_views]
    sources = [rows for _, rows in row_updates.values() if isinstance(rows, str)]
    for name in [*names, *row_updates, *sources]:
        _checked(name)
    con.execute("BEGIN TRANSACTION")
    try:
        for schema in {n.split(".", 1)[0] for n in [*copies, *frames, *appends]}:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for target, source in copies.items():
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")
        for target, frame in frames.items():
            con.register(_FRAME_VIEW, to_duckdb_arrow(frame))
            try:
                con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {_FRAME_VIEW}")
            finally:
                con.unregister(_FRAME_VIEW)
        for target, source in appends.items():
            con.execute(f"INSERT INTO {target} SELECT * FROM {source}")
        for target, (where, rows) in row_updates.items():
            con.execute(f"DELETE FROM {target} WHERE {where}")
            if isinstance(rows, str):
                con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {rows}")
                continue
            con.register(_FRAME_VIEW, to_duckdb_arrow(rows))
            try:
                con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {_FRAME_VIEW}")
            finally:
                con.unregister(_FRAME_VIEW)
        for view in drop_views:
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for target, source in renames.items():
            con.execute(f"DROP TABLE IF EXISTS {target}")
            con.execute(f"ALTER TABLE {source} RENAME TO {target.split('.', 1)[1]}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def table_schema(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]] | None:
    """A table's ``(column, type)`` list in order, or None when it does not exist."""
    if not table_exists(con, _checked(name)):
        return None
    return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {name}").fetchall()]

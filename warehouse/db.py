"""DuckDB access for the warehouse: the only module that opens connections and executes SQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

SCHEMAS = ("raw", "quarantine", "clean", "match", "staging", "golden", "analytics", "ops", "audit")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
log = logging.getLogger("customer_archive")


def connect(
    path: Path | str,
    read_only: bool = False,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
    threads: int | None = None,
    release_memory: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB warehouse.

    Args:
        path: the database file (``":memory:"`` for an in-memory warehouse).
        read_only: open without write access (analyst queries, ``customer-archive sql``).
        memory_limit: DuckDB ``memory_limit`` (e.g. ``"4GB"``); beyond it DuckDB spills to disk.
        temp_directory: the spill folder for larger-than-memory work.
        threads: DuckDB worker threads; None = DuckDB's default (all cores).
        release_memory: DuckDB's allocator background threads on: memory freed by finished
            queries goes back to the system within about a second (else the process keeps
            it for DuckDB's later work, and the Python work after a large query stacks on it).

    Returns:
        An open connection; use it as a context manager to close it.
    """
    config: dict[str, str | bool | int | float | list[str]] = {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if temp_directory:
        config["temp_directory"] = temp_directory
    if threads:
        config["threads"] = threads
    if release_memory:
        config["allocator_background_threads"] = True
    target = str(path)
    if target != ":memory:" and not read_only:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(target, read_only=read_only, config=config)
    # no progress bar (a setting of each connection, not of the database): a run's long
    # queries printed it into Dagster's compute logs (35 KB of bars for one 10 M clean step)
    con.execute("SET enable_progress_bar = false")
    return con


MEMORY_LIMIT_SETTING = "SELECT current_setting('memory_limit')"
_UNITS = {"bytes": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}  # fmt: skip


def memory_limit_bytes(setting: str) -> int | None:
    """A ``memory_limit`` as DuckDB shows it (``"2.0 GiB"``) in bytes; None if not a size."""
    number, _, unit = setting.strip().partition(" ")
    try:
        return int(float(number) * _UNITS[unit or "B"])
    except (KeyError, ValueError):
        return None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction around the block: committed when it ends, rolled back (and the
    error re-raised) when it raises, so a stopped write leaves nothing partial.

    The block's (or the ``COMMIT``'s) error is the one raised: a failed ``COMMIT`` leaves no
    transaction to roll back, and the ``ROLLBACK``'s own error is added to it as a note.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error as rollback:
            error.add_note(f"the ROLLBACK after it failed too: {rollback!r}")
        raise


def database_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A new connection to ``con``'s database (a cursor, for another thread) with ``con``'s
    database selected: a cursor starts on the default one, and an attached (encrypted)
    warehouse would not be it."""
    ((database,),) = con.execute("SELECT current_database()").fetchall()
    cursor = con.cursor()
    cursor.execute(f'USE "{database}"')
    return cursor


@contextmanager
def memory_limit_at_most(con: duckdb.DuckDBPyConnection, mib: int) -> Iterator[None]:
    """DuckDB's ``memory_limit`` at most `mib` MiB inside the block, then set back.

    A lower limit already set stays (never raised). Under the lower limit DuckDB keeps fewer
    scanned blocks cached and spills a large intermediate to its temporary directory instead
    of growing: what a step that runs beside large Python objects wants. When DuckDB cannot
    evict down to the lower limit when it is set (pinned blocks), the limit is left as it
    was (logged as a warning): the block runs as it would without the bound.
    """
    ((limit,),) = con.execute(MEMORY_LIMIT_SETTING).fetchall()
    now = memory_limit_bytes(str(limit))
    if now is not None and now <= mib * 2**20:
        yield
        return
    try:
        con.execute(f"SET memory_limit = '{mib}MiB'")
    except duckdb.OutOfMemoryException as exc:
        log.warning("DuckDB memory_limit not lowered to %d MiB: %s", mib, exc)
        yield
        return
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{limit}'")


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create the warehouse schemas (raw, quarantine, clean, match, golden, analytics, ops, …)."""
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")


_DATE = pd.ArrowDtype(pa.date32())
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default ``str`` dtype
_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _is_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _arrow_fast(kind: pa.DataType) -> bool:
    """Types whose Arrow → pandas conversion ``read_table`` does itself."""
    return (
        _is_text(kind)
        or kind in _NULLABLE
        or pa.types.is_floating(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_timestamp(kind)
    )


def _column_to_pandas(column: pa.ChunkedArray) -> pd.Series | np.ndarray:
    """One Arrow column with the dtype DuckDB's ``.df()`` gives it (text as ``str``)."""
    kind = column.type
    if _is_text(kind):
        if len(column) == 0 or column.null_count == len(column):
            return np.full(len(column), None, dtype=object)
        return column.to_pandas(types_mapper=lambda _: _TEXT)
    if pa.types.is_date32(kind):
        return column.to_pandas(types_mapper=lambda _: _DATE)
    if kind in _NULLABLE and column.null_count:
        return column.to_pandas(types_mapper=lambda _: _NULLABLE[kind])
    return column.to_pandas()


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid table name {name!r}: expected [schema.]identifier")
    return name


def create_empty_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    query: str,
    *,
    replace: bool = False,
    if_not_exists: bool = False,
    temp: bool = False,
) -> None:
    """Create ``name`` with the columns and types of ``query`` and no rows, from column DDL.

    Use it instead of ``CREATE TABLE name AS <query> LIMIT 0`` (or any ``CREATE TABLE … AS``
    that may yield no rows) whenever rows can be inserted into the table in the same
    transaction: with DuckDB 2.0.0 (threads > 1), a table created empty by a CTAS inside a
    transaction loses what a later INSERT of one row group (122,880 rows) or more adds in
    that transaction — scans return none of them, while ``count(*)`` still counts them
    (docs/warehouse.md, "Never create an empty table by CTAS in a write transaction").

    Args:
        con: a read-write connection.
        name: the table (``[schema.]table``, as it would appear in the SQL).
        query: a SELECT (or a table function) whose column names and types the table takes,
            as a CTAS of it would (no constraints, no rows); it is only described, not run.
        replace: ``CREATE OR REPLACE TABLE``.
        if_not_exists: ``CREATE TABLE IF NOT EXISTS`` (the query is described anyway).
        temp: a temporary table (``CREATE TEMP TABLE``).

    Raises:
        ValueError: both ``replace`` and ``if_not_exists``.
    """
    if replace and if_not_exists:
        raise ValueError("create_empty_table: replace and if_not_exists exclude each other")
    columns = con.execute(f"DESCRIBE {query}").fetchall()
    ddl = ", ".join(f"{_quote(str(column))} {kind}" for column, kind, *_ in columns)
    verb = ("CREATE OR REPLACE" if replace else "CREATE") + (" TEMP TABLE" if temp else " TABLE")
    con.execute(f"{verb}{' IF NOT EXISTS' if if_not_exists else ''} {name} ({ddl})")


def to_duckdb_arrow(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """Arrow table with all-null columns typed as text (DuckDB cannot store a NULL-typed column)."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def _write(
    con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame | pa.Table, how: str
) -> None:
    schema = name.split(".", 1)[0] if "." in name else None
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    view = "_warehouse_frame"
    table = to_duckdb_arrow(frame)
    con.register(view, table)
    try:
        if how == "replace" and table.num_rows:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {view}")
        elif how == "replace":  # an empty CTAS would lose a later big insert in the same tx
            create_empty_table(con, name, f"SELECT * FROM {view}", replace=True)
        else:
            create_empty_table(con, name, f"SELECT * FROM {view}", if_not_exists=True)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
    finally:
        con.unregister(view)


def replace_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, pd.DataFrame | pa.Table],
    copies: Mapping[str, str] | None = None,
    upserts: Mapping[str, tuple[pd.DataFrame | pa.Table, str]] | None = None,
    drops: Sequence[str] = (),
    refreshes: Mapping[str, tuple[str, pd.DataFrame | pa.Table]] | None = None,
) -> None:
    """Replace several tables in ONE transaction: either all are replaced or none is.

    Args:
        con: a read-write connection.
        tables: ``{"golden.customers": frame, …}``; missing schemas are created.
        copies: ``{"target": "source"}`` tables copied inside DuckDB in the same transaction
            (no round trip through Python), after the frames are written.
        upserts: ``{"table": (rows, key column)}``: the table's rows whose key is among the
            rows' keys are deleted and the rows inserted (by column name), in the same
            transaction; the table is created from the rows when absent.
        drops: tables dropped (when they exist) in the same transaction.
        refreshes: ``{"target": ("source", keys)}``: the target's rows whose key is in `keys`
            (a one-column frame: the key column) are deleted and the source's rows with those
            keys copied in, inside DuckDB (instead of copying the whole source; `copies`).

    Raises:
        ValueError: a table name is not ``[schema.]identifier``.
        duckdb.Error: a write failed; every table keeps its previous content.
    """
    copies = copies or {}
    upserts = upserts or {}
    refreshes = refreshes or {}
    sources = [source for source, _ in refreshes.values()]
    for name in [*tables, *copies, *copies.values(), *upserts, *drops, *refreshes, *sources]:
        _check_name(name)
    with transaction(con):
        for name, frame in tables.items():
            _write(con, name, frame, "replace")
        for name, (rows, key) in upserts.items():
            if table_exists(con, name):
                view = "_warehouse_keys"
                keys = rows.select([key]) if isinstance(rows, pa.Table) else rows[[key]]
                con.register(view, to_duckdb_arrow(keys))
                try:
                    con.execute(
                        f"DELETE FROM {name} WHERE {_quote(key)} IN"
                        f" (SELECT {_quote(key)} FROM {view})"
                    )
                finally:
                    con.unregister(view)
            _write(con, name, rows, "append")
        for name in drops:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        for target, (source, keys) in refreshes.items():
            view = "_warehouse_keys"
            key = _quote(keys.column_names[0] if isinstance(keys, pa.Table) else keys.columns[0])
            con.register(view, to_duckdb_arrow(keys))
            try:
                con.execute(f"DELETE FROM {target} WHERE {key} IN (SELECT {key} FROM {view})")
                con.execute(
                    f"INSERT INTO {target} BY NAME SELECT * FROM {source}"
                    f" WHERE {key} IN (SELECT {key} FROM {view})"
                )
            finally:
                con.unregister(view)
        for target, source in copies.items():
            if "." in target:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {target.split('.', 1)[0]}")
            con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")


def append_table(con: duckdb.DuckDBPyConnection, name: str, df: pd.DataFrame | pa.Table) -> None:
    """Append rows to a table by column name, creating it from the frame if absent.

    Args:
        con: a read-write connection.
        name: ``schema.table``.
        df: the rows to append.
    """
    _write(con, _check_name(name), df, "append")


class ChunkedTables:
    """Write tables chunk by chunk with the column types of ONE write of every chunk.

    Each append runs in whatever transaction the caller holds; outside one, each commits on
    its own. Keep many chunks out of one open transaction: DuckDB holds the rows a transaction
    appends in memory until COMMIT, so memory would grow with every chunk (write under other
    names and swap them in instead, as the full clean does: ``warehouse.clean_full``).
    The tables are dropped on creation and each one is created from its first chunk; later
    chunks are inserted by column name. A column whose chunks so far were all null (an Arrow
    ``null`` column, stored as text) takes the type of the first chunk that has values, so the
    table's column types equal those of one write of the concatenated frames.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
        self._con = con
        self._untyped: dict[str, set[str]] = {}
        for name in names:
            _check_name(name)
            con.execute(f"DROP TABLE IF EXISTS {name}")

    def append(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        """Append one chunk of rows to ``name`` (created from the first chunk)."""
        table = (
            frame if isinstance(frame, pa.Table)
            else pa.Table.from_pandas(frame, preserve_index=False)
        )  # fmt: skip
        nulls = {f.name for f in table.schema if pa.types.is_null(f.type)}
        if name not in self._untyped:
            _write(self._con, name, table, "replace")
            self._untyped[name] = nulls
            return
        for column in sorted(self._untyped[name] - nulls):  # first values: take their type
            field = table.schema.field(column)
            with self._con.cursor() as cur:  # the type name DuckDB gives the Arrow type
                typed = cur.from_arrow(pa.table({column: pa.nulls(0, field.type)}))
                sql_type = str(typed.types[0])
            self._con.execute(f'ALTER TABLE {name} ALTER "{column}" TYPE {sql_type}')
            self._untyped[name].discard(column)
        _write(self._con, name, table, "append")


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view ``[schema.]name`` exists.

    Asked of DuckDB's binder first (``con.table``: ≈ 0.1 ms, where a read of the catalog
    functions ``duckdb_tables()`` and ``duckdb_views()`` costs ≈ 1.3 ms and a run asks
    ≈ 250 times): a name that binds exists. A failed bind executes nothing, so it does not
    abort an open transaction (a failed statement would). Only when the name does not bind
    is the catalog read (``catalog_has``), so a view whose base table is gone still exists,
    as before. Nothing is cached: the answer always follows the tables created and dropped
    so far, in this connection's transaction. A result of ``execute`` the caller left
    unfinished is first run to its end (``con.complete()``), as the catalog query's
    ``execute`` did: callers read a relation next, which DuckDB refuses while one is open.

    Args:
        con: a connection.
        name: ``schema.table`` (schema ``main`` when omitted).

    Returns:
        True when the table or view exists.
    """
    _check_name(name)
    con.complete()
    try:
        con.table(name)
    except (duckdb.CatalogException, duckdb.BinderException):
        return catalog_has(con, name)
    return True


def catalog_has(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the catalog lists a table or view ``[schema.]name`` (in any attached database).

    Args:
        con: a connection.
        name: ``schema.table`` (schema ``main`` when omitted).

    Returns:
        True when ``duckdb_tables()`` or ``duckdb_views()`` lists it.
    """
    schema, _, table = _check_name(name).rpartition(".")
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "UNION ALL SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
        [schema or "main", table, schema or "main", table],
    ).fetchall()
    return sum(r[0] for r in rows) > 0


def table_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """The column names of a table or view, in order.

    Args:
        con: a connection.
        name: ``schema.table``.

    Returns:
        The names; empty when the table does not exist.
    """
    if not table_exists(con, name):
        return []
    return [r[0] for r in con.execute(f"DESCRIBE {_check_name(name)}").fetchall()]


def read_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    params: Sequence[object] | None = None,
) -> pd.DataFrame | None:
    """Read a whole table or view (or some of its columns) into pandas.

    The rows travel as one Arrow table (no row-wise DuckDB → pandas conversion). Resulting
    dtypes: text as pandas ``str`` (Arrow-backed), ``DATE`` as Arrow ``date32``; integer and
    boolean columns holding nulls as pandas nullable ``Int*`` / ``boolean``; floats, timestamps
    as numpy. All-null or empty text columns come back as ``object``, as DuckDB's own ``.df()``
    does; tables holding other types (decimal, blob, list, …) take DuckDB's ``.df()`` route.

    Args:
        con: a connection.
        name: ``schema.table``.
        columns: the columns to read, in this order (all when None).
        where: an SQL condition: read only the matching rows (dtypes follow the rows read: a
            text column null in all of them comes back as ``object``).
        params: values for the ``$1``, ``$2``, … placeholders of ``where``.

    Returns:
        The rows, or None when the table does not exist. ``DATE`` columns come back as Arrow
        ``date32`` (not timestamps), so writing the frame back keeps them ``DATE``.

    Raises:
        duckdb.Error: a requested column does not exist (the message names it).
    """
    if not table_exists(con, name):
        return None
    select = ", ".join(_quote(c) for c in columns) if columns is not None else "*"
    query = f"SELECT {select} FROM {name}" + (f" WHERE {where}" if where else "")
    values = list(params) if params is not None else None
    table = con.sql(query, params=values).to_arrow_table()
    names = table.column_names
    if len(set(names)) == len(names) and all(_arrow_fast(f.type) for f in table.schema):
        return pd.DataFrame(
            {f.name: _column_to_pandas(table.column(i)) for i, f in enumerate(table.schema)},
            copy=False,
        )
    dates = [f.name for f in table.schema if pa.types.is_date32(f.type)]
    del table
    frame = con.execute(query, values).df()
    for col in dates:
        frame[col] = frame[col].astype("datetime64[s]").astype(_DATE)
    return frame


def read_table_chunks(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    rows: int = 250_000,
) -> Iterator[pd.DataFrame]:
    """Read a table (or some of its columns and rows) into pandas, ``rows`` rows at a time.

    The rows of ``read_table(con, name, columns, where)`` in the same order, as consecutive
    frames of at most ``rows`` rows (at least one frame: an empty table gives one empty
    frame), each converted as ``read_table`` converts a whole table (so a text column null in
    every row of a chunk comes back as ``object``). The query streams: only one chunk is in
    memory, and ``con`` must not run other statements until the frames are consumed. Tables
    holding types ``read_table`` leaves to DuckDB's ``.df()`` come as one frame.

    Raises:
        KeyError: the table does not exist.
    """
    if not table_exists(con, name):
        raise KeyError(f"table {name} does not exist")
    select = ", ".join(_quote(c) for c in columns) if columns is not None else "*"
    query = f"SELECT {select} FROM {name}" + (f" WHERE {where}" if where else "")
    reader = con.sql(query).to_arrow_reader(rows)
    schema = reader.schema
    names = schema.names
    if len(set(names)) != len(names) or not all(_arrow_fast(f.type) for f in schema):
        reader.close()
        frame = read_table(con, name, columns, where)
        assert frame is not None
        yield frame
        return
    produced = False
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:  # DuckDB's batches may be smaller than asked: gather ``rows``
            table = pa.Table.from_batches(pending, schema)
            pending = [table.slice(rows).combine_chunks().to_batches()[0]] if held > rows else []
            held -= rows
            produced = True
            yield _arrow_frame(table.slice(0, rows))
    if held or not produced:
        yield _arrow_frame(pa.Table.from_batches(pending, schema))


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table of ``_arrow_fast`` columns as ``read_table`` returns it."""
    return pd.DataFrame(
        {f.name: _column_to_pandas(table.column(i)) for i, f in enumerate(table.schema)},
        copy=False,
    )


def run_sql(
    con: duckdb.DuckDBPyConnection, query: str, params: list[object] | None = None
) -> pd.DataFrame:
    """Run one analyst query and return its result.

    Args:
        con: a connection (read-only is enough).
        query: SQL text (a single statement; a trailing ``;`` is allowed).
        params: values for ``?`` placeholders.

    Returns:
        The result as a DataFrame.

    Raises:
        ValueError: the query is empty.
        duckdb.Error: the query failed; the message names the problem.
    """
    text = query.strip().rstrip(";").strip()
    if not text:
        raise ValueError("empty SQL query")
    return con.execute(text, params or []).df()

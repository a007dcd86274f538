"""The analyst mart, nightly: only the touched customers' rows are masked and replaced.

A nightly (incremental) golden build replaces the rows of a few customers. The analyst mart
follows it the same way instead of being masked and rewritten whole:

* the **mart database** gets, in one transaction, a DELETE of every touched customer's rows
  (by its pseudonymized ``customer_id``) and an INSERT of their new masked rows, table by table;
* the **mart Parquet files** keep the last full write (``mart.<table>.parquet``) and get one
  change file per table and night (``changes/mart.<table>/seq=<n>.parquet``: the touched
  customers' new masked rows) plus the list of touched customers per table
  (``changes/_replaced/seq=<n>.parquet``: ``table_name`` and their pseudonymized
  ``customer_id``; lists written before it had no ``table_name`` and name every table's);
  :func:`read_mart_parquet` reads a table's current state from them.

Masking is row-local (no table without ``customer_type`` masks a name by type), so a table's
mart rows change only for the customers whose rows of that table the swap replaced and those
that moved in or out of the dormant archive: only theirs are replaced, per table, and the rows
the swap inserted are read from the staged delta (no scan of every column of a golden table).

*Touched* customers are those whose golden rows the swap replaced (``swap_in_golden``'s
conditions, deleted customers included) and those that entered or left the dormant archive
since the mart was last written (dormant customers are left out of the mart). Masking is per
row and per customer (pseudonyms are keyed hashes of the value; a name is kept or masked by
its customer's type), so the result equals a full rebuild; tests compare content hashes.

The warehouse keeps what the mart was built from in ``security.mart_state`` (admin only): the
golden state's fingerprint, a hash of the masking settings (mart key id, pseudonym key, column
treatments and masking code, golden table schemas), the date of the last full write, the
change sequence number, and in ``security.mart_hidden`` the customers left out. The mart is
rebuilt whole when any of them does not match (first run, full golden build, key rotation,
restore, erasure, a crash between the swap and the mart), and once ``full_every_days`` have
passed since the last full write (which folds the change files in).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.db import table_exists
from warehouse.parquet_batches import TableBatches
from warehouse.security._mart_mask import customer_types
from warehouse.security.columns import ColumnMasker
from warehouse.security.encryption import encrypt_parquet, read_encrypted_parquet
from warehouse.security.keys import KeyRing
from warehouse.security.mart import (
    MART_SCHEMA,
    analyst_mart_key,
    build_analyst_mart_arrow,
    mart_table_name,
    open_analyst_mart,
    pseudonym_secret,
    write_analyst_mart,
)
from warehouse.security.masking import pseudonyms

__all__ = [
    "CHANGES_DIR",
    "HIDDEN_TABLE",
    "REPLACED",
    "STATE_TABLE",
    "MartPublish",
    "forget_mart_state",
    "mart_settings_hash",
    "publish_mart",
    "read_mart_parquet",
]

LOG = logging.getLogger("customer_archive")
STATE_TABLE = "security.mart_state"
HIDDEN_TABLE = "security.mart_hidden"
CHANGES_DIR = "changes"
REPLACED = "_replaced"
_TOUCHED = "_mart_touched"
_HIDDEN_NOW = "_mart_hidden_now"
_BY_TABLE = "_mart_touched_by_table"
#: the modules whose code decides the masked values (a change rebuilds the mart)
_MASKING_CODE = ("pii.py", "columns.py", "masking.py", "_mart_mask.py", "mart.py")


@dataclass
class MartPublish:
    """What publishing the mart did: ``full`` rebuild or ``delta``, and why."""

    files: dict[str, Path] = field(default_factory=dict)
    mode: str = "full"
    reason: str = ""
    customers: int = 0
    rows: int = 0
    seq: int = 0


def _schemas(
    con: duckdb.DuckDBPyConnection, tables: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """``(column, type)`` of each table that exists, in column order (one catalog query)."""
    rows = con.execute(
        "SELECT table_schema || '.' || table_name, column_name, data_type"
        " FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall()
    wanted = set(tables)
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        if table in wanted:
            out.setdefault(table, []).append((column, kind))
    return {t: out[t] for t in tables if t in out}


def mart_settings_hash(schemas: Mapping[str, Sequence[tuple[str, str]]], key: KeyRing) -> str:
    """A hash of everything besides the golden rows that decides the mart's content.

    The mart key id, a one-way fingerprint of the pseudonym key, the masking code and the
    schemas (column names and types) of the golden tables.

    Args:
        schemas: ``golden.<table>`` → ``(column, type)`` pairs in order.
        key: the master key ring.
    """
    digest = hashlib.sha256()
    digest.update(analyst_mart_key(key).current_id.encode())
    digest.update(hmac.new(pseudonym_secret(key), b"mart-state", hashlib.sha256).digest())
    here = Path(__file__).resolve().parent
    for name in _MASKING_CODE:
        digest.update((here / name).read_bytes())
    digest.update(json.dumps([[t, list(map(list, c))] for t, c in schemas.items()]).encode())
    return digest.hexdigest()


def forget_mart_state(con: duckdb.DuckDBPyConnection) -> None:
    """Make the next publish rebuild the mart whole (the warehouse changed outside a run)."""
    con.execute(f"DROP TABLE IF EXISTS {STATE_TABLE}")


def _read_state(con: duckdb.DuckDBPyConnection) -> dict[str, object] | None:
    if not (table_exists(con, STATE_TABLE) and table_exists(con, HIDDEN_TABLE)):
        return None
    rows = con.execute(
        f"SELECT settings_hash, golden_state, full_run_date, seq FROM {STATE_TABLE}"
    ).fetchall()
    if len(rows) != 1:
        return None
    settings, golden, full_date, seq = rows[0]
    return {"settings": settings, "golden": golden, "full_date": full_date, "seq": int(seq)}


def _write_state(
    con: duckdb.DuckDBPyConnection,
    settings: str,
    golden_state: str | None,
    full_date: date,
    seq: int,
    hidden: set[str],
) -> None:
    hidden_rows = pa.table({"customer_id": pa.array(sorted(hidden), type=pa.string())})
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS security")
        con.execute(
            f"CREATE OR REPLACE TABLE {STATE_TABLE} (settings_hash VARCHAR,"
            " golden_state VARCHAR, full_run_date DATE, seq INTEGER)"
        )
        con.execute(
            f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, ?)",
            [settings, golden_state, full_date, seq],
        )
        con.register("_mart_hidden_rows", hidden_rows)
        con.execute(f"CREATE OR REPLACE TABLE {HIDDEN_TABLE} AS SELECT * FROM _mart_hidden_rows")
        con.unregister("_mart_hidden_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _full_reason(
    state: dict[str, object] | None,
    changed: Mapping[str, str] | None,
    settings: str,
    before: str | None,
    run_date: date,
    full_every_days: int,
    files_present: bool,
) -> str | None:
    """Why the mart must be rebuilt whole (None: a delta is right)."""
    if changed is None:
        return "full golden build"
    if state is None:
        return "no mart state (first run, erasure or an interrupted publish)"
    if not files_present:
        return "mart files missing (or a table without customer_id)"
    if state["settings"] != settings:
        return "masking settings, keys or golden schemas changed"
    if before is None or state["golden"] != before:
        return "the mart is not of the golden state this run started from"
    full_date = state["full_date"]
    if not isinstance(full_date, date) or run_date < full_date:
        return "run date before the last full write"
    if (run_date - full_date).days >= full_every_days:
        return f"{full_every_days} day(s) since the last full write"
    return None


def publish_mart(
    con: duckdb.DuckDBPyConnection,
    *,
    tables: Sequence[str],
    hidden: Iterable[str],
    changed: Mapping[str, str] | None,
    states: tuple[str | None, str | None],
    duckdb_path: Path,
    parquet_dir: Path,
    key: KeyRing,
    run_date: date,
    full_every_days: int,
    allow_unsafe_crypto: bool | None = None,
) -> MartPublish:
    """Write the analyst mart after a publish: the touched customers' rows, or the whole mart.

    Args:
        con: the warehouse (read-write), after the swap; ``changed``'s conditions valid.
        tables: the golden tables to publish (``golden.<name>``, each with ``customer_id``).
        hidden: customers left out of the mart (the dormant archive).
        changed: ``golden.<table>`` → SQL condition on ``customer_id`` naming the customers
            whose rows this run replaced (``swap_in_golden``); None after a full golden build.
        states: the golden state fingerprints before and after the swap
            (``published_state``).
        duckdb_path: the mart database.
        parquet_dir: the mart's Parquet folder.
        key: the master key ring.
        run_date: this run's date.
        full_every_days: rebuild whole at least this often (folds the change files in).
        allow_unsafe_crypto: see ``open_encrypted_warehouse``.

    Returns:
        What was written.
    """

    hidden_now = {str(c) for c in hidden}
    schemas = _schemas(con, tables)
    tables = list(schemas)
    settings = mart_settings_hash(schemas, key)
    state = _read_state(con)
    before, after = states
    keyed = all(any(c == "customer_id" for c, _ in schemas[t]) for t in tables)
    present = (
        keyed
        and Path(duckdb_path).exists()
        and all((Path(parquet_dir) / f"{mart_table_name(t)}.parquet").exists() for t in tables)
    )
    reason = _full_reason(state, changed, settings, before, run_date, full_every_days, present)
    forget_mart_state(con)  # a crash below leaves no state: the next publish rebuilds whole
    if reason is None:
        assert state is not None and changed is not None
        done = _delta(
            con, tables, hidden_now, changed, state, duckdb_path, parquet_dir, key,
            allow_unsafe_crypto, schemas,
        )  # fmt: skip
        if done is not None:
            full_date = state["full_date"]
            assert isinstance(full_date, date)
            _write_state(con, settings, after, full_date, done.seq, hidden_now)
            return done
        reason = "a column that was empty in every row got values"
    counted: list[int] = []
    files = write_analyst_mart(
        _masked_one_by_one(con, tables, hidden_now, pseudonym_secret(key), counted),
        duckdb_path,
        parquet_dir,
        key,
        allow_unsafe_crypto,
    )
    _write_state(con, settings, after, run_date, 0, hidden_now)
    return MartPublish(files=files, mode="full", reason=reason, rows=sum(counted))


def _masked_one_by_one(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    hidden: set[str],
    secret: bytes,
    counted: list[int],
) -> Iterator[dict[str, TableBatches]]:
    """The whole mart, one masked table at a time, each a row batch at a time (read, hidden
    customers left out, masked: ``TableBatches`` that ``write_analyst_mart`` writes as they come).

    One masker remembers what it masked, so each distinct value is masked once over all tables
    (as one build of every table does), and every table's names are masked by the customer
    types of the customers table: the tables equal ``build_analyst_mart_arrow`` of them all,
    while memory holds one batch of one table (and its masked copy) instead of all of them.
    """
    from warehouse.archive import read_tables_arrow
    from warehouse.archive.tables import as_pandas_written, read_table_batches, table_schema
    from warehouse.dormant import hide_customers
    from warehouse.parquet_batches import TableBatches

    masker = ColumnMasker(secret, remember=True)
    types = None
    for name in tables:  # the customers table's types, as one build finds them (two columns)
        if name.endswith("customers") and {"customer_id", "customer_type"} <= {
            c for c, _t in table_schema(con, name) or []
        }:
            pair = con.sql(f"SELECT customer_id, customer_type FROM {name}").to_arrow_table()
            types = customer_types({name: as_pandas_written(pair)})
            break
    for name in tables:
        if not table_exists(con, name):
            continue
        target = mart_table_name(name)
        # read, hidden customers left out and masked a row batch at a time: each value is
        # masked as in one build of the whole table (per value, one remembering masker)
        masked = (
            build_analyst_mart_arrow(hide_customers({name: part}, hidden), secret, masker, types)[
                target
            ]
            for part in read_table_batches(con, name)
        )
        first = next(masked, None)
        if first is None:  # no rows: the empty table masked, as a whole-table build does
            first = build_analyst_mart_arrow(
                hide_customers(read_tables_arrow(con, [name]), hidden), secret, masker, types
            )[target]
        yield {target: TableBatches(first.schema, _same_schema(first, masked, counted))}


def _same_schema(
    first: pa.Table, rest: Iterator[pa.Table], counted: list[int]
) -> Iterator[pa.Table]:
    """The masked batches of one table, each cast to the first one's schema (a masked column
    can be typed ``null`` in a batch whose rows are all null); their rows are counted."""
    counted.append(first.num_rows)
    yield first
    for batch in rest:
        counted[-1] += batch.num_rows
        yield batch if batch.schema == first.schema else batch.cast(first.schema)


def _touched_sql(changed: Mapping[str, str]) -> list[str]:
    """SELECTs of the customers each condition names (also those no longer in golden)."""
    from warehouse.export_changes import condition_customers_sql

    return [f"({condition_customers_sql(w)})" for w in dict.fromkeys(changed.values())]


def _row_local(schemas: Mapping[str, Sequence[tuple[str, str]]]) -> bool:
    """Whether each table's masked rows depend on that table's rows alone.

    A name masked by its customer's type in a table without ``customer_type`` looks the type
    up in the customers table: then a change of a customers row changes other tables' rows.
    """
    from warehouse.security.pii import treatment

    for columns in schemas.values():
        names = {c for c, _t in columns}
        if "customer_type" not in names and any(treatment(c) == "name_by_type" for c in names):
            return False
    return True


def _touched_by_table(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    changed: Mapping[str, str],
    row_local: bool,
) -> None:
    """``_BY_TABLE`` (table_name, customer_id): the customers whose mart rows of a table change.

    Those whose rows of that table the swap replaced and those that entered or left the
    dormant archive; every touched customer in every table when masking is not row-local.
    """
    from warehouse.export_changes import condition_customers_sql

    selects = []
    for table in tables:
        where = changed.get(table)
        own = [f"(SELECT customer_id FROM {_TOUCHED})"]
        if row_local:
            own = [f"({condition_customers_sql(where)})"] if where else []
            own += [
                f"(SELECT customer_id FROM {_HIDDEN_NOW}"
                f" EXCEPT SELECT customer_id FROM {HIDDEN_TABLE})",
                f"(SELECT customer_id FROM {HIDDEN_TABLE}"
                f" EXCEPT SELECT customer_id FROM {_HIDDEN_NOW})",
            ]
        selects.append(
            f"SELECT DISTINCT '{table}' AS table_name, customer_id"
            f" FROM ({' UNION ALL '.join(own)}) WHERE customer_id IS NOT NULL"
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_BY_TABLE} AS " + " UNION ALL ".join(selects))


def _touched_rows(
    con: duckdb.DuckDBPyConnection, table: str, changed: Mapping[str, str], source: str | None
) -> pa.Table:
    """The golden rows of the customers ``_BY_TABLE`` lists for ``table``.

    The rows the swap inserted from the staged delta are read there (``changed_rows_sql``);
    the table itself is scanned only for listed customers whose rows it did not replace
    (dormant archive moves), or when the swap did not replace its rows from a delta.
    """
    from warehouse.export_changes import changed_rows_sql, condition_customers_sql

    listed = f"SELECT customer_id FROM {_BY_TABLE} WHERE table_name = '{table}'"
    if source is None or table not in changed:
        return con.sql(f"SELECT * FROM {table} WHERE customer_id IN ({listed})").to_arrow_table()
    where = changed[table]
    sql = changed_rows_sql(con, table, f"{where} AND customer_id IN ({listed})", source)
    rest = f"{listed} EXCEPT {condition_customers_sql(where)}"
    (others,) = con.execute(f"SELECT count(*) FROM ({rest})").fetchall()[0]
    if others:
        sql += f" UNION ALL SELECT * FROM {table} WHERE customer_id IN ({rest})"
    return con.sql(sql).to_arrow_table()


def _delta(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    hidden_now: set[str],
    changed: Mapping[str, str],
    state: dict[str, object],
    duckdb_path: Path,
    parquet_dir: Path,
    key: KeyRing,
    allow_unsafe_crypto: bool | None,
    schemas: Mapping[str, Sequence[tuple[str, str]]],
) -> MartPublish | None:
    """Replace the touched customers' rows; None when only a full rebuild is right."""
    from warehouse.dormant import hide_customers

    con.register(
        "_mart_hidden_rows", pa.table({"customer_id": pa.array(sorted(hidden_now), pa.string())})
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_HIDDEN_NOW} AS SELECT * FROM _mart_hidden_rows")
    con.unregister("_mart_hidden_rows")
    # customers whose rows changed, and those that entered or left the dormant archive
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS SELECT DISTINCT customer_id FROM ("
        + " UNION ALL ".join(
            [
                *_touched_sql(changed),
                f"(SELECT customer_id FROM {_HIDDEN_NOW}"
                f" EXCEPT SELECT customer_id FROM {HIDDEN_TABLE})",
                f"(SELECT customer_id FROM {HIDDEN_TABLE}"
                f" EXCEPT SELECT customer_id FROM {_HIDDEN_NOW})",
            ]
        )
        + ") WHERE customer_id IS NOT NULL"
    )
    touched = [str(r[0]) for r in con.execute(f"SELECT customer_id FROM {_TOUCHED}").fetchall()]
    secret = pseudonym_secret(key)
    _touched_by_table(con, tables, changed, _row_local(schemas))
    from warehouse.publish import inserted_from

    sources = inserted_from(con, changed)  # the staged delta tables the swap inserted from
    rows = {table: _touched_rows(con, table, changed, sources.get(table)) for table in tables}
    from warehouse.archive.tables import as_pandas_written

    rows = {name: as_pandas_written(t) for name, t in rows.items()}
    mart = build_analyst_mart_arrow(hide_customers(rows, hidden_now), secret)
    pairs = con.execute(f"SELECT table_name, customer_id FROM {_BY_TABLE}").fetchall()
    pseudonym_of = dict(zip(touched, pseudonyms(touched, secret), strict=True))
    replaced = pa.table(
        {
            "table_name": pa.array([mart_table_name(t) for t, _c in pairs], pa.string()),
            "customer_id": pa.array([pseudonym_of[str(c)] for _t, c in pairs], pa.string()),
        }
    )
    ring = analyst_mart_key(key)
    mcon = open_analyst_mart(duckdb_path, ring, allow_unsafe_crypto=allow_unsafe_crypto)
    try:
        if not _fits(mcon, mart):
            return None
        mcon.execute("BEGIN TRANSACTION")
        try:
            mcon.register("_mart_replaced", replaced)
            for name, masked in mart.items():
                mcon.execute(
                    f"DELETE FROM {name} WHERE customer_id IN (SELECT customer_id"
                    f" FROM _mart_replaced WHERE table_name = '{name}')"
                )
                mcon.register("_mart_rows", masked)
                mcon.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _mart_rows")
                mcon.unregister("_mart_rows")
            mcon.unregister("_mart_replaced")
            mcon.execute("COMMIT")
        except BaseException:
            mcon.execute("ROLLBACK")
            raise
        mcon.execute("CHECKPOINT")
    finally:
        mcon.close()
    seq = int(str(state["seq"])) + 1
    part = f"seq={seq:06d}.parquet"
    changes = Path(parquet_dir) / CHANGES_DIR
    for name, masked in {**mart, REPLACED: replaced}.items():
        target = changes / name / part
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.tmp")
        encrypt_parquet(masked, temp, ring)
        os.replace(temp, target)
    files = {name: Path(parquet_dir) / f"{name}.parquet" for name in mart}
    return MartPublish(
        files=files,
        mode="delta",
        customers=len(touched),
        rows=sum(len(t) for t in mart.values()),
        seq=seq,
    )


def _fits(mcon: duckdb.DuckDBPyConnection, mart: Mapping[str, pa.Table]) -> bool:
    """Whether the new rows fit the mart's tables (a column typed NULL cannot take values).

    A full rebuild types a column that is empty in every row as ``NULL``; when such a column
    gets values, only a rebuild gives the column the type a full build gives it.
    """
    for name, masked in mart.items():
        schema, table = name.split(".", 1)
        types = dict(
            mcon.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            ).fetchall()
        )
        if set(types) != set(masked.column_names):
            return False
        for column in masked.column_names:
            if types[column] == '"NULL"' and masked.column(column).null_count < len(masked):
                return False
    return True


def read_mart_parquet(parquet_dir: Path, table: str, key: KeyRing) -> pa.Table:
    """A mart table's current state from its Parquet files (last full write + change files).

    Args:
        parquet_dir: the mart's Parquet folder (``security.analyst_mart_parquet``).
        table: ``mart.customers`` (or ``customers``).
        key: the analyst mart key (``analyst_mart_key``, or parsed from ``keys mart-key``).

    Returns:
        The rows: the full write without the replaced customers, and each replaced
        customer's rows from its newest change file.
    """
    name = table if table.startswith(f"{MART_SCHEMA}.") else f"{MART_SCHEMA}.{table}"
    folder = Path(parquet_dir)
    base = read_encrypted_parquet(folder / f"{name}.parquet", key)
    replaced_dir = folder / CHANGES_DIR / REPLACED
    seqs = sorted(p.name for p in replaced_dir.glob("seq=*.parquet"))
    if not seqs:
        return base
    newest: dict[str, str] = {}
    for part in seqs:  # ascending: a later night's list wins
        listed = read_encrypted_parquet(replaced_dir / part, key)
        if "table_name" in listed.column_names:  # per table (older lists hold every table's)
            listed = listed.filter(pc.fill_null(pc.equal(listed["table_name"], name), False))
        newest.update(dict.fromkeys(listed.column("customer_id").to_pylist(), part))
    replaced = pa.array(list(newest), pa.string())
    pieces = [_without(base, replaced)]
    for part in seqs:
        path = folder / CHANGES_DIR / name / part
        if not path.exists():
            continue
        mine = pa.array([c for c, p in newest.items() if p == part], pa.string())
        rows = read_encrypted_parquet(path, key)
        ids = rows.column("customer_id").cast(pa.string())
        pieces.append(rows.filter(pc.fill_null(pc.is_in(ids, value_set=mine), False)))
    return pa.concat_tables(pieces, promote_options="permissive")


def _without(table: pa.Table, ids: pa.Array) -> pa.Table:
    column = table.column("customer_id").cast(pa.string())
    return table.filter(pc.invert(pc.fill_null(pc.is_in(column, value_set=ids), False)))

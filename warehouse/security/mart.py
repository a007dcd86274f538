"""The analyst mart (分析集市): every table with PII masked or pseudonymized, in its own files."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.parquet_batches import TableBatches
from warehouse.security._mart_mask import Types, mask_tables
from warehouse.security.columns import ColumnMasker
from warehouse.security.encryption import (
    encrypt_parquet,
    encrypted_parquet_writer,
    open_encrypted_database,
)
from warehouse.security.keys import KeyRing

LOG = logging.getLogger(__name__)
Frame = pd.DataFrame | pa.Table
Written = Frame | TableBatches
MART_SCHEMA = "mart"
MART_PURPOSE = "analyst-mart"
PSEUDONYM_PURPOSE = "pseudonym"


def mart_table_name(name: str) -> str:
    """``golden.customers`` → ``mart.customers`` (the analyst mart's flat schema)."""
    return f"{MART_SCHEMA}.{name.rsplit('.', 1)[-1]}"


def _targets(tables: Mapping[str, Frame]) -> dict[str, str]:
    targets: dict[str, str] = {}
    for name in tables:
        target = mart_table_name(name)
        if target in targets.values():
            raise ValueError(f"two tables map to analyst mart table {target}")
        targets[name] = target
    return targets


def build_analyst_mart_arrow(
    tables: Mapping[str, Frame],
    secret: bytes,
    masker: ColumnMasker | None = None,
    types: Types | None = None,
) -> dict[str, pa.Table]:
    """:func:`build_analyst_mart` over Arrow tables, returning Arrow tables (the fast path).

    Every distinct value is masked once per call (a ``customer_id`` found in every table is
    pseudonymized once); the values equal :func:`build_analyst_mart`'s. Kept columns are
    passed through as given; masked ones are ``large_string`` (as the pandas path wrote them).

    Args:
        tables: ``{"golden.customers": table, …}`` (Arrow tables or DataFrames).
        secret: the pseudonym key (``KeyRing.derive("pseudonym")``).
        masker: a masker remembering its values (``ColumnMasker(secret, remember=True)``)
            to build the mart a few tables at a time, each distinct value masked once.
        types: every customer's type (``customer_types``) when ``tables`` lacks the
            customers table (a mart built a few tables at a time).

    Returns:
        ``{"mart.customers": masked table, …}``.

    Raises:
        ValueError: two tables would get the same mart name.
    """
    arrow = {
        name: t if isinstance(t, pa.Table) else pa.Table.from_pandas(t, preserve_index=False)
        for name, t in tables.items()
    }
    out: dict[str, pa.Table] = {}
    for target, masked in mask_tables(arrow, secret, _targets(arrow), masker, types).items():
        columns = dict(masked.columns)
        for column in masked.masked:
            columns[column] = columns[column].cast(pa.large_string())
        out[target] = pa.table(columns)
    return out


def build_analyst_mart(tables: Mapping[str, Frame], secret: bytes) -> dict[str, pd.DataFrame]:
    """Mask every direct identifier of every table per the PII classes (deny unknown columns).

    Phones → ``139****5678``, emails → ``z***@example.com``, individuals' names → ``张*``
    (enterprise names kept), addresses and raw/free-text columns dropped (province, city,
    district kept), ``customer_id``/``record_key``/… replaced by keyed pseudonyms that are
    the same in every table, so analysts can still join and count.

    Args:
        tables: ``{"golden.customers": frame, …}``.
        secret: the pseudonym key (``KeyRing.derive("pseudonym")``).

    Returns:
        ``{"mart.customers": masked frame, …}``; dropped columns are listed in
        ``frame.attrs["dropped_columns"]``.

    Raises:
        ValueError: two tables would get the same mart name.
    """
    frames = {name: t.to_pandas() if isinstance(t, pa.Table) else t for name, t in tables.items()}
    out: dict[str, pd.DataFrame] = {}
    masked_tables = mask_tables(frames, secret, _targets(frames))
    for frame, (target, masked) in zip(frames.values(), masked_tables.items(), strict=True):
        result = pd.DataFrame(index=frame.index)
        for column, values in masked.columns.items():
            if column in masked.masked:
                values = pd.Series(
                    pd.StringDtype().__from_arrow__(values), index=frame.index, dtype="string"
                )
            result[column] = values
        result.attrs["dropped_columns"] = masked.dropped
        out[target] = result.reset_index(drop=True)
    return out


def write_analyst_mart(
    tables: Mapping[str, Written] | Iterable[Mapping[str, Written]],
    duckdb_path: Path,
    parquet_dir: Path,
    key: KeyRing,
    allow_unsafe_crypto: bool | None = None,
) -> dict[str, Path]:
    """Write the analyst mart as an encrypted DuckDB file and encrypted Parquet files.

    Both are encrypted with the mart key ``KeyRing(key.derive("analyst-mart"))`` — the key
    handed to analysts (see :func:`analyst_mart_key`); it does not open the warehouse.

    Args:
        tables: the output of :func:`build_analyst_mart` or :func:`build_analyst_mart_arrow`;
            or an iterable of such outputs (a few tables each), written one after the other
            so only one group is held at a time (each group is let go once written). A table
            given as ``TableBatches`` is written a row batch at a time (each batch appended
            to the mart table and to its Parquet file, then let go).
        duckdb_path: the mart database (replaced as a whole).
        parquet_dir: folder for ``mart.<table>.parquet`` (its nightly change files, if any,
            are removed: this write is the whole mart).
        key: the master key ring.
        allow_unsafe_crypto: see ``open_encrypted_warehouse``.

    Returns:
        Table name → Parquet file.
    """
    groups: Iterable[Mapping[str, Written]] = [tables] if isinstance(tables, Mapping) else tables
    ring = analyst_mart_key(key)
    duckdb_path = Path(duckdb_path)
    temp = duckdb_path.with_name(f".{duckdb_path.name}.new")
    for leftover in (temp, temp.with_name(temp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    parquet_dir = Path(parquet_dir)
    parquet_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    con = open_analyst_mart(
        temp, ring, allow_unsafe_crypto=allow_unsafe_crypto, new_database=not duckdb_path.exists()
    )
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {MART_SCHEMA}")
        for group in groups:
            whole = {n: t for n, t in group.items() if not isinstance(t, TableBatches)}
            for name, frame in whole.items():
                con.register("_mart_frame", frame)
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _mart_frame")
                con.unregister("_mart_frame")
            files.update(_write_parquet(whole, parquet_dir, ring))
            for name, parts in group.items():
                if isinstance(parts, TableBatches):
                    files[name] = parquet_dir / f"{name}.parquet"
                    _into_table_and_file(con, name, parts, files[name], ring)
            del group, whole
        con.execute("CHECKPOINT")
    finally:
        con.close()
    temp.replace(duckdb_path)
    duckdb_path.with_name(duckdb_path.name + ".wal").unlink(missing_ok=True)
    # the whole mart is written: the nightly change files are folded in (mart_delta)
    shutil.rmtree(parquet_dir / "changes", ignore_errors=True)
    return files


def _into_table_and_file(
    con: duckdb.DuckDBPyConnection, name: str, parts: TableBatches, path: Path, ring: KeyRing
) -> None:
    """Write ``parts`` as the mart table ``name`` (one ``CREATE TABLE … AS``, on one thread)
    and as its encrypted Parquet file (the file ``encrypt_parquet`` writes from them).

    DuckDB pulls the batches (a stream: one batch held at a time); each is written to the
    Parquet file as it passes. One statement over the whole stream writes full row groups
    (an ``INSERT`` a batch left a partial one each) and, on one thread, ≈ 18 % less CPU than
    the appends did on two (issue #22, BENCHMARKS.md); the rows and their order are the same.
    An error while making the batches (masking) is raised as itself, not as DuckDB's.

    A batch's Parquet write (encoding and encryption: Arrow, without the GIL) runs in a
    ``mart-parquet`` thread while DuckDB stores the same batch on this one; the next batch is
    made (read, masked) only once that write is done, so no batch more is held than before and
    the file gets the batches in order (issue #22, branch ``fpub3``).
    """
    failed: list[BaseException] = []
    pending: list[Future[None]] = []
    with (
        encrypted_parquet_writer(path, parts.schema, ring) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="mart-parquet") as pool,
    ):

        def written() -> None:
            """Wait for the batch's write in flight (its error raised)."""
            while pending:
                pending.pop().result()

        def passed() -> Iterator[pa.RecordBatch]:
            try:
                for batch in parts:
                    pending.append(pool.submit(writer.write_table, batch))
                    yield from batch.to_batches()
                    del batch
                    written()  # before the next batch is made
                written()
            except BaseException as exc:
                failed.append(exc)
                raise

        (threads,) = con.execute("SELECT current_setting('threads')").fetchall()[0]
        con.register("_mart_frame", pa.RecordBatchReader.from_batches(parts.schema, passed()))
        con.execute("SET threads = 1")
        try:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _mart_frame")
        except duckdb.Error:
            if failed:
                raise failed[0] from None
            raise
        finally:
            con.execute(f"SET threads = {int(threads)}")
            con.unregister("_mart_frame")
            # a write still in flight (DuckDB stopped pulling) ends before the file is closed
            wait(pending)
        written()


def _write_parquet(
    tables: Mapping[str, Frame], parquet_dir: Path, ring: KeyRing
) -> dict[str, Path]:
    """``mart.<table>.parquet`` of each table, encrypted with the mart key."""
    files = {name: parquet_dir / f"{name}.parquet" for name in tables}
    # two files at a time: Parquet encoding and encryption release the GIL
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mart-write") as pool:
        futures = [pool.submit(encrypt_parquet, tables[n], files[n], ring) for n in tables]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return files


def analyst_mart_key(key: KeyRing) -> KeyRing:
    """The key ring analysts are given: opens the mart only (derived one-way from the master)."""
    return KeyRing(key.derive(MART_PURPOSE))


def mart_key_text(mart_key: KeyRing) -> str:
    """The analyst key as handed out (``keys mart-key``): 64 hex characters.

    The same text is the mart database's DuckDB ``ENCRYPTION_KEY``, so an analyst opens the
    mart in any DuckDB client with ``ATTACH 'analyst_mart.duckdb' AS mart
    (ENCRYPTION_KEY '<text>', READ_ONLY)``; ``KeyRing(parse_key(text))`` also decrypts the
    mart's Parquet files (pyarrow). It opens nothing else: the warehouse key is derived from
    the master key, which cannot be computed back from this one.

    Args:
        mart_key: :func:`analyst_mart_key` of the master ring (or the ring parsed from the
            handed-out text).
    """
    return mart_key.current.hex()


def open_analyst_mart(
    path: Path | str,
    mart_key: KeyRing,
    read_only: bool = False,
    allow_unsafe_crypto: bool | None = None,
    new_database: bool | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the analyst mart database with the analyst key (:func:`mart_key_text`).

    Raises:
        DecryptionError: the key does not open the file.
    """
    return open_encrypted_database(
        path, mart_key_text(mart_key), read_only, allow_unsafe_crypto, new_database
    )


def pseudonym_secret(key: KeyRing) -> bytes:
    """The pseudonym key for :func:`build_analyst_mart` (erasure finds mart rows with it)."""
    return key.derive(PSEUDONYM_PURPOSE)

"""The full mart's tables are written by one statement each over the stream of their masked
batches (issue #22): the mart table and its encrypted Parquet file as the appends wrote them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from warehouse.parquet_batches import TableBatches
from warehouse.security.encryption import encrypt_parquet, read_encrypted_parquet
from warehouse.security.keys import KeyRing
from warehouse.security.mart import analyst_mart_key, open_analyst_mart, write_analyst_mart

SCHEMA = pa.schema([("customer_id", pa.large_string()), ("phone", pa.null()), ("n", pa.int64())])


def _batches(rows: int, size: int) -> list[pa.Table]:
    return [
        pa.table(
            {
                "customer_id": [f"P{i:08d}" for i in range(k, min(k + size, rows))],
                "phone": pa.nulls(min(size, rows - k)),
                "n": list(range(k, min(k + size, rows))),
            },
            schema=SCHEMA,
        )
        for k in range(0, rows, size)
    ]


@pytest.mark.parametrize("rows", [0, 1, 130_000])
def test_the_streamed_table_and_file_equal_the_batches(tmp_path: Path, rows: int) -> None:
    ring = KeyRing(secrets.token_bytes(32))
    batches = _batches(rows, 50_000)
    mart = tmp_path / "mart.duckdb"
    files = write_analyst_mart(
        {"mart.t": TableBatches(SCHEMA, iter(batches))}, mart, tmp_path / "p", ring, True
    )
    key = analyst_mart_key(ring)
    whole = pa.concat_tables(batches) if batches else SCHEMA.empty_table()
    with open_analyst_mart(mart, key, read_only=True) as con:
        table = con.sql("SELECT * FROM mart.t").to_arrow_table()
        assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] >= 1
    assert table.num_rows == rows
    assert table.column("customer_id").to_pylist() == whole.column("customer_id").to_pylist()
    assert table.column("n").to_pylist() == whole.column("n").to_pylist()  # in batch order
    streamed = read_encrypted_parquet(files["mart.t"], key)
    assert streamed.schema == SCHEMA and streamed.equals(whole)
    encrypt_parquet(TableBatches(SCHEMA, iter(batches)), tmp_path / "one.parquet", key)
    one = read_encrypted_parquet(tmp_path / "one.parquet", key)
    assert one.equals(streamed)  # the file encrypt_parquet writes from the same batches


def test_an_error_making_the_batches_is_raised_as_itself(tmp_path: Path) -> None:
    ring = KeyRing(secrets.token_bytes(32))

    def failing() -> Iterator[pa.Table]:
        yield _batches(10, 10)[0]
        raise ValueError("masking failed")

    with pytest.raises(ValueError, match="masking failed"):
        write_analyst_mart(
            {"mart.t": TableBatches(SCHEMA, failing())},
            tmp_path / "mart.duckdb",
            tmp_path / "p",
            ring,
            True,
        )
    assert not (tmp_path / "mart.duckdb").exists()  # the mart is replaced whole or not at all


def test_the_connections_threads_are_set_back(tmp_path: Path) -> None:
    from warehouse.security.mart import _into_table_and_file

    con = duckdb.connect()
    con.execute("SET threads = 2; CREATE SCHEMA mart")
    ring = KeyRing(secrets.token_bytes(32))
    _into_table_and_file(con, "mart.t", TableBatches(SCHEMA, iter(_batches(5, 2))),
                         tmp_path / "t.parquet", ring)  # fmt: skip
    assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 2
    assert con.execute("SELECT count(*) FROM mart.t").fetchall()[0][0] == 5


def test_the_parquet_writes_run_beside_the_store_one_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch's Parquet write runs in the ``mart-parquet`` thread, and the next batch is
    made only once it is done (no batch more held than when the writes were inline)."""
    import threading

    from warehouse.security import mart as mart_module

    events: list[str] = []
    real = mart_module.encrypted_parquet_writer

    class Spy:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def write_table(self, table: pa.Table) -> None:
            events.append(f"write {table.column('n')[0].as_py()} {threading.current_thread().name}")
            self._inner.write_table(table)  # type: ignore[attr-defined]

        def __enter__(self) -> Spy:
            self._inner.__enter__()  # type: ignore[attr-defined]
            return self

        def __exit__(self, *exc: object) -> None:
            self._inner.__exit__(*exc)  # type: ignore[attr-defined]

    monkeypatch.setattr(mart_module, "encrypted_parquet_writer", lambda *a: Spy(real(*a)))
    batches = _batches(130_000, 50_000)

    def made() -> Iterator[pa.Table]:
        for batch in batches:
            events.append(f"made {batch.column('n')[0].as_py()}")
            yield batch

    ring = KeyRing(secrets.token_bytes(32))
    files = write_analyst_mart(
        {"mart.t": TableBatches(SCHEMA, made())}, tmp_path / "m.duckdb", tmp_path / "p", ring, True
    )
    starts = [0, 50_000, 100_000]
    assert [e.split()[:2] for e in events] == [
        x for k in starts for x in (["made", str(k)], ["write", str(k)])
    ]  # each batch written before the next one is made
    assert all(e.endswith("mart-parquet_0") for e in events if e.startswith("write"))
    key = analyst_mart_key(ring)
    assert read_encrypted_parquet(files["mart.t"], key).equals(pa.concat_tables(batches))


def test_a_failed_parquet_write_fails_the_mart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warehouse.security import mart as mart_module

    real = mart_module.encrypted_parquet_writer

    class Broken:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def write_table(self, table: pa.Table) -> None:
            raise OSError("disk full")

        def __enter__(self) -> Broken:
            self._inner.__enter__()  # type: ignore[attr-defined]
            return self

        def __exit__(self, *exc: object) -> None:
            self._inner.__exit__(*exc)  # type: ignore[attr-defined]

    monkeypatch.setattr(mart_module, "encrypted_parquet_writer", lambda *a: Broken(real(*a)))
    ring = KeyRing(secrets.token_bytes(32))
    with pytest.raises(OSError, match="disk full"):
        write_analyst_mart(
            {"mart.t": TableBatches(SCHEMA, iter(_batches(130_000, 50_000)))},
            tmp_path / "m.duckdb",
            tmp_path / "p",
            ring,
            True,
        )
    assert not (tmp_path / "m.duckdb").exists()

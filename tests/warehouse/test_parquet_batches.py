"""tee_batches: every consumer gets every batch in order, in a thread beside the producer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.parquet_batches import TableBatches, tee_batches, write_parquet

SCHEMA = pa.schema([("n", pa.int64())])


def _batches(count: int, made: list[int] | None = None) -> TableBatches:
    def gen() -> Iterator[pa.Table]:
        for i in range(count):
            if made is not None:
                made.append(i)
            yield pa.table({"n": pa.array([i, i], pa.int64())})

    return TableBatches(SCHEMA, gen())


def test_every_consumer_gets_every_batch_in_order(tmp_path) -> None:
    path = tmp_path / "t.parquet"
    sums, file = tee_batches(
        _batches(5),
        [
            lambda rows: [b.column("n").to_pylist() for b in rows],
            lambda rows: write_parquet(rows, path),
        ],
    )
    assert sums == [[i, i] for i in range(5)]
    assert file is None
    assert pq.read_table(path).column("n").to_pylist() == [i for i in range(5) for _ in (0, 1)]


def test_no_batch_gives_an_empty_input() -> None:
    (seen,) = tee_batches(_batches(0), [lambda rows: (rows.schema, list(rows))])
    assert seen == (SCHEMA, [])


def test_the_next_batch_is_made_while_a_consumer_writes() -> None:
    made: list[int] = []
    second = threading.Event()

    def slow(rows: TableBatches) -> bool:
        overlapped = False
        for batch in rows:
            if batch.column("n")[0].as_py() == 0:
                # a consumer run in the producer's thread would wait here in vain
                overlapped = second.wait(timeout=10)
        return overlapped

    def watched() -> Iterator[pa.Table]:
        for batch in _batches(3, made):
            if len(made) == 2:
                second.set()
            yield batch

    (overlapped,) = tee_batches(TableBatches(SCHEMA, watched()), [slow])
    assert overlapped
    assert made == [0, 1, 2]


def test_a_consumer_error_stops_the_producer() -> None:
    made: list[int] = []

    def failing(rows: TableBatches) -> None:
        for _batch in rows:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        tee_batches(_batches(1000, made), [failing, lambda rows: sum(1 for _ in rows)])
    assert len(made) < 1000


def test_a_producer_error_ends_the_consumers_and_is_raised() -> None:
    def broken() -> Iterator[pa.Table]:
        yield pa.table({"n": pa.array([1], pa.int64())})
        raise ValueError("bad row")

    counted: list[int] = []
    with pytest.raises(ValueError, match="bad row"):
        tee_batches(TableBatches(SCHEMA, broken()), [lambda rows: counted.append(len(list(rows)))])
    assert counted and counted[0] <= 1


def test_a_consumer_that_stops_reading_does_not_block_the_others() -> None:
    def first_only(rows: TableBatches) -> int:
        for batch in rows:
            return int(batch.column("n")[0].as_py())
        return -1

    first, counted = tee_batches(_batches(50), [first_only, lambda rows: sum(1 for _ in rows)])
    assert (first, counted) == (0, 50)

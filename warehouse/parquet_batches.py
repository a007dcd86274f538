"""A table handed over in row batches, and the one Parquet write of a table or of its batches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["BATCH_ROWS", "TableBatches", "tee_batches", "write_parquet"]

R = TypeVar("R")

BATCH_ROWS = 1 << 18
"""Rows a batch (262,144): a fourth of pyarrow's default row group length; a file written
batch by batch has one row group a batch."""


@dataclass
class TableBatches:
    """One table as consecutive row batches of one schema (read once, in order).

    Attributes:
        schema: every batch's schema (the table's).
        batches: the row batches, each a ``pa.Table`` of ``schema``.
    """

    schema: pa.Schema
    batches: Iterable[pa.Table]

    def __iter__(self) -> Iterator[pa.Table]:
        return iter(self.batches)

    def read_all(self) -> pa.Table:
        """The whole table (for a writer that takes tables only)."""
        tables = list(self.batches)
        return pa.concat_tables(tables) if tables else self.schema.empty_table()


def write_parquet(data: pa.Table | TableBatches, path: Path | str, **options: Any) -> None:
    """Write a table, or a table's row batches one after the other, as one Parquet file.

    Batches are written as they come (each held only while written); ``options`` are
    ``pq.ParquetWriter``'s (``compression``, ``encryption_properties`` …).
    """
    if isinstance(data, pa.Table):
        pq.write_table(data, str(path), **options)
        return
    with pq.ParquetWriter(str(path), data.schema, **options) as writer:
        for batch in data:
            writer.write_table(batch)


_END = object()


def tee_batches(
    data: TableBatches, consumers: Sequence[Callable[[TableBatches], R]], depth: int = 1
) -> list[R]:
    """Hand every batch of ``data`` to each consumer, each consumer in a thread of its own.

    The calling thread makes the batches (reads, masks …: Python holding the GIL) while the
    consumers write the ones made before (Parquet encoding, DuckDB inserts: C++ that releases
    it), so a second core does the writing. Each consumer gets the batches in order, as one
    ``TableBatches`` of ``data``'s schema; at most ``depth`` batches wait for a consumer
    besides the one it is writing (memory: a few batches, not the table).

    Returns:
        Each consumer's result, in order.

    Raises:
        The first error of the producer or of a consumer (the others are stopped: a consumer
        whose input ended early by an error of the producer sees its batches end).
    """
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=depth) for _ in consumers]
    results: list[Any] = [None] * len(consumers)
    errors: list[BaseException] = []
    stop = threading.Event()
    finished = [threading.Event() for _ in consumers]  # a consumer that returned

    def fed(box: queue.Queue[Any]) -> Iterator[pa.Table]:
        while True:
            item = box.get()
            if item is _END:
                return
            yield item

    def run(k: int, consume: Callable[[TableBatches], R]) -> None:
        try:
            results[k] = consume(TableBatches(data.schema, fed(queues[k])))
        except BaseException as exc:  # handed to the calling thread, raised there
            errors.append(exc)
            stop.set()
        finally:
            finished[k].set()  # the producer hands it nothing more
            _drain(queues[k])  # a producer blocked on this queue goes on

    threads = [
        threading.Thread(target=run, args=(k, c), name=f"tee-batches-{k}", daemon=True)
        for k, c in enumerate(consumers)
    ]
    for thread in threads:
        thread.start()

    def put(k: int, item: Any) -> None:
        while not stop.is_set() and not finished[k].is_set():
            try:
                queues[k].put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        for batch in data:
            if stop.is_set():
                break
            for k in range(len(queues)):
                put(k, batch)
            del batch
    except BaseException as exc:
        errors.insert(0, exc)
        stop.set()
    finally:
        for k, box in enumerate(queues):
            if stop.is_set():  # an error: the consumers' input ends here
                _drain(box)
            while not finished[k].is_set():  # the end, unless the consumer returned already
                try:
                    box.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    continue
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def _drain(box: queue.Queue[Any]) -> None:
    while True:
        try:
            box.get_nowait()
        except queue.Empty:
            return

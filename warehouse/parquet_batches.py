"""A table handed over in row batches, and the one Parquet write of a table or of its batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["BATCH_ROWS", "TableBatches", "write_parquet"]

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

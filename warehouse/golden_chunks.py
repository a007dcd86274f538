"""A full golden build in customer chunks: which records each chunk reads, checked in SQL.

Survivorship, classification, contacts, addresses and facts are decided per customer, so the
golden tables of a set of whole customers do not depend on any other customer. A full build
can therefore read, build and stage a slice of customers at a time (``scale.golden_chunk_records``
records), holding one slice's frames instead of every record's: the chunks cut the customers,
in ``customer_id`` order, into runs of about that many records (a customer is never split).
The rows are the same as one build over every record; only the order of the fact tables'
rows (transactions, interactions: grouped by chunk) differs, which no table's content hash
sees (``tests/pipelines/test_golden_chunks.py``).

What ``build_golden`` checks over its input (every record has one customer, no record key
twice, every fact has a record) must hold over the whole set, not per slice: a record
without a customer would otherwise be in no slice. :func:`check_golden_inputs` checks it in
SQL, with the same messages, once before the chunks; the chunks' builds do not check their
slices again (``build_golden_chunk(..., inputs_checked=True)``).
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import duckdb
import pandas as pd

from warehouse.db import table_exists
from warehouse.golden import GoldenTables, build_golden
from warehouse.settings import GoldenSettings

__all__ = [
    "GoldenInputs",
    "build_golden_chunk",
    "check_golden_inputs",
    "chunk_where",
    "drop_chunk_plan",
    "plan_golden_chunks",
]


class GoldenInputs(NamedTuple):
    """What ``build_golden`` reads for a set of whole customers (one chunk, or every record)."""

    records: pd.DataFrame
    assignments: pd.DataFrame
    scores: pd.DataFrame | None
    transactions: pd.DataFrame | None
    interactions: pd.DataFrame | None


def build_golden_chunk(
    inputs: GoldenInputs,
    settings: GoldenSettings,
    run_id: str,
    as_of: date,
    inputs_checked: bool = False,
) -> GoldenTables:
    """``build_golden`` of one chunk's inputs: a pure function of picklable arguments, so a
    helper process (``cleaning._slices.clean_slices``) can build a chunk beside this one.

    ``inputs_checked``: :func:`check_golden_inputs` passed over every chunk's inputs, so
    ``build_golden`` does not check each chunk's records and assignments again."""
    return build_golden(
        inputs.records,
        inputs.assignments,
        inputs.scores,
        inputs.transactions,
        inputs.interactions,
        settings,
        run_id,
        as_of,
        inputs_checked=inputs_checked,
    )


_CHUNK_OF = "_golden_chunk_of"  # TEMP: record_key → chunk number
_FACTS = (("clean.transactions", "transactions"), ("clean.interactions", "interactions"))


def plan_golden_chunks(
    con: duckdb.DuckDBPyConnection, assignments: str, records_per_chunk: int
) -> list[int]:
    """Number every assigned record's chunk (a TEMP table); return the chunk numbers in order.

    Customers are taken in ``customer_id`` order and a customer's chunk is the number of
    records before it divided by ``records_per_chunk``, so a chunk holds whole customers,
    about ``records_per_chunk`` records (more when one customer alone has more), and chunk
    ``k`` holds only customers sorting before those of chunk ``k + 1``.

    Args:
        con: the warehouse.
        assignments: a table of ``record_key, customer_id`` (this run's IDs).
        records_per_chunk: the records a chunk should hold (≥ 1).

    Returns:
        The chunk numbers, ascending; ``[0]`` when there is no record (one empty build).
    """
    if records_per_chunk < 1:
        raise ValueError(f"records_per_chunk must be at least 1, got {records_per_chunk}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_CHUNK_OF} AS"
        " WITH sizes AS (SELECT customer_id, count(*) AS n"
        f" FROM {assignments} GROUP BY customer_id),"
        " placed AS (SELECT customer_id, sum(n) OVER (ORDER BY customer_id"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n AS before FROM sizes)"
        f" SELECT a.record_key, (p.before // {int(records_per_chunk)})::BIGINT AS chunk"
        f" FROM {assignments} AS a JOIN placed AS p USING (customer_id)"
    )
    chunks = [int(c) for (c,) in con.execute(
        f"SELECT DISTINCT chunk FROM {_CHUNK_OF} ORDER BY chunk"
    ).fetchall()]  # fmt: skip
    return chunks or [0]


def chunk_where(chunk: int) -> str:
    """SQL condition on ``record_key``: in ``chunk`` (after :func:`plan_golden_chunks`)."""
    return f"record_key IN (SELECT record_key FROM {_CHUNK_OF} WHERE chunk = {int(chunk)})"


def drop_chunk_plan(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the TEMP table of :func:`plan_golden_chunks`."""
    con.execute(f"DROP TABLE IF EXISTS {_CHUNK_OF}")


def _sample(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, list[str]]:
    (count,) = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0]
    if not count:
        return 0, []
    rows = con.execute(f"SELECT * FROM ({sql}) ORDER BY ALL LIMIT 5").fetchall()
    return int(count), [str(r[0]) for r in rows]


def check_golden_inputs(con: duckdb.DuckDBPyConnection, assignments: str) -> None:
    """What ``build_golden`` checks over its inputs, over the whole set (SQL).

    Args:
        con: the warehouse (``clean.records`` and the facts tables).
        assignments: a table of ``record_key, customer_id``.

    Raises:
        ValueError: a record key repeats in ``clean.records`` or in the assignments, a record
            has no customer, an assignment has a null customer, or a fact refers to no record.
    """
    n, sample = _sample(
        con, "SELECT record_key FROM clean.records GROUP BY record_key HAVING count(*) > 1"
    )
    if n:
        raise ValueError(f"clean records repeat record_key: {sample}")
    n, sample = _sample(
        con, f"SELECT record_key FROM {assignments} GROUP BY record_key HAVING count(*) > 1"
    )
    if n:
        raise ValueError(f"a record is assigned to two customers: {sample}")
    n, sample = _sample(
        con,
        "SELECT record_key FROM clean.records"
        f" WHERE record_key NOT IN (SELECT record_key FROM {assignments}"
        " WHERE record_key IS NOT NULL)",
    )
    if n:
        raise ValueError(f"{n} clean records have no customer_id: {sample}")
    (nulls,) = con.execute(
        f"SELECT count(*) FROM {assignments} WHERE customer_id IS NULL"
    ).fetchall()[0]
    if nulls:
        raise ValueError("assignments contain a null customer_id")
    for table, kind in _FACTS:
        if not table_exists(con, table):
            continue
        n, sample = _sample(
            con,
            f"SELECT record_key FROM {table}"
            " WHERE record_key IS NULL OR record_key NOT IN"
            " (SELECT record_key FROM clean.records WHERE record_key IS NOT NULL)",
        )
        if n:
            raise ValueError(f"{n} {kind} rows refer to unknown records: {', '.join(sample)}")

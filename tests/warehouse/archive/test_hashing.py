"""The fast table content hash equals the original all-SQL definition (old snapshots verify)."""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import pyarrow as pa
import pytest

from warehouse.archive._hashing import logical_type, table_content_hash


def _reference_hash(table: pa.Table) -> str:
    """The definition the first snapshots were written with: one SQL statement, ``||`` chains."""
    columns = sorted(table.column_names)

    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    if columns:
        parts = []
        for column in columns:
            value = f"CAST({quoted(column)} AS VARCHAR)"
            parts.append(
                f"CASE WHEN {quoted(column)} IS NULL THEN 'N' "
                f"ELSE 'V' || CAST(strlen({value}) AS VARCHAR) || ':' || {value} END"
            )
        sql = (
            f"WITH h AS (SELECT sha256({' || '.join(parts)}) AS d FROM t) "
            "SELECT sha256(coalesce(string_agg(d, ',' ORDER BY d), '')) FROM h"
        )
    else:
        sql = f"SELECT sha256(CAST({table.num_rows} AS VARCHAR))"  # no columns: the row count
    con = duckdb.connect()
    if columns:
        con.register("t", table)
    rows = con.execute(sql).fetchall()
    con.close()
    header = ";".join(f"{c}:{logical_type(table.schema.field(c).type)}" for c in columns)
    digest = hashlib.sha256()
    digest.update(header.encode("utf-8"))
    digest.update(f"|rows={table.num_rows}|".encode())
    digest.update(str(rows[0][0]).encode("ascii"))
    return digest.hexdigest()


def _mixed(rows: int) -> pa.Table:
    return pa.table(
        {
            "customer_id": [f"C20240315{i:03d}" for i in range(rows)],
            "name": [
                ["北京星辰科技有限公司", "", None, 'O\'Brien "Ltd"', "a,b"][i % 5]
                for i in range(rows)
            ],
            "n": pa.array([None if i % 7 == 0 else i * 3 for i in range(rows)], pa.int64()),
            "small": pa.array([i % 3 for i in range(rows)], pa.int32()),
            "amount": [None if i % 4 == 0 else i / 3 for i in range(rows)],
            "flag": [None if i % 6 == 0 else i % 2 == 0 for i in range(rows)],
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(rows)],
            "at": [dt.datetime(2024, 1, 1, 8, 30) + dt.timedelta(hours=i) for i in range(rows)],
            "tags": [[f"t{i}", None] if i % 2 else None for i in range(rows)],
        }
    )


CASES = [
    {"id": "mixed types", "table": _mixed(40)},
    {"id": "duplicate rows", "table": pa.concat_tables([_mixed(5), _mixed(5)])},
    {"id": "null vs empty text", "table": pa.table({"a": ["", None, "", None]})},
    {"id": "length prefix", "table": pa.table({"a": ["ab", "a"], "b": ["c", "bc"]})},
    {"id": "empty table", "table": _mixed(0)},
    {"id": "no columns", "table": pa.table({"x": [1, 2]}).drop(["x"])},
    {"id": "all-null column", "table": pa.table({"a": pa.nulls(3), "b": ["x", "y", "z"]})},
    {"id": "large_string", "table": pa.table({"a": pa.array(["x", None], pa.large_string())})},
    {"id": "quoted name", "table": pa.table({'we"ird col': ["1", "2"], "Z": [1, 2]})},
    {"id": "many chunks", "table": pa.concat_tables([_mixed(3)] * 7)},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_fast_hash_equals_the_reference_definition(case: dict) -> None:
    assert table_content_hash(case["table"]) == _reference_hash(case["table"])


def test_sliced_arrays_hash_like_fresh_ones() -> None:
    table = _mixed(50)
    part = table.slice(13, 20)
    fresh = pa.Table.from_pylist(part.to_pylist(), schema=part.schema)
    assert table_content_hash(part) == _reference_hash(part) == table_content_hash(fresh)


def test_hash_ignores_row_and_column_order_but_sees_values() -> None:
    table = _mixed(30)
    shuffled = table.take(pa.array(list(range(29, -1, -1)))).select(table.column_names[::-1])
    assert table_content_hash(shuffled) == table_content_hash(table)
    changed = table.set_column(
        0, "customer_id", pa.array(["X", *table["customer_id"][1:].to_pylist()])
    )
    assert table_content_hash(changed) != table_content_hash(table)
    doubled = pa.concat_tables([table, table.slice(0, 1)])
    assert table_content_hash(doubled) != table_content_hash(table)


def test_more_rows_than_one_join_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import warehouse.archive._hashing as hashing

    monkeypatch.setattr(hashing, "_SORT_BATCH", 7)  # many batches: commas between batches count
    table = _mixed(50)
    assert table_content_hash(table) == _reference_hash(table)


def test_digest_order_is_the_stable_sort_of_the_digests() -> None:
    import os

    import numpy as np

    from warehouse.archive._digest_cache import ROW, digest_order, table_rows

    rng = np.random.default_rng(7)
    digests = np.frombuffer(os.urandom(32 * 5000), dtype="S32").copy()
    digests[rng.integers(0, 5000, 600)] = digests[rng.integers(0, 5000, 600)]  # rows twice
    digests[10] = digests[5][:31] + b"\x00"  # a trailing zero byte
    want = np.argsort(digests, kind="stable")
    assert np.array_equal(digest_order(digests), want)
    # two different digests with the same first 8 bytes: still the order of the whole digests
    shared = digests.copy()
    shared[20] = shared[30][:8] + b"\xff" * 24
    shared[21] = shared[30][:8] + b"\x00" * 24
    assert np.array_equal(digest_order(shared), np.argsort(shared, kind="stable"))
    # the cache record: rows in digest order, each with its own guard, key and position
    guards = rng.integers(0, 2**63, len(shared), dtype=np.uint64)
    keys = rng.integers(0, 2**32, len(shared), dtype=np.uint32)
    rows = table_rows([], shared, guards, keys).rows
    order = np.argsort(shared, kind="stable")
    assert rows.dtype == ROW
    assert np.array_equal(rows["d"], shared[order]) and np.array_equal(rows["p"], order)
    assert np.array_equal(rows["g"], guards[order]) and np.array_equal(rows["k"], keys[order])

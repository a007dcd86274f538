"""The nightly's day/month orders come from the few date texts that can decide them (SQL
pre-filter) and equal the orders inferred from every date text of the warehouse."""

from __future__ import annotations

import random

import duckdb
import pandas as pd

from cleaning import date_orders
from cleaning._steps import DATE_FIELDS
from warehouse.clean_delta import CURRENT, distinct_date_values

_TEXTS = [
    "2021-03-04", "2021/03/04", "20210304", "2021年3月4日", "44197", "1609459200",
    "13/05/2020", "05/13/2020", "5/6/2020", "05.13.20", "13-5-2020 10:30",
    " 13 / 5 / 2020 ", "１３/０５/２０２０", "０５/１３/２０２０", "13/05/2020\t",
    "\u200b13/05/2020", "无", "-", "NULL", "", "   ", "2020-13-05", "12/12/2012",
]  # fmt: skip


def _orders_of_every_text(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The reference: the orders inferred from every distinct date text, unfiltered."""
    frame = con.execute(f"SELECT * FROM {CURRENT}").df()
    return date_orders(frame.astype("string"))


def test_prefiltered_date_texts_give_the_orders_of_every_text() -> None:
    rng = random.Random(7)
    con = duckdb.connect()
    try:
        for _ in range(25):
            rows = [
                {
                    "source_system": rng.choice(["a", "b", "c"]),
                    **{f: rng.choice([*_TEXTS, None]) for f in DATE_FIELDS},
                }
                for _ in range(rng.randrange(1, 12))
            ]
            frame = pd.DataFrame(rows).astype("string")
            con.register("_rows", frame)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {CURRENT} AS SELECT * FROM _rows")
            con.unregister("_rows")
            texts = distinct_date_values(con, DATE_FIELDS)
            assert date_orders(texts) == _orders_of_every_text(con)
            assert set(texts["source_system"]) == set(frame["source_system"])
    finally:
        con.close()


def test_iso_dates_do_not_reach_python() -> None:
    con = duckdb.connect()
    try:
        con.execute(
            f"CREATE TEMP TABLE {CURRENT} AS SELECT * FROM (VALUES"
            " ('a', '2021-03-04', '13/05/2020'), ('a', '20210304', '１３/０５/２０２０'),"
            " ('b', '2021年3月4日', NULL)) AS t(source_system, registered_date, updated_at)"
        )
        texts = distinct_date_values(con, DATE_FIELDS)
        kept = set(texts["registered_date"].dropna()) | set(texts["updated_at"].dropna())
        assert kept == {"13/05/2020", "１３/０５/２０２０", "2021年3月4日"}
        assert date_orders(texts) == {"a": "dmy", "b": "auto"}
    finally:
        con.close()

"""The analyst mart's nightly delta: equal to a full rebuild, and rebuilt whole when it must be."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from warehouse.archive import read_tables_arrow
from warehouse.archive._hashing import table_content_hash
from warehouse.dormant import hide_customers
from warehouse.security import KeyRing, analyst_mart_key, open_analyst_mart, pseudonym_secret
from warehouse.security.mart import build_analyst_mart_arrow
from warehouse.security.mart_delta import (
    CHANGES_DIR,
    MartPublish,
    publish_mart,
    read_mart_parquet,
)

TABLES = ["golden.customers", "golden.contacts", "golden.customer_ids"]
DAY = date(2026, 11, 24)


def _customers(rows: list[tuple[str, str, str, str | None, str]]) -> pa.Table:
    ids, names, kinds, phones, provinces = zip(*rows, strict=True)
    return pa.table(
        {
            "customer_id": list(ids),
            "customer_name": list(names),
            "customer_type": list(kinds),
            "phone": pa.array(list(phones), pa.string()),
            "province": list(provinces),
        }
    )


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    con.execute("CREATE SCHEMA staging")
    customers = _customers(
        [
            ("C1", "张伟", "individual", "13912345678", "北京"),
            ("C2", "北京星辰科技有限公司", "enterprise", "01088886666", "北京"),
            ("C3", "李娜", "individual", None, "上海"),
            ("C4", "王芳", "individual", "13800000004", "广东"),
        ]
    )
    contacts = pa.table(
        {
            "customer_id": ["C1", "C1", "C2", "C4"],
            "phone": ["13912345678", "13700000001", "01088886666", "13800000004"],
            "email": ["zw@example.com", None, "info@xc.cn", "wf@example.com"],
        }
    )
    ids = pa.table(
        {
            "customer_id": ["C1", "C2", "C3", "C4"],
            "event": ["created"] * 4,
            "other_customer_id": pa.array([None] * 4, pa.string()),
        }
    )
    for name, table in (("customers", customers), ("contacts", contacts), ("customer_ids", ids)):
        con.register("_t", table)
        con.execute(f"CREATE TABLE golden.{name} AS SELECT * FROM _t")
        con.unregister("_t")
    return con


def _publish(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    ring: KeyRing,
    changed: dict[str, str] | None,
    states: tuple[str | None, str | None],
    hidden: set[str] = frozenset(),  # type: ignore[assignment]
    run_date: date = DAY,
    every: int = 7,
) -> MartPublish:
    return publish_mart(
        con,
        tables=TABLES,
        hidden=hidden,
        changed=changed,
        states=states,
        duckdb_path=root / "mart.duckdb",
        parquet_dir=root / "parquet",
        key=ring,
        run_date=run_date,
        full_every_days=every,
        allow_unsafe_crypto=True,
    )


def _canon(table: pa.Table) -> str:
    return table_content_hash(
        pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})
    )


def _assert_equals_full(
    con: duckdb.DuckDBPyConnection, root: Path, ring: KeyRing, hidden=()
) -> None:
    full = build_analyst_mart_arrow(
        hide_customers(read_tables_arrow(con, TABLES), set(hidden)), pseudonym_secret(ring)
    )
    with open_analyst_mart(root / "mart.duckdb", analyst_mart_key(ring), read_only=True) as mart:
        for name, table in full.items():
            assert _canon(mart.sql(f"SELECT * FROM {name}").to_arrow_table()) == _canon(table), name
    for name, table in full.items():
        parquet = read_mart_parquet(root / "parquet", name, analyst_mart_key(ring))
        assert _canon(parquet) == _canon(table), name


def _night(con: duckdb.DuckDBPyConnection, customers: list[str]) -> dict[str, str]:
    """What a delta swap reports: every table's rows of ``customers`` replaced."""
    con.register("_ids", pa.table({"customer_id": customers}))
    con.execute("CREATE OR REPLACE TABLE staging.touched AS SELECT * FROM _ids")
    con.unregister("_ids")
    where = "customer_id IN (SELECT customer_id FROM staging.touched)"
    return {t: where for t in TABLES}


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing(secrets.token_bytes(32))


def test_nightly_deltas_equal_a_full_rebuild(tmp_path: Path, ring: KeyRing) -> None:
    con = _warehouse()
    first = _publish(con, tmp_path, ring, None, (None, "s1"))
    assert first.mode == "full" and first.reason == "full golden build"
    _assert_equals_full(con, tmp_path, ring)

    # night 1: C1's phone changes, C3 is deleted, C5 is new
    con.execute("UPDATE golden.customers SET phone = '13911112222' WHERE customer_id = 'C1'")
    con.execute("UPDATE golden.contacts SET phone = '13911112222' WHERE phone = '13912345678'")
    con.execute("DELETE FROM golden.customers WHERE customer_id = 'C3'")
    con.execute("DELETE FROM golden.customer_ids WHERE customer_id = 'C3'")
    con.execute("INSERT INTO golden.customers VALUES ('C5', '赵敏', 'individual', NULL, '江苏')")
    night = _publish(con, tmp_path, ring, _night(con, ["C1", "C3", "C5"]), ("s1", "s2"))
    assert (night.mode, night.customers, night.seq) == ("delta", 3, 1)
    _assert_equals_full(con, tmp_path, ring)

    # night 2: C4 goes to the dormant archive (hidden), C1 changes again; C2 merged into C4
    con.execute("UPDATE golden.customers SET province = '天津' WHERE customer_id = 'C1'")
    con.execute("INSERT INTO golden.customer_ids VALUES ('C2', 'merged_into', 'C4')")
    night = _publish(con, tmp_path, ring, _night(con, ["C1", "C2"]), ("s2", "s3"), {"C4"})
    assert (night.mode, night.customers, night.seq) == ("delta", 3, 2)
    _assert_equals_full(con, tmp_path, ring, {"C4"})
    # night 3: nothing changed in golden, C4 reactivated
    night = _publish(con, tmp_path, ring, _night(con, []), ("s3", "s3"), set())
    assert (night.mode, night.customers) == ("delta", 1)
    _assert_equals_full(con, tmp_path, ring)
    assert len(list((tmp_path / "parquet" / CHANGES_DIR / "_replaced").glob("*.parquet"))) == 3


def test_the_mart_is_rebuilt_whole_when_the_delta_would_be_wrong(
    tmp_path: Path, ring: KeyRing
) -> None:
    con = _warehouse()
    _publish(con, tmp_path, ring, None, (None, "s1"))
    # the golden state is not the one the mart was written from (a crash, a restore)
    redo = _publish(con, tmp_path, ring, _night(con, ["C1"]), ("other", "s2"))
    assert redo.mode == "full" and "golden state" in redo.reason
    assert not (tmp_path / "parquet" / CHANGES_DIR).exists()
    # another master key: other pseudonyms and mart key
    other = KeyRing(secrets.token_bytes(32))
    redo = _publish(con, tmp_path / "k2", other, None, (None, "s2"))
    redo = _publish(con, tmp_path / "k2", ring, _night(con, ["C1"]), ("s2", "s3"))
    assert redo.mode == "full" and "keys" in redo.reason
    # export_full_every_days passed since the last full write
    assert _publish(con, tmp_path / "k2", ring, _night(con, []), ("s3", "s4")).mode == "delta"
    later = DAY + timedelta(days=7)
    redo = _publish(con, tmp_path / "k2", ring, _night(con, []), ("s4", "s5"), run_date=later)
    assert redo.mode == "full" and "7 day(s)" in redo.reason
    assert not (tmp_path / "k2" / "parquet" / CHANGES_DIR).exists()
    _assert_equals_full(con, tmp_path / "k2", ring)


def test_a_column_empty_everywhere_that_gets_values_rebuilds(tmp_path: Path, ring: KeyRing) -> None:
    con = _warehouse()
    con.execute("ALTER TABLE golden.customers ADD COLUMN lifecycle VARCHAR")
    _publish(con, tmp_path, ring, None, (None, "s1"))  # lifecycle typed NULL in the mart
    con.execute("UPDATE golden.customers SET lifecycle = 'active' WHERE customer_id = 'C2'")
    redo = _publish(con, tmp_path, ring, _night(con, ["C2"]), ("s1", "s2"))
    assert redo.mode == "full" and "empty" in redo.reason
    _assert_equals_full(con, tmp_path, ring)


def test_each_table_replaces_only_the_customers_whose_rows_of_it_changed(
    tmp_path: Path, ring: KeyRing
) -> None:
    from warehouse.security.encryption import encrypt_parquet, read_encrypted_parquet
    from warehouse.security.masking import pseudonyms

    con = _warehouse()
    _publish(con, tmp_path, ring, None, (None, "s1"))
    # the swap replaced C1's customers row (re-classified) and C4's contacts rows only
    con.execute("UPDATE golden.customers SET province = '天津' WHERE customer_id = 'C1'")
    con.execute("UPDATE golden.contacts SET email = 'new@example.com' WHERE customer_id = 'C4'")
    con.execute("CREATE TABLE staging.c1 AS SELECT 'C1' AS customer_id")
    con.execute("CREATE TABLE staging.c4 AS SELECT 'C4' AS customer_id")
    changed = {
        "golden.customers": "customer_id IN (SELECT customer_id FROM staging.c1)",
        "golden.contacts": "customer_id IN (SELECT customer_id FROM staging.c4)",
    }
    night = _publish(con, tmp_path, ring, changed, ("s1", "s2"), {"C3"})  # C3 now dormant
    assert (night.mode, night.customers) == ("delta", 3)
    _assert_equals_full(con, tmp_path, ring, {"C3"})
    mart_key = analyst_mart_key(ring)
    listed = tmp_path / "parquet" / CHANGES_DIR / "_replaced" / "seq=000001.parquet"
    replaced = read_encrypted_parquet(listed, mart_key).to_pylist()
    c1, c3, c4 = pseudonyms(["C1", "C3", "C4"], pseudonym_secret(ring))
    assert sorted((r["table_name"], r["customer_id"]) for r in replaced) == sorted(
        [("mart.customers", c1), ("mart.customers", c3), ("mart.contacts", c4),
         ("mart.contacts", c3), ("mart.customer_ids", c3)]
    )  # fmt: skip
    # a list written before lists were per table (no table_name) still names every table's
    encrypt_parquet(pa.table({"customer_id": [c1]}), listed, mart_key)
    contacts = read_mart_parquet(tmp_path / "parquet", "contacts", mart_key)
    assert c1 not in contacts.column("customer_id").to_pylist()  # its rows: the night's (none)


def _mart_tables(root: Path, ring: KeyRing) -> dict[str, pa.Table]:
    key = analyst_mart_key(ring)
    out = {}
    with open_analyst_mart(root / "mart.duckdb", key, read_only=True) as mart:
        for table in TABLES:
            name = "mart." + table.split(".")[1]
            out[name] = mart.sql(f"SELECT * FROM {name}").to_arrow_table()
            out[name + " (parquet)"] = read_mart_parquet(root / "parquet", name, key)
    return out


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_a_full_rebuild_in_row_batches_equals_one_of_whole_tables(
    tmp_path: Path, ring: KeyRing, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole mart is read, masked and written a row batch at a time: the same tables
    (values and column types, in the mart database and the Parquet files) as in one batch,
    also where a batch's masked column is all null (C3's phone alone) and customers are hidden."""
    from warehouse import parquet_batches

    con = _warehouse()
    whole = _publish(con, tmp_path / "whole", ring, None, (None, "s1"), hidden={"C2"})
    monkeypatch.setattr(parquet_batches, "BATCH_ROWS", rows)
    batched = _publish(con, tmp_path / "batched", ring, None, (None, "s1"), hidden={"C2"})
    assert whole.mode == batched.mode == "full"
    assert whole.rows == batched.rows == 9
    one, many = _mart_tables(tmp_path / "whole", ring), _mart_tables(tmp_path / "batched", ring)
    for name, table in one.items():
        assert many[name].schema == table.schema, name
        assert many[name].equals(table), name
    _assert_equals_full(con, tmp_path / "batched", ring, hidden={"C2"})

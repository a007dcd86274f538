"""Sandboxed SQL: an attack list fails for analyst, steward and ops, and passes for admin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from warehouse.security import (
    KeyRing,
    SandboxError,
    analyst_mart_key,
    lock_down,
    open_analyst_mart,
    role_database,
    sandboxed_query,
)

PHONE = "13912345678"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A warehouse, an analyst mart and the plaintext files an attacker would go after."""
    root = tmp_path_factory.mktemp("sandbox")
    landing = root / "landing"
    landing.mkdir()
    (landing / "crm.csv").write_text(f"name,phone\n张三,{PHONE}\n", encoding="utf-8")
    (landing / "leads.json").write_text(f'[{{"phone": "{PHONE}"}}]', encoding="utf-8")
    pd.DataFrame({"phone": [PHONE]}).to_parquet(root / "export.parquet")
    duckdb.connect(str(root / "other.duckdb")).close()
    wh = root / "warehouse.duckdb"
    con = duckdb.connect(str(wh))
    for sql in [
        "CREATE SCHEMA golden",
        "CREATE SCHEMA quarantine",
        "CREATE SCHEMA ops",
        "CREATE SCHEMA clean",
        f"CREATE TABLE golden.customers AS SELECT 'C1' AS customer_id, '{PHONE}' AS phone",
        "CREATE TABLE golden.customers_history AS SELECT 'C1' AS customer_id, "
        f"'{PHONE}' AS phone, DATE '2025-01-01' AS valid_from, NULL::DATE AS valid_to",
        f"CREATE TABLE clean.records AS SELECT 'crm:1' AS record_key, '{PHONE}' AS phone",
        "CREATE TABLE quarantine.rows AS SELECT 'crm' AS source_system, 'crm.csv' AS "
        f"source_file, 3 AS source_row, '{PHONE},张三' AS raw_content, 'bad_phone' AS reason",
        "CREATE TABLE ops.stage_stats AS SELECT 'r1' AS run_id, 12 AS records",
        "CREATE TABLE ops.check_results AS SELECT 'r1' AS run_id, 'phone_valid' AS name, "
        f'\'{{"unexpected_count": 1, "unexpected_examples": ["{PHONE}"], '
        '"unexpected_keys": ["crm:1"]}\' AS observed',
    ]:
        con.execute(sql)
    con.close()
    ring = KeyRing(b"k" * 32)
    mart = open_analyst_mart(root / "mart.duckdb", analyst_mart_key(ring), allow_unsafe_crypto=True)
    mart.execute("CREATE SCHEMA mart")
    mart.execute(
        "CREATE TABLE mart.customers AS SELECT 'p1' AS customer_id, '139****5678' AS phone"
    )
    mart.close()
    return {
        "root": root,
        "csv": landing / "crm.csv",
        "json": landing / "leads.json",
        "parquet": root / "export.parquet",
        "db": root / "other.duckdb",
        "wh": wh,
        "mart": root / "mart.duckdb",
    }


@pytest.fixture(params=["admin", "analyst", "steward", "ops"])
def role_con(request, files) -> Iterator[tuple[str, duckdb.DuckDBPyConnection]]:
    role = request.param
    if role == "admin":  # as the CLI opens it: the warehouse attached read-only, unrestricted
        con = duckdb.connect()
        con.execute(f"ATTACH '{files['wh']}' AS warehouse (READ_ONLY)")
        con.execute("USE warehouse")
    elif role == "analyst":
        ring = analyst_mart_key(KeyRing(b"k" * 32))
        con = lock_down(open_analyst_mart(files["mart"], ring, read_only=True))
    else:
        with duckdb.connect(str(files["wh"]), read_only=True) as wh:
            con = role_database(wh, role)
    yield role, con
    con.close()


# (name, sql, admin may run it?) — None: DuckDB or the test machine refuses it for everyone
# (no network for INSTALL; external access cannot be switched on while running; the admin's
# CLI connection is read-only), so only the non-admin refusal is asserted.
ATTACKS: list[tuple[str, str, bool | None]] = [
    ("read_csv", "SELECT * FROM read_csv('{csv}')", True),
    ("replacement scan", "SELECT * FROM '{csv}'", True),
    ("read_parquet", "SELECT * FROM read_parquet('{parquet}')", True),
    ("parquet_metadata", "SELECT * FROM parquet_metadata('{parquet}')", True),
    ("read_json", "SELECT * FROM read_json_auto('{json}')", True),
    ("read_text", "SELECT * FROM read_text('{csv}')", True),
    ("read_blob", "SELECT * FROM read_blob('{csv}')", True),
    ("sniff_csv", "SELECT * FROM sniff_csv('{csv}')", True),
    ("glob", "SELECT * FROM glob('{root}/*')", True),
    ("copy to", "COPY (SELECT 42 AS x) TO '{root}/leak_{role}.csv'", True),
    ("export database", "EXPORT DATABASE '{root}/dump_{role}'", True),
    ("attach file", "ATTACH '{db}' AS other_{role} (READ_ONLY)", True),
    ("attach memory", "ATTACH ':memory:' AS scratch_{role}", True),
    ("pragma", "PRAGMA enable_profiling", True),
    ("set external access", "SET enable_external_access = true", None),
    ("reset external access", "RESET enable_external_access", None),
    ("unlock configuration", "SET lock_configuration = false", True),
    ("set variable", "SET VARIABLE leak = 1", True),
    ("install", "INSTALL httpfs", None),
    ("load", "LOAD httpfs", None),
    ("create table", "CREATE TABLE golden.leak AS SELECT 1", None),
    ("two statements", "SELECT 1; SELECT 2", True),
]


def _run(role: str, con: duckdb.DuckDBPyConnection, sql: str) -> None:
    if role == "admin":
        con.execute(sql).fetchall()
    else:
        sandboxed_query(con, sql).fetchall()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_list(role_con, files, attack) -> None:
    role, con = role_con
    _name, template, admin_ok = attack
    sql = template.format(role=role, **{k: str(v) for k, v in files.items()})
    if role == "admin":
        if admin_ok is None:
            return
        _run(role, con, sql)
        return
    with pytest.raises((SandboxError, duckdb.Error)):
        _run(role, con, sql)
    assert not (files["root"] / f"leak_{role}.csv").exists()


FILE_ATTACKS = [a for a in ATTACKS if "{csv}" in a[1] or "{parquet}" in a[1] or "{root}" in a[1]]


@pytest.mark.parametrize("attack", FILE_ATTACKS, ids=[a[0] for a in FILE_ATTACKS])
@pytest.mark.parametrize("role", ["analyst", "steward", "ops"])
def test_engine_refuses_file_access_even_without_the_statement_check(files, role, attack) -> None:
    """The second layer: the locked DuckDB itself refuses, whatever reaches it."""
    if role == "analyst":
        con = lock_down(
            open_analyst_mart(files["mart"], analyst_mart_key(KeyRing(b"k" * 32)), True)
        )
    else:
        with duckdb.connect(str(files["wh"]), read_only=True) as wh:
            con = role_database(wh, role)
    sql = attack[1].format(role=role, **{k: str(v) for k, v in files.items()})
    with con, pytest.raises(duckdb.Error):
        con.execute(sql).fetchall()
    for setting in ("enable_external_access", "lock_configuration"):
        with pytest.raises(duckdb.Error):
            con.execute(f"RESET {setting}")


def _objects(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = sandboxed_query(
        con,
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE database_name = current_database()",
    ).fetchall()
    return {r[0] for r in rows}


def test_each_role_holds_only_what_it_is_given(files) -> None:
    with duckdb.connect(str(files["wh"]), read_only=True) as wh:
        steward, ops = role_database(wh, "steward"), role_database(wh, "ops")
    analyst = lock_down(
        open_analyst_mart(files["mart"], analyst_mart_key(KeyRing(b"k" * 32)), True)
    )
    assert _objects(analyst) == {"mart.customers"}
    # stewards judge matches record by record (explain, the console): they read clean records
    assert _objects(steward) == {"golden.customers", "golden.customers_history", "clean.records"}
    assert _objects(ops) == {"ops.stage_stats", "ops.check_results", "ops.quarantine_counts"}
    # ops sees the figures of failed checks, not the failing values or their record keys
    observed = sandboxed_query(ops, "SELECT observed FROM ops.check_results").fetchall()
    assert observed == [('{"unexpected_count": 1}',)]
    # ops sees quarantine counts and reasons, never the quarantined content
    counts = sandboxed_query(ops, "SELECT * FROM ops.quarantine_counts").df()
    assert counts.to_dict("records") == [
        {"source_system": "crm", "source_file": "crm.csv", "reason": "bad_phone", "rows": 1}
    ]
    assert PHONE not in counts.to_string()
    for con, table in (
        (ops, "quarantine.rows"),
        (steward, "quarantine.rows"),
        (steward, "ops.stage_stats"),
        (analyst, "golden.customers"),
    ):
        with pytest.raises(duckdb.Error):
            sandboxed_query(con, f"SELECT * FROM {table}").fetchall()
    # the steward's point-in-time view works on its copy
    as_of = sandboxed_query(
        steward, f"SELECT phone FROM analytics.customer_as_of('C1', DATE '{date(2025, 6, 30)}')"
    ).fetchall()
    assert as_of == [(PHONE,)]
    for con in (steward, ops, analyst):
        con.close()

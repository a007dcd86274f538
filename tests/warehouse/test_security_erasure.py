"""Analyst mart masking, and erasure across warehouse, mart, exports and snapshots."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from warehouse.archive import publish_snapshot
from warehouse.security import (
    DecryptionError,
    ErasureTargets,
    KeyRing,
    analyst_mart_key,
    anonymize_dormant,
    build_analyst_mart,
    encrypt_parquet,
    encrypt_snapshot,
    erase_customer,
    erased_quarantine_rows,
    is_suppressed,
    open_analyst_mart,
    open_encrypted_warehouse,
    pseudonym_secret,
    read_parquet_any,
    read_snapshot,
    read_suppression,
    verify_snapshot_with_key,
    write_analyst_mart,
)
from warehouse.security.audit import AuditLog

# Customer C…001 is the person to erase; C…002 a company; C…003 another person.
ERASED = {"name": "李娜", "phone": "+8613800001111", "email": "lina@qq.com"}
OTHER_PERSON = {"name": "王小明", "phone": "+8613900002222", "email": "wxm@163.com"}


def _raw() -> pd.DataFrame:
    """Raw rows as delivered (all text, phone written with spaces)."""
    return pd.DataFrame(
        {
            "record_key": ["crm:1", "erp:7", "crm:2", "crm:3"],
            "source_system": ["crm", "erp", "crm", "crm"],
            "source_record_id": ["1", "7", "2", "3"],
            "source_file": ["crm.csv", "erp.xlsx", "crm.csv", "crm.csv"],
            "source_row": ["1", "4", "2", "3"],
            "customer_name": ["李娜", "李 娜", "北京星辰科技有限公司", "王小明"],
            "phone": ["138 0000 1111", "+86 138-0000-1111", "010-62345678", "13900002222"],
            "email": ["lina@qq.com", None, "info@xingchen.cn", "wxm@163.com"],
        },
        dtype="string",
    )


def _warehouse(con) -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["C20240315001", "C20240315002", "C20240315003"],
            "customer_name": ["李娜", "北京星辰科技有限公司", "王小明"],
            "customer_type": ["individual", "enterprise", "individual"],
            "contact_name": [None, "张伟", None],
            "phone": [ERASED["phone"], "+861062345678", OTHER_PERSON["phone"]],
            "email": [ERASED["email"], "info@xingchen.cn", OTHER_PERSON["email"]],
            "address": ["北京市海淀区中关村大街1号", "北京市朝阳区建国路8号", "上海市浦东新区"],
            "province": ["北京市", "北京市", "上海市"],
            "city": ["北京市", "北京市", "上海市"],
            "district": ["海淀区", "朝阳区", "浦东新区"],
            "tier": ["B", "A", "C"],
            "last_seen": ["2018-01-01", "2024-03-01", "2024-03-01"],
        }
    )
    crosswalk = pd.DataFrame(
        {
            "source_system": ["crm", "erp", "crm", "crm"],
            "source_record_id": ["1", "7", "2", "3"],
            "record_key": ["crm:1", "erp:7", "crm:2", "crm:3"],
            "customer_id": ["C20240315001", "C20240315001", "C20240315002", "C20240315003"],
            "match_score": [0.99, 0.99, 1.0, 1.0],
        }
    )
    pairs = pd.DataFrame({"left_key": ["crm:1"], "right_key": ["erp:7"], "score": [12.0]})
    quarantine = pd.DataFrame(
        {
            "source_system": ["crm", "crm"],
            "source_file": ["crm.csv", "crm.csv"],
            "source_row": [9, 10],
            "raw_content": ["李娜,138-0000-1111,,bad date", "someone else,12,,"],
            "reason": ["bad row", "bad row"],
        }
    )
    checks = pd.DataFrame(
        {"name": ["phone_valid"], "observed": [f'{{"sample": ["{ERASED["phone"]}"]}}']}
    )
    txns = pd.DataFrame(
        {"customer_id": ["C20240315001", "C20240315002"], "txn_amount": [10.0, 20.0]}
    )
    for schema in ("raw", "clean", "match", "golden", "quarantine", "ops"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for name, frame in {
        "raw.crm": _raw(),
        "clean.records": _raw(),
        "match.pairs": pairs,
        "golden.customers": customers,
        "golden.customers_history": customers.assign(valid_from="2024-03-15"),
        "golden.crosswalk": crosswalk,
        "golden.transactions": txns,
        "quarantine.rows": quarantine,
        "ops.check_results": checks,
    }.items():
        con.register("f", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
        con.unregister("f")


def _golden(con) -> dict[str, pd.DataFrame]:
    names = ("customers", "customers_history", "crosswalk", "transactions")
    return {f"golden.{n}": con.execute(f"SELECT * FROM golden.{n}").df() for n in names}


def _all_text(frames: dict[str, pd.DataFrame]) -> str:
    return "\n".join(f.astype("string").fillna("").to_csv(index=False) for f in frames.values())


def _needles(person: dict) -> list[str]:
    return [person["name"], person["phone"][3:], person["email"]]


@pytest.fixture
def setup(tmp_path: Path):
    ring = KeyRing(secrets.token_bytes(32))
    con = open_encrypted_warehouse(tmp_path / "wh.duckdb", ring, allow_unsafe_crypto=True)
    _warehouse(con)
    yield con, ring, tmp_path
    con.close()


def test_analyst_mart_has_no_unmasked_pii_but_keeps_joins(setup) -> None:
    con, ring, tmp = setup
    mart = build_analyst_mart(_golden(con), pseudonym_secret(ring))
    text = _all_text(mart)
    for person in (ERASED, OTHER_PERSON):
        for needle in _needles(person):
            assert needle not in text, needle
    assert "北京星辰科技有限公司" in text  # enterprise names stay readable
    assert "info@xingchen.cn" not in text and "中关村" not in text  # address dropped
    customers = mart["mart.customers"]
    assert set(customers["phone"]) >= {"138****1111", "139****2222"}
    assert "李*" in set(customers["customer_name"]) and "l***@qq.com" in set(customers["email"])
    assert not customers["customer_id"].str.startswith("C").any()
    joined = mart["mart.crosswalk"].merge(customers, on="customer_id")
    assert len(joined) == 4  # pseudonymous keys still join
    files = write_analyst_mart(mart, tmp / "mart.duckdb", tmp / "mart", ring, True)
    with open_analyst_mart(tmp / "mart.duckdb", analyst_mart_key(ring), True) as ro:
        assert ro.execute("SELECT count(*) FROM mart.customers").fetchall() == [(3,)]
    with pytest.raises(DecryptionError):
        open_encrypted_warehouse(tmp / "mart.duckdb", ring, read_only=True)  # master ≠ mart key
    assert read_parquet_any(files["mart.customers"], analyst_mart_key(ring)).num_rows == 3


def test_erasure_removes_the_person_everywhere_and_stays_erased(setup) -> None:
    con, ring, tmp = setup
    archive = tmp / "archive"
    info = publish_snapshot(_golden(con), archive, "run1", datetime(2024, 3, 15, 2, tzinfo=UTC))
    assert info is not None
    encrypt_snapshot(info.path, ring)
    exports = tmp / "exports"
    exports.mkdir()
    golden = _golden(con)
    encrypt_parquet(golden["golden.customers"], exports / "golden.customers.parquet", ring)
    golden["golden.customers"].to_csv(exports / "customers.csv", index=False)
    mart = build_analyst_mart(golden, pseudonym_secret(ring))
    write_analyst_mart(mart, tmp / "mart.duckdb", tmp / "mart", ring, True)
    audit = AuditLog(tmp / "audit.jsonl")

    report = erase_customer(
        con,
        "C20240315001",
        "PIPL request 2024-17",
        ring,
        ErasureTargets(archive, tmp / "mart.duckdb", tmp / "mart", (exports,)),
        actor="dpo",
        audit=audit,
        allow_unsafe_crypto=True,
    )

    tables = [
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name <> 'security'"
        ).fetchall()
    ]
    warehouse_text = _all_text({t: con.execute(f"SELECT * FROM {t}").df() for t in tables})
    snapshot_text = _all_text({k: v.to_pandas() for k, v in read_snapshot(info.path, ring).items()})
    export_text = _all_text(
        {
            "p": read_parquet_any(exports / "golden.customers.parquet", ring).to_pandas(),
            "c": pd.read_csv(exports / "customers.csv", dtype="string"),
        }
    )
    with open_analyst_mart(tmp / "mart.duckdb", analyst_mart_key(ring), True) as ro:
        mart_customers = ro.execute("SELECT * FROM mart.customers").df()
    for needle in _needles(ERASED):
        assert needle not in warehouse_text, needle
        assert needle not in snapshot_text, needle
        assert needle not in export_text, needle
    assert "138-0000-1111" not in warehouse_text  # the quarantined raw row is gone too
    assert "138****1111" not in set(mart_customers["phone"])
    assert len(mart_customers) == 2
    # other customers are untouched
    for needle in _needles(OTHER_PERSON):
        assert needle in warehouse_text and needle in snapshot_text
    assert verify_snapshot_with_key(info.path, ring) == []
    manifest = (info.path / "manifest.json").read_text(encoding="utf-8")
    assert "erasures" in manifest and "PIPL request 2024-17" in manifest
    # tombstone without PII, audit entry, report
    tomb = con.execute("SELECT * FROM security.tombstones").df()
    assert tomb["customer_id"].tolist() == ["C20240315001"]
    assert not any(n in _all_text({"t": tomb}) for n in _needles(ERASED))
    assert audit.verify().ok and report.summary()["snapshots_rewritten"] == 1
    assert report.warehouse_rows['"golden"."customers"'] == 1

    # the next nightly run re-delivers the same exports: suppressed, quarantined without content
    redelivered = _raw()
    flags = is_suppressed(redelivered, read_suppression(con), ring.derive("suppression"))
    assert flags.tolist() == [True, True, False, False]
    quarantined = erased_quarantine_rows(redelivered, flags)
    assert quarantined["reason"].tolist() == ["erased", "erased"]
    assert quarantined["raw_content"].isna().all()
    # another department delivers the same person under a new id: caught by name + phone
    new_id = pd.DataFrame(
        {"record_key": ["sales:99"], "customer_name": ["李娜"], "phone": ["13800001111"]},
        dtype="string",
    )
    assert is_suppressed(new_id, read_suppression(con), ring.derive("suppression")).all()
    # a different 李娜 with another phone is not suppressed
    namesake = new_id.assign(record_key="sales:100", phone="13712345678")
    assert not is_suppressed(namesake, read_suppression(con), ring.derive("suppression")).any()


def test_unknown_customer_is_refused(setup) -> None:
    con, ring, _ = setup
    with pytest.raises(ValueError, match="not in the warehouse"):
        erase_customer(con, "C19990101001", "typo", ring)


def test_retention_plan_and_anonymization(setup) -> None:
    con, ring, _ = setup
    customers = con.execute("SELECT * FROM golden.customers").df()
    facts = pd.DataFrame({"customer_id": ["C20240315002"], "txn_date": ["2015-01-01"]})
    plan = anonymize_dormant(customers, 5, date(2024, 6, 1), facts=facts)
    assert plan["customer_id"].tolist() == ["C20240315001"]
    assert plan["action"].tolist() == ["anonymize"] and plan["dormant_days"].iloc[0] > 5 * 365
    with pytest.raises(ValueError):
        anonymize_dormant(customers, 0, date(2024, 6, 1))
    erase_customer(con, "C20240315001", "retention", ring, mode="anonymize")
    row = con.execute(
        "SELECT customer_name, phone, email, province, tier FROM golden.customers "
        "WHERE customer_id = 'C20240315001'"
    ).fetchall()
    assert row == [(None, None, None, "北京市", "B")]  # counts by region/tier still work


@pytest.mark.parametrize("column", ["customer_name", "phone", "email"])
def test_delivery_with_an_all_empty_column_after_an_erasure(setup, column: str) -> None:
    """After an erasure, a delivery whose name, phone or e-mail column is entirely empty loads.

    ``Series.map`` over an all-null text column used to infer ``double`` and the check failed
    with ``ArrowTypeError: … double vs string``.
    """
    con, ring, tmp = setup
    erase_customer(
        con,
        "C20240315001",
        "PIPL request 2024-18",
        ring,
        ErasureTargets(tmp / "archive", None, None, ()),
        actor="dpo",
        audit=AuditLog(tmp / "audit.jsonl"),
        allow_unsafe_crypto=True,
    )
    suppression = read_suppression(con)
    secret = ring.derive("suppression")
    for storage in ("python", "pyarrow"):
        delivery = _raw().astype(pd.StringDtype(storage))
        delivery[column] = pd.Series([None] * len(delivery), dtype=pd.StringDtype(storage))
        flags = is_suppressed(delivery, suppression, secret)
        assert flags.dtype == bool
        # crm:1 is the erased record key; the others are suppressed only by name + phone/email
        assert flags.tolist()[0] is True and flags.tolist()[2:] == [False, False]


def test_erasure_over_a_delta_chain_keeps_every_snapshot_restorable(setup) -> None:
    """A full snapshot and two deltas on it, encrypted; the person is in the base and a delta."""
    from warehouse.archive import content_hash, delta_base, list_snapshots, load_snapshot
    from warehouse.archive.delta import SnapshotPolicy
    from warehouse.security._erase_sql import PersonMatch, erase_in_arrow

    con, ring, tmp = setup
    archive = tmp / "archive"

    def writer(table, path):
        encrypt_parquet(table, path, ring)

    def reader(path):
        return read_parquet_any(path, ring)

    nights = [_golden(con)]
    moved = nights[0]["golden.customers"].copy()
    moved.loc[moved["customer_id"] == "C20240315001", "address"] = "北京市海淀区新地址2号"
    moved.loc[moved["customer_id"] == "C20240315003", "tier"] = "B"
    nights.append({**nights[0], "golden.customers": moved})
    later = moved.copy()
    later.loc[later["customer_id"] == "C20240315002", "tier"] = "B"
    later = later[later["customer_id"] != "C20240315003"]  # gone at source
    nights.append({**nights[1], "golden.customers": later})
    infos = []
    for n, tables in enumerate(nights):
        base = delta_base(list_snapshots(archive), "daily", SnapshotPolicy())
        info = publish_snapshot(
            tables,
            archive,
            f"run{n}",
            datetime(2024, 3, 15 + n, 2, tzinfo=UTC),
            writer=writer,
            base=base,
            reader=reader,
        )
        infos.append(info)
    assert [i.storage for i in infos] == ["full", "delta", "delta"]
    before = {i.snapshot_id: load_snapshot(i.path, reader=reader) for i in infos}
    match = PersonMatch(customer_ids={"C20240315001"}, record_keys={"crm:1", "erp:7"})
    match.phones, match.emails = {ERASED["phone"]}, {ERASED["email"]}

    report = erase_customer(
        con,
        "C20240315001",
        "PIPL request 2024-18",
        ring,
        ErasureTargets(archive),
        actor="dpo",
        allow_unsafe_crypto=True,
    )

    assert report.summary()["snapshots_rewritten"] == 3
    for info in list_snapshots(archive):
        assert verify_snapshot_with_key(info.path, ring) == [], info.snapshot_id
        after = load_snapshot(info.path, reader=reader)  # verified: delta, base, rebuilt hashes
        expected = {
            name: erase_in_arrow(table, match)[0]
            for name, table in before[info.snapshot_id].items()
        }
        assert content_hash(after) == content_hash(expected)
        assert info.content_hash == content_hash(after)
    # residue scan: every file below the archive, decrypted, holds nothing of the person
    files = sorted(p for p in archive.rglob("*.parquet"))
    assert any(".add." in p.name for p in files)
    text = _all_text({str(p): read_parquet_any(p, ring).to_pandas() for p in files})
    assert "C20240315001" not in text  # (the manifests' erasure notes name the id, as before)
    text += "".join(p.read_text("utf-8") for p in archive.rglob("manifest.json"))
    for needle in [*_needles(ERASED), "新地址"]:
        assert needle not in text, needle
    for needle in _needles(OTHER_PERSON):
        assert needle in text

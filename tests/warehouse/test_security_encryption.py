"""Encryption at rest: the warehouse file and snapshot Parquet files open only with the key."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.archive import publish_snapshot
from warehouse.security import (
    DecryptionError,
    EncryptionUnavailableError,
    KeyRing,
    crypto_backend,
    encrypt_parquet,
    encrypt_snapshot,
    is_encrypted_parquet,
    open_encrypted_warehouse,
    read_encrypted_parquet,
    read_snapshot,
    rotate_snapshot_keys,
    rotate_warehouse_key,
    verify_snapshot_with_key,
)

PHONES = [f"+86139{i:08d}" for i in range(200)]


def _customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C20240315{i:03d}" for i in range(200)],
            "customer_name": ["张伟"] * 200,
            "phone": PHONES,
        }
    )


def _national(phone: str) -> bytes:
    return phone[3:].encode()


def _ring() -> KeyRing:
    return KeyRing(secrets.token_bytes(32))


def test_warehouse_opens_only_with_its_key_and_holds_no_plaintext(tmp_path: Path) -> None:
    ring, path = _ring(), tmp_path / "wh.duckdb"
    con = open_encrypted_warehouse(path, ring, allow_unsafe_crypto=True)
    con.execute("CREATE SCHEMA golden")
    con.register("f", _customers())
    con.execute("CREATE TABLE golden.customers AS SELECT * FROM f")
    con.close()
    data = path.read_bytes()
    assert not any(_national(p) in data for p in PHONES)
    assert "张伟".encode() not in data
    with pytest.raises(DecryptionError):
        open_encrypted_warehouse(path, _ring(), read_only=True)
    import duckdb

    with pytest.raises(duckdb.Error):
        duckdb.connect(str(path))  # no key: DuckDB refuses
    with open_encrypted_warehouse(path, ring, read_only=True) as ro:
        assert ro.execute("SELECT count(*) FROM golden.customers").fetchall() == [(200,)]


def test_writing_without_secure_crypto_needs_explicit_consent(tmp_path: Path) -> None:
    import duckdb

    if crypto_backend(duckdb.connect()) == "openssl":
        pytest.skip("httpfs (OpenSSL) is available: writing is secure, no consent needed")
    with pytest.raises(EncryptionUnavailableError, match="CUSTOMER_ARCHIVE_ALLOW_MBEDTLS"):
        open_encrypted_warehouse(tmp_path / "x.duckdb", _ring(), allow_unsafe_crypto=False)


def test_warehouse_key_rotation(tmp_path: Path) -> None:
    old, path = _ring(), tmp_path / "wh.duckdb"
    con = open_encrypted_warehouse(path, old, allow_unsafe_crypto=True)
    con.execute("CREATE SCHEMA golden; CREATE TABLE golden.t AS SELECT 42 AS answer")
    con.close()
    new = old.rotated(secrets.token_bytes(32))
    rotate_warehouse_key(path, old, new, allow_unsafe_crypto=True)
    with pytest.raises(DecryptionError):
        open_encrypted_warehouse(path, old, read_only=True)
    with open_encrypted_warehouse(path, new, read_only=True) as con2:
        assert con2.execute("SELECT answer FROM golden.t").fetchall() == [(42,)]


def test_parquet_encryption_round_trip_and_byte_scan(tmp_path: Path) -> None:
    ring, path = _ring(), tmp_path / "c.parquet"
    encrypt_parquet(_customers(), path, ring)
    data = path.read_bytes()
    assert is_encrypted_parquet(path)
    assert not any(_national(p) in data for p in PHONES) and "张伟".encode() not in data
    assert read_encrypted_parquet(path, ring).num_rows == 200
    with pytest.raises(OSError):
        pq.read_table(path)  # no key
    with pytest.raises(DecryptionError):
        read_encrypted_parquet(path, _ring())


def _snapshot(tmp_path: Path) -> tuple[Path, Path]:
    archive = tmp_path / "archive"
    info = publish_snapshot(
        {"golden.customers": _customers(), "golden.crosswalk": pa.table({"customer_id": ["C1"]})},
        archive,
        "run1",
        datetime(2024, 3, 15, 2, 0, tzinfo=UTC),
    )
    assert info is not None
    return archive, info.path


def test_snapshot_encryption_and_rotation(tmp_path: Path) -> None:
    archive, snap = _snapshot(tmp_path)
    ring = _ring()
    assert encrypt_snapshot(snap, ring) == 2
    for file in snap.glob("*.parquet"):
        data = file.read_bytes()
        assert is_encrypted_parquet(file)
        assert not any(_national(p) in data for p in PHONES)
    assert verify_snapshot_with_key(snap, ring) == []
    assert read_snapshot(snap, ring)["golden.customers"].num_rows == 200
    with pytest.raises(DecryptionError):
        read_snapshot(snap, _ring())

    new = ring.rotated(secrets.token_bytes(32))
    assert rotate_snapshot_keys(archive, new) == {snap.name: 2}
    assert rotate_snapshot_keys(archive, new) == {}  # idempotent
    with pytest.raises(DecryptionError):
        read_snapshot(snap, ring)  # the old key alone no longer opens it
    assert verify_snapshot_with_key(snap, KeyRing(new.current)) == []
    manifest = (snap / "manifest.json").read_text(encoding="utf-8")
    assert new.current_id in manifest and "key_rotations" in manifest


def test_compaction_leaves_no_deleted_row_in_the_file(tmp_path: Path) -> None:
    """DuckDB keeps deleted rows in free blocks; after an erasure the file is rewritten."""
    from warehouse.security import compact_database

    path = tmp_path / "plain.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE t AS SELECT 'row' || i AS a, '1391234' || lpad(i::VARCHAR, 4, '0') AS phone "
        "FROM range(20000) r(i)"
    )
    con.execute("CHECKPOINT")
    con.execute("DELETE FROM t WHERE phone = '13912340777'")
    con.execute("CHECKPOINT")
    con.close()
    assert b"13912340777" in path.read_bytes()  # deleted, yet still in the file
    compact_database(path, None)
    assert b"13912340777" not in path.read_bytes()
    with duckdb.connect(str(path), read_only=True) as again:
        assert again.execute("SELECT count(*) FROM t").fetchall() == [(19999,)]
    # an encrypted file keeps its key
    ring = KeyRing(b"k" * 32)
    enc = tmp_path / "enc.duckdb"
    with open_encrypted_warehouse(enc, ring, allow_unsafe_crypto=True) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    from warehouse.security.encryption import warehouse_key_text

    compact_database(enc, warehouse_key_text(ring), allow_unsafe_crypto=True)
    with open_encrypted_warehouse(enc, ring, read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_mbedtls_warning_only_when_the_database_is_created(tmp_path: Path, caplog) -> None:
    """The accepted mbedtls warning is logged once, when the archive is created, not by every
    later writing command (each a new process: the per-process guard is reset here)."""
    import logging

    import duckdb

    from warehouse.security import encryption

    if crypto_backend(duckdb.connect()) == "openssl":
        pytest.skip("httpfs (OpenSSL) is available: writing is secure, nothing to warn about")
    path, ring = tmp_path / "wh.duckdb", _ring()

    def warnings_when_opening(**kwargs: object) -> list[str]:
        encryption._WARNED.clear()  # a new process
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger=encryption.LOG.name):
            open_encrypted_warehouse(path, ring, allow_unsafe_crypto=True, **kwargs).close()
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    assert any("mbedtls" in m for m in warnings_when_opening())  # created: warn
    assert warnings_when_opening() == []  # an existing archive: consent was given already
    assert warnings_when_opening(read_only=True) == []
    assert any("mbedtls" in m for m in warnings_when_opening(new_database=True))

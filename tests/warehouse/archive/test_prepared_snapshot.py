"""A full snapshot whose table files were written ahead (``prepare_full_snapshot``) equals one
``publish_snapshot`` writes itself: the same manifest content, tables and digest cache."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from warehouse.archive import (
    load_snapshot,
    prepare_full_snapshot,
    publish_snapshot,
    warehouse_tables,
)
from warehouse.archive._digest_cache import read_cache
from warehouse.archive._layout import TEMP_PREFIX
from warehouse.security.encryption import encrypt_parquet, read_encrypted_parquet
from warehouse.security.keys import KeyRing

T0 = datetime(2026, 11, 24, 2, 0, 0)
T1 = datetime(2026, 11, 25, 2, 0, 0)
NAMES = ("golden.customers", "golden.contacts", "golden.plain", "golden.none")


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA golden")
    con.execute(
        "CREATE TABLE golden.customers AS SELECT 'C' || r::VARCHAR AS customer_id, r AS n,"
        " CASE WHEN r % 7 = 0 THEN NULL ELSE 'x' || r END AS note, NULL::VARCHAR AS never"
        " FROM range(3000) AS t(r)"
    )
    con.execute(
        "CREATE TABLE golden.contacts AS SELECT 'C' || (r % 900)::VARCHAR AS customer_id,"
        " '+86 ' || r AS phone FROM range(2500) AS t(r)"
    )
    con.execute("CREATE TABLE golden.plain AS SELECT r AS n, 'v' || r AS v FROM range(700) t(r)")
    con.execute("CREATE TABLE golden.none (customer_id VARCHAR, v VARCHAR)")
    return con


def _ring(tmp_path: Path) -> KeyRing:
    return KeyRing(bytes(range(32)))


def _temp_folders(archive: Path) -> list[Path]:
    return [p for p in archive.glob("*/*/.*") if p.name.startswith(TEMP_PREFIX)]


def _manifest(path: Path) -> dict:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"].values():
        del entry["sha256"], entry["bytes"]  # an encrypted file's bytes differ by its data key
    return manifest


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_snapshot_from_prepared_files_equals_one_written_by_publish(
    tmp_path: Path, encrypted: bool
) -> None:
    con = _warehouse()
    ring = _ring(tmp_path) if encrypted else None
    writer = None
    reader = None
    if ring is not None:
        writer = lambda table, path: encrypt_parquet(table, path, ring)  # noqa: E731
        writer.takes_batches = True  # type: ignore[attr-defined]
        reader = lambda path: read_encrypted_parquet(path, ring)  # noqa: E731
    own, ahead = tmp_path / "own", tmp_path / "ahead"
    first = publish_snapshot(warehouse_tables(con, NAMES), own, "r1", T0, writer=writer)
    prepared = prepare_full_snapshot(warehouse_tables(con, NAMES), ahead, "r1", T0, writer)
    assert prepared.folder.is_dir() and prepared.folder.name.startswith(TEMP_PREFIX)
    # the cache rows wait in files (memory-mapped), not in memory
    assert all(isinstance(r.rows, np.memmap) for r in prepared.cache_rows.values())
    assert len(_temp_folders(ahead)) == 2
    second = publish_snapshot(
        warehouse_tables(con, NAMES), ahead, "r1", T0, writer=writer, prepared=prepared
    )
    assert first is not None and second is not None
    assert second.content_hash == first.content_hash
    assert second.row_counts == first.row_counts
    assert _manifest(second.path) == _manifest(first.path)
    assert not prepared.folder.exists()  # renamed into place
    assert _temp_folders(ahead) == []  # the rows' files removed too
    own_tables = load_snapshot(first.path, reader=reader)
    ahead_tables = load_snapshot(second.path, reader=reader)  # verified: checksums, counts
    assert ahead_tables.keys() == own_tables.keys()
    for name, table in own_tables.items():
        assert ahead_tables[name].equals(table), name
    own_cache = read_cache(own, first.snapshot_id, first.content_hash)
    ahead_cache = read_cache(ahead, second.snapshot_id, second.content_hash)
    assert own_cache.keys() == ahead_cache.keys() and own_cache
    for name, rows in own_cache.items():
        assert (ahead_cache[name].rows == rows.rows).all(), name


def test_prepared_files_are_removed_when_a_delta_is_written(tmp_path: Path) -> None:
    con = _warehouse()
    archive = tmp_path / "archive"
    base = publish_snapshot(warehouse_tables(con, NAMES), archive, "r1", T0)
    assert base is not None
    con.execute("UPDATE golden.customers SET n = n + 1 WHERE customer_id = 'C5'")
    prepared = prepare_full_snapshot(warehouse_tables(con, NAMES), archive, "r2", T1)
    delta = publish_snapshot(
        warehouse_tables(con, NAMES), archive, "r2", T1, base=base, prepared=prepared
    )
    assert delta is not None and delta.storage == "delta"
    assert not prepared.folder.exists()
    assert _temp_folders(archive) == []


def test_prepared_files_of_unchanged_content_are_removed(tmp_path: Path) -> None:
    con = _warehouse()
    archive = tmp_path / "archive"
    assert publish_snapshot(warehouse_tables(con, NAMES), archive, "r1", T0) is not None
    prepared = prepare_full_snapshot(warehouse_tables(con, NAMES), archive, "r2", T1)
    again = publish_snapshot(warehouse_tables(con, NAMES), archive, "r2", T1, prepared=prepared)
    assert again is None
    assert not prepared.folder.exists()
    assert _temp_folders(archive) == []


def test_a_failed_preparation_leaves_no_folder(tmp_path: Path) -> None:
    con = _warehouse()
    archive = tmp_path / "archive"

    def failing(table, path):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        prepare_full_snapshot(warehouse_tables(con, NAMES), archive, "r1", T0, failing)
    assert _temp_folders(archive) == []

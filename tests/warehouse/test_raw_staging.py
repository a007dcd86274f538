"""Batches spilled by ``RawStaging`` publish the same raw and quarantine tables as one pass."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from sources import CANONICAL_FIELDS, ingest_source
from sources import read_delimited as delimited_module
from tests.sources.conftest import make_source
from tests.sources.test_ingest_batches import AT, _lines, _write_csv
from warehouse import ensure_schemas
from warehouse.raw import RawStaging, persist_delivery

_DIGEST = """SELECT count(*), md5(string_agg(h, '' ORDER BY f, r, h)) FROM (
    SELECT source_file f, source_row r, md5(CAST(columns(* EXCLUDE (run_id)) AS VARCHAR)::VARCHAR) h
    FROM {table})"""


def _warehouse(landing: Path, batch_rows: int | None) -> tuple[object, ...]:
    con = duckdb.connect()
    ensure_schemas(con)
    staging = RawStaging("run-1") if batch_rows else None
    kwargs = {"batch_rows": batch_rows, "sink": staging} if staging else {}
    result = ingest_source(make_source(), landing, "run-1", AT, **kwargs)  # type: ignore[arg-type]
    persist_delivery(
        con,
        "crm",
        CANONICAL_FIELDS,
        result.rows,
        result.superseded_files,
        {
            "quarantine.rows": result.quarantined_rows,
            "quarantine.files": result.quarantined_files,
            "ops.deliveries": result.manifest_rows("run-1"),
        },
        "run-1",
        staged=staging,
    )
    if staging is not None:
        assert staging.rows > 0 and staging.quarantined > 0
        staging.close()
    raw = con.execute(_DIGEST.format(table="raw.crm")).fetchone()
    quarantine = con.execute(_DIGEST.format(table="quarantine.rows")).fetchone()
    files = con.execute("SELECT source_file, n FROM ops.raw_files ORDER BY source_file").fetchall()
    order = con.execute("SELECT source_file, source_row FROM raw.crm").fetchall()
    return raw, quarantine, files, order


def test_staged_batches_publish_the_one_pass_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delimited_module, "_BLOCK_BYTES", 128)
    landing = tmp_path / "landing"
    _write_csv(landing / "crm" / "1.csv", _lines()[:4], "utf-8")
    _write_csv(landing / "crm" / "2.csv", _lines(9), "gb18030")
    _write_csv(landing / "crm" / "3.csv", [_lines()[0], *_lines()[14:]], "utf-8")
    one_pass = _warehouse(landing, None)
    assert _warehouse(landing, 3) == one_pass
    assert one_pass[0][0] > 10  # type: ignore[index]

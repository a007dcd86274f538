"""The warehouse side of record versions: delivery log, withdrawals and change reasons."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from sources import SourceConfig
from sources.model import CANONICAL_FIELDS
from warehouse.versions import (
    DeliveryNotFound,
    create_version_views,
    current_raw_rows,
    delivery_reasons,
    list_deliveries,
    withdraw_deliveries,
)

SOURCE = SourceConfig(
    name="crm",
    path="crm/**/*",
    delivery="full",
    columns={"source_record_id": "客户编号", "customer_name": "客户名称"},
)


def _raw_row(key: str, file: str, phone: str, run: str) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(CANONICAL_FIELDS)
    row.update(
        source_record_id=key,
        customer_name="星辰科技",
        phone=phone,
        record_key=f"crm:{key}",
        source_system="crm",
        source_file=file,
        source_row=1,
        source_sha256=f"sha:{file}",
        ingested_at="2030-01-01T00:00:00",
        extra="{}",
        run_id=run,
        active=True,
    )
    return row


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for schema in ("raw", "ops"):
        con.execute(f"CREATE SCHEMA {schema}")
    raw = pd.DataFrame(  # noqa: F841 - read by DuckDB's replacement scan
        [
            _raw_row("K1", "crm/2030-01-01/a.csv", "1", "r1"),
            _raw_row("K2", "crm/2030-01-01/a.csv", "2", "r1"),
            _raw_row("K1", "crm/2030-01-02/a.csv", "9", "r2"),
        ]
    )
    con.execute("CREATE TABLE raw.crm AS SELECT * FROM raw")
    manifest = pd.DataFrame(  # noqa: F841
        {
            "source_system": ["crm", "crm", "crm"],
            "path": ["crm/2030-01-01/a.csv", "crm/2030-01-02/a.csv", "crm/2030-01-01/a.csv"],
            "size": [10, 10, 10],
            "sha256": ["sha:crm/2030-01-01/a.csv", "sha:crm/2030-01-02/a.csv"] * 1
            + ["sha:crm/2030-01-01/a.csv"],
            "status": ["new", "new", "unchanged"],
            "run_id": ["r1", "r2", "r2"],
            "rows_read": [2, 1, 0],
        }
    )
    con.execute("CREATE TABLE ops.deliveries AS SELECT * FROM manifest")
    return con


def test_withdraw_a_folder_restores_the_earlier_versions(con: duckdb.DuckDBPyConnection) -> None:
    before = current_raw_rows(con, [SOURCE]).set_index("source_record_id")
    assert before.loc["K1", "phone"] == "9"
    assert pd.notna(before.loc["K2", "deleted_at_source"])

    rows = withdraw_deliveries(con, "crm/2030-01-02/", "bad export", withdrawn_by="王芳")
    assert rows["path"].tolist() == ["crm/2030-01-02/a.csv"]
    after = current_raw_rows(con, [SOURCE]).set_index("source_record_id")
    assert after.loc["K1", "phone"] == "1"
    assert after["deleted_at_source"].isna().all()
    assert withdraw_deliveries(con, "crm/2030-01-02/a.csv", "again").empty  # already withdrawn

    listed = list_deliveries(con)
    assert listed["path"].tolist() == ["crm/2030-01-02/a.csv", "crm/2030-01-01/a.csv"]
    assert listed["withdrawn_reason"].tolist()[0] == "bad export"


def test_withdraw_needs_a_known_delivery_and_a_reason(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(DeliveryNotFound):
        withdraw_deliveries(con, "crm/2031-01-01", "typo")
    with pytest.raises(ValueError, match="reason"):
        withdraw_deliveries(con, "crm/2030-01-02", "  ")


def test_version_view_and_delivery_reasons(con: duckdb.DuckDBPyConnection) -> None:
    assert create_version_views(con, [SOURCE]) == ["crm"]
    changes = con.sql(
        "SELECT record_key, change FROM history.record_versions ORDER BY record_key, version_no"
    ).fetchall()
    assert changes == [
        ("crm:K1", "created"),
        ("crm:K1", "changed"),
        ("crm:K2", "created"),
        ("crm:K2", "deleted_at_source"),
    ]
    current = current_raw_rows(con, [SOURCE])  # noqa: F841 - read by DuckDB
    con.execute("CREATE TABLE records AS SELECT * FROM current")
    con.execute(
        "CREATE TABLE crosswalk AS SELECT * FROM (VALUES ('crm:K1', 'C1'), ('crm:K2', 'C2'))"
        " AS t(record_key, customer_id)"
    )
    reasons = delivery_reasons(con, "crosswalk", "records").to_dict()
    assert reasons == {
        "C1": "delivery crm/2030-01-02/a.csv",
        "C2": "deleted at source 2030-01-02 (crm)",
    }

"""Record versions across deliveries: newest wins, deletions, late files and withdrawals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd
import pytest

from sources import SourceConfig
from sources.model import CANONICAL_FIELDS
from sources.versions import (
    WITHDRAWN_COLUMNS,
    current_records_sql,
    delivery_date,
    record_versions_sql,
)

D = dt.date


def _source(**overrides: Any) -> SourceConfig:
    settings: dict[str, Any] = {
        "name": "crm",
        "path": "crm/**/*",
        "columns": {"source_record_id": "客户编号", "customer_name": "客户名称"},
    }
    settings.update(overrides)
    return SourceConfig(**settings)


def _raw(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Raw-layer rows: ``key``, ``file`` (landing path), ``phone``; the rest filled in."""
    out = []
    for i, r in enumerate(rows):
        row = dict.fromkeys(CANONICAL_FIELDS)
        row.update(
            source_record_id=r["key"],
            customer_name=r.get("name", "星辰科技"),
            phone=r.get("phone"),
            updated_at=r.get("updated_at"),
            record_key="crm:" + r["key"],
            source_system="crm",
            source_file=r["file"],
            source_row=r.get("row", i + 1),
            source_sha256="sha-" + r["file"],
            ingested_at=r.get("ingested_at", f"2030-01-01T00:00:{i:02d}"),
            extra=r.get("extra", "{}"),
            run_id=r.get("run", "run-1"),
            active=r.get("active", True),
        )
        out.append(row)
    frame = pd.DataFrame(out)
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame


def _query(
    rows: list[dict[str, Any]],
    source: SourceConfig | None = None,
    withdrawn: list[tuple[str, str]] | None = None,
    versions: bool = False,
) -> pd.DataFrame:
    con = duckdb.connect()
    raw = _raw(rows)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute("CREATE TABLE raw_crm AS SELECT * FROM raw")
    con.execute(
        "CREATE TABLE withdrawn (" + ", ".join(f"{c} VARCHAR" for c in WITHDRAWN_COLUMNS) + ")"
    )
    for path, sha in withdrawn or []:
        con.execute(
            "INSERT INTO withdrawn VALUES (?, ?, ?, 'now', 'bad', 'test')", ["crm", path, sha]
        )
    build = record_versions_sql if versions else current_records_sql
    sql = build("raw_crm", source or _source(), "withdrawn")
    frame = con.sql(sql).df()
    order = ["record_key", "version_no"] if versions else ["record_key"]
    return frame.sort_values(order, ignore_index=True)


def _current(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    return {
        k: (None if pd.isna(v) else v)
        for k, v in zip(frame["source_record_id"], frame[column], strict=True)
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("sales/2026-11-24/crm_customers.csv", D(2026, 11, 24)),
        ("sales/2026-11-24/late/2026-11-20/x.csv", D(2026, 11, 20)),
        ("sales/export.csv", None),
        ("sales/2026-13-40/x.csv", None),
    ],
)
def test_delivery_date_comes_from_the_landing_folder(path: str, expected: D | None) -> None:
    assert delivery_date(path) == expected


def test_a_record_seen_again_is_its_next_version_newest_delivery_wins() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "111"},
        {"key": "K2", "file": "crm/2030-01-01/a.csv", "phone": "222"},
        {"key": "K1", "file": "crm/2030-01-02/a.csv", "phone": "119"},
        {"key": "K2", "file": "crm/2030-01-02/a.csv", "phone": "222"},
    ]
    current = _query(rows, _source(delivery="full"))
    assert len(current) == 2  # one row a record: no duplicates downstream
    assert _current(current, "phone") == {"K1": "119", "K2": "222"}
    # the unchanged record keeps the lineage of the delivery that introduced its values
    assert _current(current, "source_file") == {
        "K1": "crm/2030-01-02/a.csv",
        "K2": "crm/2030-01-01/a.csv",
    }
    assert current["deleted_at_source"].isna().all()
    assert _current(current, "version_no") == {"K1": 2, "K2": 1}


def test_a_late_delivery_never_overwrites_newer_values() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-05/a.csv", "phone": "new", "ingested_at": "2030-01-05"},
        {"key": "K1", "file": "crm/2030-01-03/a.csv", "phone": "old", "ingested_at": "2030-01-06"},
    ]
    for kind in ("full", "delta"):
        current = _query(rows, _source(delivery=kind))
        assert _current(current, "phone") == {"K1": "new"}, kind
        assert current["deleted_at_source"].isna().all()


def test_a_late_or_repeated_delivery_with_the_same_values_keeps_the_current_lineage() -> None:
    """Issue #15: a late copy of an older export must not make unchanged records "changed".

    The current values keep the lineage of the delivery that first brought them (arrival
    order); the version history still dates the version from the late file and names it.
    """
    first, second = "crm/2030-01-05/a.csv", "crm/2030-01-06/a.csv"
    late, again = "crm/2030-01-01/a.csv", "crm/2030-01-07/a.csv"
    rows = [
        {"key": "K1", "file": first, "phone": "1", "ingested_at": "2030-01-05T01"},
        {"key": "K2", "file": first, "phone": "2", "ingested_at": "2030-01-05T01"},
        {"key": "K3", "file": first, "phone": "3", "ingested_at": "2030-01-05T01"},
        {"key": "K1", "file": second, "phone": "1", "ingested_at": "2030-01-06T01"},
        {"key": "K2", "file": second, "phone": "2b", "ingested_at": "2030-01-06T01"},
        {"key": "K3", "file": second, "phone": "3", "ingested_at": "2030-01-06T01"},
        # the third night: a late older export (K1 and K2 as first delivered, an older phone
        # for K3) and the night's own re-export
        {"key": "K1", "file": late, "phone": "1", "ingested_at": "2030-01-07T01"},
        {"key": "K2", "file": late, "phone": "2", "ingested_at": "2030-01-07T01"},
        {"key": "K3", "file": late, "phone": "old", "ingested_at": "2030-01-07T01"},
        {"key": "K1", "file": again, "phone": "1", "ingested_at": "2030-01-07T02"},
        {"key": "K2", "file": again, "phone": "2b", "ingested_at": "2030-01-07T02"},
        {"key": "K3", "file": again, "phone": "3", "ingested_at": "2030-01-07T02"},
    ]
    for kind in ("full", "delta"):
        source = _source(delivery=kind)
        current = _query(rows, source)
        assert _current(current, "phone") == {"K1": "1", "K2": "2b", "K3": "3"}, kind
        # the lineage the clean layer compares is the one before the late file arrived
        before = _query(rows[:6], source)
        for column in ("source_file", "source_row", "source_sha256", "ingested_at"):
            assert _current(current, column) == _current(before, column), (kind, column)
        # the history keeps the late file as the oldest version, with its date
        history = _query(rows, source, versions=True)
        k1 = history[history["source_record_id"] == "K1"]
        assert k1[["valid_from", "delivery", "change"]].values.tolist() == [
            [pd.Timestamp(2030, 1, 1), late, "created"]
        ], kind
        k2 = history[history["source_record_id"] == "K2"]
        assert k2["delivery"].tolist() == [late, second], kind
        k3 = history[history["source_record_id"] == "K3"]
        assert k3["delivery"].tolist() == [late, first], kind
        assert k3["phone"].tolist() == ["old", "3"], kind


def test_same_date_orders_by_updated_at_then_arrival() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/b.csv", "phone": "b", "updated_at": "2029-12-01"},
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "a", "updated_at": "2029/12/31"},
        {"key": "K2", "file": "crm/2030-01-01/a.csv", "phone": "first"},
        {"key": "K2", "file": "crm/2030-01-01/b.csv", "phone": "second"},
    ]
    current = _query(rows)
    assert _current(current, "phone") == {"K1": "a", "K2": "second"}


def test_a_record_missing_from_a_later_full_delivery_is_deleted_at_source() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "1"},
        {"key": "K2", "file": "crm/2030-01-01/a.csv", "phone": "2"},
        {"key": "K1", "file": "crm/2030-01-02/a.csv", "phone": "1"},
    ]
    current = _query(rows, _source(delivery="full"))
    assert _current(current, "deleted_at_source") == {"K1": None, "K2": pd.Timestamp(2030, 1, 2)}
    assert _current(current, "phone") == {"K1": "1", "K2": "2"}  # kept, with its last values
    # as a delta the same files only add changes: nothing is deleted
    assert _query(rows, _source(delivery="delta"))["deleted_at_source"].isna().all()


def test_a_deleted_record_delivered_again_is_restored() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "1"},
        {"key": "K2", "file": "crm/2030-01-02/a.csv", "phone": "2"},
        {"key": "K1", "file": "crm/2030-01-03/a.csv", "phone": "1"},
        {"key": "K2", "file": "crm/2030-01-03/a.csv", "phone": "2"},
    ]
    source = _source(delivery="full")
    current = _query(rows, source)
    assert current["deleted_at_source"].isna().all()
    history = _query(rows, source, versions=True)
    k1 = history[history["source_record_id"] == "K1"]
    assert k1["change"].tolist() == ["created", "deleted_at_source", "restored"]
    assert k1["valid_from"].dt.date.tolist() == [D(2030, 1, 1), D(2030, 1, 2), D(2030, 1, 3)]
    assert k1["delivery"].tolist()[1] == "crm/2030-01-02/a.csv"
    assert k1["is_current"].tolist() == [False, False, True]


def test_delta_deletion_marker_deletes_and_keeps_the_last_values() -> None:
    flag = '{"删除标记": "Y"}'
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "1"},
        {"key": "K2", "file": "crm/2030-01-01/a.csv", "phone": "2"},
        {"key": "K1", "file": "crm/2030-01-02/d.csv", "phone": None, "extra": flag},
        {"key": "K9", "file": "crm/2030-01-02/d.csv", "extra": flag},
    ]
    current = _query(rows, _source(deleted_flag="删除标记"))
    assert _current(current, "deleted_at_source") == {"K1": pd.Timestamp(2030, 1, 2), "K2": None}
    assert _current(current, "phone") == {"K1": "1", "K2": "2"}  # K9: only ever deleted
    history = _query(rows, _source(deleted_flag="删除标记"), versions=True)
    k1 = history[history["source_record_id"] == "K1"]
    assert k1["change"].tolist() == ["created", "deleted_at_source"]


def test_history_names_changed_fields_and_the_delivery() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "1"},
        {"key": "K1", "file": "crm/2030-01-02/a.csv", "phone": "1"},
        {"key": "K1", "file": "crm/2030-01-03/a.csv", "phone": "3", "name": "星辰"},
    ]
    history = _query(rows, _source(delivery="full"), versions=True)
    assert history["change"].tolist() == ["created", "changed"]
    assert history["changed_fields"].iloc[1] == "customer_name, phone"
    assert history["delivery"].tolist() == ["crm/2030-01-01/a.csv", "crm/2030-01-03/a.csv"]
    assert history["valid_to"].dt.date.tolist()[0] == D(2030, 1, 3)


def test_withdrawn_delivery_makes_the_earlier_version_current_again() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "1"},
        {"key": "K2", "file": "crm/2030-01-01/a.csv", "phone": "2"},
        {"key": "K1", "file": "crm/2030-01-02/bad.csv", "phone": "garbage"},
    ]
    source = _source(delivery="full")
    before = _query(rows, source)
    assert _current(before, "phone") == {"K1": "garbage", "K2": "2"}
    assert before["deleted_at_source"].notna().sum() == 1
    after = _query(
        rows, source, withdrawn=[("crm/2030-01-02/bad.csv", "sha-crm/2030-01-02/bad.csv")]
    )
    assert _current(after, "phone") == {"K1": "1", "K2": "2"}
    assert after["deleted_at_source"].isna().all()
    assert _current(after, "source_file") == {
        "K1": "crm/2030-01-01/a.csv",
        "K2": "crm/2030-01-01/a.csv",
    }


def test_inactive_rows_are_ignored() -> None:
    rows = [
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "1", "active": False},
        {"key": "K1", "file": "crm/2030-01-01/a.csv", "phone": "2", "run": "run-2"},
    ]
    assert _current(_query(rows), "phone") == {"K1": "2"}

"""Hand-built clean records for the golden layer: one customer seen by three departments."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from warehouse import (
    GoldenSettings,
    GoldenTables,
    build_golden,
    connect,
    create_views,
    ensure_schemas,
    read_table,
    replace_tables,
    update_history,
)

_COLUMNS = [
    "record_key",
    "source_system",
    "source_record_id",
    "customer_name",
    "customer_type",
    "contact_name",
    "contact_title",
    "phone",
    "phone_type",
    "email",
    "address",
    "province",
    "city",
    "district",
    "division_code",
    "industry_code",
    "industry",
    "credit_code",
    "registered_date",
    "updated_at",
    "ingested_at",
]


def make_records(rows: list[dict]) -> pd.DataFrame:
    """Clean records with every contract column (absent values null, text as ``string``)."""
    frame = pd.DataFrame([{c: r.get(c) for c in _COLUMNS} for r in rows], columns=_COLUMNS)
    return frame.astype("string")


@pytest.fixture
def three_sources() -> pd.DataFrame:
    """北京星河科技 as sales, service and marketing each exported it."""
    return three_source_records()


def three_source_records() -> pd.DataFrame:
    """北京星河科技 as sales, service and marketing each exported it."""
    return make_records(
        [
            {  # sales: the legal name and credit code, an older phone, registered first
                "record_key": "sales:S001",
                "source_system": "sales",
                "source_record_id": "S001",
                "customer_name": "北京星河科技有限公司",
                "customer_type": "enterprise",
                "contact_name": "张伟",
                "contact_title": "经理",
                "phone": "+8613800000001",
                "phone_type": "mobile",
                "email": "zhangwei@xinghe.cn",
                "address": "北京市海淀区中关村大街1号",
                "province": "北京市",
                "city": "北京市",
                "district": "海淀区",
                "division_code": "110108",
                "industry_code": "I",
                "industry": "信息传输、软件和信息技术服务业",
                "credit_code": "91110108MA01ABCDE1",
                "registered_date": "2019-05-10",
                "updated_at": "2024-01-15",
                "ingested_at": "2025-07-01T02:00:00",
            },
            {  # service: a short name, the newest phone, no credit code
                "record_key": "service:T900",
                "source_system": "service",
                "source_record_id": "T900",
                "customer_name": "星河科技",
                "customer_type": "enterprise",
                "contact_name": "李娜",
                "contact_title": "女士",
                "phone": "+8613900000002",
                "phone_type": "mobile",
                "address": "北京市海淀区中关村大街1号",
                "province": "北京市",
                "city": "北京市",
                "district": "海淀区",
                "registered_date": "2021-03-01",
                "updated_at": "2025-06-20",
                "ingested_at": "2025-07-01T02:00:00",
            },
            {  # marketing: a lead with an email and a different, older address
                "record_key": "marketing:L77",
                "source_system": "marketing",
                "source_record_id": "L77",
                "customer_name": "北京星河科技有限公司（海淀）",
                "customer_type": "enterprise",
                "contact_name": "张伟",
                "email": "info@xinghe.cn",
                "address": "北京市朝阳区建国路88号",
                "province": "北京市",
                "city": "北京市",
                "district": "朝阳区",
                "industry_code": "M",
                "industry": "科学研究和技术服务业",
                "registered_date": "2018-11-20",
                "updated_at": "2023-02-02",
                "ingested_at": "2025-07-01T02:00:00",
            },
        ]
    )


@pytest.fixture
def one_customer(three_sources: pd.DataFrame) -> pd.DataFrame:
    """Every record of ``three_sources`` assigned to C20240315001."""
    return pd.DataFrame({"record_key": three_sources["record_key"], "customer_id": "C20240315001"})


RUN1, RUN2 = date(2025, 6, 1), date(2025, 7, 1)


def extra_customers() -> pd.DataFrame:
    """A dormant sales customer (last contract 2021) and a marketing-only lead."""
    return make_records(
        [
            {"record_key": "sales:S002", "source_system": "sales", "source_record_id": "S002",
             "customer_name": "王芳", "customer_type": "individual", "phone": "+8613600000009",
             "address": "上海市浦东新区世纪大道100号", "province": "上海市", "city": "上海市",
             "district": "浦东新区", "registered_date": "2020-01-01", "updated_at": "2021-06-01"},
            {"record_key": "marketing:L99", "source_system": "marketing",
             "source_record_id": "L99", "customer_name": "Acme Trading Ltd",
             "customer_type": "enterprise", "email": "sales@acme.example",
             "updated_at": "2025-05-20"},
        ]
    )  # fmt: skip


def facts() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contracts of the two sales customers and one service ticket."""
    transactions = pd.DataFrame(
        {
            "record_key": ["sales:S001", "sales:S001", "sales:S002"],
            "source_system": "sales",
            "txn_id": ["H1", "H2", "H3"],
            "txn_date": ["2025-01-10", "2025-05-01", "2021-06-01"],
            "txn_amount": [200000.0, 50000.0, 8000.0],
            "txn_type": "contract",
        }
    )
    interactions = pd.DataFrame(
        {
            "record_key": ["service:T900"],
            "source_system": "service",
            "interaction_id": ["K1"],
            "interaction_date": ["2025-05-20"],
            "channel": "phone",
            "subject": "安装调试",
            "outcome": "resolved",
            "satisfaction": [4.5],
        }
    )
    return transactions, interactions


ASSIGNMENTS = {
    "sales:S001": "C20240315001",
    "service:T900": "C20240315001",
    "marketing:L77": "C20240315001",
    "sales:S002": "C20200101001",
    "marketing:L99": "C20250520001",
}


def publish(con, records: pd.DataFrame, run_id: str, run_date: date, events=None) -> GoldenTables:
    """Build and publish one run the way the pipeline does (golden tables, history, views)."""
    assignments = pd.DataFrame(
        {"record_key": records["record_key"], "customer_id": records["record_key"].map(ASSIGNMENTS)}
    )
    transactions, interactions = facts()
    golden = build_golden(
        records, assignments, None, transactions, interactions, GoldenSettings(), run_id, run_date
    )
    if events is None:
        events = pd.DataFrame(
            {"customer_id": ["C20240315001"], "event": ["created"], "other_customer_id": [None]}
        )
    events = events.assign(run_id=run_id, run_date=run_date.isoformat())
    previous = read_table(con, "golden.customers_history")
    history = update_history(previous, golden.customers, run_id, run_date, id_events=events)
    old_ids = read_table(con, "golden.customer_ids")
    ids = events if old_ids is None else pd.concat([old_ids, events], ignore_index=True)
    replace_tables(
        con, {**golden.as_dict(), "golden.customers_history": history, "golden.customer_ids": ids}
    )
    create_views(con)
    return golden


@pytest.fixture(scope="module")
def warehouse_two_runs(tmp_path_factory):
    """A warehouse after two runs; between them service changed the phone of C20240315001.

    Module-scoped (built once): tests only read it.
    """
    con = connect(tmp_path_factory.mktemp("wh") / "wh.duckdb")
    ensure_schemas(con)
    first = pd.concat([three_source_records(), extra_customers()], ignore_index=True)
    publish(con, first, "run-1", RUN1)
    second = first.copy()
    at = second["record_key"] == "service:T900"
    second.loc[at, "phone"] = "+8613900000003"
    second.loc[at, "updated_at"] = "2025-06-28"
    publish(con, second, "run-2", RUN2)
    yield con
    con.close()


@pytest.fixture
def warehouse_two_runs_copy(tmp_path):
    """A writable warehouse after the same two runs as ``warehouse_two_runs``."""
    con = connect(tmp_path / "wh.duckdb")
    ensure_schemas(con)
    first = pd.concat([three_source_records(), extra_customers()], ignore_index=True)
    publish(con, first, "run-1", RUN1)
    second = first.copy()
    at = second["record_key"] == "service:T900"
    second.loc[at, "phone"] = "+8613900000003"
    second.loc[at, "updated_at"] = "2025-06-28"
    publish(con, second, "run-2", RUN2)
    yield con
    con.close()

"""Hand-built clean records for the golden layer: one customer seen by three departments."""

from __future__ import annotations

import pandas as pd
import pytest

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

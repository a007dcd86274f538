"""Shared fixtures for dedupe tests: a small synthetic set with truth and linked results."""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe import LinkResult, link_records
from tests.dedupe.synth import make_records


@pytest.fixture(scope="session")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    """1,500 entities (~2,800 records) with typos, missing fields and shared switchboards."""
    return make_records(1500, seed=11)


@pytest.fixture(scope="session")
def linked(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> LinkResult:
    """Full link of the synthetic set with default settings."""
    return link_records(synthetic[0])


def record(**fields: object) -> dict[str, object]:
    """A clean record with sensible defaults; override fields per test case."""
    base: dict[str, object] = {
        "record_key": "a:1",
        "name_key": "华信科技",
        "customer_name": "华信科技有限公司",
        "customer_type": "enterprise",
        "branch": None,
        "contact_name": "王伟",
        "phone": "+8613912345678",
        "phone_shared": False,
        "email": "wang@huaxin.cn",
        "email_domain": "huaxin.cn",
        "email_is_free": False,
        "province": "北京市",
        "city": "北京市",
        "district": "海淀区",
        "address": "海淀区中关村大街1号",
        "credit_code": None,
        "credit_code_valid": None,
    }
    base.update(fields)
    return base

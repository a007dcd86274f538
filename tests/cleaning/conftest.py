"""Raw frames for the cleaning tests: clean and deliberately dirty customer rows."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def mixed_raw() -> pd.DataFrame:
    """Two sources, concatenated as the pipeline does; each defect is commented."""
    crm = pd.DataFrame(
        {
            "record_key": ["crm:1", "crm:2", "crm:3", "crm:4", "crm:5"],
            "source_system": "crm",
            "source_record_id": ["1", "2", "3", "4", "5"],
            "source_file": "crm.csv",
            "source_row": ["1", "2", "3", "4", "5"],
            "source_sha256": "abc",
            "ingested_at": "2024-03-20T00:00:00",
            "customer_name": [
                "北京某某（上海）科技有限公司杭州分公司",  # bracketed region + branch
                "王先生",  # individual with honorific
                None,  # missing name -> follow_up
                "臺灣積體電路製造股份有限公司",  # traditional characters
                "ＡＣＭＥ Co., Ltd.",  # full-width latin
            ],
            "contact_name": ["张伟经理", None, "李女士", "Mr. JOHN SMITH", None],
            "phone": ["(010) 6275-1234 转 8001", "139 1234 5678", "abc", None, "021-68881234"],
            "email": [None, "W@QQ.COM", None, "x@tsmc.com", "bad@"],
            "address": ["北京市海淀区中关村大街1号", "沪浦东新区", None, "台湾省新竹市", None],
            "industry": ["IT", "零售", "xyz", "半导体", None],
            "credit_code": ["914403001922038216", None, None, "91440300708461136X", None],
            "registered_date": ["15/03/2024", "01/02/2024", "2024-02-30", "2024年3月15日", None],
            "txn_id": ["T1", None, None, None, None],
            "txn_amount": ["1.2万", None, None, None, None],
            "satisfaction": [None, "满意", None, None, None],
        },
        dtype="string",
    )
    svc = pd.DataFrame(
        {
            "record_key": ["svc:1", "svc:2"],
            "source_system": "svc",
            "source_record_id": ["1", "2"],
            "source_row": ["1", "2"],
            "customer_name": ["华为技术有限公司", "华为技术有限公司上海分公司"],
            "customer_type": ["企业", "企业客户"],
            "phone": ["03/15/2024", "400-830-8300"],  # a date typed into the phone column
            "registered_date": ["03/15/2024", "04/05/2024"],  # this source is month-first
            "interaction_id": ["I9", None],
            "interaction_channel": ["电话", None],
        },
        dtype="string",
    )
    return pd.concat([crm, svc], ignore_index=True)

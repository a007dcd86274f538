"""The accuracy benchmark's derived department: a re-delivery of another source's customers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import yaml

from benchmarks import bench_accuracy as bench


def _layout(tmp_path: Path, rows: int) -> Path:
    """A corpus-like landing tree: a GBK sales export and the corpus source mappings."""
    sales = pd.DataFrame(
        {
            "客户编号": [f"C{i:04d}" for i in range(rows)],
            "客户名称": [f"测试（北京）科技{i}有限公司" for i in range(rows)],
            "联系人": "张三",
            "手机": [f"1380000{i:04d}" for i in range(rows)],
            "邮箱": "",
            "地址": [f"北京市海淀区中关村大街{i}号" for i in range(rows)],
            "所属行业": "软件",
            "签约日期": "2024-01-02",
            "合同金额": "100.5",
        }
    )
    target = tmp_path / "landing" / "sales_crm" / bench.DELIVERY_DATE
    target.mkdir(parents=True)
    sales.to_csv(target / "sales_crm.csv", index=False, encoding="gbk")
    shutil.copy(bench.CONFIGS / "cn_corpus" / "sources.yml", tmp_path / "sources.yml")
    truth = pd.DataFrame(
        {
            "source_system": "sales_crm",
            "source_record_id": sales["客户编号"],
            "entity_id": [f"E{i // 2}" for i in range(rows)],
        }
    )
    truth.to_csv(tmp_path / "truth.csv", index=False)
    return tmp_path / "truth.csv"


def test_derived_department_re_delivers_every_fifth_customer(tmp_path: Path) -> None:
    truth_csv = _layout(tmp_path, 50)
    out = bench.derive_department(tmp_path, truth_csv)
    invoices = pd.read_parquet(
        tmp_path / "landing" / bench.DERIVED_SOURCE / bench.DELIVERY_DATE / "invoices.parquet"
    )
    assert list(invoices.columns) == [
        "发票号码",
        "购买方名称",
        "购买方地址、电话",
        "开户行及账号",
        "开票日期",
        "价税合计",
    ]
    assert len(invoices) == 10  # every 5th of 50
    # names copied, only brackets made ASCII or a space inserted
    base = [f"测试（北京）科技{i}有限公司" for i in range(0, 50, 5)]
    for copied, original in zip(invoices["购买方名称"], base, strict=True):
        plain = copied.replace("(", "（").replace(")", "）").replace(" ", "")
        assert plain == original
    assert invoices["购买方地址、电话"].iloc[1] == "北京市海淀区中关村大街5号 13800000005"
    truth = pd.read_csv(out, dtype=str)
    derived = truth[truth["source_system"] == bench.DERIVED_SOURCE]
    assert list(derived["entity_id"]) == [f"E{i // 2}" for i in range(0, 50, 5)]
    assert (truth["source_system"] == "sales_crm").sum() == 50  # the corpus truth kept
    mapping = yaml.safe_load((tmp_path / "sources.yml").read_text(encoding="utf-8"))
    finance = mapping["sources"][-1]
    assert finance["name"] == bench.DERIVED_SOURCE
    assert finance["split"][0]["kind"] == "address_phone"


def test_match_seed_is_written_into_the_config(tmp_path: Path) -> None:
    config = tmp_path / "archive.yml"
    shutil.copy(bench.CONFIGS / "cn_corpus" / "archive.yml", config)
    bench.set_match_seed(config, 7)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert data["matching"]["seed"] == 7
    assert data["warehouse"]  # the rest kept

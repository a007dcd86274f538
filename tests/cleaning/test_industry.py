"""Labelled industries to GB/T 4754-2017 sections, accuracy >= 95 %, confidence and unmapped."""

from __future__ import annotations

import pandas as pd

from cleaning import industry_sections, map_industry
from cleaning.industry import unmapped_industries

CASES: list[tuple[str, str]] = [
    ("IT", "I"), ("it", "I"), ("IT行业", "I"), ("信息技术", "I"), ("软件", "I"), ("软件开发", "I"),
    ("互联网", "I"), ("互联网服务", "I"), ("计算机软件", "I"), ("通信", "I"), ("电信", "I"),
    ("云计算", "I"), ("人工智能", "I"), ("SaaS", "I"), ("Information Technology", "I"),
    ("Software", "I"), ("软件和信息技术服务业", "I"), ("信息传输、软件和信息技术服务业", "I"),
    ("軟體", "I"), ("I", "I"), ("网络科技", "I"), ("大数据服务", "I"), ("Internet", "I"),
    ("制造", "C"), ("制造业", "C"), ("机械制造", "C"), ("汽车零部件制造", "C"),
    ("医疗器械制造", "C"), ("电子制造", "C"), ("化工", "C"), ("制药", "C"), ("食品加工", "C"),
    ("半导体", "C"), ("Manufacturing", "C"), ("制造业（电子）", "C"), ("纺织服装", "C"),
    ("零售", "F"), ("零售业", "F"), ("批发", "F"), ("批发和零售业", "F"), ("贸易", "F"),
    ("进出口贸易", "F"), ("电子商务", "F"), ("电商", "F"), ("Retail", "F"), ("商贸", "F"),
    ("快消品", "F"), ("超市", "F"),
    ("金融", "J"), ("金融业", "J"), ("银行", "J"), ("銀行", "J"), ("保险", "J"), ("证券", "J"),
    ("金融服务", "J"), ("互联网金融", "J"), ("Banking", "J"), ("Finance", "J"),
    ("房地产", "K"), ("地产", "K"), ("房地产开发经营", "K"), ("物业管理", "K"),
    ("Real Estate", "K"),
    ("教育", "P"), ("教育培训", "P"), ("教育培训行业", "P"), ("培训", "P"), ("Education", "P"),
    ("医疗", "Q"), ("医院", "Q"), ("医疗卫生", "Q"), ("Healthcare", "Q"), ("养老服务", "Q"),
    ("建筑", "E"), ("建筑施工", "E"), ("装修", "E"), ("Construction", "E"),
    ("物流", "G"), ("物流运输", "G"), ("快递", "G"), ("仓储", "G"), ("Logistics", "G"),
    ("餐饮", "H"), ("餐饮业", "H"), ("酒店", "H"), ("Hotel", "H"),
    ("农业", "A"), ("农业种植", "A"), ("养殖", "A"), ("渔业", "A"),
    ("采矿", "B"), ("煤炭开采", "B"), ("Mining", "B"),
    ("电力", "D"), ("燃气", "D"), ("供水", "D"),
    ("咨询", "L"), ("咨询服务", "L"), ("管理咨询", "L"), ("广告", "L"), ("人力资源", "L"),
    ("Consulting", "L"), ("律师事务所", "L"),
    ("科研", "M"), ("检验检测", "M"), ("工程设计", "M"), ("研发", "M"),
    ("环保", "N"), ("园林绿化", "N"),
    ("家政服务", "O"), ("汽车维修", "O"), ("美容美发", "O"),
    ("文化传媒", "R"), ("传媒", "R"), ("影视", "R"), ("新媒体", "R"), ("游戏", "R"), ("体育", "R"),
    ("政府机关", "S"), ("事业单位", "S"), ("协会", "S"), ("Government", "S"),
    ("国际组织", "T"),
    ("Manufactoring", "C"), ("Retial", "F"), ("Educaton", "P"),  # typos: fuzzy
]  # fmt: skip
UNMAPPED = ["xyz", "其他", "待定", "N/A", "???"]


def test_industry_accuracy() -> None:
    wrong = [(t, e, map_industry(t)) for t, e in CASES if map_industry(t).section != e]
    assert 1 - len(wrong) / len(CASES) >= 0.95, wrong


def test_sections_complete() -> None:
    sections = industry_sections()
    assert list(sections) == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    assert sections["I"] == "信息传输、软件和信息技术服务业"


def test_confidence_levels() -> None:
    assert map_industry("软件").confidence == 1.0
    assert map_industry("软件开发与服务").confidence == 0.9
    assert map_industry("医疗器械制造").confidence == 0.8
    fuzzy = map_industry("Manufactoring")
    assert fuzzy.section == "C" and fuzzy.confidence is not None and 0.7 < fuzzy.confidence < 0.9


def test_unmapped_listed_for_steward() -> None:
    for text in UNMAPPED:
        assert map_industry(text).section is None, text
    raw = pd.Series(["IT", "xyz", "xyz", "其他", None], dtype="string")
    section = pd.Series([map_industry(v).section for v in raw], dtype="string")
    listed = unmapped_industries(raw, section)
    assert listed.to_dict("records") == [
        {"industry_raw": "xyz", "count": 2},
        {"industry_raw": "其他", "count": 1},
    ]

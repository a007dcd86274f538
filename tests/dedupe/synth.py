"""Small synthetic clean-records generator with truth, for dedupe tests and the fallback bench."""

from __future__ import annotations

import numpy as np
import pandas as pd

_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅鹏飞")
_WORDS = list("华信达通联创科瑞泰恒丰海天宏远安中金盛东方新明鑫博德嘉源隆")
_SUFFIX = ["科技", "贸易", "物流", "电子", "软件", "实业", "医药", "建设"]
_CITIES = [
    ("北京市", "北京市", "海淀区"),
    ("北京市", "北京市", "朝阳区"),
    ("上海市", "上海市", "浦东新区"),
    ("广东省", "广州市", "天河区"),
    ("广东省", "深圳市", "南山区"),
    ("浙江省", "杭州市", "西湖区"),
    ("江苏省", "南京市", "鼓楼区"),
    ("四川省", "成都市", "武侯区"),
    ("湖北省", "武汉市", "洪山区"),
]


def _typo(rng: np.random.Generator, text: str, pool: list[str]) -> str:
    i = int(rng.integers(len(text)))
    return text[:i] + pool[int(rng.integers(len(pool)))] + text[i + 1 :]


def make_records(entities: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean-like records (1–3 per entity) with noise, and the truth (record_key, entity_id)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    truth: list[tuple[str, str]] = []
    switchboards = [f"+8610{int(x):08d}" for x in rng.integers(10**7, 10**8 - 1, 5)]
    for e in range(entities):
        enterprise = rng.random() < 0.6
        city = _CITIES[int(rng.integers(len(_CITIES)))]
        if enterprise:
            name = "".join(rng.choice(_WORDS, 3)) + str(rng.choice(_SUFFIX))
            credit = f"91{int(rng.integers(10**15, 10**16 - 1))}X"
        else:
            name = str(rng.choice(_SURNAMES)) + "".join(rng.choice(_GIVEN, int(rng.integers(1, 3))))
            credit = None
        contact = str(rng.choice(_SURNAMES)) + str(rng.choice(_GIVEN))
        phone = f"+861{int(rng.integers(3, 9))}{int(rng.integers(10**8, 10**9 - 1))}"
        if enterprise and rng.random() < 0.05:
            phone = str(rng.choice(switchboards))
        email = f"u{e}@{'corp' + str(e) + '.cn' if enterprise else 'qq.com'}"
        address = f"{city[2]}{''.join(rng.choice(_WORDS, 2))}路{int(rng.integers(1, 300))}号"
        for r in range(int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))):
            rec_name = (
                _typo(rng, name, _WORDS if enterprise else _GIVEN)
                if (r > 0 and rng.random() < 0.15)
                else name
            )
            key = f"{['sales', 'service', 'marketing'][r]}:{e:06d}"
            rows.append(
                {
                    "record_key": key,
                    "name_key": rec_name,
                    "customer_name": rec_name + ("有限公司" if enterprise else ""),
                    "customer_type": "enterprise" if enterprise else "individual",
                    "branch": None,
                    "contact_name": contact if rng.random() < 0.8 else None,
                    "phone": phone if rng.random() < 0.8 else None,
                    "phone_shared": phone in switchboards,
                    "email": email if rng.random() < 0.6 else None,
                    "email_domain": None,
                    "email_is_free": not enterprise,
                    "province": city[0],
                    "city": city[1] if rng.random() < 0.9 else None,
                    "district": city[2] if rng.random() < 0.7 else None,
                    "address": address if rng.random() < 0.7 else None,
                    "credit_code": credit if credit and rng.random() < 0.5 else None,
                    "credit_code_valid": credit is not None,
                }
            )
            truth.append((key, f"E{e:06d}"))
    records = pd.DataFrame(rows)
    records["email_domain"] = records["email"].str.split("@").str[1]
    return records, pd.DataFrame(truth, columns=["record_key", "entity_id"])

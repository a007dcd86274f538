"""Labelled text normalization, emails and amounts."""

from __future__ import annotations

import pandas as pd
import pytest

from cleaning import normalize_email, normalize_text, normalize_text_series, parse_amount

TEXT = [
    ("  ＡＢＣ　１２３ ", "ABC 123"),
    ("北京（海淀）", "北京(海淀)"),
    ("【重要】客户", "[重要]客户"),
    ("a\u200bb\ufeffc", "abc"),
    ("臺灣", "台湾"),
    ("張三\t\n李四", "张三 李四"),
    ("“引号”", '"引号"'),
    ("A—B", "A-B"),
    ("   ", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), TEXT)
def test_normalize_text(raw: str | None, expected: str | None) -> None:
    assert normalize_text(raw) == expected


def test_normalize_series_keeps_nulls_and_index() -> None:
    s = pd.Series(["臺灣", None, "臺灣", " "], index=[5, 6, 7, 8], dtype="string")
    out = normalize_text_series(s)
    assert out.index.tolist() == [5, 6, 7, 8]
    assert out.tolist()[0] == "台湾" and out.isna().tolist() == [False, True, False, True]


EMAILS = [
    ("Zhang.Wei@Huawei.COM", "zhang.wei@huawei.com", "huawei.com", False),
    (" zhang.wei＠huawei.com ", "zhang.wei@huawei.com", "huawei.com", False),
    ("mailto:a@qq.com", "a@qq.com", "qq.com", True),
    ("张伟 <zw@example.cn>", "zw@example.cn", "example.cn", False),
    ("a@163.com; b@126.com", "a@163.com", "163.com", True),
    ("someone@gmail.com", "someone@gmail.com", "gmail.com", True),
    ("x_y+tag@sub.company.com.cn", "x_y+tag@sub.company.com.cn", "sub.company.com.cn", False),
    ("FOO@OUTLOOK.COM", "foo@outlook.com", "outlook.com", True),
]
BAD_EMAILS = ["a@b", "no-at-sign.com", "a@@b.com", "a..b@c.com", "a@-b.com", "@qq.com", "无"]


@pytest.mark.parametrize(("raw", "email", "domain", "free"), EMAILS)
def test_email(raw: str, email: str, domain: str, free: bool) -> None:
    assert normalize_email(raw) == (email, domain, free, True)


@pytest.mark.parametrize("raw", BAD_EMAILS)
def test_bad_email(raw: str) -> None:
    assert normalize_email(raw).valid is False


AMOUNTS = [
    ("12,345.00", 12345.0, None),
    ("1.2万", 12000.0, None),
    ("3亿", 300000000.0, None),
    ("¥8800", 8800.0, None),
    ("￥8,800.50", 8800.5, None),
    ("8800元", 8800.0, None),
    ("RMB 8,800", 8800.0, None),
    ("人民币5000元整", 5000.0, None),
    ("(1,000)", -1000.0, None),
    ("-500", -500.0, None),
    ("1.234,56", 1234.56, None),
    ("１２３４５", 12345.0, None),
    ("5k", 5000.0, None),
    ("USD 100", 100.0, "amount_foreign_currency"),
    ("abc", None, "amount_unparsed"),
    (None, None, None),
]


@pytest.mark.parametrize(("raw", "value", "issue"), AMOUNTS)
def test_amount(raw: str | None, value: float | None, issue: str | None) -> None:
    assert parse_amount(raw) == (value, issue)

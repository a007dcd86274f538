"""Golden customers: survivorship by configured rule, lineage, crosswalk and linked tables."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tests.warehouse.conftest import make_records
from warehouse import GoldenSettings, SurvivorshipRule, build_golden

RUN_DATE = date(2025, 7, 1)


def _build(records, assignments, settings=None, transactions=None, interactions=None, **kw):
    return build_golden(
        records,
        assignments,
        kw.get("match_scores"),
        transactions,
        interactions,
        settings or GoldenSettings(),
        "run-1",
        RUN_DATE,
    )


# attribute, expected value, winning record, rule (default settings)
EXPECTED = [
    ("customer_name", "北京星河科技有限公司", "sales:S001", "source_priority"),
    ("credit_code", "91110108MA01ABCDE1", "sales:S001", "source_priority"),
    ("industry", "信息传输、软件和信息技术服务业", "sales:S001", "source_priority"),
    ("industry_code", "I", "sales:S001", "source_priority (with industry)"),
    ("phone", "+8613900000002", "service:T900", "most_recent"),
    ("contact_name", "李娜", "service:T900", "most_recent"),
    ("email", "zhangwei@xinghe.cn", "sales:S001", "most_recent"),
    ("address", "北京市海淀区中关村大街1号", "service:T900", "most_recent"),
    ("district", "海淀区", "service:T900", "most_recent (with address)"),
    ("registered_date", "2018-11-20", "marketing:L77", "earliest"),
]


@pytest.mark.parametrize(("attribute", "value", "record_key", "rule"), EXPECTED)
def test_three_sources_each_attribute_by_its_rule_with_lineage(
    three_sources, one_customer, attribute, value, record_key, rule
):
    golden = _build(three_sources, one_customer)
    customer = golden.customers.iloc[0]
    assert str(customer[attribute]) == value
    lineage = golden.attribute_lineage
    row = lineage[lineage["attribute"] == attribute]
    assert len(row) == 1
    row = row.iloc[0]
    assert (row["value"], row["record_key"], row["rule"]) == (value, record_key, rule)
    source = three_sources.set_index("record_key").loc[record_key]
    assert row["source_system"] == source["source_system"]
    assert row["source_record_id"] == source["source_record_id"]
    assert str(row["record_date"]) == source["updated_at"]


def test_every_non_null_golden_attribute_has_exactly_one_lineage_row(three_sources, one_customer):
    golden = _build(three_sources, one_customer)
    customer = golden.customers.iloc[0]
    traced = golden.attribute_lineage.groupby("attribute").size()
    for attr in ("customer_name", "phone", "email", "address", "province", "city", "credit_code"):
        assert pd.notna(customer[attr])
        assert traced[attr] == 1


def test_configured_rule_changes_the_winner(three_sources, one_customer):
    settings = GoldenSettings(
        survivorship=[
            SurvivorshipRule(attribute="customer_name", strategy="longest"),
            SurvivorshipRule(
                attribute="phone", strategy="source_priority", source_priority=["sales"]
            ),
        ]
    )
    customer = _build(three_sources, one_customer, settings).customers.iloc[0]
    assert customer["customer_name"] == "北京星河科技有限公司（海淀）"
    assert customer["phone"] == "+8613800000001"


def test_most_frequent_and_deterministic_ties():
    records = make_records(
        [
            {"record_key": "a:1", "source_system": "a", "source_record_id": "1",
             "customer_name": "甲", "industry": "制造业", "updated_at": "2024-01-01"},
            {"record_key": "b:2", "source_system": "b", "source_record_id": "2",
             "customer_name": "甲", "industry": "制造业", "updated_at": "2023-01-01"},
            {"record_key": "c:3", "source_system": "c", "source_record_id": "3",
             "customer_name": "甲", "industry": "批发和零售业", "updated_at": "2025-01-01"},
            # two records with the same date and source rank: the smaller record_key wins
            {"record_key": "x:2", "source_system": "x", "source_record_id": "2",
             "customer_name": "乙", "phone": "+8613700000002", "updated_at": "2024-05-05"},
            {"record_key": "x:1", "source_system": "x", "source_record_id": "1",
             "customer_name": "乙", "phone": "+8613700000001", "updated_at": "2024-05-05"},
        ]
    )  # fmt: skip
    assignments = pd.DataFrame(
        {"record_key": records["record_key"], "customer_id": ["C1", "C1", "C1", "C2", "C2"]}
    )
    settings = GoldenSettings(
        survivorship=[SurvivorshipRule(attribute="industry", strategy="most_frequent")]
    )
    customers = _build(records, assignments, settings).customers.set_index("customer_id")
    assert customers.loc["C1", "industry"] == "制造业"
    assert customers.loc["C2", "phone"] == "+8613700000001"
    reversed_order = _build(records.iloc[::-1], assignments, settings).customers
    pd.testing.assert_frame_equal(reversed_order, customers.reset_index())


def test_companions_never_mix_two_addresses():
    records = make_records(
        [
            {"record_key": "a:1", "source_system": "a", "source_record_id": "1",
             "customer_name": "丙", "address": "上海市浦东新区世纪大道100号",
             "province": "上海市", "city": "上海市", "district": "浦东新区",
             "updated_at": "2024-01-01"},
            # newer but with only a province: the address record keeps its own district
            {"record_key": "b:1", "source_system": "b", "source_record_id": "1",
             "customer_name": "丙", "province": "江苏省", "updated_at": "2025-01-01"},
        ]
    )  # fmt: skip
    assignments = pd.DataFrame({"record_key": records["record_key"], "customer_id": "C3"})
    customer = _build(records, assignments).customers.iloc[0]
    assert (customer["province"], customer["district"]) == ("上海市", "浦东新区")


def test_enterprise_when_credit_code_present(three_sources, one_customer):
    records = three_sources.assign(customer_type="individual")
    golden = _build(records, one_customer)
    assert golden.customers.iloc[0]["customer_type"] == "enterprise"
    row = golden.attribute_lineage.query("attribute == 'customer_type'").iloc[0]
    assert row["rule"].startswith("derived")


def test_crosswalk_covers_every_record_once(three_sources, one_customer):
    scores = pd.DataFrame({"record_key": three_sources["record_key"], "match_score": 0.97})
    golden = _build(three_sources, one_customer, match_scores=scores)
    cw = golden.crosswalk
    assert sorted(cw["record_key"]) == sorted(three_sources["record_key"])
    assert cw["match_score"].eq(0.97).all()
    assert golden.customers.iloc[0][["source_count", "record_count"]].tolist() == [3, 3]


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (pd.DataFrame({"record_key": ["sales:S001"], "customer_id": ["C1"]}), "no customer_id"),
        (
            pd.DataFrame(
                {"record_key": ["sales:S001", "sales:S001", "service:T900", "marketing:L77"],
                 "customer_id": ["C1", "C2", "C1", "C1"]}
            ),
            "two customers",
        ),
    ],
)  # fmt: skip
def test_bad_assignments_are_refused(three_sources, assignments, message):
    with pytest.raises(ValueError, match=message):
        _build(three_sources, assignments)


def test_contacts_addresses_and_facts_linked_by_customer_id(three_sources, one_customer):
    transactions = pd.DataFrame(
        {
            "record_key": ["sales:S001"] * 3,
            "source_system": "sales",
            "txn_id": ["H1", "H2", "H2"],  # H2 exported twice by sales: counted once
            "txn_date": ["2025-01-10", "2025-05-01", "2025-05-01"],
            "txn_amount": [200000.0, 50000.0, 50000.0],
            "txn_type": "contract",
        }
    )
    interactions = pd.DataFrame(
        {
            "record_key": ["service:T900"],
            "source_system": "service",
            "interaction_id": ["K1"],
            "interaction_date": ["2025-06-20"],
            "channel": "phone",
            "subject": "安装",
            "outcome": "resolved",
            "satisfaction": [4.5],
        }
    )
    golden = _build(three_sources, one_customer, None, transactions, interactions)
    assert len(golden.transactions) == 2
    assert golden.customers.iloc[0]["revenue_12m"] == 250000.0
    assert golden.interactions.iloc[0]["customer_id"] == "C20240315001"
    contacts = golden.contacts
    primary = contacts[contacts["is_primary"]]
    assert primary["phone"].tolist() == ["+8613900000002"]
    assert primary["role"].tolist() == ["primary"]
    assert set(contacts["role"]) >= {"business", "marketing"}
    addresses = golden.addresses
    assert len(addresses) == 2
    assert addresses.loc[addresses["is_primary"], "district"].tolist() == ["海淀区"]
    assert set(golden.as_dict()) == {
        f"golden.{n}"
        for n in (
            "customers", "crosswalk", "attribute_lineage", "contacts", "addresses",
            "transactions", "interactions",
        )
    }  # fmt: skip


def test_fact_without_record_is_an_error(three_sources, one_customer):
    transactions = pd.DataFrame(
        {"record_key": ["sales:NOPE"], "source_system": "sales", "txn_id": ["H9"],
         "txn_date": ["2025-01-10"], "txn_amount": [1.0], "txn_type": "contract"}
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown records"):
        _build(three_sources, one_customer, None, transactions)


def test_contacts_and_addresses_do_not_depend_on_the_order_records_are_read(
    three_sources, one_customer
):
    """Two records of one source and one day naming the same contact with different titles
    (小姐 / 女士), or one address with two division codes: the golden tables are the same
    whichever record the warehouse hands over first."""
    twin = three_sources[three_sources["record_key"] == "sales:S001"].copy()
    twin["record_key"] = "sales:S002"
    twin["contact_title"] = "女士"
    twin["division_code"] = "110108"
    records = pd.concat([three_sources, twin], ignore_index=True)
    records.loc[records["record_key"] == "sales:S001", ["contact_title", "division_code"]] = [
        "小姐",
        "110100",
    ]
    assignments = pd.concat(
        [one_customer, one_customer.head(1).assign(record_key="sales:S002")], ignore_index=True
    )
    built = [
        _build(records.iloc[order].reset_index(drop=True), assignments)
        for order in (list(range(len(records))), list(range(len(records)))[::-1])
    ]
    for name in ("contacts", "addresses"):
        a, b = (getattr(g, name) for g in built)
        pd.testing.assert_frame_equal(a, b)
    contact = built[0].contacts
    assert contact.loc[contact["phone"].eq(twin["phone"].iloc[0]), "contact_title"].tolist() == [
        "女士"
    ]  # the later key of the tie

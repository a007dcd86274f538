"""Data dictionary entries of the analyst views (analytics.*), columns with meaning and lineage."""

from __future__ import annotations

from warehouse._doc_model import TableDoc, cols
from warehouse._table_docs import CUSTOMER_DOCS

_SUMMARY = "golden.customers"

VIEW_DOCS = (
    TableDoc(
        "analytics.customer_360",
        "view",
        "One row per customer: the golden record with contact, address, transaction and "
        "interaction figures (完整客户档案).",
        CUSTOMER_DOCS
        + cols(
            "source_systems | VARCHAR | comma-separated systems holding a record | crosswalk",
            "contact_count | BIGINT | distinct contacts | golden.contacts",
            "address_count | BIGINT | distinct addresses | golden.addresses",
            "transaction_count | BIGINT | transactions | golden.transactions",
            "transaction_total | DOUBLE | sum of all transaction amounts | golden.transactions",
            "first_transaction_date | DATE | first transaction | golden.transactions",
            "last_transaction_date | DATE | last transaction | golden.transactions",
            "interaction_count | BIGINT | tickets, visits, touches | golden.interactions",
            "last_interaction_date | DATE | last interaction | golden.interactions",
            "avg_satisfaction | DOUBLE | mean satisfaction score | golden.interactions",
        ),
    ),
    TableDoc(
        "analytics.customers_by_region",
        "view",
        "Customers per province and city (按地区分类).",
        cols(
            f"province | VARCHAR | 省, (unknown) when not known | {_SUMMARY}",
            f"city | VARCHAR | 市, (unknown) when not known | {_SUMMARY}",
            f"customers | BIGINT | customers | {_SUMMARY}",
            f"enterprises | BIGINT | enterprise customers | {_SUMMARY}",
            f"individuals | BIGINT | individual customers | {_SUMMARY}",
            f"active_customers | BIGINT | lifecycle new or active | {_SUMMARY}",
            f"tier_a_customers | BIGINT | tier A customers | {_SUMMARY}",
            f"revenue_12m | DOUBLE | 12-month revenue | {_SUMMARY}",
        ),
    ),
    TableDoc(
        "analytics.tier_summary",
        "view",
        "Customers and revenue per tier A/B/C (客户等级).",
        cols(
            f"tier | VARCHAR | A / B / C | {_SUMMARY}",
            f"customers | BIGINT | customers | {_SUMMARY}",
            f"share | DOUBLE | share of all customers | {_SUMMARY}",
            f"revenue_12m | DOUBLE | 12-month revenue | {_SUMMARY}",
            f"avg_revenue_12m | DOUBLE | mean 12-month revenue | {_SUMMARY}",
            f"active_customers | BIGINT | lifecycle new or active | {_SUMMARY}",
        ),
    ),
    TableDoc(
        "analytics.lifecycle_summary",
        "view",
        "Customers per lifecycle stage (潜在/新/活跃/流失/休眠).",
        cols(
            f"lifecycle | VARCHAR | potential / new / active / churned / dormant | {_SUMMARY}",
            f"customers | BIGINT | customers | {_SUMMARY}",
            f"share | DOUBLE | share of all customers | {_SUMMARY}",
            f"returning_customers | BIGINT | customers with is_returning | {_SUMMARY}",
            f"revenue_12m | DOUBLE | 12-month revenue | {_SUMMARY}",
        ),
    ),
    TableDoc(
        "analytics.industry_summary",
        "view",
        "Customers and revenue per GB/T 4754 industry section (所属行业).",
        cols(
            f"industry_code | VARCHAR | section letter, ? when unknown | {_SUMMARY}",
            f"industry | VARCHAR | section name, (unknown) when unknown | {_SUMMARY}",
            f"customers | BIGINT | customers | {_SUMMARY}",
            f"revenue_12m | DOUBLE | 12-month revenue | {_SUMMARY}",
        ),
    ),
    TableDoc(
        "analytics.customer_timeline",
        "view",
        "Transactions and interactions of every customer as one dated event list (交互历史).",
        cols(
            "customer_id | VARCHAR | 客户编号 | golden facts",
            "event_date | DATE | transaction or interaction date | golden facts",
            "event_kind | VARCHAR | transaction / interaction | derived",
            "event_id | VARCHAR | txn_id or interaction_id | golden facts",
            "source_system | VARCHAR | department export | golden facts",
            "detail | VARCHAR | txn_type, or channel / subject | golden facts",
            "amount | DOUBLE | transaction amount (null for interactions) | golden.transactions",
            "outcome | VARCHAR | interaction outcome | golden.interactions",
            "satisfaction | DOUBLE | satisfaction score | golden.interactions",
        ),
    ),
    TableDoc(
        "analytics.customer_changes",
        "view",
        "Change log (变更记录): every version opened and every ID closed, with date and reason.",
        cols(
            "customer_id | VARCHAR | 客户编号 | golden.customers_history",
            "changed_on | DATE | run date of the change | golden.customers_history",
            "change_type | VARCHAR | created / updated / closed | golden.customers_history",
            "change_reason | VARCHAR | reason (changed: phone; merged into C…) | history",
            "changed_attributes | VARCHAR | attributes that changed | golden.customers_history",
            "run_id | VARCHAR | run that made the change | golden.customers_history",
        ),
    ),
    TableDoc(
        "analytics.attribute_sources",
        "view",
        "Each golden attribute with the customer name and the source record it came from.",
        cols(
            "customer_id | VARCHAR | 客户编号 | golden.attribute_lineage",
            "customer_name | VARCHAR | golden name | golden.customers",
            "attribute | VARCHAR | golden.customers column | golden.attribute_lineage",
            "value | VARCHAR | surviving value | golden.attribute_lineage",
            "source_system | VARCHAR | winning system | golden.attribute_lineage",
            "source_record_id | VARCHAR | winning record | golden.attribute_lineage",
            "record_date | DATE | the record's date | golden.attribute_lineage",
            "rule | VARCHAR | survivorship strategy | golden.attribute_lineage",
            "candidates | BIGINT | distinct values offered | golden.attribute_lineage",
        ),
    ),
    TableDoc(
        "analytics.dormant_archive",
        "view",
        "休眠档案: customers without business for dormant_after_years (seed 004), kept for audit.",
        cols(
            f"customer_id | VARCHAR | 客户编号 | {_SUMMARY}",
            f"customer_name | VARCHAR | 客户名称 | {_SUMMARY}",
            f"customer_type | VARCHAR | enterprise / individual | {_SUMMARY}",
            f"tier | VARCHAR | A / B / C | {_SUMMARY}",
            f"last_business_date | DATE | last business | {_SUMMARY}",
            "days_since_business | BIGINT | days from last business to today | derived",
        ),
    ),
)

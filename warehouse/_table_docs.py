"""Data dictionary entries of the golden tables (golden.*), columns with meaning and lineage."""

from __future__ import annotations

from warehouse._doc_model import TableDoc, cols

_SURVIVED = "survivorship (golden.attribute_lineage names the source record)"
_CUSTOMER_ATTRS = (
    f"customer_name | VARCHAR | 客户名称: legal name or person's name | {_SURVIVED}",
    f"customer_type | VARCHAR | 客户类型: enterprise / individual | {_SURVIVED}; enterprise when "
    "a credit code is present",
    f"contact_name | VARCHAR | 联系人: main contact person | {_SURVIVED}",
    f"phone | VARCHAR | 联系电话 in E.164 (+8613912345678) | {_SURVIVED}",
    f"email | VARCHAR | 电子邮箱, lowercased | {_SURVIVED}",
    f"address | VARCHAR | 地址: normalized address text | {_SURVIVED}",
    "province | VARCHAR | 省: official name | taken with address",
    "city | VARCHAR | 市: official name | taken with address",
    "district | VARCHAR | 区县: official name | taken with address",
    "industry_code | VARCHAR | GB/T 4754-2017 section letter (A–T) | taken with industry",
    f"industry | VARCHAR | 所属行业: section name | {_SURVIVED}",
    f"credit_code | VARCHAR | 统一社会信用代码 (18 characters) | {_SURVIVED}",
    f"registered_date | DATE | 开户/签约日期: earliest registration date | {_SURVIVED}",
    "tier | VARCHAR | 客户等级 A/B/C from 12-month revenue, count and recency | derived each "
    "run (settings golden.classification)",
    "lifecycle | VARCHAR | potential / new / active / churned / dormant (休眠: no business "
    "for 3 years) / deleted_at_source (every record deleted at its source) | derived each run",
    "is_returning | BOOLEAN | business on two or more distinct dates (null for potential) | "
    "derived from golden.transactions",
)

CUSTOMER_DOCS = cols(
    "customer_id | VARCHAR | 客户编号: stable ID C + YYYYMMDD + sequence | dedupe ID assignment",
    *_CUSTOMER_ATTRS,
    "source_count | BIGINT | number of source systems with a record of the customer | crosswalk",
    "record_count | BIGINT | number of source records merged into the customer | crosswalk",
    "first_seen | DATE | earliest date any source shows the customer | records and facts",
    "last_seen | DATE | latest date any source shows the customer | records and facts",
    "last_business_date | DATE | last transaction (else registration) date up to the run date | "
    "golden.transactions",
    "revenue_12m | DOUBLE | sum of transaction amounts in the 365 days to the run date | "
    "golden.transactions",
    "updated_run_id | VARCHAR | run that built this state | pipeline run",
)

_HISTORY = cols(
    "customer_id | VARCHAR | 客户编号 | golden.customers",
    *_CUSTOMER_ATTRS,
    "valid_from | DATE | run date from which this version was known | run date",
    "valid_to | DATE | run date it was superseded (null: current); valid on valid_from <= d < "
    "valid_to | run date",
    "is_current | BOOLEAN | the open version | history",
    "change_type | VARCHAR | created / updated | history",
    "change_reason | VARCHAR | why this version opened (changed: phone; new customer; split "
    "from C…) | history",
    "changed_attributes | VARCHAR | comma-separated attributes that changed | history",
    "closed_reason | VARCHAR | why it closed (changed: …; merged into C…; no longer in any "
    "source) | history",
    "run_id | VARCHAR | run that opened the version | pipeline run",
    "closed_run_id | VARCHAR | run that closed it | pipeline run",
)

TABLE_DOCS = (
    TableDoc(
        "golden.customers", "table", "One row per customer: the golden record.", CUSTOMER_DOCS
    ),
    TableDoc(
        "golden.crosswalk",
        "table",
        "Every clean source record exactly once, with the customer it belongs to.",
        cols(
            "source_system | VARCHAR | department export (sales, service, …) | sources",
            "source_record_id | VARCHAR | the source's own id | sources",
            "record_key | VARCHAR | source_system:source_record_id | sources",
            "customer_id | VARCHAR | 客户编号 | dedupe ID assignment",
            "match_score | DOUBLE | best link probability to its cluster (1.0 alone) | dedupe",
        ),
    ),
    TableDoc(
        "golden.attribute_lineage",
        "table",
        "Where every non-null golden attribute came from and by which rule.",
        cols(
            "customer_id | VARCHAR | 客户编号 | golden.customers",
            "attribute | VARCHAR | golden.customers column | survivorship",
            "value | VARCHAR | the surviving value as text | source record",
            "source_system | VARCHAR | system of the winning record | crosswalk",
            "source_record_id | VARCHAR | id of the winning record in its system | crosswalk",
            "record_key | VARCHAR | key of the winning record | crosswalk",
            "record_date | DATE | the record's updated_at (else registered/ingested date) | "
            "source record",
            "rule | VARCHAR | survivorship strategy (source_priority, most_recent, …) | settings",
            "candidates | BIGINT | distinct values the sources offered | survivorship",
            "run_id | VARCHAR | run that chose it | pipeline run",
        ),
    ),
    TableDoc(
        "golden.contacts",
        "table",
        "Every distinct contact person / phone / email of a customer, with role and validity.",
        cols(
            "customer_id | VARCHAR | 客户编号 | crosswalk",
            "contact_name | VARCHAR | 联系人 | clean.records",
            "contact_title | VARCHAR | title or honorific (经理, 女士) | clean.records",
            "phone | VARCHAR | E.164 phone | clean.records",
            "phone_type | VARCHAR | mobile / fixed / toll_free / other | clean.records",
            "email | VARCHAR | email | clean.records",
            "role | VARCHAR | primary, or by source: business / billing / service / marketing "
            "| derived",
            "is_primary | BOOLEAN | carries the golden phone (or golden name and email) | derived",
            "valid_from | DATE | first date a source showed it | record dates",
            "valid_to | DATE | last date seen when its source reports a newer contact | derived",
            "is_current | BOOLEAN | not superseded | derived",
            "source_systems | VARCHAR | comma-separated systems reporting it | crosswalk",
            "record_count | BIGINT | records reporting it | crosswalk",
        ),
    ),
    TableDoc(
        "golden.addresses",
        "table",
        "Every distinct address of a customer; the golden one is primary.",
        cols(
            "customer_id | VARCHAR | 客户编号 | crosswalk",
            "address | VARCHAR | normalized address text | clean.records",
            "province | VARCHAR | 省 | clean.records",
            "city | VARCHAR | 市 | clean.records",
            "district | VARCHAR | 区县 | clean.records",
            "division_code | VARCHAR | 6-digit administrative division code | clean.records",
            "is_primary | BOOLEAN | the golden address | derived",
            "first_seen | DATE | first date a source showed it | record dates",
            "last_seen | DATE | last date a source showed it | record dates",
            "source_systems | VARCHAR | comma-separated systems reporting it | crosswalk",
            "record_count | BIGINT | records reporting it | crosswalk",
        ),
    ),
    TableDoc(
        "golden.transactions",
        "table",
        "Orders and contracts (交易/合同) with amount and date, linked to customers.",
        cols(
            "customer_id | VARCHAR | 客户编号 | crosswalk",
            "record_key | VARCHAR | source record carrying the transaction | clean.transactions",
            "source_system | VARCHAR | department export | clean.transactions",
            "txn_id | VARCHAR | 合同编号 / order number | clean.transactions",
            "txn_date | DATE | 签约日期 / order date | clean.transactions",
            "txn_year | BIGINT | year of txn_date (Parquet partition) | derived",
            "txn_amount | DOUBLE | 合同金额 | clean.transactions",
            "txn_type | VARCHAR | contract / order / … | clean.transactions",
        ),
    ),
    TableDoc(
        "golden.interactions",
        "table",
        "Service tickets, visits and marketing touches (交互记录), linked to customers.",
        cols(
            "customer_id | VARCHAR | 客户编号 | crosswalk",
            "record_key | VARCHAR | source record carrying it | clean.interactions",
            "source_system | VARCHAR | department export | clean.interactions",
            "interaction_id | VARCHAR | ticket / visit / campaign id | clean.interactions",
            "interaction_date | DATE | 记录日期 | clean.interactions",
            "interaction_year | BIGINT | year of interaction_date (Parquet partition) | derived",
            "channel | VARCHAR | phone / visit / email / … | clean.interactions",
            "subject | VARCHAR | 内容概述 | clean.interactions",
            "outcome | VARCHAR | 结果跟进 | clean.interactions",
            "satisfaction | DOUBLE | satisfaction score | clean.interactions",
        ),
    ),
    TableDoc(
        "golden.customers_history",
        "table",
        "SCD type 2 history of golden.customers: every version with validity and reason.",
        _HISTORY,
    ),
    TableDoc(
        "golden.customer_ids",
        "table",
        "ID events: customer IDs created, merged and split, per run.",
        cols(
            "customer_id | VARCHAR | 客户编号 | dedupe ID assignment",
            "event | VARCHAR | created / merged_into / split_from / … | dedupe ID assignment",
            "other_customer_id | VARCHAR | the other ID of a merge or split | dedupe",
            "run_date | VARCHAR | run date (ISO) | pipeline run",
            "run_id | VARCHAR | run | pipeline run",
        ),
    ),
)

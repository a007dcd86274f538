"""Cleaning: standardize Chinese and international customer data into the clean layer."""

from cleaning._parallel import worker_pool
from cleaning.address import AddressResult, parse_address, parse_normalized_address
from cleaning.amount import parse_amount
from cleaning.codes import (
    CreditCode,
    credit_code_check_char,
    customer_type_from_source,
    infer_customer_type,
    infer_customer_types,
    validate_credit_code,
)
from cleaning.company import CompanyName, parse_company_name, parse_normalized_company_name
from cleaning.dates import DateOrder, infer_date_order, parse_date
from cleaning.divisions import division_index, province_names
from cleaning.email import EmailResult, email_from_normalized, free_mail_domains, normalize_email
from cleaning.facts import parse_satisfaction
from cleaning.incremental import date_order_frame
from cleaning.industry import IndustryResult, industry_sections, map_industry
from cleaning.issues import ISSUE_CODES
from cleaning.person import person_key, split_normalized_person_name, split_person_name
from cleaning.phone import PhoneResult, flag_shared_phones, normalize_phone
from cleaning.phone_bulk import PhoneColumns, normalize_phones
from cleaning.pipeline import (
    CleaningOptions,
    CleanResult,
    clean_records,
    date_orders,
    unmapped_from_records,
)
from cleaning.text import normalize_text, normalize_text_series, normalize_texts, to_simplified

__all__ = [
    "ISSUE_CODES",
    "AddressResult",
    "CleanResult",
    "CleaningOptions",
    "CompanyName",
    "CreditCode",
    "DateOrder",
    "EmailResult",
    "IndustryResult",
    "PhoneColumns",
    "PhoneResult",
    "clean_records",
    "credit_code_check_char",
    "customer_type_from_source",
    "date_order_frame",
    "date_orders",
    "division_index",
    "email_from_normalized",
    "flag_shared_phones",
    "free_mail_domains",
    "industry_sections",
    "infer_customer_type",
    "infer_customer_types",
    "infer_date_order",
    "map_industry",
    "normalize_email",
    "normalize_phone",
    "normalize_phones",
    "normalize_text",
    "normalize_text_series",
    "normalize_texts",
    "parse_address",
    "parse_amount",
    "parse_company_name",
    "parse_date",
    "parse_normalized_address",
    "parse_normalized_company_name",
    "parse_satisfaction",
    "person_key",
    "province_names",
    "split_normalized_person_name",
    "split_person_name",
    "to_simplified",
    "unmapped_from_records",
    "validate_credit_code",
    "worker_pool",
]

"""The warehouse: DuckDB access, the golden customer layer, its history and analyst SQL model."""

from warehouse.classification import classify, customer_type
from warehouse.db import (
    append_table,
    connect,
    ensure_schemas,
    read_table,
    replace_tables,
    run_sql,
    table_columns,
    table_exists,
)
from warehouse.dictionary import (
    DATA_DICTIONARY,
    ColumnDoc,
    TableDoc,
    render_data_dictionary,
    write_data_dictionary,
)
from warehouse.golden import GoldenTables, build_golden
from warehouse.history import TRACKED_ATTRIBUTES, update_history
from warehouse.naming import attachment_name, export_parquet
from warehouse.settings import (
    ClassificationSettings,
    GoldenSettings,
    SurvivorshipRule,
    TierThreshold,
)
from warehouse.views import create_views, customer_as_of

__all__ = [
    "DATA_DICTIONARY",
    "TRACKED_ATTRIBUTES",
    "ClassificationSettings",
    "ColumnDoc",
    "GoldenSettings",
    "GoldenTables",
    "SurvivorshipRule",
    "TableDoc",
    "TierThreshold",
    "append_table",
    "attachment_name",
    "build_golden",
    "classify",
    "connect",
    "create_views",
    "customer_as_of",
    "customer_type",
    "ensure_schemas",
    "export_parquet",
    "read_table",
    "render_data_dictionary",
    "replace_tables",
    "run_sql",
    "table_columns",
    "table_exists",
    "update_history",
    "write_data_dictionary",
]

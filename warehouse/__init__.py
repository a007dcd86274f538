"""The warehouse: DuckDB access, the golden customer layer, its history and analyst SQL model."""

from warehouse.classification import classify, customer_type
from warehouse.db import (
    append_table,
    connect,
    ensure_schemas,
    read_table,
    replace_tables,
    run_sql,
    table_exists,
)
from warehouse.golden import GoldenTables, build_golden
from warehouse.settings import (
    ClassificationSettings,
    GoldenSettings,
    SurvivorshipRule,
    TierThreshold,
)

__all__ = [
    "ClassificationSettings",
    "GoldenSettings",
    "GoldenTables",
    "SurvivorshipRule",
    "TierThreshold",
    "append_table",
    "build_golden",
    "classify",
    "connect",
    "customer_type",
    "ensure_schemas",
    "read_table",
    "replace_tables",
    "run_sql",
    "table_exists",
]

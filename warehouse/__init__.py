"""The warehouse: DuckDB access, the golden customer layer, its history and analyst SQL model."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it: the module is imported on first
# use (PEP 562), so importing one light submodule (e.g. a settings class) does not load
# pandas, SciPy or DuckDB for the whole package (the CLI must start fast).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "warehouse.classification": ("classify", "customer_type"),
    "warehouse.db": (
        "append_table",
        "connect",
        "ensure_schemas",
        "read_table",
        "read_table_chunks",
        "replace_tables",
        "run_sql",
        "table_columns",
        "table_exists",
    ),
    "warehouse.dictionary": (
        "DATA_DICTIONARY",
        "ColumnDoc",
        "TableDoc",
        "render_data_dictionary",
        "write_data_dictionary",
    ),
    "warehouse.golden": ("GoldenTables", "build_golden"),
    "warehouse.history": ("TRACKED_ATTRIBUTES", "update_history"),
    "warehouse.naming": ("attachment_name", "export_parquet"),
    "warehouse.settings": (
        "ClassificationSettings",
        "GoldenSettings",
        "SurvivorshipRule",
        "TierThreshold",
    ),
    "warehouse.views": ("create_views", "customer_as_of"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

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
    "read_table_chunks",
    "render_data_dictionary",
    "replace_tables",
    "run_sql",
    "table_columns",
    "table_exists",
    "update_history",
    "write_data_dictionary",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))

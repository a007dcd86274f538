"""Quality gates: Great Expectations suites per layer, Data Docs and the HTML quality report."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it: the module is imported on first
# use (PEP 562), so importing one light submodule (e.g. a settings class) does not load
# pandas, SciPy or DuckDB for the whole package (the CLI must start fast).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "expectations.audit_sample": ("AuditSample", "draw_audit_sample"),
    "expectations.catalog": ("CHECKS", "CheckSpec", "checks_for_layer"),
    "expectations.outcome": ("CheckOutcome", "blocking_failures"),
    "expectations.raw_layer": ("RawTables",),
    "expectations.report": ("TREND_METRICS", "RunSummary", "render_quality_report"),
    "expectations.settings": ("QualitySettings",),
    "expectations.suites": (
        "CLEAN_SUITE_COLUMNS",
        "GOLDEN_SUITE_RECORD_COLUMNS",
        "build_data_docs",
        "validate_clean",
        "validate_golden",
        "validate_raw",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "CHECKS",
    "CLEAN_SUITE_COLUMNS",
    "GOLDEN_SUITE_RECORD_COLUMNS",
    "TREND_METRICS",
    "AuditSample",
    "CheckOutcome",
    "CheckSpec",
    "QualitySettings",
    "RawTables",
    "RunSummary",
    "blocking_failures",
    "build_data_docs",
    "checks_for_layer",
    "draw_audit_sample",
    "render_quality_report",
    "validate_clean",
    "validate_golden",
    "validate_raw",
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

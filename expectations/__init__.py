"""Quality gates: Great Expectations suites per layer, Data Docs and the HTML quality report."""

from expectations.audit_sample import AuditSample, draw_audit_sample
from expectations.catalog import CHECKS, CheckSpec, checks_for_layer
from expectations.outcome import CheckOutcome, blocking_failures
from expectations.raw_layer import RawTables
from expectations.report import TREND_METRICS, RunSummary, render_quality_report
from expectations.settings import QualitySettings
from expectations.suites import (
    CLEAN_SUITE_COLUMNS,
    GOLDEN_SUITE_RECORD_COLUMNS,
    build_data_docs,
    validate_clean,
    validate_golden,
    validate_raw,
)

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

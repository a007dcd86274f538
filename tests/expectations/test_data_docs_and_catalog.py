"""Data Docs are written from the run's suites, and the docs list every catalog check."""

from __future__ import annotations

from pathlib import Path

import pytest

from expectations import CHECKS, build_data_docs, validate_golden

_DOCS = Path(__file__).resolve().parents[2] / "docs" / "quality.md"


@pytest.mark.usefixtures("gx")
def test_data_docs_site_has_the_golden_suites(tmp_path, customers, crosswalk, clean_records):
    validate_golden(customers, crosswalk, clean_records)
    index = build_data_docs(tmp_path / "data_docs")
    assert index == (tmp_path / "data_docs" / "index.html").resolve()
    # GX turns the dots of suite names into folders: golden.customers -> golden/customers.html
    pages = {p.stem for p in (tmp_path / "data_docs" / "expectations" / "golden").glob("*.html")}
    assert {"customers", "crosswalk", "record_coverage", "customer_links"} <= pages
    assert any((tmp_path / "data_docs" / "validations").rglob("*.html"))


def test_quality_doc_lists_every_check_with_its_severity() -> None:
    text = _DOCS.read_text(encoding="utf-8")
    for name, spec in CHECKS.items():
        severity = "**critical**" if spec.critical else "warning"
        assert f"| `{name}` | {severity} |" in text, name

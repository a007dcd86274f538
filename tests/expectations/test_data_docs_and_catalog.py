"""Data Docs are written from the run's suites, and the docs list every catalog check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from expectations import CHECKS, build_data_docs, validate_golden

_DOCS = Path(__file__).resolve().parents[2] / "docs" / "quality.md"


@pytest.mark.usefixtures("gx")
def test_data_docs_site_has_the_golden_suites(tmp_path, customers, crosswalk, clean_records):
    validate_golden(customers, crosswalk, clean_records)
    index = build_data_docs(tmp_path / "data_docs")
    assert index == (tmp_path / "data_docs" / "index.html").resolve()
    # GX turns the dots of suite names into folders: golden.customers -> golden/customers.html;
    # the per-customer checks are GX suites (the whole-table ones are SQL, without a page)
    pages = {p.stem for p in (tmp_path / "data_docs" / "expectations" / "golden").glob("*.html")}
    assert {"customers", "dates"} <= pages
    assert any((tmp_path / "data_docs" / "validations").rglob("*.html"))


@pytest.mark.usefixtures("gx")
def test_data_docs_load_no_remote_asset(tmp_path, customers, crosswalk, clean_records):
    """An offline machine renders the Data Docs styled: every CSS/JS/image is in the site."""
    from expectations._offline_docs import remote_assets

    validate_golden(customers, crosswalk, clean_records)
    index = build_data_docs(tmp_path / "data_docs")
    pages = list(index.parent.rglob("*.html"))
    assert len(pages) > 3
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert remote_assets(html) == [], page
        for ref in re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', html):
            if "static/vendor/" in ref:  # (GX's own favicon path is off by a level: harmless)
                assert (page.parent / ref).resolve().is_file(), (page, ref)
    vendored = [p for p in (index.parent / "static" / "vendor").rglob("*") if p.is_file()]
    assert len(vendored) >= 15


def test_quality_doc_lists_every_check_with_its_severity() -> None:
    text = _DOCS.read_text(encoding="utf-8")
    for name, spec in CHECKS.items():
        severity = "**critical**" if spec.critical else "warning"
        assert f"| `{name}` | {severity} |" in text, name

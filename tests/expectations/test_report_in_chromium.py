"""The quality report opened in a real headless Chromium renders its charts without errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from expectations import render_quality_report
from expectations.screenshot import find_chromium, render_in_chromium
from tests.expectations.test_report import HISTORY, OUTCOMES, SUMMARY

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="needs Debian chromium (apt install chromium)"
)


def test_report_renders_with_charts_and_no_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "report" / "quality_report.html"
    page.parent.mkdir()
    page.write_text(
        render_quality_report(
            SUMMARY,
            HISTORY,
            OUTCOMES,
            [(-5.0, 30), (0.0, 15), (10.0, 9)],
            {1: 130, 2: 15},
            "data_docs/index.html",
        ),
        encoding="utf-8",
    )
    render = render_in_chromium(page, page.with_suffix(".png"))
    assert render.console == []
    assert render.dom.count("<svg") >= 12
    assert 'id="trends"' in render.dom
    data = render.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank page compresses to a few kB


def test_console_errors_are_caught(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>notDefined();</script>", encoding="utf-8")
    render = render_in_chromium(page, tmp_path / "broken.png")
    assert any("notDefined" in message for message in render.console)

"""The HTML quality report: sections, figures, escaping, well-formedness and self-containment."""

from __future__ import annotations

import itertools
from html.parser import HTMLParser

import pytest

from expectations import CheckOutcome, RunSummary, render_quality_report

_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}
_SVG_LEAVES = {"rect", "line", "circle", "polyline", "path"}


class _Checker(HTMLParser):
    """Collects section ids, link targets and tag-nesting errors."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.sections: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.svgs = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "svg":
            self.svgs += 1
        if "href" in a:
            self.hrefs.append(a["href"] or "")
        if "src" in a:
            self.srcs.append(a["src"] or "")
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


SUMMARY = RunSummary(
    run_id="run-20240315",
    started_at="2024-03-15T02:00:00+08:00",
    rows_in={"crm": 1200, "sales": 800},
    quarantined={"crm": 12, "sales": 3},
    clean_rows={"crm": 1188, "sales": 797},
    candidate_pairs=5400,
    clusters=1500,
    golden_customers=1490,
    review_queue=37,
    merges=4,
    splits=1,
    snapshot_path="archive/2024/Q1/2024-03-15T02-10-00_run-20240315",
    quarantine_reasons={"encoding_error": 9, "column_count_mismatch": 6},
)

OUTCOMES = [
    CheckOutcome(
        "golden_customer_id_unique",
        "golden",
        True,
        True,
        {"unexpected_count": 0},
        "customer_id is unique.",
    ),
    CheckOutcome(
        "golden_row_count_drift",
        "golden",
        False,
        False,
        {"observed_value": 1490, "thresholds": {"min": 1500}},
        "Count drift.",
    ),
    CheckOutcome(
        "raw_record_key_unique",
        "raw",
        True,
        False,
        {"unexpected_keys": ["<script>alert(1)</script>"]},
        "Keys unique.",
    ),
]

HISTORY = [
    {
        "run_id": "run-20240313",
        "started_at": "2024-03-13T02:00:00+08:00",
        "rows_in": 1900,
        "quarantined": 20,
        "clean_rows": 1880,
        "golden_customers": 1400,
        "review_queue": 50,
        "merges": 2,
        "splits": 0,
        "failed_checks": 0,
    },
    {
        "run_id": "run-20240314",
        "started_at": "2024-03-14T02:00:00+08:00",
        "rows_in": {"crm": 1100, "sales": 850},
        "quarantined": {"crm": 10},
        "clean_rows": 1940,
        "golden_customers": 1450,
        "review_queue": 41,
        "merges": 3,
        "splits": 0,
    },
]


@pytest.fixture(scope="module")
def html() -> str:
    return render_quality_report(
        SUMMARY,
        HISTORY,
        OUTCOMES,
        score_histogram=[(-5.0, 3000), (0.0, 1500), (10.0, 900)],
        cluster_sizes={1: 1300, 2: 150, 3: 50},
        data_docs_href="data_docs/index.html",
    )


@pytest.fixture(scope="module")
def parsed(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return checker


def test_report_is_well_formed(parsed: _Checker) -> None:
    assert parsed.errors == []
    assert parsed.stack == []


def test_report_has_every_section(parsed: _Checker) -> None:
    assert parsed.sections == [
        "overview",
        "rows",
        "quarantine",
        "scores",
        "clusters",
        "review",
        "expectations",
        "trends",
        "data-docs",
    ]


def test_report_shows_the_run_figures(html: str, parsed: _Checker) -> None:
    text = " ".join(parsed.text)
    for figure in (
        "1,200",
        "1,188",
        "1,985",
        "5,400",
        "1,490",
        "37",
        "encoding_error",
        "column_count_mismatch",
        "run-20240315",
        "1,300",
    ):
        assert figure in text, figure
    # change since the last run: golden customers 1450 -> 1490
    assert "+40" in text
    assert "Publishing blocked: 1 critical check(s) failed (raw_record_key_unique)" in text


def test_report_lists_outcomes_with_severity_and_result(parsed: _Checker) -> None:
    text = " ".join(parsed.text)
    assert "3 checks, 2 failed." in text
    for name in ("golden_customer_id_unique", "golden_row_count_drift", "raw_record_key_unique"):
        assert name in text


def test_report_escapes_data(html: str) -> None:
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_report_is_self_contained_with_inline_charts(parsed: _Checker, html: str) -> None:
    assert parsed.srcs == []
    assert parsed.hrefs == ["data_docs/index.html"]
    assert "<link" not in html
    # rows, quarantine, scores, clusters and one per trend metric
    assert parsed.svgs >= 4 + 8


def test_trend_charts_cover_history_and_this_run(html: str) -> None:
    assert "Last 3 run(s), oldest first." in html
    assert "Golden customers 2024-03-13: 1,400" in html
    assert "Golden customers 2024-03-15: 1,490" in html


def test_report_accepts_a_dict_and_handles_missing_data() -> None:
    page = render_quality_report({"run_id": "r1", "started_at": "2024-01-01"}, [], [], None, None)
    checker = _Checker()
    checker.feed(page)
    assert checker.errors == []
    assert "No scored pairs in this run." in page
    assert "Data Docs were not built for this run." in page


def test_summary_dict_round_trip() -> None:
    assert RunSummary.from_dict(SUMMARY.as_dict()) == SUMMARY
    with pytest.raises(ValueError, match="run_id"):
        RunSummary.from_dict({"started_at": "x"})


def test_trend_tick_labels_never_overlap() -> None:
    """Many runs, several a day: the drawn x labels keep 4 px of air between them."""
    from expectations._svg import _CHAR_PX, tick_indices
    from expectations.report import trend_labels

    stamps = [f"2026-12-0{1 + i // 6}T{8 + i % 6:02d}:15:00" for i in range(30)]
    labels = trend_labels([{"started_at": s} for s in stamps])
    assert len(set(labels)) == len(labels)  # runs sharing a day carry their time
    xs = [48 + i * (300 / 29) for i in range(30)]
    chosen = tick_indices(xs, labels)
    assert chosen[-1] == 29 and len(chosen) >= 3
    spans = []
    for i in chosen:
        w = len(labels[i]) * _CHAR_PX
        spans.append((xs[i] - w, xs[i]) if i == 29 else (xs[i] - w / 2, xs[i] + w / 2))
    for (_, hi), (lo, _) in itertools.pairwise(spans):
        assert hi + 4 <= lo + 1e-9


def test_a_failed_run_is_a_gap_not_zero_customers() -> None:

    failed = RunSummary(run_id="r2", started_at="2026-12-05T02:00:00", published=False)
    ok = RunSummary(
        run_id="r1", started_at="2026-12-04T02:00:00", golden_customers=5000, published=True
    )
    assert failed.trend_point()["golden_customers"] is None
    assert ok.trend_point()["golden_customers"] == 5000
    from expectations import _svg as svg

    chart = svg.line_chart(["a", "b", "c"], {"customers": [5000, None, 5010]}, "t")
    assert chart.count("<circle") == 2  # no point drawn at 0 for the failed run

"""The self-contained HTML quality report of one run (RunSummary → HTML with inline SVG charts)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from html import escape
from typing import Any

from expectations import _svg as svg
from expectations.outcome import CheckOutcome

TREND_METRICS: tuple[tuple[str, str], ...] = (
    ("rows_in", "Rows in"),
    ("quarantined", "Quarantined"),
    ("clean_rows", "Clean rows"),
    ("golden_customers", "Golden customers"),
    ("review_queue", "Review queue"),
    ("merges", "Merges"),
    ("splits", "Splits"),
    ("failed_checks", "Failed checks"),
)
"""Figures plotted over the last runs: (key in RunSummary.trend_point(), label)."""

_CSS = """
body{font-family:-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top;font-size:13px}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
.warnfail{color:#d9822b;font-weight:600}.banner{padding:10px;border-radius:4px;margin:8px 0}
.banner.ok{background:#e8f5e9}.banner.blocked{background:#ffebee}.banner.warn{background:#fff3e0}
.charts{display:flex;flex-wrap:wrap;gap:16px}code{font-size:12px;word-break:break-all}
.empty{color:#777;font-style:italic}
"""


@dataclass(frozen=True)
class RunSummary:
    """Figures of one pipeline run shown in the quality report.

    Attributes:
        run_id: Pipeline run id.
        started_at: ISO timestamp of the run start.
        rows_in: Raw rows read per source system.
        quarantined: Quarantined rows per source system.
        clean_rows: Clean records per source system.
        candidate_pairs: Pairs produced by blocking.
        clusters: Clusters after matching.
        golden_customers: Rows in golden.customers.
        review_queue: Pairs waiting for clerical review.
        merges: Customer-id merge events in this run.
        splits: Customer-id split events in this run.
        snapshot_path: Archive folder written, or None when publishing was blocked.
        quarantine_reasons: ``{reason: rows}`` over all sources.
        finished_at: ISO timestamp of the run end, when known.
        published: Whether the run published its golden layer (None: unknown, e.g. an old
            summary); a run that did not is not plotted as 0 customers in the trends.
    """

    run_id: str
    started_at: str
    rows_in: Mapping[str, int] = field(default_factory=dict)
    quarantined: Mapping[str, int] = field(default_factory=dict)
    clean_rows: Mapping[str, int] = field(default_factory=dict)
    candidate_pairs: int = 0
    clusters: int = 0
    golden_customers: int = 0
    review_queue: int = 0
    merges: int = 0
    splits: int = 0
    snapshot_path: str | None = None
    quarantine_reasons: Mapping[str, int] = field(default_factory=dict)
    finished_at: str | None = None
    published: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """Build a summary from a plain dict, ignoring unknown keys.

        Args:
            data: Mapping with at least ``run_id`` and ``started_at``.

        Returns:
            The summary.

        Raises:
            ValueError: ``run_id`` or ``started_at`` is missing.
        """
        missing = [k for k in ("run_id", "started_at") if k not in data]
        if missing:
            raise ValueError(f"run summary lacks {missing}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-friendly data."""
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in asdict(self).items()}

    def trend_point(self, outcomes: Sequence[CheckOutcome] = ()) -> dict[str, Any]:
        """Return the flat figures stored per run for the trend charts.

        Args:
            outcomes: This run's check outcomes (counted as ``failed_checks``).

        Returns:
            ``run_id``, ``started_at`` and one number per ``TREND_METRICS`` key.
        """
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "rows_in": sum(self.rows_in.values()),
            "quarantined": sum(self.quarantined.values()),
            "clean_rows": sum(self.clean_rows.values()),
            # a failed or blocked run published nothing: a gap in the chart, not a drop to 0
            "golden_customers": None if self.published is False else self.golden_customers,
            "review_queue": self.review_queue,
            "merges": self.merges,
            "splits": self.splits,
            "failed_checks": sum(1 for o in outcomes if not o.success),
        }


def render_quality_report(
    run: RunSummary | dict,
    history: Sequence[dict],
    outcomes: Sequence[CheckOutcome],
    score_histogram: Sequence[tuple[float, int]] | None,
    cluster_sizes: Mapping[int, int] | None,
    data_docs_href: str | None = None,
) -> str:
    """Render the run's quality report as one self-contained HTML page.

    Args:
        run: This run's figures (a ``RunSummary`` or its dict form).
        history: Earlier runs, oldest first, as ``RunSummary.trend_point()`` dicts (or full
            summary dicts; per-source mappings are summed).
        outcomes: Check outcomes of this run, all layers.
        score_histogram: ``(bin lower edge, pairs)`` of match scores, or None.
        cluster_sizes: ``{cluster size: clusters}``, or None.
        data_docs_href: Link to the GX Data Docs index, or None.

    Returns:
        HTML text with inline CSS and SVG charts, no external assets; all data escaped.
    """
    summary = run if isinstance(run, RunSummary) else RunSummary.from_dict(run)
    points = [_trend_point(h) for h in history] + [summary.trend_point(outcomes)]
    previous = points[-2] if len(points) > 1 else None
    title = f"客户档案 quality report — run {summary.run_id}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _overview(summary, outcomes, previous, points[-1]),
        _rows_section(summary),
        _quarantine_section(summary),
        _scores_section(score_histogram, summary),
        _clusters_section(cluster_sizes, summary),
        _review_section(summary),
        _expectations_section(outcomes),
        _trends_section(points),
        _docs_section(data_docs_href),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _trend_point(entry: Mapping[str, Any]) -> dict[str, Any]:
    point: dict[str, Any] = {
        "run_id": str(entry.get("run_id", "")),
        "started_at": str(entry.get("started_at", "")),
    }
    for key, _ in TREND_METRICS:
        value = entry.get(key)
        if isinstance(value, Mapping):
            value = sum(value.values())
        point[key] = float(value) if isinstance(value, int | float) else None
    return point


def _section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{content}</section>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                cells.append(f'<td class="num">{cell:,}</td>')
            else:
                cells.append(f"<td>{escape(str(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _overview(
    summary: RunSummary,
    outcomes: Sequence[CheckOutcome],
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
) -> str:
    blocked = [o for o in outcomes if o.critical and not o.success]
    warned = [o for o in outcomes if not o.critical and not o.success]
    if blocked:
        banner = (
            f'<div class="banner blocked">Publishing blocked: {len(blocked)} critical '
            f"check(s) failed ({escape(', '.join(o.name for o in blocked))}).</div>"
        )
    elif warned:
        banner = f'<div class="banner warn">Published with {len(warned)} warning(s).</div>'
    else:
        banner = '<div class="banner ok">All checks passed.</div>'
    rows: list[list[Any]] = [
        ["Run id", summary.run_id, ""],
        ["Started at", summary.started_at, ""],
        ["Finished at", summary.finished_at or "—", ""],
        ["Snapshot", summary.snapshot_path or "not published", ""],
    ]
    for key, label in TREND_METRICS:
        now = current.get(key)
        before = previous.get(key) if previous else None
        change = "" if before is None or now is None else f"{now - before:+,.0f}"
        rows.append([label, int(now) if now is not None else "—", change])
    return _section(
        "overview",
        "Run overview",
        banner + _table(["Figure", "This run", "Change since last run"], rows),
    )


def _rows_section(summary: RunSummary) -> str:
    sources = sorted(set(summary.rows_in) | set(summary.quarantined) | set(summary.clean_rows))
    rows = [
        [s, summary.rows_in.get(s, 0), summary.quarantined.get(s, 0), summary.clean_rows.get(s, 0)]
        for s in sources
    ]
    if sources:
        rows.append(
            [
                "Total",
                sum(summary.rows_in.values()),
                sum(summary.quarantined.values()),
                sum(summary.clean_rows.values()),
            ]
        )
    chart = svg.grouped_bar_chart(
        sources,
        {
            "in": [summary.rows_in.get(s, 0) for s in sources],
            "quarantined": [summary.quarantined.get(s, 0) for s in sources],
            "clean": [summary.clean_rows.get(s, 0) for s in sources],
        },
        "Rows per source and stage",
    )
    return _section(
        "rows",
        "Rows per source and stage",
        _table(["Source", "In", "Quarantined", "Clean"], rows) + chart,
    )


def _quarantine_section(summary: RunSummary) -> str:
    reasons = sorted(summary.quarantine_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    if not reasons:
        return _section(
            "quarantine", "Quarantine reasons", '<p class="empty">No rows were quarantined.</p>'
        )
    chart = svg.bar_chart(reasons[:15], "Quarantined rows by reason")
    return _section("quarantine", "Quarantine reasons", _table(["Reason", "Rows"], reasons) + chart)


def _scores_section(histogram: Sequence[tuple[float, int]] | None, summary: RunSummary) -> str:
    intro = _table(["Candidate pairs"], [[summary.candidate_pairs]])
    if not histogram:
        return _section(
            "scores",
            "Match score histogram",
            intro + '<p class="empty">No scored pairs in this run.</p>',
        )
    bins = sorted(histogram)
    chart = svg.bar_chart(
        [(f"{edge:g}", count) for edge, count in bins],
        "Candidate pairs by match score (log2 Bayes factor)",
    )
    table = _table(["Score from", "Pairs"], [[f"{edge:g}", count] for edge, count in bins])
    return _section("scores", "Match score histogram", intro + chart + table)


def _clusters_section(sizes: Mapping[int, int] | None, summary: RunSummary) -> str:
    intro = _table(["Clusters", "Golden customers"], [[summary.clusters, summary.golden_customers]])
    if not sizes:
        return _section(
            "clusters",
            "Clusters by size",
            intro + '<p class="empty">No cluster sizes recorded.</p>',
        )
    ordered = sorted(sizes.items())
    chart = svg.bar_chart(
        [(str(size), count) for size, count in ordered], "Clusters by number of records"
    )
    table = _table(["Records per cluster", "Clusters"], [[s, c] for s, c in ordered])
    return _section("clusters", "Clusters by size", intro + chart + table)


def _review_section(summary: RunSummary) -> str:
    table = _table(
        ["Review queue", "Merges", "Splits"],
        [[summary.review_queue, summary.merges, summary.splits]],
    )
    return _section("review", "Review queue, merges and splits", table)


def _layer_label(o: CheckOutcome) -> str:
    """The layer, with the source of a raw check (``raw · sales``)."""
    source = o.observed.get("source_system") if o.layer == "raw" else None
    return f"{o.layer} · {source}" if source else o.layer


def _expectations_section(outcomes: Sequence[CheckOutcome]) -> str:
    if not outcomes:
        return _section(
            "expectations", "Expectation results", '<p class="empty">No checks were run.</p>'
        )
    ordered = sorted(outcomes, key=lambda o: (o.success, not o.critical))
    rows = []
    for o in ordered:
        if o.success:
            verdict = '<span class="pass">pass</span>'
        else:
            verdict = f'<span class="{"fail" if o.critical else "warnfail"}">fail</span>'
        observed = escape(json.dumps(o.observed, ensure_ascii=False, default=str)[:600])
        rows.append(
            f"<tr><td>{escape(_layer_label(o))}</td><td>{escape(o.name)}</td>"
            f"<td>{escape(o.severity)}</td><td>{verdict}</td>"
            f"<td>{escape(o.description)}</td><td><code>{observed}</code></td></tr>"
        )
    failed = sum(1 for o in outcomes if not o.success)
    head = "".join(
        f"<th>{h}</th>" for h in ("Layer", "Check", "Severity", "Result", "Guards", "Observed")
    )
    summary = f"<p>{len(outcomes)} checks, {failed} failed.</p>"
    return _section(
        "expectations",
        "Expectation results",
        summary
        + f"<table><thead><tr>{head}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>",
    )


def trend_labels(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """One x-axis label per run: its date, with the time when several runs share a day.

    Examples:
        >>> trend_labels([{"started_at": "2026-12-04T09:00:00"},
        ...               {"started_at": "2026-12-05T09:00:00"},
        ...               {"started_at": "2026-12-05T14:30:10"}])
        ['2026-12-04', '12-05 09:00', '12-05 14:30']
    """
    stamps = [str(p.get("started_at") or p.get("run_id") or "") for p in points]
    days = [stamp[:10] for stamp in stamps]
    shared = {d for d in days if days.count(d) > 1}
    pairs = list(zip(days, stamps, strict=True))
    labels = [f"{d[5:]} {stamp[11:16]}" if d in shared else d for d, stamp in pairs]
    if len(set(labels)) < len(labels):  # two runs in one minute: seconds too
        labels = [f"{d[5:]} {stamp[11:19]}" if d in shared else d for d, stamp in pairs]
    return labels


def _trends_section(points: Sequence[Mapping[str, Any]]) -> str:
    labels = trend_labels(points)
    charts = []
    for key, label in TREND_METRICS:
        values = [p.get(key) for p in points]
        chart = svg.line_chart(labels, {label: values}, f"{label} per run", width=360, height=190)
        charts.append(f"<div>{chart}</div>")
    note = f"<p>Last {len(points)} run(s), oldest first.</p>"
    return _section(
        "trends",
        "Trends over the last runs",
        note + '<div class="charts">' + "".join(charts) + "</div>",
    )


def _docs_section(href: str | None) -> str:
    if not href:
        return _section(
            "data-docs",
            "Great Expectations Data Docs",
            '<p class="empty">Data Docs were not built for this run.</p>',
        )
    return _section(
        "data-docs",
        "Great Expectations Data Docs",
        f'<p><a href="{escape(href, quote=True)}">Open the Data Docs</a> '
        "(every suite, expectation and validation result of this run).</p>",
    )

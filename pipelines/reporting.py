"""The per-run HTML quality report and alerts, assembled from what the stages recorded."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from expectations import build_data_docs
from expectations.report import RunSummary, render_quality_report
from warehouse.db import table_exists
from warehouse.report_figures import (
    clean_rows_per_source,
    cluster_sizes,
    quarantine_reasons,
    run_finished_at,
    run_started_at,
    runs_in_order,
    score_histogram,
)

from .settings import ArchiveConfig
from .stages import check_outcomes, ensure_dir, run_stats

log = logging.getLogger("customer_archive")

MatchFigures = tuple[list[tuple[float, int]] | None, dict[int, int] | None]
_MATCH_FIGURES: dict[tuple, MatchFigures] = {}  # at most one: the last report's
_MATCH_FIGURES_LOCK = threading.Lock()


def run_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> RunSummary:
    """The report's figures for one run, from ``ops.stage_stats`` and the quarantine tables.

    ``finished_at`` is when the snapshot stage recorded its figures (None while the run is
    still going or when it stopped before); ``published`` whether the golden layer was
    swapped in.
    """
    stats = run_stats(con, run_id)
    golden, match = stats.golden, stats.match
    snapshot = None
    if stats.snapshot is not None:
        snapshot = stats.snapshot.snapshot or "unchanged: golden content as before, no new snapshot"
    return RunSummary(
        run_id=run_id,
        started_at=run_started_at(con, run_id) or datetime.now(UTC).isoformat(timespec="seconds"),
        rows_in={s: v.rows_in for s, v in stats.ingest.items()},
        quarantined={s: v.rows_quarantined for s, v in stats.ingest.items()},
        clean_rows=clean_rows_per_source(con),
        candidate_pairs=match.candidate_pairs if match else 0,
        clusters=match.clusters if match else 0,
        golden_customers=golden.golden_customers if golden else 0,
        review_queue=match.review_queue if match else 0,
        merges=golden.merges if golden else 0,
        splits=golden.splits if golden else 0,
        snapshot_path=snapshot,
        quarantine_reasons=quarantine_reasons(con, run_id),
        finished_at=run_finished_at(con, run_id) if stats.snapshot is not None else None,
        published=stats.publish is not None,
    )


def _history(con: duckdb.DuckDBPyConnection, run_id: str, last: int = 30) -> list[dict]:
    earlier = [r for r in runs_in_order(con) if r != run_id][-last:]
    points = []
    for rid in earlier:
        s = run_summary(con, rid)
        points.append(s.trend_point(check_outcomes(con, rid)))
    return points


def write_run_report(
    con: duckdb.DuckDBPyConnection,
    cfg: ArchiveConfig,
    run_id: str,
    data_docs: bool = True,
    snapshot_path: str | None = None,
    finished_at: str | None = None,
) -> Path:
    """Write ``<reports_dir>/<run_id>/report.html`` and GX Data Docs beside it; return its path.

    Args:
        con: the warehouse.
        cfg: the project configuration.
        run_id: the run.
        data_docs: build the Data Docs now; else link those an earlier step of the run built.
        snapshot_path: the snapshot just written, when the snapshot stage re-renders the
            report before its own figures are recorded.
        finished_at: the run's end, likewise.
    """
    folder = ensure_dir(cfg.resolve(cfg.reports_dir) / run_id)
    index = folder / "data_docs" / "index.html"
    if data_docs:
        index = build_data_docs(folder / "data_docs")
    href = str(index.relative_to(folder)) if index.is_file() else None
    summary = run_summary(con, run_id)
    if snapshot_path is not None:
        summary = replace(summary, snapshot_path=snapshot_path, published=True)
    if finished_at is not None:
        summary = replace(summary, finished_at=finished_at)
    html = render_quality_report(
        summary,
        _history(con, run_id),
        check_outcomes(con, run_id),
        *_match_figures(con, cfg, run_id),
        data_docs_href=href,
    )
    path = folder / "report.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    latest = cfg.resolve(cfg.reports_dir) / "latest.txt"
    latest.write_text(str(path), encoding="utf-8")
    return path


def _match_figures(con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, run_id: str) -> MatchFigures:
    """The report's figures of the match tables: the score histogram and the cluster sizes.

    Both read every row of ``match.pairs`` / ``match.clusters`` (cold at 1 M: the blocks are
    decrypted again), and a run writes those tables only in its match stage, so a run's
    second report (the snapshot step's, after the golden suite's) takes the first one's
    figures, in this process. They are reused only for the same warehouse, run and match
    tables: the latest ``ops.match_runs`` entry (every link records one in the transaction that
    writes the tables) and both tables' row counts; anything else computes them again.
    """
    if not (table_exists(con, "ops.match_runs") and table_exists(con, "match.pairs")
            and table_exists(con, "match.clusters")):  # fmt: skip
        return score_histogram(con), cluster_sizes(con)
    head = con.execute(
        "SELECT (SELECT max(seq) FROM ops.match_runs),"
        " (SELECT run_id FROM ops.match_runs ORDER BY seq DESC LIMIT 1),"
        " (SELECT count(*) FROM match.pairs), (SELECT count(*) FROM match.clusters)"
    ).fetchall()[0]
    key = (str(cfg.resolve(cfg.warehouse)), run_id, *head)
    with _MATCH_FIGURES_LOCK:
        figures = _MATCH_FIGURES.get(key)
    if figures is None:
        figures = (score_histogram(con), cluster_sizes(con))
        with _MATCH_FIGURES_LOCK:
            _MATCH_FIGURES.clear()
            _MATCH_FIGURES[key] = figures
    return figures


class _JsonLines(logging.Handler):
    """One JSON object per log record: time, level, run, stage, logger, message."""

    def __init__(self, path: Path, run_id: str, stage: str) -> None:
        super().__init__(logging.INFO)
        self._path, self._run_id, self._stage = path, run_id, stage

    def emit(self, record: logging.LogRecord) -> None:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "run_id": self._run_id,
            "stage": self._stage,
            "logger": record.name,
            "message": record.getMessage(),
        }
        with self._path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


@contextmanager
def run_log(cfg: ArchiveConfig, run_id: str, stage: str) -> Iterator[Path]:
    """Append the stage's log records as JSON Lines to ``<reports_dir>/<run_id>/run.log.jsonl``."""
    path = ensure_dir(cfg.resolve(cfg.reports_dir) / run_id) / "run.log.jsonl"
    handler = _JsonLines(path, run_id, stage)
    loggers = [log, logging.getLogger("warehouse"), logging.getLogger("sources")]
    for lg in loggers:
        lg.addHandler(handler)
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
    try:
        yield path
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def raise_alert(cfg: ArchiveConfig, run_id: str, kind: str, message: str) -> Path:
    """Record an alert: an error log line, a line in ``<reports_dir>/alerts.jsonl``, the webhook.

    The webhook (``alert_webhook`` in the config, off by default) gets the same JSON by POST; a
    webhook failure is logged as an error and does not hide the alert file.
    """
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "kind": kind,
        "message": message,
    }
    log.error("ALERT %s run %s: %s", kind, run_id, message)
    path = ensure_dir(cfg.resolve(cfg.reports_dir)) / "alerts.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    if cfg.alert_webhook:
        req = urllib.request.Request(
            cfg.alert_webhook,
            data=json.dumps(entry, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except OSError as exc:
            log.error("alert webhook %s failed: %s", cfg.alert_webhook, exc)
    return path

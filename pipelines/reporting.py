"""The per-run HTML quality report and alerts, assembled from what the stages recorded."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from expectations import build_data_docs
from expectations.report import RunSummary, render_quality_report
from warehouse.report_figures import (
    clean_rows_per_source,
    cluster_sizes,
    quarantine_reasons,
    run_started_at,
    runs_in_order,
    score_histogram,
)

from .settings import ArchiveConfig
from .stages import check_outcomes, ensure_dir, run_stats

log = logging.getLogger("customer_archive")


def run_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> RunSummary:
    """The report's figures for one run, from ``ops.stage_stats`` and the quarantine tables."""
    stats = run_stats(con, run_id)
    ingest = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("ingest:")}
    started = min((v.get("recorded_at", "") for v in stats.values()), default="")
    started = run_started_at(con, run_id) or started
    golden = stats.get("golden", {})
    match = stats.get("match", {})
    return RunSummary(
        run_id=run_id,
        started_at=started or datetime.now(UTC).isoformat(timespec="seconds"),
        rows_in={s: int(v.get("rows_in", 0)) for s, v in ingest.items()},
        quarantined={s: int(v.get("rows_quarantined", 0)) for s, v in ingest.items()},
        clean_rows=clean_rows_per_source(con),
        candidate_pairs=int(match.get("candidate_pairs", 0)),
        clusters=int(match.get("clusters", 0)),
        golden_customers=int(golden.get("golden_customers", 0)),
        review_queue=int(match.get("review_queue", 0)),
        merges=int(golden.get("merges", 0)),
        splits=int(golden.get("splits", 0)),
        snapshot_path=(stats.get("snapshot") or {}).get("snapshot"),
        quarantine_reasons=quarantine_reasons(con, run_id),
    )


def _history(con: duckdb.DuckDBPyConnection, run_id: str, last: int = 30) -> list[dict]:
    earlier = [r for r in runs_in_order(con) if r != run_id][-last:]
    points = []
    for rid in earlier:
        s = run_summary(con, rid)
        points.append(s.trend_point(check_outcomes(con, rid)))
    return points


def write_run_report(
    con: duckdb.DuckDBPyConnection, cfg: ArchiveConfig, run_id: str, data_docs: bool = True
) -> Path:
    """Write ``<reports_dir>/<run_id>/report.html`` and GX Data Docs beside it; return its path."""
    folder = ensure_dir(cfg.resolve(cfg.reports_dir) / run_id)
    href = None
    if data_docs:
        index = build_data_docs(folder / "data_docs")
        href = str(index.relative_to(folder))
    html = render_quality_report(
        run_summary(con, run_id),
        _history(con, run_id),
        check_outcomes(con, run_id),
        score_histogram(con),
        cluster_sizes(con),
        data_docs_href=href,
    )
    path = folder / "report.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    latest = cfg.resolve(cfg.reports_dir) / "latest.txt"
    latest.write_text(str(path), encoding="utf-8")
    return path


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

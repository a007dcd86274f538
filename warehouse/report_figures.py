"""The quality report's figures read from the warehouse: quarantine reasons, runs, histograms."""

from __future__ import annotations

from collections import Counter

import duckdb
import numpy as np

from warehouse.db import read_table, table_exists

__all__ = [
    "clean_rows_per_source",
    "cluster_sizes",
    "quarantine_reasons",
    "run_started_at",
    "runs_in_order",
    "score_histogram",
]


def quarantine_reasons(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """Quarantined rows per reason (before any ``:``) and files as ``file: <reason>``."""
    reasons: Counter[str] = Counter()
    q = read_table(con, "quarantine.rows")
    if q is not None and len(q):
        mine = q[q["run_id"] == run_id]
        reasons.update(mine["reason"].astype(str).str.split(":").str[0].value_counts().to_dict())
    qf = read_table(con, "quarantine.files")
    if qf is not None and len(qf):
        mine = qf[qf["run_id"] == run_id]
        for r in mine["reason"].astype(str).str.split(":").str[0]:
            reasons[f"file: {r}"] += 1
    return dict(reasons)


def run_started_at(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """When a run recorded its first stage figures (``ops.stage_stats``), or None."""
    table = read_table(con, "ops.stage_stats")
    if table is not None and len(table):
        rows = table[table["run_id"] == run_id]
        if len(rows):
            return str(rows["recorded_at"].min())
    return None


def run_finished_at(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """When a run recorded its last stage figures (``ops.stage_stats``), or None."""
    table = read_table(con, "ops.stage_stats")
    if table is not None and len(table):
        rows = table[table["run_id"] == run_id]
        if len(rows):
            return str(rows["recorded_at"].max())
    return None


def runs_in_order(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every run with recorded figures, oldest first."""
    table = read_table(con, "ops.stage_stats")
    if table is None or table.empty:
        return []
    return list(table.groupby("run_id")["recorded_at"].min().sort_values().index)


def clean_rows_per_source(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Clean records per source system, most first (ties in order of first appearance)."""
    if not table_exists(con, "clean.records"):
        return {}
    rows = con.execute(
        "SELECT source_system, count(*) AS n, min(rowid) AS first FROM clean.records "
        "WHERE source_system IS NOT NULL GROUP BY source_system ORDER BY n DESC, first"
    ).fetchall()
    return {str(k): int(n) for k, n, _ in rows}


def score_histogram(con: duckdb.DuckDBPyConnection) -> list[tuple[float, int]] | None:
    """20-bin histogram of pair probabilities on [0, 1] (null and NaN count as 0).

    DuckDB counts the rows per distinct probability; ``np.histogram`` bins those values
    weighted by their counts, so the bins are exactly ``np.histogram`` over every pair.
    """
    if not table_exists(con, "match.pairs"):
        return None
    rows = con.sql(
        "SELECT p, count(*) AS n FROM (SELECT CASE WHEN probability IS NULL "
        "OR isnan(CAST(probability AS DOUBLE)) THEN 0.0 ELSE CAST(probability AS DOUBLE) END "
        "AS p FROM match.pairs) GROUP BY p"
    ).fetchnumpy()
    if not len(rows["p"]):
        return None
    counts, edges = np.histogram(
        np.asarray(rows["p"], dtype=float),
        bins=20,
        range=(0, 1),
        weights=np.asarray(rows["n"], dtype=np.int64),
    )
    return [(round(float(e), 2), int(c)) for e, c in zip(edges[:-1], counts, strict=True)]


def cluster_sizes(con: duckdb.DuckDBPyConnection) -> dict[int, int] | None:
    """How many clusters have each size (records per ``cluster_key``), smallest size first."""
    if not table_exists(con, "match.clusters"):
        return None
    rows = con.execute(
        "SELECT size, count(*) FROM (SELECT count(*) AS size FROM match.clusters "
        "WHERE cluster_key IS NOT NULL GROUP BY cluster_key) GROUP BY size ORDER BY size"
    ).fetchall()
    return {int(size): int(n) for size, n in rows} or None

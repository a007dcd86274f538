"""The raw-layer suite: properties of one source's ``raw.<source>`` table, in DuckDB SQL.

Run on every run, after the source's ingest. The per-row properties (lineage filled, key
format, key unique within a delivered file) are checked in SQL on the rows this run delivered,
plus the rows of earlier runs that failed one of them and are still live (``recheck_runs``:
a bad delivery keeps failing until it is withdrawn or corrected, and a withdrawal clears it),
plus any row without a run; rows checked once and passed never change, so the nightly cost
follows the night's rows, not the raw layer's growth. Properties of a *delivery* (its rows
reconcile, it is not empty, its size, its fill rates) are checked on the files this run
delivered, so a source with nothing new passes them. Each per-row check reports the runs whose
rows failed it (``failing_runs``), what the stage keeps for the next run.

Each property becomes a small derived frame — one row per checked unit (a column, a delivered
file, an offending record key) with ``ok`` / ``bad`` in the check's own column — validated by
one Great Expectations suite ``raw.<source>``, so every check is a GX expectation and shows in
Data Docs. Uniqueness of ``record_key`` is asked per delivered file among active rows: when a
record seen again in a later delivery becomes a new version of it (several rows per key, one
current), keys still never repeat inside one delivery.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from expectations._common import Results, skipped, to_outcomes
from expectations._gx_import import import_gx
from expectations._gx_runner import GxCheck, run_checks
from expectations.outcome import CheckOutcome
from expectations.settings import QualitySettings
from sources.config import DeliveryKind
from sources.model import READ_STATUSES

__all__ = ["RAW_LINEAGE_COLUMNS", "ROW_CHECKS", "RawTables", "validate_raw"]

RAW_LINEAGE_COLUMNS: tuple[str, ...] = (
    "record_key",
    "source_system",
    "source_file",
    "source_row",
    "source_sha256",
    "ingested_at",
    "run_id",
)
"""Lineage every active raw row must carry (``raw_lineage_not_null``)."""

MAX_UNITS = 1000
"""At most this many offending record keys are listed in a derived frame (counts stay exact)."""

_FRESH = READ_STATUSES  # the statuses of a delivery this run read (one list, sources.model)
_FRESH_SQL = "(" + ", ".join(f"'{status}'" for status in _FRESH) + ")"
"""The delivery statuses of files a run read (``sources.model.FileDelivery.to_ingest``)."""
ROW_CHECKS = ("raw_lineage_not_null", "raw_record_key_format", "raw_record_key_unique")
"""The per-row raw checks: checked on this run's rows plus ``recheck_runs``."""


@dataclass(frozen=True)
class RawTables:
    """Where the raw suite reads (the warehouse's defaults).

    Attributes:
        raw: ``raw.<source>`` is ``f"{raw}.{source}"``.
        deliveries: The delivered-files manifest (``source_system, path, status, run_id,
            rows_read``).
        quarantine_rows: Quarantined rows (``source_system, source_file, run_id``).
        withdrawn: Withdrawn delivered files (``source_system, path, sha256``); their rows
            are not checked again.
    """

    raw: str = "raw"
    deliveries: str = "ops.deliveries"
    quarantine_rows: str = "quarantine.rows"
    withdrawn: str = "ops.withdrawn_deliveries"


def validate_raw(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    required_fields: Sequence[str],
    run_id: str,
    *,
    settings: QualitySettings | None = None,
    tables: RawTables | None = None,
    recheck_runs: Sequence[str] = (),
    delivery: DeliveryKind = "full",
) -> list[CheckOutcome]:
    """Validate one source's raw layer and this run's deliveries of it (suite ``raw.<source>``).

    Args:
        con: The warehouse (read only).
        source_system: Source name; its table is ``raw.<source_system>``.
        required_fields: Canonical fields the source mapping requires.
        run_id: The run whose deliveries are checked (``ops.deliveries.run_id``).
        settings: Thresholds (``raw_min_fill_rate``, ``raw_row_count_band``) and severity
            overrides; defaults when None.
        tables: Table names; the warehouse's when None.
        recheck_runs: Earlier runs whose rows failed a per-row check (``failing_runs``):
            their live rows are checked again.
        delivery: What one delivery of the source is (its ``delivery`` in sources.yml). The
            row-count band compares the deliveries of a ``full`` source only: a ``delta``
            delivery's size is the night's changes, which vary by nature.

    Returns:
        One outcome per raw check, in catalog order; ``observed`` carries ``source_system``.
    """
    settings = settings or QualitySettings()
    tables = tables or RawTables()
    table = f"{tables.raw}.{source_system}"
    facts = _Facts()
    results: Results = {}
    columns = _columns(con, table)
    deliveries = _run_deliveries(con, tables, source_system, run_id)
    if columns is None:
        reason = f"{table} does not exist yet (nothing ingested)"
        for name in ("raw_required_columns", "raw_lineage_not_null", "raw_record_key_format"):
            results[name] = skipped(reason)
        results["raw_record_key_unique"] = skipped(reason)
        if not deliveries.empty and int(deliveries["rows_read"].sum()) > 0:
            results["raw_required_columns"] = (False, {"error": f"{table} is missing"})
        columns = set()
    else:
        _required_columns(facts, columns, required_fields)
        active = "active IS DISTINCT FROM false" if "active" in columns else "true"
        rows = f"{active} AND {_row_scope(con, tables, columns, run_id, recheck_runs)}"
        _lineage(con, facts, table, columns, active, rows)
        _key_format(con, facts, results, table, columns, rows, source_system)
        _key_unique(con, facts, results, table, columns, rows)
    _reconciled(con, facts, results, tables, table, columns, source_system, run_id, deliveries)
    _not_empty(facts, results, deliveries)
    _band(con, facts, results, tables, source_system, run_id, deliveries, settings, delivery)
    _filled(con, facts, results, table, columns, required_fields, run_id, settings)
    checks = facts.checks(results)
    if checks:
        results.update(run_checks(f"raw.{source_system}", facts.frame(), checks))
    return to_outcomes("raw", results, settings, {"source_system": source_system})


class _Facts:
    """Derived frame rows: (check, unit, ok) plus what each check adds to ``observed``."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, bool]] = []
        self.extra: dict[str, dict[str, Any]] = {}
        self.thresholds: dict[str, dict[str, Any]] = {}

    def add(self, check: str, unit: str, ok: bool) -> None:
        self.rows.append((check, unit, ok))

    def frame(self) -> pd.DataFrame:
        names = list(dict.fromkeys(c for c, _, _ in self.rows))
        data: dict[str, list[Any]] = {"unit": [u for _, u, _ in self.rows]}
        for name in names:
            data[name] = [("ok" if ok else "bad") if c == name else None for c, _, ok in self.rows]
        return pd.DataFrame(data).astype("string")

    def checks(self, results: Results) -> list[GxCheck]:
        gxe = import_gx("great_expectations.expectations")

        names = [n for n in dict.fromkeys(c for c, _, _ in self.rows) if n not in results]
        return [
            GxCheck(
                name,
                [gxe.ExpectColumnValuesToBeInSet(column=name, value_set=["ok"])],
                key_column="unit",
                thresholds=self.thresholds.get(name, {}),
                extra=self.extra.get(name, {}),
            )
            for name in names
        ]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str] | None:
    schema, name = table.split(".", 1)
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()
    return {r[0] for r in rows} or None


def _run_deliveries(
    con: duckdb.DuckDBPyConnection, tables: RawTables, source: str, run_id: str
) -> pd.DataFrame:
    """The files of ``source`` this run read (status in ``_FRESH``): path, rows_read."""
    if _columns(con, tables.deliveries) is None:
        return pd.DataFrame({"path": [], "rows_read": []})
    return con.execute(
        f"SELECT path, coalesce(rows_read, 0) AS rows_read FROM {tables.deliveries} "
        f"WHERE source_system = ? AND run_id = ? AND status IN {_FRESH_SQL} ORDER BY path",
        [source, run_id],
    ).df()


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _row_scope(
    con: duckdb.DuckDBPyConnection,
    tables: RawTables,
    columns: set[str],
    run_id: str,
    recheck_runs: Sequence[str],
) -> str:
    """SQL condition: this run's rows, rows of no run, live rows of ``recheck_runs``."""
    if "run_id" not in columns:
        return "true"
    earlier = [r for r in dict.fromkeys(recheck_runs) if r != run_id]
    scope = f"(run_id = {_lit(run_id)} OR run_id IS NULL"
    if earlier:
        live = ""
        if _columns(con, tables.withdrawn) is not None and {"source_file", "source_sha256"} <= (
            columns
        ):
            live = (
                f" AND NOT EXISTS (SELECT 1 FROM {tables.withdrawn} AS w"
                " WHERE w.path = source_file AND w.sha256 = source_sha256)"
            )
        scope += f" OR (run_id IN ({', '.join(_lit(r) for r in earlier)}){live})"
    return scope + ")"


def _failing_runs(
    con: duckdb.DuckDBPyConnection, table: str, columns: set[str], where: str, params: list
) -> list[str]:
    """The runs (``run_id``) of the rows ``where`` selects, for the next run's re-check."""
    if "run_id" not in columns:
        return []
    rows = con.execute(
        f"SELECT DISTINCT run_id FROM {table} WHERE run_id IS NOT NULL AND {where} ORDER BY 1",
        params,
    ).fetchall()
    return [str(r[0]) for r in rows]


def _required_columns(facts: _Facts, columns: set[str], required: Sequence[str]) -> None:
    wanted = list(dict.fromkeys([*RAW_LINEAGE_COLUMNS, *required]))
    for column in wanted:
        facts.add("raw_required_columns", column, column in columns)
    facts.extra["raw_required_columns"] = {
        "required_columns": wanted,
        "missing_columns": [c for c in wanted if c not in columns],
    }


def _lineage(
    con: duckdb.DuckDBPyConnection,
    facts: _Facts,
    table: str,
    columns: set[str],
    active: str,
    rows: str,
) -> None:
    present = [c for c in RAW_LINEAGE_COLUMNS if c in columns]
    if not present:
        facts.add("raw_lineage_not_null", "(no lineage column)", False)
        return
    counts = ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in present)
    row = con.execute(f"SELECT count(*), {counts} FROM {table} WHERE {rows}").fetchall()[0]
    (total,) = con.execute(f"SELECT count(*) FROM {table} WHERE {active}").fetchall()[0]
    nulls = dict(zip(present, (int(v) for v in row[1:]), strict=True))
    for column, n in nulls.items():
        facts.add("raw_lineage_not_null", column, n == 0)
    bad = " OR ".join(f'"{c}" IS NULL' for c in present)
    facts.extra["raw_lineage_not_null"] = {
        "active_rows": int(total),
        "rows_checked": int(row[0]),
        "null_counts": {c: n for c, n in nulls.items() if n},
        "failing_runs": (
            _failing_runs(con, table, columns, f"{rows} AND ({bad})", []) if any(nulls.values())
            else []
        ),
    }  # fmt: skip


def _key_format(
    con: duckdb.DuckDBPyConnection,
    facts: _Facts,
    results: Results,
    table: str,
    columns: set[str],
    rows: str,
    source: str,
) -> None:
    name = "raw_record_key_format"
    need = {"record_key", "source_system", "source_record_id"}
    if not need <= columns:
        results[name] = (False, {"error": f"columns {sorted(need - columns)} absent"})
        return
    bad = (
        "record_key IS NULL OR source_record_id IS NULL OR trim(source_record_id) = '' "
        "OR source_system IS DISTINCT FROM ? "
        "OR record_key IS DISTINCT FROM source_system || ':' || source_record_id"
    )
    total, n_bad = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {bad}) FROM {table} WHERE {rows}", [source]
    ).fetchall()[0]
    keys = con.execute(
        f"SELECT coalesce(record_key, '<null> row ' || source_row::VARCHAR) FROM {table} "
        f"WHERE {rows} AND ({bad}) ORDER BY source_file, source_row LIMIT {MAX_UNITS}",
        [source],
    ).fetchall()
    for (key,) in keys:
        facts.add(name, str(key), False)
    if not keys:
        facts.add(name, f"{total} rows checked", True)
    facts.extra[name] = {
        "rows_checked": int(total),
        "malformed": int(n_bad),
        "failing_runs": _failing_runs(con, table, columns, f"{rows} AND ({bad})", [source])
        if n_bad
        else [],
    }


def _key_unique(
    con: duckdb.DuckDBPyConnection,
    facts: _Facts,
    results: Results,
    table: str,
    columns: set[str],
    rows: str,
) -> None:
    name = "raw_record_key_unique"
    if not {"record_key", "source_file"} <= columns:
        results[name] = (False, {"error": "record_key or source_file absent"})
        return
    dup = (
        f"SELECT source_file, record_key, count(*) AS n FROM {table} "
        f"WHERE {rows} AND record_key IS NOT NULL GROUP BY source_file, record_key "
        "HAVING count(*) > 1"
    )
    n_keys, n_rows = con.execute(f"SELECT count(*), coalesce(sum(n), 0) FROM ({dup})").fetchall()[0]
    for file, key, _ in con.execute(
        f"{dup} ORDER BY source_file, record_key LIMIT {MAX_UNITS}"
    ).fetchall():
        facts.add(name, f"{key} ({file})", False)
    if not n_keys:
        facts.add(name, "all delivered files", True)
    failing = []
    if n_keys:
        failing = _failing_runs(
            con, table, columns,
            f"{rows} AND (source_file, record_key) IN (SELECT source_file, record_key FROM"
            f" ({dup}))", [],
        )  # fmt: skip
    facts.extra[name] = {
        "duplicated_keys": int(n_keys),
        "duplicated_rows": int(n_rows),
        "failing_runs": failing,
    }


def _reconciled(
    con: duckdb.DuckDBPyConnection,
    facts: _Facts,
    results: Results,
    tables: RawTables,
    table: str,
    columns: set[str],
    source: str,
    run_id: str,
    deliveries: pd.DataFrame,
) -> None:
    name = "raw_rows_reconciled"
    if deliveries.empty:
        results[name] = skipped("no new delivery in this run")
        return
    ingested: dict[str, int] = {}
    if {"run_id", "source_file"} <= columns:
        ingested = dict(
            con.execute(
                f"SELECT source_file, count(*) FROM {table} WHERE run_id = ? GROUP BY 1",
                [run_id],
            ).fetchall()
        )
    quarantined: dict[str, int] = {}
    if _columns(con, tables.quarantine_rows) is not None:
        quarantined = dict(
            con.execute(
                f"SELECT source_file, count(*) FROM {tables.quarantine_rows} "
                "WHERE source_system = ? AND run_id = ? GROUP BY 1",
                [source, run_id],
            ).fetchall()
        )
    figures = []
    for path, read in zip(deliveries["path"], deliveries["rows_read"], strict=True):
        kept, bad = int(ingested.get(path, 0)), int(quarantined.get(path, 0))
        facts.add(name, str(path), int(read) == kept + bad)
        figures.append({"file": path, "rows_read": int(read), "ingested": kept, "quarantined": bad})
    facts.extra[name] = {"deliveries": figures[:20]}


def _not_empty(facts: _Facts, results: Results, deliveries: pd.DataFrame) -> None:
    name = "raw_delivery_not_empty"
    if deliveries.empty:
        results[name] = skipped("no new delivery in this run")
        return
    for path, read in zip(deliveries["path"], deliveries["rows_read"], strict=True):
        facts.add(name, str(path), int(read) > 0)


_DELIVERY_KEY = (
    r"coalesce(nullif(regexp_extract(path, '(^|/)(\d{4}-\d{2}-\d{2})(/|$)', 2), ''), path)"
)
"""SQL naming the delivery a manifest row's file belongs to: its ``YYYY-MM-DD`` folder (the
delivery date, as ``sources.versions.delivery_date`` reads it; a full delivery may be split
into several files of one date), else the file itself. Written here: ``expectations`` imports
no other stage package."""


def _band(
    con: duckdb.DuckDBPyConnection,
    facts: _Facts,
    results: Results,
    tables: RawTables,
    source: str,
    run_id: str,
    deliveries: pd.DataFrame,
    settings: QualitySettings,
    delivery: DeliveryKind,
) -> None:
    """Each delivery of this run against the source's previous delivery (not the night's sum).

    A delivery is the files of one delivery date (``_DELIVERY_KEY``): two whole exports in one
    night (a late one and the night's own) are two deliveries, each about the size of the last
    one. The previous delivery is the source's newest (by delivery date, then arrival) from an
    earlier run, withdrawn files left out: an export that suddenly shrank or grew against it
    fails (a warning). A ``delta`` source's deliveries are not compared: each holds the night's
    changes, whose size varies by nature.
    """
    name = "raw_row_count_band"
    if deliveries.empty:
        results[name] = skipped("no new delivery in this run")
        return
    if delivery != "full":
        results[name] = skipped("a delta source: a delivery holds the night's changes")
        return
    withdrawn = (
        f" AND NOT EXISTS (SELECT 1 FROM {tables.withdrawn} AS w WHERE w.source_system ="
        " d.source_system AND w.path = d.path AND w.sha256 = d.sha256)"
        if _columns(con, tables.withdrawn) is not None
        else ""
    )
    found = con.execute(
        f"""SELECT run_id, delivery, sum(coalesce(rows_read, 0)) AS n
        FROM (SELECT d.*, {_DELIVERY_KEY} AS delivery, rowid AS pos FROM {tables.deliveries} AS d
              WHERE source_system = ? AND run_id <> ? AND status IN {_FRESH_SQL}{withdrawn})
        GROUP BY run_id, delivery
        ORDER BY try_cast(delivery AS DATE) DESC NULLS LAST, max(pos) DESC LIMIT 1""",
        [source, run_id],
    ).fetchall()
    if not found:
        results[name] = skipped("no previous delivery to compare with")
        return
    previous_run, previous_delivery, previous_rows = found[0][0], found[0][1], int(found[0][2])
    tonight = con.execute(
        f"SELECT {_DELIVERY_KEY} AS delivery, sum(coalesce(rows_read, 0)) AS n"
        f" FROM {tables.deliveries} WHERE source_system = ? AND run_id = ?"
        f" AND status IN {_FRESH_SQL} GROUP BY delivery ORDER BY delivery",
        [source, run_id],
    ).fetchall()
    band = settings.raw_row_count_band
    low = max(math.floor(previous_rows * (1 - band)), 0)
    high = math.ceil(previous_rows * (1 + band))
    for delivery, rows in tonight:
        facts.add(name, f"{delivery}: {int(rows)} rows", low <= int(rows) <= high)
    facts.thresholds[name] = {"band": band, "min": low, "max": high}
    facts.extra[name] = {
        "deliveries": [{"delivery": str(d), "rows": int(n)} for d, n in tonight][:20],
        "previous_delivery": str(previous_delivery),
        "previous_rows": previous_rows,
        "previous_run_id": str(previous_run),
    }


def _filled(
    con: duckdb.DuckDBPyConnection,
    facts: _Facts,
    results: Results,
    table: str,
    columns: set[str],
    required: Sequence[str],
    run_id: str,
    settings: QualitySettings,
) -> None:
    name = "raw_required_fields_filled"
    present = [f for f in dict.fromkeys(required) if f in columns]
    if not present or "run_id" not in columns:
        results[name] = skipped("no required field present")
        return
    filled = ", ".join(
        f"count(*) FILTER (WHERE nullif(trim(\"{f}\"), '') IS NOT NULL)" for f in present
    )
    row = con.execute(
        f"SELECT count(*), {filled} FROM {table} WHERE run_id = ?", [run_id]
    ).fetchall()[0]
    total = int(row[0])
    if total == 0:
        results[name] = skipped("no new rows in this run")
        return
    rates = {f: round(int(n) / total, 4) for f, n in zip(present, row[1:], strict=True)}
    for field, rate in rates.items():
        facts.add(name, field, rate >= settings.raw_min_fill_rate)
    facts.thresholds[name] = {"mostly": settings.raw_min_fill_rate}
    facts.extra[name] = {"new_rows": total, "fill_rates": rates}

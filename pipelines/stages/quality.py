"""The quality stages: the raw, clean and golden Great Expectations suites, stored per run.

``raw_quality_stage`` runs after each source's ingest, ``clean_quality_stage`` after the clean
stage and ``quality_stage`` on the staged golden state; each stores its outcomes in
``ops.check_results`` under its own scope, so the summary and the report show all three layers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator
from dataclasses import asdict

import duckdb
import pandas as pd

from expectations import (
    CLEAN_SUITE_COLUMNS,
    CheckOutcome,
    QualitySettings,
    blocking_failures,
    validate_clean,
    validate_raw,
)
from expectations.raw_layer import ROW_CHECKS as RAW_ROW_CHECKS
from expectations.suites import (
    GOLDEN_ROW_CHECKS,
    GOLDEN_ROW_COLUMNS,
    ROW_CHECKS,
    GoldenSuiteTables,
    validate_golden_tables,
)
from warehouse import read_table_chunks, table_columns
from warehouse.clean_delta import clean_scope, store_clean_failures
from warehouse.db import table_exists
from warehouse.golden_checks import golden_check_scope, store_golden_failures
from warehouse.ops import (
    read_check_results,
    require_tables,
    write_check_results,
)
from warehouse.raw_checks import pending_raw_runs, store_pending_raw_runs

from .context import RunContext, load_sources

log = logging.getLogger("customer_archive")

SUITE_CHUNK_ROWS = 250_000
"""Rows per chunk of the clean and golden suites' per-row checks: a suite's memory is one
chunk's, whatever the size of the table (the outcomes are those over all rows at once)."""

__all__ = ["check_outcomes", "clean_quality_stage", "quality_stage", "raw_quality_stage"]


def check_outcomes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[CheckOutcome]:
    """The expectation outcomes stored for a run."""
    return [CheckOutcome(**r) for r in read_check_results(con, run_id)]


def quality_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> list[CheckOutcome]:
    """Validate the staged golden state (``staging.*``); store the outcomes.

    The whole-table checks (counts, uniqueness, the crosswalk against the clean records and
    the customers, credit codes per customer, duplicates, drift against ``golden.*``) run in
    DuckDB SQL. The per-customer checks (GX) read the customers in chunks of
    ``SUITE_CHUNK_ROWS`` (as the clean suite) and see every customer after a full build; after an
    incremental one only the customers it staged plus those that failed a per-customer check
    before (``warehouse.golden_checks``), so a bad row keeps failing until it is fixed.
    """
    require_tables(
        con, ("staging.customers", "staging.crosswalk", "clean.records"), "run the golden stage"
    )
    settings = ctx.config.quality
    fingerprint = _settings_fingerprint(settings)
    scope = golden_check_scope(con, fingerprint)
    present = table_columns(con, "staging.customers")
    columns = [c for c in GOLDEN_ROW_COLUMNS if c in present]
    where = None if scope is None else f"customer_id IN (SELECT customer_id FROM {scope})"
    previous = "golden.customers" if table_exists(con, "golden.customers") else None
    rows = _Chunks(con, "staging.customers", columns, where)
    outcomes = validate_golden_tables(
        con, rows, settings, GoldenSuiteTables(previous=previous), all_failing=True
    )
    failing = _scoped_figures(
        con, outcomes, GOLDEN_ROW_CHECKS, rows.count, "staging.customers",
        None if scope is None else "customers staged this run and earlier failures",
    )  # fmt: skip
    store_golden_failures(con, ctx.run_id, fingerprint, failing)
    _store(con, ctx, "golden", outcomes)
    return outcomes


def raw_quality_stage(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, source: str
) -> list[CheckOutcome]:
    """Validate ``raw.<source>`` and this run's deliveries of it; store the outcomes.

    The per-row checks see this run's rows and the live rows of earlier runs that failed one
    (``ops.raw_check_pending``), so a bad delivery keeps failing until withdrawn or corrected.
    """
    src = next((s for s in load_sources(ctx.config).sources if s.name == source), None)
    if src is None:
        raise KeyError(f"source {source!r} is not declared in {ctx.config.sources_file}")
    outcomes = validate_raw(
        con,
        source,
        src.required_fields(),
        ctx.run_id,
        settings=ctx.config.quality,
        recheck_runs=pending_raw_runs(con, source),
        delivery=src.delivery,
    )
    # the runs whose rows failed a per-row check are checked again by the next run
    failing = [r for o in outcomes if o.name in RAW_ROW_CHECKS
               for r in o.observed.get("failing_runs", [])]  # fmt: skip
    store_pending_raw_runs(con, source, failing)
    _store(con, ctx, f"raw.{source}", outcomes)
    return outcomes


def clean_quality_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> list[CheckOutcome]:
    """Validate ``clean.records`` (current records, one per record_key); store the outcomes.

    The whole-table checks run in DuckDB SQL. The per-record checks (GX) read the records in
    chunks of ``SUITE_CHUNK_ROWS`` (one GX validation each, figures merged in row order) and
    see every record after a full clean; after this run's incremental clean only the
    records it cleaned plus those that failed a per-record check before
    (``ops.clean_check_failures``), so their counts still cover the whole table: a record
    cleaned earlier passed then and is unchanged.
    A change of the quality settings validates every record again.
    """
    require_tables(con, ("clean.records",), "run the clean stage")
    settings = ctx.config.quality
    fingerprint = _settings_fingerprint(settings)
    scope = clean_scope(con, ctx.run_id, fingerprint)
    columns = [c for c in CLEAN_SUITE_COLUMNS if c in table_columns(con, "clean.records")]
    where = None if scope is None else f"record_key IN (SELECT record_key FROM {scope})"
    records = _Chunks(con, "clean.records", columns, where)
    outcomes = validate_clean(
        records, settings=settings, table=(con, "clean.records"), all_failing=True
    )
    failing = _scoped_figures(
        con, outcomes, ROW_CHECKS, records.count, "clean.records",
        None if scope is None else "records cleaned this run and earlier failures",
    )  # fmt: skip
    store_clean_failures(con, ctx.run_id, fingerprint, failing)
    _store(con, ctx, "clean.records", outcomes)
    return outcomes


class _Chunks:
    """The rows of ``table`` (``columns``, ``where``) in chunks of ``SUITE_CHUNK_ROWS``, read
    once when iterated (after the suite's whole-table checks: the read streams on ``con``);
    ``count`` is how many were read."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, table: str, columns: list[str], where: str | None
    ) -> None:
        self.con, self.table, self.columns, self.where = con, table, columns, where
        self.count = 0

    def __iter__(self) -> Iterator[pd.DataFrame]:
        rows = SUITE_CHUNK_ROWS
        for chunk in read_table_chunks(self.con, self.table, self.columns, self.where, rows):
            self.count += len(chunk)
            yield chunk


def _scoped_figures(
    con: duckdb.DuckDBPyConnection,
    outcomes: list[CheckOutcome],
    row_checks: Collection[str],
    validated: int,
    table: str,
    scoped: str | None,
) -> dict[str, list]:
    """Take each check's failing keys out of ``observed``; note what the row checks saw.

    Args:
        con: the warehouse.
        outcomes: one suite's outcomes (``all_failing``: with ``failing_keys``).
        row_checks: the suite's per-row checks.
        validated: how many rows they validated.
        table: the whole table they belong to (its rows are ``rows_in_table``).
        scoped: what the validated rows are, when not the whole table (``validated``).

    Returns:
        check name → every failing key (to store).
    """
    failing = {o.name: o.observed.pop("failing_keys", []) for o in outcomes}
    (total,) = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
    for o in outcomes:
        if o.name in row_checks and "skipped" not in o.observed:
            o.observed["rows_validated"] = validated
            o.observed["rows_in_table"] = int(total)
            if scoped is not None:
                o.observed["validated"] = scoped
    return failing


def _settings_fingerprint(settings: QualitySettings) -> str:
    """The quality settings as JSON: stored failures hold only under the settings they had."""
    return json.dumps(
        {k: sorted(v) if isinstance(v, frozenset) else v for k, v in settings.model_dump().items()},
        sort_keys=True,
    )


def _store(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, scope: str, outcomes: list[CheckOutcome]
) -> None:
    """Write one suite's outcomes under ``scope`` and log the failures."""
    write_check_results(con, ctx.run_id, [asdict(o) for o in outcomes], scope=scope)
    failed = blocking_failures(outcomes)
    log.info(
        "quality    %s expectations passed=%d failed=%d (critical failed=%d)",
        scope,
        sum(o.success for o in outcomes),
        sum(not o.success for o in outcomes),
        len(failed),
    )
    for o in outcomes:
        if not o.success:
            log.warning(
                "expectation %s %s failed: %s",
                "CRITICAL" if o.critical else "warning",
                o.name,
                o.observed,
            )

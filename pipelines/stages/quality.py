"""The quality stage: the golden Great Expectations suite on the staged state, stored per run."""

from __future__ import annotations

import logging
from dataclasses import asdict

import duckdb

from expectations import (
    GOLDEN_SUITE_RECORD_COLUMNS,
    CheckOutcome,
    blocking_failures,
    validate_golden,
)
from warehouse import read_table
from warehouse.ops import read_check_results, read_required, write_check_results

from .context import RunContext

log = logging.getLogger("customer_archive")

__all__ = ["check_outcomes", "quality_stage"]


def check_outcomes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[CheckOutcome]:
    """The expectation outcomes stored for a run."""
    return [CheckOutcome(**r) for r in read_check_results(con, run_id)]


def quality_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> list[CheckOutcome]:
    """Validate the staged golden state with the Great Expectations suites; store the outcomes."""
    customers, crosswalk, records = read_required(
        con,
        ("staging.customers", "staging.crosswalk", "clean.records"),
        "run the golden stage",
        columns={"clean.records": GOLDEN_SUITE_RECORD_COLUMNS},
    )
    previous = read_table(con, "golden.customers")
    outcomes = validate_golden(customers, crosswalk, records, previous, ctx.config.quality)
    write_check_results(con, ctx.run_id, [asdict(o) for o in outcomes])
    failed = blocking_failures(outcomes)
    log.info(
        "quality    expectations passed=%d failed=%d (critical failed=%d)",
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
    return outcomes

"""Dagster asset checks: the Great Expectations suites on the staged golden state, blocking publish."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from . import steps
from .resources import ArchiveResource

STAGED = dg.AssetKey(["staging", "golden"])
CRITICAL = "golden_critical_expectations"
WARNINGS = "golden_warning_expectations"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CRITICAL,
            asset=STAGED,
            blocking=True,
            description="Critical Great Expectations on the staged golden tables; a failure "
            "blocks publishing and the snapshot.",
        ),
        dg.AssetCheckSpec(
            WARNINGS,
            asset=STAGED,
            description="Warning-level expectations (drift, duplicate-rate trends); never block.",
        ),
    ],
)
def golden_expectations(
    context: dg.AssetCheckExecutionContext, archive: ArchiveResource
) -> Iterator[dg.AssetCheckResult]:
    """Run the golden suite once and report critical and warning outcomes separately."""
    ctx = archive.run_context(context.run_id)
    with archive.connection(ctx.config) as con:
        outcomes = steps.quality_stage(con, ctx)
    for check_name, critical in ((CRITICAL, True), (WARNINGS, False)):
        group = [o for o in outcomes if o.critical == critical]
        failed = [o.name for o in group if not o.success]
        yield dg.AssetCheckResult(
            check_name=check_name,
            asset_key=STAGED,
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR if critical else dg.AssetCheckSeverity.WARN,
            metadata={
                "expectations": len(group),
                "failed": ", ".join(failed) or "none",
                **{f"{o.name}": ("pass" if o.success else "FAIL") for o in group},
            },
        )

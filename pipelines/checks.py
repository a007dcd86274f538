"""Dagster asset checks: each golden Great Expectations check on the staged golden state.

One Dagster check per catalog entry (`expectations.catalog`), all computed by one suite run;
critical ones are blocking, so a failure stops `golden/customers` and `archive/snapshot`.
"""

from collections.abc import Iterator

import dagster as dg

from expectations import QualitySettings, checks_for_layer

from .faults import crash_point
from .jobs import WAREHOUSE_TAGS
from .reporting import raise_alert, write_run_report
from .resources import ArchiveResource
from .stages import quality_stage

STAGED = dg.AssetKey(["staging", "golden"])


def build_golden_checks(quality: QualitySettings) -> dg.AssetChecksDefinition:
    """The golden suite as one multi-asset check with a spec per expectation."""
    specs = [
        dg.AssetCheckSpec(
            spec.name,
            asset=STAGED,
            blocking=quality.is_critical(spec.name),
            description=("[critical] " if quality.is_critical(spec.name) else "[warning] ")
            + spec.description,
        )
        for spec in checks_for_layer("golden")
    ]
    names = {s.name for s in specs}

    @dg.multi_asset_check(specs=specs, name="golden_expectations", op_tags=WAREHOUSE_TAGS)
    def golden_expectations(
        context: dg.AssetCheckExecutionContext, archive: ArchiveResource
    ) -> Iterator[dg.AssetCheckResult]:
        ctx = archive.run_context(context.run.run_id)
        with archive.connection(ctx.config, context.run.tags) as con:
            outcomes = quality_stage(con, ctx)
            crash_point("quality:after")
            report = write_run_report(con, ctx.config, ctx.run_id)
        context.log.info(f"quality report: {report}")
        failed = [o.name for o in outcomes if o.critical and not o.success]
        if failed:
            raise_alert(
                ctx.config,
                ctx.run_id,
                "critical_expectation_failed",
                f"publishing blocked by {', '.join(failed)}; report: {report}",
            )
        seen = set()
        for o in outcomes:
            if o.name not in names:
                context.log.warning("expectation %s is not in the golden catalog", o.name)
                continue
            seen.add(o.name)
            yield dg.AssetCheckResult(
                check_name=o.name,
                asset_key=STAGED,
                passed=o.success,
                severity=dg.AssetCheckSeverity.ERROR if o.critical else dg.AssetCheckSeverity.WARN,
                metadata={k: v for k, v in _flat(o.observed).items()},
                description=o.description,
            )
        for missing in sorted(names - seen):
            yield dg.AssetCheckResult(
                check_name=missing,
                asset_key=STAGED,
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"error": "the suite produced no result for this check"},
            )

    return golden_expectations


def _flat(observed: dict) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for k, v in observed.items():
        out[str(k)] = v if isinstance(v, str | int | float | bool) else str(v)[:500]
    return out

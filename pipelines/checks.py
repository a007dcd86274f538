"""Dagster asset checks: the raw, clean and golden Great Expectations suites.

One Dagster check per catalog entry (`expectations.catalog`), each suite computed by one run of
its stage in `pipelines.stages.quality`: the raw suite on every ``raw/<source>``, the clean suite
on ``clean/records``, the golden suite on ``staging/golden``. Critical checks are blocking, so a
failure stops every asset after the one it checks (a broken raw or clean layer is never matched,
staged or published); warnings show in the Dagster UI and in the report but never block.
"""

from collections.abc import Callable, Iterator, Sequence

import dagster as dg
import duckdb

from expectations import CheckOutcome, QualitySettings, checks_for_layer
from expectations.catalog import Layer

from .faults import crash_point
from .jobs import WAREHOUSE_TAGS
from .reporting import raise_alert, write_run_report
from .resources import ArchiveResource
from .stages import RunContext, clean_quality_stage, quality_stage, raw_quality_stage

STAGED = dg.AssetKey(["staging", "golden"])
CLEAN = dg.AssetKey(["clean", "records"])

Suite = Callable[[duckdb.DuckDBPyConnection, RunContext], list[CheckOutcome]]


def _layer_checks(
    name: str,
    asset: dg.AssetKey,
    layer: Layer,
    suite: Suite,
    quality: QualitySettings,
    always_report: bool = False,
) -> dg.AssetChecksDefinition:
    """One layer's suite as one multi-asset check on ``asset``, a spec per catalog entry.

    The run's report is written after the golden suite (``always_report``) and after any suite
    with a critical failure, so a run blocked early still has a report naming the check.
    """
    specs = [
        dg.AssetCheckSpec(
            spec.name,
            asset=asset,
            blocking=quality.is_critical(spec.name),
            description=("[critical] " if quality.is_critical(spec.name) else "[warning] ")
            + spec.description,
        )
        for spec in checks_for_layer(layer)
    ]
    names = {s.name for s in specs}
    where = "/".join(asset.path)

    @dg.multi_asset_check(specs=specs, name=name, op_tags=WAREHOUSE_TAGS)
    def _checks(
        context: dg.AssetCheckExecutionContext, archive: ArchiveResource
    ) -> Iterator[dg.AssetCheckResult]:
        ctx = archive.run_context(context.run.run_id)
        with archive.connection(ctx.config, context.run.tags) as con:
            outcomes = suite(con, ctx)
            crash_point("quality:after" if layer == "golden" else f"quality:{layer}:after")
            failed = [o.name for o in outcomes if o.critical and not o.success]
            report = (
                write_run_report(con, ctx.config, ctx.run_id) if always_report or failed else None
            )
        if report is not None:
            context.log.info(f"quality report: {report}")
        if failed:
            after = "" if layer == "golden" else f"; the stages after {where} do not run"
            raise_alert(
                ctx.config,
                ctx.run_id,
                "critical_expectation_failed",
                f"publishing blocked by {layer} check(s) on {where}: {', '.join(failed)}"
                f"{after}; report: {report}",
            )
        yield from _results(context, asset, names, outcomes)

    return _checks


def _results(
    context: dg.AssetCheckExecutionContext,
    asset: dg.AssetKey,
    names: set[str],
    outcomes: Sequence[CheckOutcome],
) -> Iterator[dg.AssetCheckResult]:
    seen = set()
    for o in outcomes:
        if o.name not in names:
            context.log.warning("expectation %s is not in the %s catalog", o.name, o.layer)
            continue
        seen.add(o.name)
        yield dg.AssetCheckResult(
            check_name=o.name,
            asset_key=asset,
            passed=o.success,
            severity=dg.AssetCheckSeverity.ERROR if o.critical else dg.AssetCheckSeverity.WARN,
            metadata=_flat(o.observed),
            description=o.description,
        )
    for missing in sorted(names - seen):
        yield dg.AssetCheckResult(
            check_name=missing,
            asset_key=asset,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"error": "the suite produced no result for this check"},
        )


def build_raw_checks(
    sources: Sequence[str], quality: QualitySettings
) -> list[dg.AssetChecksDefinition]:
    """The raw suite on each ``raw/<source>`` (its current layer and this run's deliveries)."""

    def suite_of(source: str) -> Suite:
        return lambda con, ctx: raw_quality_stage(con, ctx, source)

    return [
        _layer_checks(
            f"raw_expectations_{source}",
            dg.AssetKey(["raw", source]),
            "raw",
            suite_of(source),
            quality,
        )
        for source in sources
    ]


def build_clean_checks(quality: QualitySettings) -> dg.AssetChecksDefinition:
    """The clean suite on ``clean/records``."""
    return _layer_checks("clean_expectations", CLEAN, "clean", clean_quality_stage, quality)


def build_golden_checks(quality: QualitySettings) -> dg.AssetChecksDefinition:
    """The golden suite on the staged golden state (``staging/golden``)."""
    return _layer_checks(
        "golden_expectations", STAGED, "golden", quality_stage, quality, always_report=True
    )


def _flat(observed: dict) -> dict[str, str | int | float | bool]:
    out: dict[str, str | int | float | bool] = {}
    for k, v in observed.items():
        out[str(k)] = v if isinstance(v, str | int | float | bool) else str(v)[:500]
    return out

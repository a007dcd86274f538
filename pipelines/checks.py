"""Dagster asset checks: the raw, clean and golden Great Expectations suites.

Each suite is computed by one run of its stage in `pipelines.stages.quality` (the raw suite on
every ``raw/<source>``, the clean suite on ``clean/records``, the golden suite on
``staging/golden``) and reported to Dagster as **one check per suite and severity**:
``<layer>_critical`` (blocking) and ``<layer>_warnings``, each result naming every catalog entry
(`expectations.catalog`) of its group in its metadata and the failing ones in ``failed``. A failed
critical check stops every asset after the one it checks (a broken raw or clean layer is never
matched, staged or published); the warnings check shows in the Dagster UI and in the report but
never blocks. Every expectation's own result stays in ``ops.check_results`` and the run's report.

Why grouped (BENCHMARKS.md, issue #15, branch `nightdag`): Dagster writes three events per
check and run (planned, evaluation, step output); with one check per catalog entry that was 183
of a nightly's 241 events, and each event written to a ``$DAGSTER_HOME`` SQLite instance opens,
commits and closes its shard databases (tens of ms of wall under load).
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import dagster as dg
import duckdb

from expectations import CheckOutcome, QualitySettings, checks_for_layer
from expectations.catalog import CheckSpec, Layer

from .faults import crash_point
from .jobs import WAREHOUSE_TAGS
from .reporting import raise_alert, write_run_report
from .resources import ArchiveResource
from .stages import RunContext, clean_quality_stage, quality_stage, raw_quality_stage

STAGED = dg.AssetKey(["staging", "golden"])
CLEAN = dg.AssetKey(["clean", "records"])
MISSING = "the suite produced no result for this check"

Suite = Callable[[duckdb.DuckDBPyConnection, RunContext], list[CheckOutcome]]


@dataclass(frozen=True)
class CheckGroup:
    """One Dagster check: the catalog entries of one layer with one severity.

    Attributes:
        name: the Dagster check name, ``<layer>_critical`` or ``<layer>_warnings``.
        layer: the suite's layer.
        critical: True = blocking, its failures have severity ERROR.
        entries: the catalog entries it reports, in catalog order.
    """

    name: str
    layer: Layer
    critical: bool
    entries: tuple[CheckSpec, ...]


def check_groups(layer: Layer, quality: QualitySettings) -> list[CheckGroup]:
    """The Dagster checks of one layer under these settings: critical first; none empty."""
    specs = checks_for_layer(layer)
    groups = []
    for critical, suffix in ((True, "critical"), (False, "warnings")):
        entries = tuple(s for s in specs if quality.is_critical(s.name) == critical)
        if entries:
            groups.append(CheckGroup(f"{layer}_{suffix}", layer, critical, entries))
    return groups


def group_spec(group: CheckGroup, asset: dg.AssetKey) -> dg.AssetCheckSpec:
    """The Dagster spec of one group: blocking when critical, its entries in the description."""
    word = "critical" if group.critical else "warning"
    effect = (
        f"any failure blocks the assets after {'/'.join(asset.path)}"
        if group.critical
        else "failures are reported, never block"
    )
    lines = "\n".join(f"- `{s.name}`: {s.description}" for s in group.entries)
    return dg.AssetCheckSpec(
        group.name,
        asset=asset,
        blocking=group.critical,
        description=f"[{word}] {len(group.entries)} {group.layer} expectations; {effect}. "
        f"Each one's result is in this check's metadata under its name.\n\n{lines}",
    )


def group_result(
    group: CheckGroup, asset: dg.AssetKey, outcomes: Sequence[CheckOutcome]
) -> dg.AssetCheckResult:
    """One group's result: passed when every entry passed (an entry without an outcome fails).

    Metadata: ``failed`` (the failing names, or ``none``), ``expectations`` (how many), then one
    JSON entry per expectation under its name (``passed`` and its observed figures; Dagster
    stores metadata by name, so ``failed`` and the description are where failures stand out).
    """
    by_name = {o.name: o for o in outcomes}
    names = [s.name for s in group.entries]
    failed = [n for n in names if n not in by_name or not by_name[n].success]
    word = "critical" if group.critical else "warning"
    entries: dict[str, dg.MetadataValue] = {}
    for name in names:
        outcome = by_name.get(name)
        value = (
            {"passed": outcome.success, **_flat(outcome.observed)}
            if outcome is not None
            else {"passed": False, "error": MISSING}
        )
        entries[name] = dg.MetadataValue.json(value)
    summary = f"{len(names) - len(failed)} of {len(names)} {word} expectations passed" + (
        f"; failed: {', '.join(failed)}" if failed else ""
    )
    return dg.AssetCheckResult(
        check_name=group.name,
        asset_key=asset,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if group.critical else dg.AssetCheckSeverity.WARN,
        metadata={
            "failed": dg.MetadataValue.text(", ".join(failed) or "none"),
            "expectations": dg.MetadataValue.int(len(names)),
            **entries,
        },
        description=summary,
    )


def _layer_checks(
    name: str,
    asset: dg.AssetKey,
    layer: Layer,
    suite: Suite,
    quality: QualitySettings,
    always_report: bool = False,
) -> dg.AssetChecksDefinition:
    """One layer's suite as one multi-asset check on ``asset``: a spec per severity group.

    The run's report is written after the golden suite (``always_report``) and after any suite
    with a critical failure, so a run blocked early still has a report naming the check.
    """
    groups = check_groups(layer, quality)
    known = {s.name for g in groups for s in g.entries}
    where = "/".join(asset.path)

    @dg.multi_asset_check(
        specs=[group_spec(g, asset) for g in groups], name=name, op_tags=WAREHOUSE_TAGS
    )
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
        for o in outcomes:
            if o.name not in known:
                context.log.warning("expectation %s is not in the %s catalog", o.name, o.layer)
        for group in groups:
            yield group_result(group, asset, outcomes)

    return _checks


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

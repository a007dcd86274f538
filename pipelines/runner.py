"""Run the whole asset graph once (what `customer-archive run` does) and summarize it."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from dedupe import accuracy_against_truth
from expectations import CheckOutcome
from sources.config import find_source_files
from sources.demo import read_truth
from sources.ingest import NO_DELIVERY
from warehouse import read_table
from warehouse.compaction import record_compaction

from .access import audit, open_warehouse, run_lock, run_vacuum_scope, run_warehouse
from .build import build_definitions
from .jobs import JOB_NAME
from .reporting import raise_alert
from .resources import LOCK_HELD_TAG, run_day
from .settings import ArchiveConfig, ConfigError, load_config
from .stages import RunStats, check_outcomes, run_stats
from .stages.context import load_sources

log = logging.getLogger("customer_archive")
# this process holds the run lock for the whole run: the resource must not take it per step
LOCK_TAGS = {LOCK_HELD_TAG: "true"}


@dataclass
class RunOutcome:
    """What a run did: Dagster's verdict, each stage's figures, expectation results."""

    run_id: str
    success: bool
    stats: RunStats = field(default_factory=RunStats)
    outcomes: list = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    blocked: bool = False
    accuracy: dict[str, Any] | None = None


def _error_text(error: Any) -> str:
    """Dagster's wrapper message plus every cause under it (the cause names the real problem)."""
    parts: list[str] = []
    while error is not None:
        text = (error.message or "").strip()
        if text and text not in parts:
            parts.append(text)
        error = error.cause
    return " ← ".join(parts[::-1]) if len(parts) > 1 else (parts[0] if parts else "error")


def _quiet_dagster() -> dict:
    return {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextmanager
def _persistent_instance(instance: dg.DagsterInstance | None) -> Iterator[dg.DagsterInstance]:
    """An instance step processes can share: the given one, ``$DAGSTER_HOME``'s, or a temp one."""
    if instance is not None:
        yield instance
    elif os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as home:
            yield home
    else:
        with (
            tempfile.TemporaryDirectory(prefix="archive-dagster-") as tmp,
            dg.DagsterInstance.local_temp(tmp) as temp,
        ):
            yield temp


def _execute(
    cfg: ArchiveConfig,
    config_path: str | None,
    warehouse: str | None,
    run_date: str | None,
    instance: dg.DagsterInstance | None,
) -> dg.ExecutionResult:
    """Execute the archive job with the configured executor (in this process or one per step)."""
    if cfg.scale.executor == "multiprocess":
        # Each step process rebuilds the job by name (`archive_job`) and shares this instance
        # (its run storage and the fs IO manager's pickles of the shard inputs and outputs).
        recon = dg.build_reconstructable_job(
            "pipelines.build",
            "archive_job",
            reconstructable_kwargs={
                "config_path": str(Path(config_path).resolve()) if config_path else None,
                "warehouse": warehouse,
                "run_date": run_date,
            },
        )
        with _persistent_instance(instance) as inst:
            return dg.execute_job(
                recon,
                instance=inst,
                run_config=_quiet_dagster(),
                raise_on_error=False,
                tags=LOCK_TAGS,
            )
    defs = build_definitions(config_path, warehouse, run_date)
    job = defs.resolve_job_def(JOB_NAME)
    # every step in this process: one warehouse database for all of them (a nightly's stages
    # find what the stages before them read still decrypted in DuckDB's buffer pool)
    with run_warehouse(cfg, run_day(cfg, run_date)):
        if instance is None and os.environ.get("DAGSTER_HOME"):
            # the deployment's instance: the run shows in the Dagster UI's run history
            with dg.DagsterInstance.get() as home:
                return job.execute_in_process(
                    instance=home,
                    raise_on_error=False,
                    run_config=_quiet_dagster(),
                    tags=LOCK_TAGS,
                )
        return job.execute_in_process(
            instance=instance or dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
            run_config=_quiet_dagster(),
            tags=LOCK_TAGS,
        )


class NoDeliveryError(ConfigError):
    """A first run finds no file for any source: the landing folder or the globs are wrong."""


def check_first_delivery(cfg: ArchiveConfig) -> None:
    """Refuse a first run (no warehouse yet) when no source's glob matches any file.

    Later runs without files are normal (nothing changes; the summary warns per source), but a
    first run with nothing at all would only create an empty archive.

    Raises:
        NoDeliveryError: naming the landing folder and the globs to check.
    """
    if cfg.resolve(cfg.warehouse).exists():
        return
    sources_cfg = load_sources(cfg)
    enabled = [s for s in sources_cfg.sources if s.enabled]
    landing = Path(sources_cfg.landing_dir)
    if enabled and not any(find_source_files(s, landing) for s in enabled):
        globs = ", ".join(f"{s.name}: {s.path}" for s in enabled)
        raise NoDeliveryError(
            f"no delivery to ingest: no file under landing_dir {landing} matches any source's "
            f"glob ({globs}); check landing_dir in the configuration and the paths in "
            f"{cfg.resolve(cfg.sources_file)}"
        )


def run_pipeline(
    config_path: str | Path | None,
    warehouse: str | Path | None = None,
    run_date: str | None = None,
    instance: dg.DagsterInstance | None = None,
) -> RunOutcome:
    """Materialize every asset (raw → … → snapshot) once, under the run lock.

    With ``scale.executor: in_process`` every step runs in this process; with ``multiprocess``
    each step runs in its own process (match shards in parallel, warehouse steps one at a time).

    Args:
        config_path: the project YAML.
        warehouse: overrides the DuckDB file (resolved against the working directory).
        run_date: replay a date (``YYYY-MM-DD``).
        instance: a Dagster instance (default: an ephemeral one in-process; for the
            multiprocess executor ``$DAGSTER_HOME``'s instance, else a temporary one).

    Returns:
        The run's outcome; ``success`` is False when a stage failed or publishing was blocked.
    """
    wh = str(Path(warehouse).resolve()) if warehouse else None
    cfg = load_config(config_path, warehouse=wh)
    check_first_delivery(cfg)
    # a nightly's deferred checkpoint vacuum (run_warehouse) holds until its audit is anchored
    with run_vacuum_scope(cfg):
        return _run(cfg, config_path, wh, run_date, instance)


def _run(
    cfg: ArchiveConfig,
    config_path: str | Path | None,
    wh: str | None,
    run_date: str | None,
    instance: dg.DagsterInstance | None,
) -> RunOutcome:
    """`run_pipeline` after the configuration is loaded and checked."""
    first = not cfg.resolve(cfg.warehouse).exists()
    with run_lock(cfg):
        result = _execute(cfg, str(config_path) if config_path else None, wh, run_date, instance)
        if first and result.success:
            # a first run wrote every table new (its checkpoints vacuumed): compact
            with open_warehouse(cfg) as con:
                record_compaction(con, run_day(cfg, run_date))
    outcome = RunOutcome(run_id=result.run_id, success=result.success)
    for event in result.all_events:
        if event.is_step_failure:
            outcome.failed_steps.append(event.step_key or "?")
            data = event.step_failure_data
            if data is not None and data.error is not None:
                outcome.errors.append(f"{event.step_key}: {_error_text(data.error)}")
    with open_warehouse(cfg) as con:
        outcome.stats = run_stats(con, result.run_id)
        outcome.outcomes = check_outcomes(con, result.run_id)
    failed_critical = [o for o in outcome.outcomes if o.critical and not o.success]
    outcome.blocked = bool(failed_critical) or any("PublishBlocked" in e for e in outcome.errors)
    if outcome.stats.snapshot is None:
        outcome.success = False
    if not outcome.success and not outcome.blocked:
        raise_alert(cfg, outcome.run_id, "run_failed", "; ".join(outcome.errors) or "run failed")
    audit(
        cfg,
        "run",
        outcome.run_id,
        result="ok" if outcome.success else ("blocked" if outcome.blocked else "failed"),
        details={
            "golden_customers": outcome.stats.golden.golden_customers
            if outcome.stats.golden
            else None,
            "snapshot": outcome.stats.snapshot.snapshot if outcome.stats.snapshot else None,
            "failed_steps": outcome.failed_steps,
        },
    )
    if outcome.success and cfg.security.landing_retention_days:
        from datetime import date

        from .landing import apply_landing_retention

        with run_lock(cfg):
            apply_landing_retention(cfg, date.fromisoformat(run_date) if run_date else date.today())
    return outcome


def evaluate_against_truth(cfg: ArchiveConfig, truth_csv: Path) -> dict[str, Any]:
    """Pairwise and B-cubed precision/recall/F1 of golden.crosswalk against a truth file.

    The truth CSV has ``source_system, source_record_id, entity_id`` (the demo generator writes it).
    """
    with open_warehouse(cfg, read_only=True) as con:
        cw = read_table(con, "golden.crosswalk")
    if cw is None:
        raise RuntimeError("golden.crosswalk is missing: nothing published yet")
    return accuracy_against_truth(cw, read_truth(truth_csv))


def format_summary(outcome: RunOutcome) -> str:
    """The closing summary printed by `customer-archive run`."""
    s = outcome.stats
    lines = [f"Run {outcome.run_id}"]
    # the name column as wide as the longest source name: the figures stay under their headers
    width = max([14, *(len(v.source) + 2 for v in s.ingest.values())])
    lines.append(
        f"  {'rows per source:':<{width + 2}}{'in':>8}{'ingested':>10}{'quarantined':>13}"
        "   (files new / skipped / bad)"
    )
    for v in (s.ingest[k] for k in sorted(s.ingest)):
        lines.append(
            f"    {v.source:<{width}}{v.rows_in:>8}{v.rows_ingested:>10}{v.rows_quarantined:>13}"
            f"   ({v.files_new} / {v.files_skipped} / {v.files_quarantined})"
        )
    for v in (s.ingest[k] for k in sorted(s.ingest)):
        for warning in v.warnings:
            if NO_DELIVERY in warning:
                lines.append(f"    warning: {v.source}: {warning}")
    if (c := s.clean) is not None:
        lines.append(
            f"  clean records:     {c.clean_records}  (transactions {c.transactions}, "
            f"interactions {c.interactions}, follow-up {c.follow_up})"
        )
        if not c.clean_records:
            quarantined = sum(v.rows_quarantined for v in s.ingest.values())
            lines.append(
                f"  zero clean records: nothing to match or publish ({quarantined} row(s) "
                "quarantined this run; see quarantine.rows / quarantine.files)"
            )
    if (m := s.match) is not None:
        lines.append(
            f"  candidate pairs:   {m.candidate_pairs}  (matched {m.matched_pairs}, "
            f"review queue {m.review_queue})"
            + (f", scored in {m.shards} blocking shards" if m.shards else "")
        )
        lines.append(f"  clusters:          {m.clusters}")
    if (g := s.golden) is not None:
        lines.append(
            f"  golden customers:  {g.golden_customers}  (new ids {g.ids_created}, "
            f"merges {g.merges}, splits {g.splits})"
        )
    if outcome.outcomes:
        passed = sum(o.success for o in outcome.outcomes)
        failed = [o for o in outcome.outcomes if not o.success]
        per_layer = ", ".join(
            f"{layer} {sum(o.success for o in group)}/{len(group)}"
            for layer in ("raw", "clean", "golden")
            if (group := [o for o in outcome.outcomes if o.layer == layer])
        )
        lines.append(
            f"  expectations:      {passed} passed, {len(failed)} failed  ({per_layer} passed)"
        )
        for o in failed:
            lines.append(
                f"    {'CRITICAL' if o.critical else 'warning '} {_check_label(o)}: {o.observed}"
            )
    if s.snapshot is not None:
        lines.append(f"  snapshot:          {s.snapshot.snapshot or 'unchanged (no new snapshot)'}")
    if outcome.accuracy:
        a = outcome.accuracy
        pw, b3 = a["pairwise"], a["bcubed"]
        lines.append(
            f"  accuracy vs truth: pairwise P={pw['precision']:.4f} R={pw['recall']:.4f} "
            f"F1={pw['f1']:.4f}; B-cubed P={b3['precision']:.4f} R={b3['recall']:.4f} "
            f"F1={b3['f1']:.4f}  ({a['records_evaluated']} records)"
        )
    if outcome.blocked:
        critical = [_check_label(o) for o in outcome.outcomes if o.critical and not o.success]
        lines.append(
            "  PUBLISH BLOCKED: "
            + (f"critical expectation(s) failed: {', '.join(critical)}" if critical else
               "a critical expectation failed")
            + "; the stages after the failed check did not run, the previous golden "
            "tables and snapshots are untouched."
        )  # fmt: skip
    for e in outcome.errors:
        lines.append(f"  error: {e}")
    lines.append("  status:            " + ("OK" if outcome.success else "FAILED"))
    return "\n".join(lines)


def _check_label(o: CheckOutcome) -> str:
    """``layer name`` (with the source for raw checks), e.g. ``raw[crm] raw_rows_reconciled``."""
    source = o.observed.get("source_system") if o.layer == "raw" else None
    return f"{o.layer}[{source}] {o.name}" if source else f"{o.layer} {o.name}"


def configure_progress_logging() -> None:
    """Print stage progress lines to stdout."""
    if any(getattr(h, "_customer_archive", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", "%H:%M:%S"))
    handler._customer_archive = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

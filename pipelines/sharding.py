"""The match stage as a Dagster graph fanned out by blocking shard (docs/scaling.md, issue #10).

``match/clusters`` becomes a graph-backed asset: ``match_prepare`` reads the warehouse once and
emits one dynamic output per shard, ``match_score_shard`` scores one shard with no warehouse
access (so shards can run in separate processes or pods), and ``match_finish`` unions the shards,
clusters once and writes ``match.*`` exactly as the single-process stage does.

The prepare step writes each shard's records (`dedupe.shard.write_shard_files`: the records of
the shard's blocks, with their blocking facts over all records) to a file of its own beside the
warehouse (``<warehouse>.shards/<run id>/``); a shard step loads only that file, never the whole
prepared frame. The finishing step removes the folder once ``match.*`` is written.
"""

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from dedupe import (
    LinkDelta,
    LinkResult,
    MatchSettings,
    ModelParams,
    PairSet,
    ShardSetup,
    finish_compact,
    prepare_sharded,
    prepared_version,
    scoring_workers,
)
from dedupe.assemble import CompactLink
from dedupe.shard import (
    fill_review_fields,
    finishing_frame,
    prepared_rows,
    read_prepared_file,
    read_shard_file,
    score_shard,
    write_prepared_file,
    write_shard_files,
)
from warehouse.match_state import prepared_batches

from .access import step_warehouse
from .faults import crash_point
from .jobs import WAREHOUSE_TAGS
from .reporting import run_log
from .resources import ArchiveResource
from .stages import (
    MatchInputs,
    StageResult,
    link_planned,
    match_inputs,
    record_stage,
    reusable_params,
    stage_timing,
    write_match,
)

MATCH_KEY = dg.AssetKey(["match", "clusters"])
SHARD_RETRY = dg.RetryPolicy(max_retries=2, delay=5)


def stage_metadata(stats: StageResult) -> dict:
    """The stage figures Dagster can show as asset metadata (scalars only)."""
    return {
        k: v
        for k, v in stats.as_dict().items()
        if isinstance(v, int | float | str) and v is not None
    }


@dataclass
class MatchWork:
    """What ``match_prepare`` hands to ``match_finish`` (never to the shards).

    Attributes:
        inputs: the records, decisions, state hashes and rematch plan read from the warehouse.
        started: wall-clock start of the stage (seconds since the epoch).
        shards: the number of shards emitted (0 for an incremental rematch).
        result: the incremental link result (linked in prepare), None for a sharded rebuild.
        setup: a sharded rebuild's decisions and params, and of its prepared records only
            what assembling reads (`dedupe.shard.finishing_frame`).
        folder: where a sharded rebuild's shard files are (removed once match.* is written).
        prepared_file: every prepared record as ``match.prepared``'s rows, in an Arrow
            stream file in `folder` (`dedupe.shard.write_prepared_file`): the finishing step
            streams it into the warehouse and reads the review queue's fields from it.
    """

    inputs: MatchInputs
    started: float
    shards: int
    result: LinkResult | LinkDelta | None
    setup: ShardSetup | None = None
    folder: str | None = None
    prepared_file: str | None = None


@dataclass
class ShardPlan:
    """What every shard step loads: its records' file, the params and matching settings.

    Attributes:
        files: the file of shard s at position s (`dedupe.shard.write_shard_files`).
        params: the model parameters every shard scores with.
        settings: matching settings.
        shards: number of shards.
        workers: rapidfuzz threads per shard step.
    """

    files: list[str]
    params: ModelParams
    settings: MatchSettings
    shards: int
    workers: int = 1


def shard_folder(warehouse: Path, run_id: str) -> Path:
    """Where a run's shard files go: beside the warehouse, one folder per run."""
    return warehouse.parent / f"{warehouse.name}.shards" / run_id


@dataclass
class ShardResult:
    """One shard's scored pairs and blocking figures."""

    shard: int
    pairs: PairSet
    stats: pd.DataFrame


@dg.op(
    ins={"clean": dg.In(dg.Nothing)},
    out={
        "work": dg.Out(description="inputs for the finishing step"),
        "plan": dg.Out(description="what each shard loads; None = incremental"),
        # Required even when empty (incremental): an optional dynamic output that yields
        # nothing makes Dagster skip the collecting step, and with it match.* and publishing.
        "shards": dg.DynamicOut(int, description="one output per shard; none = incremental"),
    },
    tags=WAREHOUSE_TAGS,
    description="Read clean.records and the steward decisions, plan the rematch; for a full "
    "rebuild prepare the records and the model params once and fan out one output per shard.",
)
def match_prepare(
    context: dg.OpExecutionContext, archive: ArchiveResource
) -> Iterator[dg.Output | dg.DynamicOutput]:
    """Plan the match stage and fan out its shards."""
    ctx = archive.run_context(context.run.run_id)
    started = time.time()
    crash_point("match:before")
    scale, settings = ctx.config.scale, ctx.config.matching
    with run_log(ctx.config, ctx.run_id, "match"):
        # read-only: shard steps of a multiprocess run may read beside it (the match step
        # starts cold in a run holding the warehouse open)
        with step_warehouse(ctx.config, cold=True, read_only=True) as con:
            inputs = match_inputs(con, ctx)
            reuse = reusable_params(con, inputs.state) if scale.reuse_params else None
            # a nightly link reads the stored pairs it needs while it links: connection open
            result = link_planned(inputs, ctx) if inputs.plan is not None else None
        if inputs.plan is not None:
            context.log.info(
                f"incremental rematch of {len(inputs.plan.changed)} records: no shards"
            )
            yield dg.Output(MatchWork(inputs, started, 0, result), "work")
            yield dg.Output(None, "plan")
            return
        # handed over, not kept: the records are let go of once prepared (not held through
        # training, and not pickled into the finishing step's input, which never reads them)
        records = inputs.records
        count = len(records)
        inputs.records = records.iloc[:0]
        setup = prepare_sharded(records, settings, inputs.decisions, reuse)
        del records
        shards = scale.match_shards
        folder = shard_folder(ctx.config.resolve(ctx.config.warehouse), ctx.run_id)
        # a retried step's files, and what a failed or killed run left (the warehouse lock
        # lets one run at a time use these folders)
        shutil.rmtree(folder.parent, ignore_errors=True)
        files = write_shard_files(setup.prepared, settings, shards, folder)
        # match.prepared's rows staged in a file, and of the prepared frame only the columns
        # assembling reads handed on: the finishing step never holds every prepared record
        prepared_file = folder / "prepared.arrows"
        write_prepared_file(prepared_batches(setup.prepared, prepared_version()), prepared_file)
        setup.prepared = finishing_frame(setup.prepared)
    context.log.info(
        f"full rebuild of {count} records in {shards} shards "
        f"({'reused' if reuse is not None else 'estimated'} model params), shard files in "
        f"{folder}"
    )
    yield dg.Output(
        MatchWork(inputs, started, shards, None, setup, str(folder), str(prepared_file)), "work"
    )
    # shard steps running side by side share the cores (multiprocess executor)
    side_by_side = scale.max_concurrent if scale.executor == "multiprocess" else 1
    workers = max(1, scale.resolved_workers() // min(side_by_side, shards))
    plan = ShardPlan([str(f) for f in files], setup.params, settings, shards, workers)
    yield dg.Output(plan, "plan")
    for shard in range(shards):
        yield dg.DynamicOutput(shard, mapping_key=f"shard_{shard}", output_name="shards")


@dg.op(
    retry_policy=SHARD_RETRY,
    description="Generate and score one blocking shard's candidate pairs (no warehouse access).",
)
def match_score_shard(shard: int, plan: ShardPlan | None) -> ShardResult:
    """Score one shard from its own records' file: no warehouse, no other shard's records."""
    if plan is None:
        raise RuntimeError(f"shard {shard} was emitted without a shard plan")
    frame = read_shard_file(Path(plan.files[shard]))
    with scoring_workers(plan.workers):
        pairs, stats = score_shard(frame, plan.settings, plan.params, shard, plan.shards)
    return ShardResult(shard, pairs, stats)


def _checked(results: list[ShardResult], shards: int) -> list[tuple[PairSet, pd.DataFrame]]:
    """The shard results in shard order, after checking that each shard arrived exactly once."""
    got = sorted(r.shard for r in results)
    if got != list(range(shards)):
        raise RuntimeError(f"expected the results of shards 0..{shards - 1}, got {got}")
    return [(r.pairs, r.stats) for r in sorted(results, key=lambda r: r.shard)]


@dg.op(
    out=dg.Out(dg.Nothing),
    tags=WAREHOUSE_TAGS,
    description="Union the shards, cluster once, write match.* and the stage's figures.",
)
def match_finish(
    context: dg.OpExecutionContext,
    archive: ArchiveResource,
    results: list[ShardResult],
    work: MatchWork,
    plan: ShardPlan | None,
) -> None:
    """Cluster over every shard's pairs and write the match tables in one transaction."""
    ctx = archive.run_context(context.run.run_id)
    with run_log(ctx.config, ctx.run_id, "match"):
        result: LinkResult | LinkDelta | CompactLink
        prepared = None
        if work.result is not None:
            result = work.result
        elif plan is None or work.setup is None or work.prepared_file is None:
            raise RuntimeError("a sharded rebuild reached the finishing step without its plan")
        else:
            shard_results = _checked(results, work.shards)
            results.clear()  # each shard's pairs are let go of once concatenated
            # pairs kept as numbers (`CompactLink`): match.pairs is written a batch at a
            # time, as the single-process full match writes it, never as one frame
            result = finish_compact(work.setup, plan.settings, shard_results)
            result.labels = None
            work.setup = None  # the result holds what the write needs of it
            staged = Path(work.prepared_file)
            fill_review_fields(
                result.review_queue,
                result.prepared["record_key"],
                lambda at, columns: prepared_rows(staged, at, columns),
            )
            prepared = read_prepared_file(staged)
        with archive.connection(ctx.config, context.run.tags) as con:
            stats = write_match(con, ctx, work.inputs, result, prepared)
            if work.result is None:
                stats.shards = work.shards
            stats.seconds, stats.peak_rss_mb = stage_timing(work.started, clock=time.time)
            record_stage(con, ctx, "match", stats)
    if work.folder is not None and Path(work.folder).exists():
        shutil.rmtree(work.folder)  # match.* is written: the shard files are spent
    crash_point("match:after")
    context.add_output_metadata(stage_metadata(stats))


def build_sharded_match_asset(clean_key: dg.AssetKey) -> dg.AssetsDefinition:
    """``match/clusters`` as a graph: prepare → one dynamic step per shard → finish.

    Args:
        clean_key: the asset the match stage runs after (``clean/records``).

    Returns:
        The graph-backed asset; the shard count comes from ``scale.match_shards`` at run time.
    """

    @dg.graph_asset(
        key=MATCH_KEY,
        ins={"clean": dg.AssetIn(key=clean_key, dagster_type=dg.Nothing)},
        group_name="match",
        description="Candidate pairs, Fellegi–Sunter scores, clusters and the review queue; "
        "a full rebuild is scored in blocking shards (scale.match_shards) and clustered once.",
        kinds={"duckdb"},
    )
    def match_clusters(clean: Any) -> Any:
        work, plan, shards = match_prepare(clean)
        results = shards.map(lambda shard: match_score_shard(shard, plan)).collect()
        return match_finish(results, work, plan)

    return match_clusters

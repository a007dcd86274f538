"""The match stage: block, score and cluster the clean records into ``match.*``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from dedupe import (
    LinkDelta,
    LinkResult,
    ModelParams,
    PairSet,
    StoredLink,
    link_stored,
    link_stored_delta,
    link_subset_delta,
    prepared_version,
    record_columns,
    scoring_workers,
    stored_pair_set,
)
from dedupe.link import CompactLink, link_compact, return_free_memory
from dedupe.settings import matcher_signature
from warehouse import read_table, table_columns, table_exists
from warehouse.decision_changes import keep_linked_decisions
from warehouse.match_state import (
    RematchPlan,
    StoredMatch,
    drop_changed_rows,
    latest_params_row,
    match_state,
    read_stored,
    rematch_plan,
    write_match_delta,
    write_match_tables,
)

from .context import RunContext, StageResult

log = logging.getLogger("customer_archive")

__all__ = [
    "MatchInputs",
    "MatchStats",
    "latest_params",
    "link",
    "link_planned",
    "match_inputs",
    "match_stage",
    "reusable_params",
    "stored_link",
    "write_match",
]


@dataclass
class MatchInputs:
    """What the match stage reads: records, decisions, the state hashes and the rematch plan.

    ``plan`` is None for a full rebuild, else what an incremental link needs.
    """

    records: pd.DataFrame  # every clean record for a full rebuild, the changed ones for a plan
    decisions: pd.DataFrame | None
    state: dict[str, str]
    plan: RematchPlan | None


@dataclass(kw_only=True)
class MatchStats(StageResult):
    """What the match stage did; ``shards`` is set for a sharded full rebuild; a nightly
    written as a delta sets ``records_read`` (prepared records read from ``match.prepared``,
    and the new versions) and the ``match.pairs`` rows it deleted and inserted."""

    candidate_pairs: int
    matched_pairs: int
    review_queue: int
    clusters: int
    mode: str
    records_relinked: int
    shards: int | None = None
    records_read: int | None = None
    pairs_deleted: int | None = None
    pairs_inserted: int | None = None

    _OPTIONAL = ("shards", "records_read", "pairs_deleted", "pairs_inserted")


def latest_params(con: duckdb.DuckDBPyConnection) -> ModelParams | None:
    """The model parameters estimated by the latest match run, if any."""
    latest = latest_params_row(con)
    return None if latest is None else ModelParams.from_json(latest.params_json)


def reusable_params(con: duckdb.DuckDBPyConnection, state: dict[str, str]) -> ModelParams | None:
    """The latest run's model params when they were estimated under the same matching settings.

    Args:
        con: the warehouse.
        state: the current settings/decisions hashes (``MatchInputs.state``).

    Returns:
        The params, or None when there is no previous run or the settings hash changed.
    """
    latest = latest_params_row(con)
    if latest is None or latest.settings != state["settings"]:
        return None
    return ModelParams.from_json(latest.params_json)


def match_inputs(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> MatchInputs:
    """Read what the match stage links and decide between a full and an incremental rematch."""
    if not table_exists(con, "clean.records"):
        raise RuntimeError("clean.records is missing: run the clean stage first")
    decisions = read_table(con, "match.decisions")
    state = match_state(matcher_signature(ctx.config.matching), decisions)
    plan = (
        rematch_plan(
            con, state, prepared_version(), ctx.config.matching.match_threshold, subset=True
        )
        if ctx.config.match_incremental
        else None
    )
    # an incremental link reads only the changed records (plan.changed) and the linked set
    records = _records_to_link(con, ctx) if plan is None else plan.changed
    assert records is not None
    return MatchInputs(records, decisions, state, plan)


def _records_to_link(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> pd.DataFrame:
    """``clean.records`` for a full rebuild: only the columns the matcher reads.

    The lineage, raw values and issues (half the clean layer's columns) never reach the
    matcher; leaving them in DuckDB keeps them out of the match stage's peak memory.
    """
    wanted = record_columns(ctx.config.matching)
    columns = [c for c in table_columns(con, "clean.records") if c in wanted]
    records = read_table(con, "clean.records", columns)
    assert records is not None
    return records


def link_planned(inputs: MatchInputs, ctx: RunContext) -> LinkResult | LinkDelta:
    """The incremental link of a rematch plan (``inputs.plan`` must be set).

    From a stored link whose tables can take a delta (``plan.delta``), only the affected
    records' rows are assembled (`LinkDelta`, written by `write_match_delta`); with
    ``plan.reach`` only the records the change reaches are read (`link_subset_delta`), else
    (or when that read does not fit) every stored prepared record.
    """
    plan = inputs.plan
    assert plan is not None
    params = ModelParams.from_json(plan.params_json)
    if plan.reach is not None:
        reach, plan.reach = plan.reach, None  # holds the connection: not kept past the link
        try:
            delta = link_subset_delta(
                plan.changed, reach, ctx.config.matching, inputs.decisions, params
            )
            # the stored pairs it read, with rowids and hashes: the write's scope among them
            delta.read_pairs, reach.read_pairs = reach.read_pairs, None
            return delta
        except ValueError as err:  # the whole stored link still links correctly
            log.warning("match: the reached records do not fit (%s): reading every one", err)
            plan.stored = read_stored(reach.con, ctx.config.matching.match_threshold)
    assert plan.stored is not None
    try:
        return (link_stored_delta if plan.delta else link_stored)(
            plan.changed,
            stored_link(plan.stored),
            ctx.config.matching,
            inputs.decisions,
            params,
        )
    finally:
        # the reader of the other stored pairs holds the connection: not kept past the link
        plan.stored.more = None


def stored_link(stored: StoredMatch) -> StoredLink:
    """The matcher's view of a stored link (pairs as a `PairSet`, the rest read on demand)."""
    more = None
    if stored.more is not None:
        read = stored.more

        def more(mask: np.ndarray) -> PairSet:
            return stored_pair_set(read(mask), stored.rule_names, stored.hard_names)

    return StoredLink(
        stored.prepared,
        stored_pair_set(stored.pairs, stored.rule_names, stored.hard_names),
        stored.labels,
        stored.steward_pairs,
        more,
    )


def link(
    inputs: MatchInputs, ctx: RunContext, params: ModelParams | None = None
) -> CompactLink | LinkResult | LinkDelta:
    """Link in one process: a full rebuild (with ``params`` when given), or the plan's link.

    Bulk similarity scoring uses ``scale.workers`` rapidfuzz threads (same scores), a full
    rebuild's preparation ``scale.prepare_workers`` processes (same frame). A full rebuild
    takes ``inputs.records`` over (left empty in ``inputs``) so they are freed once
    prepared; their count is the result's ``clusters`` rows. Its pairs stay numbers
    (`CompactLink`): ``match.pairs`` is written from them a batch at a time, never as one
    frame of every pair.
    """
    scale = ctx.config.scale
    with scoring_workers(scale.resolved_workers()):
        if inputs.plan is None:
            # handed over, not kept: `link_compact` lets go of the records once it has
            # prepared them, so they are not held through blocking, scoring and assembling
            return link_compact(
                _hand_over(inputs),
                ctx.config.matching,
                decisions=inputs.decisions,
                params=params,
                # in chunks only to share them out: one process prepares all at once
                prepare_helpers=scale.prepare_workers - 1,
                prepare_chunk_records=scale.prepare_chunk_records
                if scale.prepare_workers > 1
                else None,
            )
        return link_planned(inputs, ctx)


def _hand_over(inputs: MatchInputs) -> pd.DataFrame:
    """``inputs.records``, left empty (same columns) in ``inputs``: the caller owns them."""
    records = inputs.records
    inputs.records = records.iloc[:0]
    return records


def match_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> MatchStats:
    """Block, score and cluster the clean records into ``match.*``."""
    # what the stages before freed (a run's stages share its process): back to the system,
    # not kept by the allocators under this stage's peak (the nightly's peak is this stage's)
    return_free_memory()
    inputs = match_inputs(con, ctx)
    try:
        params = None
        if inputs.plan is None and ctx.config.scale.reuse_params:
            # a full relink (records removed, first run) keeps the previous run's model while
            # the settings are unchanged, as sharded rebuilds do: no customer moves because EM
            # re-estimated its weights on a slightly different night
            params = reusable_params(con, inputs.state)
        result = link(inputs, ctx, params)
        if isinstance(result, CompactLink):
            # the cluster labels are not written: freed before the write; the pairs (written a
            # batch at a time) and the prepared records (`match.prepared`) are kept
            result.labels = None
        return write_match(con, ctx, inputs, result)
    finally:
        if inputs.plan is not None and inputs.plan.changed_rows is not None:
            drop_changed_rows(con)


def write_match(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    inputs: MatchInputs,
    result: CompactLink | LinkResult | LinkDelta,
    prepared: pa.RecordBatchReader | None = None,
) -> MatchStats:
    """Write a link result into ``match.*`` in one transaction and return the stage's figures.

    The steward decisions it was made under are kept after it (`keep_linked_decisions`): the
    next run relinks only the records of the decisions changed since. `prepared`: a compact
    result's ``match.prepared`` rows as `prepared_batches` gives them (a sharded rebuild
    reads them from the file its prepare step wrote); None = from ``result.prepared``.
    """
    if prepared is not None and not isinstance(result, CompactLink):
        raise ValueError("prepared records as a stream go with a compact (full) link result")
    if isinstance(result, LinkDelta):
        stats = _write_delta(con, ctx, inputs, result)
    elif isinstance(result, CompactLink):
        stats = _write_compact(con, ctx, inputs, result, prepared)
    else:
        stats = _write_result(con, ctx, inputs, result)
    keep_linked_decisions(con)
    return stats


def _write_result(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, inputs: MatchInputs, result: LinkResult
) -> MatchStats:
    """Write a link result whose pairs are one frame (a sharded full link, or an incremental
    one not written as a delta)."""
    mode = "full" if inputs.plan is None else "incremental"
    # match.prepared: replaced by a full link (or an incremental one that prepared every
    # record), else only the rows this run prepared or re-flagged
    changed_only = inputs.plan is not None and inputs.plan.stored is not None
    prepared = result.prepared
    if prepared is not None and changed_only and result.refreshed is not None:
        prepared = prepared[result.refreshed]
    write_match_tables(
        con,
        {
            "match.pairs": result.pairs,
            "match.clusters": result.clusters,
            "match.review_queue": result.review_queue,
            "match.blocking_stats": result.blocking_stats.assign(run_id=ctx.run_id),
        },
        {
            "run_id": ctx.run_id,
            "created_at": ctx.ingested_at,
            "params": result.params.to_json(),
            "mode": mode,
            **inputs.state,
        },
        prepared,
        prepared_version(),
        "changed" if changed_only and result.refreshed is not None else "all",
        None if inputs.plan is None else inputs.plan.changed["record_key"],
    )
    return _logged(
        MatchStats(
            candidate_pairs=len(result.pairs),
            matched_pairs=result.matched_pairs(),
            review_queue=len(result.review_queue),
            clusters=result.cluster_count(),
            mode=mode,
            # a full rebuild clusters every record it linked (one clusters row each)
            records_relinked=len(result.clusters)
            if inputs.plan is None
            else len(inputs.plan.changed),
        )
    )


def _write_compact(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    inputs: MatchInputs,
    result: CompactLink,
    prepared: pa.RecordBatchReader | None = None,
) -> MatchStats:
    """Write a full link whose pairs are numbers: ``match.pairs`` streamed in Arrow batches
    (``match.prepared`` from `prepared` when given, else from ``result.prepared``)."""
    if inputs.plan is not None:
        raise ValueError("a compact link result is written by a full rebuild only")
    # the frame is left None in `result` and handed to the write, not held here: the write
    # lets go of it once stored, before the pairs (a reference kept here held every prepared
    # record through the pairs' write: +250 MB at 1 M). Given the stream, the result's
    # frame (a finishing step's few columns) is not written at all
    if prepared is not None:
        _take_prepared(result)
    # what assembling freed (its per-pair masks, the union-find's arrays) goes back before
    # DuckDB writes: DuckDB allocates from its own heap (jemalloc), so glibc's freed-but-kept
    # memory would stack under its buffers (≈ 1 GB at 1 M records: the stage's peak)
    return_free_memory()
    write_match_tables(
        con,
        {
            "match.clusters": result.clusters,
            "match.review_queue": result.review_queue,
            "match.blocking_stats": result.blocking_stats.assign(run_id=ctx.run_id),
        },
        {
            "run_id": ctx.run_id,
            "created_at": ctx.ingested_at,
            "params": result.params.to_json(),
            "mode": "full",
            **inputs.state,
        },
        prepared if prepared is not None else _take_prepared(result),
        prepared_version(),
        # one stream per DuckDB thread (written as their UNION ALL, in order): one Arrow
        # stream is stored by one thread, and the pairs are the write's largest table
        pair_batches=result.pair_readers(_duckdb_threads(con)),
    )
    return _logged(
        MatchStats(
            candidate_pairs=len(result),
            matched_pairs=result.matched_pairs(),
            review_queue=len(result.review_queue),
            clusters=result.cluster_count(),
            mode="full",
            records_relinked=len(result.clusters),
        )
    )


def _duckdb_threads(con: duckdb.DuckDBPyConnection) -> int:
    """The threads DuckDB runs a query with on `con` (its ``threads`` setting)."""
    row = con.execute("SELECT current_setting('threads')").fetchone()
    return max(1, int(row[0])) if row is not None else 1


def _take_prepared(result: CompactLink) -> pd.DataFrame:
    """``result.prepared``, left None in `result`: the write lets go of it once stored."""
    prepared, result.prepared = result.prepared, None  # type: ignore[assignment]
    return prepared


def _write_delta(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, inputs: MatchInputs, delta: LinkDelta
) -> MatchStats:
    """Write a nightly link's delta (affected records' rows only) and count the tables."""
    plan = inputs.plan
    assert plan is not None
    # of the records read only the re-prepared rows and the keys are written: the rest of the
    # frame is let go of (and the heap handed back) before DuckDB writes; the delta's rows are
    # handed over to the write, which lets each table's frame go once DuckDB holds its rows
    records_read = len(delta.prepared)
    refreshed = delta.prepared[delta.refreshed]
    within = delta.prepared["record_key"] if delta.partial else None
    read_pairs, delta.read_pairs = (delta.read_pairs if delta.partial else None), None
    delta.prepared = delta.prepared.iloc[:0]
    tables = {
        "match.pairs": delta.pairs,
        "match.clusters": delta.clusters,
        "match.review_queue": delta.review_queue,
        "match.blocking_stats": delta.blocking_stats.assign(run_id=ctx.run_id),
    }
    delta.pairs, delta.clusters, delta.review_queue = (
        delta.pairs.iloc[:0],
        delta.clusters.iloc[:0],
        delta.review_queue.iloc[:0],
    )
    return_free_memory()
    written = write_match_delta(
        con,
        delta.records,
        tables,
        {
            "run_id": ctx.run_id,
            "created_at": ctx.ingested_at,
            "params": delta.params.to_json(),
            "mode": "incremental",
            **inputs.state,
        },
        refreshed,
        prepared_version(),
        plan.changed["record_key"],
        delta.dropped,
        within,
        _changed_rows(con, plan),
        read_pairs,
    )
    log.info(
        "match      delta: %d records read, %d affected; rows deleted/inserted: %s",
        records_read,
        len(delta.records),
        ", ".join(
            f"{name} {written.deleted[name]}/{written.inserted[name]}" for name in written.inserted
        ),
    )
    (pairs, matched, review, clusters) = con.execute(
        "SELECT (SELECT count(*) FROM match.pairs),"
        " (SELECT count(*) FROM match.pairs WHERE decision = 'match'),"
        " (SELECT count(*) FROM match.review_queue),"
        " (SELECT count(DISTINCT cluster_key) FROM match.clusters)"
    ).fetchall()[0]
    return _logged(
        MatchStats(
            candidate_pairs=int(pairs),
            matched_pairs=int(matched),
            review_queue=int(review),
            clusters=int(clusters),
            mode="incremental",
            records_relinked=len(plan.changed),
            records_read=records_read,
            pairs_deleted=written.deleted["match.pairs"],
            pairs_inserted=written.inserted["match.pairs"],
        )
    )


def _changed_rows(con: duckdb.DuckDBPyConnection, plan: RematchPlan) -> str | None:
    """The temporary table of the relinked records' clean rows the plan kept, when `con` is
    the connection that planned (a sharded run writes from another: ``clean.records`` is
    read then)."""
    name = plan.changed_rows
    return name if name is not None and table_exists(con, name) else None


def _logged(stats: MatchStats) -> MatchStats:
    """`stats`, logged as the stage's one line."""
    log.info(
        "match      (%s, %d records linked) candidate pairs=%d matched=%d review=%d clusters=%d",
        stats.mode,
        stats.records_relinked,
        stats.candidate_pairs,
        stats.matched_pairs,
        stats.review_queue,
        stats.clusters,
    )
    return stats

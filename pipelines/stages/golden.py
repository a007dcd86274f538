"""The golden stage: stable customer IDs and the new golden state, staged in ``staging.*``."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleaning._slices import clean_slices
from dedupe import assign_customer_ids
from dedupe.ids import IdAssignment
from dedupe.link import return_free_memory
from warehouse import read_table
from warehouse.archive.snapshots import code_version
from warehouse.classification import classify
from warehouse.db import ChunkedTables, database_cursor, table_exists, transaction
from warehouse.golden import RECORD_COLUMNS, GoldenTables, as_date
from warehouse.golden_carry import carry_forward_published
from warehouse.golden_chunks import (
    GoldenInputs,
    build_golden_chunk,
    check_golden_inputs,
    chunk_where,
    drop_chunk_plan,
    plan_golden_chunks,
)
from warehouse.golden_delta import (
    ASSIGNMENTS,
    TOUCHED_CUSTOMERS,
    GoldenPlan,
    PublishedGolden,
    clear_staged,
    golden_scope,
    id_assignment_inputs,
    logged_changes,
    plan_golden,
    published_golden,
    published_state,
    read_subset,
    reclassify_inputs,
    stage_delta,
    stage_input_state,
    stage_inputs,
    stage_state,
    store_assignments,
    touched_records_where,
)
from warehouse.golden_staged import stage_views, staged_table
from warehouse.match_state import best_scores_sql
from warehouse.naming import GOLDEN_TABLES
from warehouse.ops import read_required, require_tables
from warehouse.publish import stage_golden
from warehouse.write_behind import WriteBehind

from .context import RunContext, StageResult

log = logging.getLogger("customer_archive")

__all__ = ["GoldenStats", "golden_stage"]


@dataclass(kw_only=True)
class GoldenStats(StageResult):
    """What the golden stage built."""

    golden_customers: int
    crosswalk_rows: int
    ids_created: int
    merges: int
    splits: int
    mode: str = "full"
    customers_rebuilt: int = 0
    customers_reclassified: int = 0
    records_hashed: int = 0
    """Records whose golden inputs were hashed: every record, or (nightly, change logs
    complete: ``warehouse.golden_delta.golden_scope``) only those that may have changed."""


_SCORES = "_golden_scores"  # a TEMP table: used only inside this stage
_SCORES_READ = "_golden_scores_read"  # the scores read ahead (Arrow), while they are copied


def _settings_hash(ctx: RunContext) -> str:
    """Hash of what the golden rows depend on besides the data: settings and code version."""
    text = ctx.config.golden.model_dump_json() + "|" + code_version()
    return hashlib.sha256(text.encode()).hexdigest()


def golden_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> GoldenStats:
    """Assign stable customer IDs and build the new golden state into ``staging.*``.

    Only the customers whose inputs changed are rebuilt when the published state allows it
    (``golden_incremental``, ``warehouse.golden_delta``); otherwise every customer is. When
    the clean and match change logs cover every run since the published state's, only the
    records they list (and those assigned an id again) are hashed
    (``golden_scope``). The best match scores are computed once per run, in one pass over
    ``match.pairs`` (its scan is the cost, not the records it keeps): the hashes and the
    rebuild read them from one TEMP table. When a golden state is published (a nightly) and a
    second core is there (``scale.writes_behind()``), that pass runs on a second connection
    from the stage's start, beside the published state's check and the id assignment.
    """
    hint = "run the clean and match stages"
    require_tables(con, ("clean.records", "match.clusters", "match.pairs"), hint)
    return_free_memory()  # what the stages before freed: back to the system, not stacked on
    clear_staged(con)
    settings_hash = _settings_hash(ctx)
    incremental = ctx.config.golden_incremental
    # one pass over match.pairs: the scores hashed (the scope's) and those the rebuild reads
    # (the touched customers' records, known only after the hashes) come from one table; when
    # a golden state is published (a nightly), it is read on a second connection while the
    # published state is checked and the ids are assigned (_ScoresAhead)
    ahead = incremental and ctx.config.scale.writes_behind() and published_state(con) is not None
    with _ScoresAhead(con, ahead=ahead) as scores_ahead:
        published = published_golden(con, settings_hash) if incremental else None
        logged = None if published is None else logged_changes(con, published)
        ids, exact = _assign_ids(con, ctx, published, logged)
        scope = golden_scope(con, logged)
        scores_ahead.stage()
    scores = f"SELECT * FROM {_SCORES}"
    hashed = stage_inputs(con, ASSIGNMENTS, RECORD_COLUMNS, scores, within=scope)
    plan = None if published is None else plan_golden(con, settings_hash, published, scope)
    events = ids.events.assign(run_id=ctx.run_id, run_date=ctx.run_date.isoformat())
    reclassified = 0
    if plan is None:
        customers = _full_build(con, ctx, events)
        mode, rebuilt = "full", customers
    else:
        assignments = read_table(con, ASSIGNMENTS, where=touched_records_where())
        assert assignments is not None
        reclassified = _incremental_build(con, ctx, assignments, events, plan)
        mode, rebuilt = "incremental", len(plan.touched)
        (customers,) = con.execute("SELECT count(*) FROM staging.customers").fetchall()[0]
    con.execute(f"DROP TABLE IF EXISTS {_SCORES}")
    con.execute(f"DROP TABLE IF EXISTS {ASSIGNMENTS}")
    stage_input_state(con, incremental=plan is not None)
    stage_state(
        con,
        settings_hash,
        ctx.run_date,
        None if plan is None else plan.parts,
        ctx.run_id,
        exact_clusters=exact,
    )
    (crosswalk_rows,) = con.execute("SELECT count(*) FROM staging.crosswalk").fetchall()[0]
    counts = events["event"].value_counts().to_dict() if len(events) else {}
    stats = GoldenStats(
        golden_customers=int(customers),
        crosswalk_rows=int(crosswalk_rows),
        ids_created=int(counts.get("created", 0)),
        merges=int(counts.get("merged_into", 0)),
        splits=int(counts.get("split_from", 0)),
        mode=mode,
        customers_rebuilt=int(rebuilt),
        customers_reclassified=reclassified,
        records_hashed=hashed,
    )
    log.info(
        "golden     (%s, %d customers rebuilt, %d records hashed) customers=%d"
        " (new ids=%d merges=%d splits=%d)",
        stats.mode,
        stats.customers_rebuilt,
        stats.records_hashed,
        stats.golden_customers,
        stats.ids_created,
        stats.merges,
        stats.splits,
    )
    return stats


class _ScoresAhead:
    """The best match scores per record (``best_scores_sql``), staged as the TEMP table
    ``_SCORES`` by ``stage``.

    With ``ahead``, they are read at once on ``database_cursor(con)`` (a second connection to the
    same database) in a background thread, while the stage goes on with what does not need
    them (the change logs and the id assignment, on ``con``); ``stage`` waits for the result
    and copies it into the TEMP table (the same rows as the query on ``con``: DuckDB runs
    the scan without the GIL, and on a second core). Without it, ``stage`` runs the query on
    ``con``. Leaving the block waits for the thread and closes the cursor, whatever happened.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, ahead: bool) -> None:
        self._con = con
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[tuple[pa.Table, float]] | None = None
        if ahead:
            cursor = database_cursor(con)
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="golden-scores")
            self._future = self._pool.submit(self._read, cursor)

    @staticmethod
    def _read(cursor: duckdb.DuckDBPyConnection) -> tuple[pa.Table, float]:
        start = time.perf_counter()
        try:
            return cursor.sql(best_scores_sql()).to_arrow_table(), time.perf_counter() - start
        finally:
            cursor.close()

    def stage(self) -> None:
        """Create ``_SCORES`` (from the thread's result when read ahead)."""
        if self._future is None:
            self._con.execute(f"CREATE OR REPLACE TEMP TABLE {_SCORES} AS {best_scores_sql()}")
            return
        start = time.perf_counter()
        scores, took = self._future.result()
        log.info(
            "golden     best scores read ahead in %.2f s (the stage waited %.2f s for them)",
            took,
            time.perf_counter() - start,
        )
        self._con.register(_SCORES_READ, scores)
        try:
            self._con.execute(
                f"CREATE OR REPLACE TEMP TABLE {_SCORES} AS SELECT * FROM {_SCORES_READ}"
            )
        finally:
            self._con.unregister(_SCORES_READ)

    def __enter__(self) -> _ScoresAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # the cursor's query ends (and it closes) first
        self._future = None


def _assign_ids(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    published: PublishedGolden | None = None,
    logged: str | None = None,
) -> tuple[IdAssignment, bool]:
    """Stable customer IDs for every cluster, written to ``ASSIGNMENTS``; this run's ID events
    and whether the assignments are cluster-exact (``store_assignments``).

    With ``golden_incremental``, the clusters that are exactly a published customer keep its
    id in SQL and only the other clusters go through ``assign_customer_ids`` (same ids and
    events as over all of them: ``id_assignment_inputs``). When the published state is
    cluster-exact and the change logs cover every run since it (`logged`), only the clusters
    the logs may have changed are read.
    """
    if ctx.config.golden_incremental:
        narrow = logged if published is not None and published.exact_clusters else None
        if logged is not None and narrow is None:
            log.info("golden     ids: every cluster read (the published state is not checked"
                     " cluster-exact)")  # fmt: skip
        inputs = id_assignment_inputs(con, ctx.run_date, narrow)
        if inputs is not None:
            clusters, previous, issued = inputs
            ids = assign_customer_ids(clusters, previous, ctx.run_date, existing_ids=issued)
            return ids, store_assignments(con, ids.assignments)
    (clusters,) = read_required(con, ("match.clusters",), "run the clean and match stages")
    crosswalk = read_table(con, "golden.crosswalk", ["record_key", "customer_id"])
    id_history = read_table(con, "golden.customer_ids", ["customer_id"])
    existing_ids: list[str] = []
    if id_history is not None:
        existing_ids = id_history["customer_id"].dropna().astype(str).unique().tolist()
    ids = assign_customer_ids(clusters, crosswalk, ctx.run_date, existing_ids=existing_ids)
    return ids, store_assignments(con, ids.assignments, stable=False)


def _inputs(
    con: duckdb.DuckDBPyConnection, assignments: pd.DataFrame, where: str | None
) -> GoldenInputs:
    """What ``build_golden`` reads: every record (``where`` None) or those matching ``where``."""
    hint = "run the clean and match stages"
    if where is None:
        (records,) = read_required(
            con, ("clean.records",), hint, columns={"clean.records": RECORD_COLUMNS}
        )
        scores = read_table(con, _SCORES)
        txns = read_table(con, "clean.transactions")
        touches = read_table(con, "clean.interactions")
    else:
        records = read_subset(con, "clean.records", RECORD_COLUMNS, where)
        assert records is not None
        scores = read_subset(con, _SCORES, None, where)
        txns = read_subset(con, "clean.transactions", None, where)
        touches = read_subset(con, "clean.interactions", None, where)
    return GoldenInputs(records, assignments, scores, txns, touches)


def _build(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    assignments: pd.DataFrame,
    where: str | None,
) -> GoldenTables:
    """``build_golden`` over every record (``where`` None) or the records matching ``where``."""
    return build_golden_chunk(
        _inputs(con, assignments, where), ctx.config.golden, ctx.run_id, ctx.run_date
    )


def _chunk_inputs(con: duckdb.DuckDBPyConnection, chunk: int) -> GoldenInputs:
    """The inputs of one chunk of ``plan_golden_chunks`` (read in this process)."""
    where = chunk_where(chunk)
    assignments = read_table(con, ASSIGNMENTS, where=where)
    assert assignments is not None
    return _inputs(con, assignments, where)


_CARRIED = ("golden.customers", "golden.attribute_lineage")


def _carry_forward(
    golden: GoldenTables,
    con: duckdb.DuckDBPyConnection,
    ahead: _PublishedAhead | None = None,
) -> None:
    """Keep the previous run id on golden rows whose content did not change (compared in
    DuckDB with the published rows: ``warehouse.golden_carry``; with ``ahead``, with the
    touched customers' published rows it read, when they hold every customer rebuilt)."""
    golden.customers = carry_forward_published(
        con, golden.customers, "golden.customers", ["customer_id"], "updated_run_id",
        None if ahead is None else ahead.rows("golden.customers", golden.customers),
    )  # fmt: skip
    golden.attribute_lineage = carry_forward_published(
        con, golden.attribute_lineage, "golden.attribute_lineage", ["customer_id", "attribute"],
        "run_id",
        None if ahead is None else ahead.rows("golden.attribute_lineage", golden.attribute_lineage),
    )  # fmt: skip


class _PublishedAhead:
    """The touched customers' published ``golden.customers`` and ``golden.attribute_lineage``
    rows (``TOUCHED_CUSTOMERS``), read on ``database_cursor(con)`` in a background thread
    while the stage rebuilds those customers (pandas), so that the carry-forward compares
    the rebuilt rows with these instead of scanning each whole table after the build.

    ``rows`` gives a table's rows only when every customer of the rebuilt frame is among the
    customers read (always so: the rebuilt customers are touched ones; otherwise None, and
    the carry-forward scans the table as before). Leaving the block waits for the thread.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._logged = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="golden-published")
        self._future = self._pool.submit(self._read, database_cursor(con))

    @staticmethod
    def _read(
        cursor: duckdb.DuckDBPyConnection,
    ) -> tuple[pa.Array, dict[str, pa.Table], float]:
        start = time.perf_counter()
        try:
            touched = cursor.sql(
                f"SELECT DISTINCT customer_id::VARCHAR AS customer_id FROM {TOUCHED_CUSTOMERS}"
                " WHERE customer_id IS NOT NULL"
            ).to_arrow_table()
            rows = {
                table: cursor.sql(
                    f"SELECT * FROM {table} WHERE customer_id IN"
                    f" (SELECT customer_id FROM {TOUCHED_CUSTOMERS})"
                ).to_arrow_table()
                for table in _CARRIED
                if table_exists(cursor, table)
            }
            took = time.perf_counter() - start
            return touched.column("customer_id").combine_chunks(), rows, took
        finally:
            cursor.close()

    def rows(self, table: str, new: pd.DataFrame) -> pa.Table | None:
        """``table``'s published rows of the touched customers, if they cover ``new``'s."""
        start = time.perf_counter()
        touched, rows, took = self._future.result()
        if not self._logged:
            self._logged = True
            log.info(
                "golden     published rows of %d touched customers read ahead in %.2f s"
                " (the stage waited %.2f s for them)",
                len(touched),
                took,
                time.perf_counter() - start,
            )
        if table not in rows or "customer_id" not in new.columns:
            return None
        ids = pa.array(new["customer_id"].astype(object).to_numpy(), type=pa.string())
        covered = ids.null_count == 0 and bool(pc.all(pc.is_in(ids, value_set=touched)).as_py())
        if len(ids) and not covered:
            log.info("golden     carry-forward of %s over the whole table", table)
            return None
        return rows[table]

    def __enter__(self) -> _PublishedAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)


def _full_build(con: duckdb.DuckDBPyConnection, ctx: RunContext, events: pd.DataFrame) -> int:
    """Build every customer into ``golden._staged_*`` (read as the views ``staging.*``:
    ``warehouse.golden_staged``), ``scale.golden_chunk_records`` records at a time.

    Each chunk holds whole customers (``warehouse.golden_chunks``), is read, built, carried
    forward and appended to the staged tables, so memory holds one chunk's frames; the staged
    tables equal one build over every record. With ``scale.golden_workers`` N > 1, N - 1
    helper processes (``cleaning._slices``) build chunks as they come free, each holding two,
    and this process builds the next one while the next result is not back (inputs are read
    here and kept until their result is written: memory holds up to 2·(N − 1) + 2 chunks).
    What ``build_golden`` checks over the whole set is checked in SQL first. Each chunk is
    committed: DuckDB keeps the Arrow buffers of rows inserted in an open transaction until it
    ends, so one transaction over every chunk would hold every chunk's rows twice. The staged
    state is trusted only once this stage has ended (publishing needs its checks); a failure
    drops what was staged.

    Returns:
        The number of golden customers staged.
    """
    check_golden_inputs(con, ASSIGNMENTS)
    chunks = plan_golden_chunks(con, ASSIGNMENTS, ctx.config.scale.golden_chunk_records)
    helpers = min(ctx.config.scale.golden_workers - 1, len(chunks) - 1)
    log.info(
        "golden     full build in %d chunk(s) of whole customers, %d helper process(es)",
        len(chunks),
        max(helpers, 0),
    )
    # the golden tables under hidden names in golden (renamed in by the swap: no copy), read
    # through the staging.<table> views; the ID events in staging
    names = [*(staged_table(t) for t in GOLDEN_TABLES), "staging.id_events"]
    customers = 0
    # the inputs were checked over the whole set above (SQL): not again chunk by chunk
    build = partial(
        build_golden_chunk,
        settings=ctx.config.golden,
        run_id=ctx.run_id,
        as_of=ctx.run_date,
        inputs_checked=True,
    )
    # chunks in order; with helpers, the next chunks are built in helper processes while
    # this one builds its own (a chunk's tables depend on its own customers only)
    # with a second core, the next chunk's inputs are read (on ``con``, in a thread) while
    # this one is built, and each chunk's carry-forward comparison, appends and COMMIT run on
    # a second connection in another thread (DuckDB works without the GIL); in chunk order,
    # one read and one write at a time: the same staged tables as inline
    behind = ctx.config.scale.writes_behind()
    built = clean_slices(
        lambda chunk, _: _chunk_inputs(con, chunk),
        [(chunk, chunk) for chunk in chunks],
        build,
        helpers=max(helpers, 0),
        warm="warehouse.golden_chunks",
        read_ahead=behind,
    )
    try:
        with WriteBehind(con, inline=not behind) as writer:
            staged = ChunkedTables(writer.connection, names)
            for inputs, golden in built:
                del inputs
                customers += len(golden.customers)
                writer.submit(partial(_stage_chunk, staged, golden))  # after the one before
                del golden
                return_free_memory()  # the chunk written before: back to the system
            writer.submit(partial(_stage_events, staged, events))
        stage_views(con)
    except BaseException:
        built.close()  # the chunk read ahead (on ``con``) first
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        for name in names:  # nothing half staged stays behind
            con.execute(f"DROP TABLE IF EXISTS {name}")
        for table in GOLDEN_TABLES:
            con.execute(f"DROP VIEW IF EXISTS staging.{table}")
        raise
    finally:
        built.close()  # helpers stopped, whatever happened
        drop_chunk_plan(con)
    return customers


def _stage_chunk(
    staged: ChunkedTables, golden: GoldenTables, con: duckdb.DuckDBPyConnection
) -> None:
    """Carry the published run ids forward onto one built chunk, append it to the staged
    tables and commit (on ``con``: the background writer's connection, or the stage's own)."""
    _carry_forward(golden, con)
    with transaction(con):
        for name, frame in golden.as_dict().items():
            staged.append(staged_table(name.split(".", 1)[1]), frame)


def _stage_events(
    staged: ChunkedTables, events: pd.DataFrame, con: duckdb.DuckDBPyConnection
) -> None:
    """Append this run's ID events to ``staging.id_events`` (after every chunk)."""
    del con  # the writer's connection: ``staged`` writes on it
    staged.append("staging.id_events", events)


def _incremental_build(
    con: duckdb.DuckDBPyConnection,
    ctx: RunContext,
    assignments: pd.DataFrame,
    events: pd.DataFrame,
    plan: GoldenPlan,
) -> int:
    """Rebuild the touched customers, re-classify the others that may change, stage a delta.

    Returns:
        How many untouched customers were re-classified (their classification inputs read).
    """
    if ctx.config.scale.writes_behind():  # (a second core reads the published rows)
        with _PublishedAhead(con) as ahead:
            golden = _build(con, ctx, assignments, touched_records_where())
            _carry_forward(golden, con, ahead)
    else:
        golden = _build(con, ctx, assignments, touched_records_where())
        _carry_forward(golden, con)
    settings = ctx.config.golden.classification
    customers, txns, sources = reclassify_inputs(con, plan, settings, ctx.run_date)
    classes = classify(customers, txns, sources, settings, ctx.run_date)
    classes["last_business_date"] = as_date(classes["last_business_date"])
    stage_delta(con, golden.as_dict(), classes, ctx.run_id)
    stage_golden(con, {}, events)
    return len(customers)

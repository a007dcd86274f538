"""The clean stage: the current version of every record into ``clean.*`` (incrementally)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from functools import partial

import duckdb
import pandas as pd

from cleaning import (
    CleaningOptions,
    date_orders,
    unmapped_from_records,
    worker_pool,
)
from cleaning._slices import clean_slices
from cleaning._steps import DATE_FIELDS
from cleaning.incremental import (
    clean_batch,
    concat_results,
    flag_disagrees,
    switchboards,
    without_keys,
)
from cleaning.memos import clear_value_memos
from cleaning.pipeline import RECORD_COLUMNS
from cleaning.version import cleaner_version
from warehouse import clean_delta as delta
from warehouse import clean_full as full
from warehouse import read_table
from warehouse.db import ChunkedTables, transaction
from warehouse.ops import cleaner_version_sql, record_clean_run, stored_cleaner_version
from warehouse.versions import create_version_views, mark_deleted_at_source
from warehouse.write_behind import WriteBehind

from ..faults import crash_point
from .context import RunContext, StageResult, load_sources

log = logging.getLogger("customer_archive")

__all__ = ["CleanStats", "clean_stage"]

FULL_CLEAN_SHARE = 0.5
"""A nightly clean with more than this share of the records changed cleans everything."""


@dataclass(kw_only=True)
class CleanStats(StageResult):
    """What the clean stage did (``mode``: ``incremental`` or ``full``).

    ``raw_rows``: current records (one per record_key); ``cleaned``: records cleaned this run
    (all of them in a full clean); ``removed``: clean records dropped because they have no
    current version any more (their only delivery was withdrawn). ``versions_*``: the version
    step (``warehouse.version_state``): ``incremental`` (only new sightings folded onto the
    stored state) or ``full`` (``versions_full_sources`` says which source and why), the raw
    sightings it read, the records folded or resolved again, its CPU seconds.
    """

    mode: str
    raw_rows: int
    clean_records: int
    transactions: int
    interactions: int
    follow_up: int
    deleted_at_source: int = 0
    cleaned: int = 0
    removed: int = 0
    versions_mode: str = ""
    versions_sightings_read: int = 0
    versions_keys_folded: int = 0
    versions_keys_recomputed: int = 0
    versions_cpu_seconds: float = 0.0
    versions_full_sources: list[str] = field(default_factory=list)


def clean_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> CleanStats:
    """Clean the current version of every record into ``clean.*`` (one transaction).

    ``raw.<source>`` holds every version of every record; ``warehouse.versions`` picks the
    current one per ``record_key`` (delivery date → updated_at → arrival, withdrawn deliveries
    left out) with ``deleted_at_source``, which is carried onto ``clean.records``. A nightly
    run cleans only the records whose current version changed (``_incremental``); the result
    equals a full clean of the same raw state.
    """
    sources_cfg = load_sources(ctx.config)
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in sources_cfg.sources},
        departments={s.name: s.department for s in sources_cfg.sources},
    )
    full.drop_building(con)  # a killed full clean's leftovers (whichever mode runs now)
    current, versions = delta.stage_current_versions(con, sources_cfg.sources)
    create_version_views(con, sources_cfg.sources)
    stats = None
    present = delta.clean_tables_present(con, (*RECORD_COLUMNS, "deleted_at_source"))
    made_by = stored_cleaner_version(con) if present else None
    if present and made_by != cleaner_version():
        # an upgrade changed the cleaner: records cleaned before would keep the old rules
        log.info("clean      cleaner version %s, the clean layer's %s: every record is"
                 " cleaned again", cleaner_version(), made_by or "not recorded")  # fmt: skip
    elif ctx.config.clean_incremental and current and present:
        with worker_pool(ctx.config.scale.clean_workers):  # distinct values parsed in chunks
            stats = _incremental(con, ctx, options, current)
    if stats is None:  # a full clean: whole slices side by side (clean_slices)
        stats = _full(con, ctx, options, current)
    stats = replace(
        stats,
        versions_mode=versions.mode,
        versions_sightings_read=versions.sightings_read,
        versions_keys_folded=versions.keys_folded,
        versions_keys_recomputed=versions.keys_recomputed,
        versions_cpu_seconds=versions.cpu_seconds,
        versions_full_sources=list(versions.full_sources),
    )
    # the parsers' per-value memos are not read again in this process: let them go (a full
    # run at 1 M otherwise carries them through match, golden and publish)
    dropped = clear_value_memos()
    log.info(
        "clean      (%s) records=%d cleaned=%d transactions=%d interactions=%d follow_up=%d"
        " memo_answers_dropped=%d",
        stats.mode,
        stats.clean_records,
        stats.cleaned,
        stats.transactions,
        stats.interactions,
        stats.follow_up,
        dropped,
    )
    return stats


def _full(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, options: CleaningOptions, current: int
) -> CleanStats:
    """Clean every current record and replace ``clean.*`` whole, in chunks.

    ``scale.clean_chunk_records`` current records at a time (in table order), each chunk
    appended to the building tables ``clean._building_*`` and committed on its own, so memory
    holds one chunk's frames and rows, not the whole set's; the result equals one clean of
    every record (``warehouse.clean_full``). The whole-set inputs: the day/month orders come
    from the distinct date texts in SQL; the switchboards are guessed (those ``clean.records``
    holds, if any), counted over the built records after the last chunk, and the records whose
    flag was guessed wrong are cleaned again in place. Then ONE short transaction swaps the
    built tables in (with the scope and the clean log): the old layer stays whole until then.
    """
    orders = date_orders(delta.distinct_date_values(con, DATE_FIELDS), options)
    guess = (
        delta.shared_phones_now(con)
        if delta.clean_tables_present(con, (*RECORD_COLUMNS, "deleted_at_source"))
        else frozenset()
    )
    size = ctx.config.scale.clean_chunk_records
    counts = dict.fromkeys(("records", "transactions", "interactions", "follow_up"), 0)
    deleted = 0
    workers = ctx.config.scale.clean_workers
    names = (*counts, "unmapped_industries", "date_orders")
    built = full.building("records")
    full.stage_slices(con)  # outside any transaction: rowids start at 0
    behind = ctx.config.scale.writes_behind()
    # with a second core, the next slice is read (on ``con``, in a thread) while this one is
    # cleaned, and each chunk's appends and COMMIT run on a second connection in another
    # thread (DuckDB works without the GIL); in slice order, one read and one write at a
    # time: the same tables as inline. ``con`` is not used here until the slices are done.
    slices = clean_slices(
        partial(full.current_slice, con),
        full.slice_bounds(current, size, workers),
        partial(clean_batch, options=options, orders=orders, shared=guess),
        helpers=workers - 1,
        read_ahead=behind,
    )
    try:
        with WriteBehind(con, inline=not behind) as writer:
            chunks = ChunkedTables(writer.connection, [full.building(name) for name in counts])
            for raw, result in slices:  # in slice order, whichever process cleaned it
                records = mark_deleted_at_source(result.records, raw)
                del raw
                deleted += int(records["deleted_at_source"].notna().sum())
                frames = {"records": records, "transactions": result.transactions,
                          "interactions": result.interactions,
                          "follow_up": result.follow_up}  # fmt: skip
                for name, frame in frames.items():
                    counts[name] += len(frame)
                writer.submit(partial(_write_chunk, chunks, frames))
                del result, records, frames, frame
        full.drop_slices(con)
        tables = ChunkedTables(con, [full.building(name) for name in names if name not in counts])
        phones = full.phone_name_keys(con, options.shared_phone_min_names, built)
        shared = switchboards(phones["phone"], phones["name_key"], options.shared_phone_min_names)
        redo = full.flag_mismatches(con, shared, built)
        if redo:
            raw = delta.current_rows(con, keys=redo)
            again = clean_batch(raw, options, orders, shared)
            full.update_records(con, mark_deleted_at_source(again.records, raw), built)
        full.sort_table(con, full.building("follow_up"), ["record_key", "missing"])
        tables.append(
            full.building("unmapped_industries"),
            unmapped_from_records(full.unmapped_inputs(con, built)),
        )
        tables.append(
            full.building("date_orders"),
            pd.DataFrame(list(orders.items()), columns=["source_system", "date_order"]),
        )
        con.execute("BEGIN TRANSACTION")
        try:
            full.swap_in(con, names)
            for sql in (*delta.scope_sql(ctx.run_id, "full", incremental=False),
                        *cleaner_version_sql(cleaner_version())):  # fmt: skip
                con.execute(sql)
            record_clean_run(con, ctx.run_id, "full")  # every record may have changed
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except BaseException as exc:
        try:  # the old layer is untouched; free what was built (a kill leaves it to next run)
            slices.close()  # the slice read ahead (on ``con``) first
            with contextlib.suppress(duckdb.TransactionException):  # a chunk's, if open
                con.execute("ROLLBACK")
            full.drop_slices(con)
            full.drop_building(con)
        except duckdb.Error as cleanup:
            exc.add_note(f"dropping the building tables failed too: {cleanup}")
        raise
    return CleanStats(
        mode="full",
        raw_rows=current,
        cleaned=current,
        clean_records=counts["records"],
        transactions=counts["transactions"],
        interactions=counts["interactions"],
        follow_up=counts["follow_up"],
        deleted_at_source=deleted,
    )


def _write_chunk(
    tables: ChunkedTables, frames: dict[str, pd.DataFrame], con: duckdb.DuckDBPyConnection
) -> None:
    """Append one cleaned chunk to the building tables and commit it (on ``con``: the
    background writer's connection, or the stage's own when writing inline)."""
    with transaction(con):  # one commit a chunk, not a table: commits cost CPU
        for name, frame in frames.items():
            tables.append(full.building(name), frame)
    # committed: DuckDB's memory holds one chunk, not every one
    crash_point("clean:chunk")  # fault tests: killed between two committed chunks


def _incremental(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, options: CleaningOptions, current: int
) -> CleanStats | None:
    """Clean only the records whose current version changed; None = a full clean is due.

    Due when a source's inferred day/month order changed (every date of it may parse
    differently) or when most records changed (a full clean is cheaper).
    """
    orders = date_orders(delta.distinct_date_values(con, DATE_FIELDS), options)
    stored = read_table(con, "clean.date_orders")
    assert stored is not None  # clean_tables_present
    if dict(zip(stored["source_system"], stored["date_order"], strict=True)) != orders:
        return None
    changes = delta.find_changes(con)
    if changes.changed > FULL_CLEAN_SHARE * changes.current:
        return None
    fresh = delta.current_rows(con)
    before = delta.shared_phones_now(con)
    result = clean_batch(fresh, options, orders, before)
    # switchboards: only a phone on a record cleaned now or leaving can change its flag; the
    # others keep clean.records' (re-clean every flag that flips)
    touched = delta.touched_phones(con, result.records["phone"].dropna().astype(str))
    candidates = delta.shared_phone_candidates(con, touched)
    shared = (before - touched) | switchboards(
        pd.concat([candidates["phone"], result.records["phone"]], ignore_index=True),
        pd.concat([candidates["name_key"], result.records["name_key"]], ignore_index=True),
        options.shared_phone_min_names,
    )
    redo = set(delta.flag_mismatches(con, shared, touched))
    redo_new = set(result.records.loc[flag_disagrees(result.records, shared), "record_key"])
    if redo or redo_new:
        delta.add_changed(con, redo)
        again = delta.current_rows(con, keys=redo | redo_new)
        fresh = pd.concat([fresh[~fresh["record_key"].isin(redo_new)], again], ignore_index=True)
        result = concat_results(
            without_keys(result, redo_new), clean_batch(again, options, orders, shared)
        )
    records = mark_deleted_at_source(result.records, fresh)
    kept_unmapped = delta.unmapped_candidates(con)
    unmapped = unmapped_from_records(
        pd.concat([kept_unmapped, records[["industry_raw", "industry_code"]]], ignore_index=True)
    )
    delta.apply_clean_delta(
        con,
        delta.CleanDelta(
            frames={
                "records": records,
                "transactions": result.transactions,
                "interactions": result.interactions,
                "follow_up": result.follow_up,
            },
            replaced=list(fresh["record_key"].astype(str)),
            small={
                "clean.unmapped_industries": unmapped,
                "clean.date_orders": pd.DataFrame(
                    list(orders.items()), columns=["source_system", "date_order"]
                ),
            },
        ),
        after=[
            *delta.scope_sql(ctx.run_id, "incremental", incremental=True),
            *cleaner_version_sql(cleaner_version()),
        ],
        run_id=ctx.run_id,
    )
    counts = con.execute(
        "SELECT (SELECT count(*) FROM clean.records),"
        " (SELECT count(*) FROM clean.transactions),"
        " (SELECT count(*) FROM clean.interactions), (SELECT count(*) FROM clean.follow_up),"
        " (SELECT count(deleted_at_source) FROM clean.records)"
    ).fetchall()[0]
    assert counts is not None
    return CleanStats(
        mode="incremental",
        raw_rows=current,
        cleaned=len(fresh),
        removed=changes.gone,
        clean_records=int(counts[0]),
        transactions=int(counts[1]),
        interactions=int(counts[2]),
        follow_up=int(counts[3]),
        deleted_at_source=int(counts[4]),
    )

"""The pipeline's stages as plain functions over the warehouse; the Dagster assets call these.

Each stage reads its inputs from the DuckDB warehouse, calls the pure packages, and writes its
outputs in one transaction, so a crash between stages leaves a consistent warehouse and the next
run converges to the same result.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cleaning import (
    CleaningOptions,
    CleanResult,
    clean_records,
    date_orders,
    flag_shared_phones,
    unmapped_from_records,
)
from dedupe import (
    LinkResult,
    ModelParams,
    assign_customer_ids,
    link_incremental,
    link_records,
)
from expectations import (
    GOLDEN_SUITE_RECORD_COLUMNS,
    CheckOutcome,
    blocking_failures,
    validate_golden,
)
from sources import (
    CANONICAL_FIELDS,
    IngestResult,
    SourceConfig,
    SourcesConfig,
    ingest_source,
    load_sources_config,
)
from warehouse import (
    TRACKED_ATTRIBUTES,
    build_golden,
    create_views,
    ensure_schemas,
    export_parquet,
    read_table,
    replace_tables,
    table_exists,
    update_history,
)
from warehouse.archive import (
    apply_retention,
    copy_offsite,
    due_kind,
    list_snapshots,
    publish_snapshot,
    read_tables_arrow,
    swap_tables,
    table_schema,
)
from warehouse.db import table_columns
from warehouse.golden import RECORD_COLUMNS
from warehouse.naming import EXPORTED, GOLDEN_TABLES
from warehouse.security import erased_quarantine_rows, is_suppressed, read_suppression
from warehouse.versions import (
    create_version_views,
    current_raw_rows,
    delivery_reasons,
    mark_deleted_at_source,
)

from .access import (
    keyring,
    publish_analyst_mart,
    snapshot_encryption_note,
    snapshot_reader,
    snapshot_writer,
)
from .faults import crash_point
from .settings import ArchiveConfig

log = logging.getLogger("customer_archive")
_TEXT = pd.StringDtype("pyarrow", na_value=float("nan"))

RAW_LINEAGE = (
    "record_key",
    "source_system",
    "source_file",
    "source_row",
    "source_sha256",
    "ingested_at",
    "extra",
)


class PublishBlocked(RuntimeError):
    """A critical expectation failed: the new golden state is not published."""


@dataclass
class RunContext:
    """What every stage of one run shares."""

    config: ArchiveConfig
    run_id: str
    run_date: date
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ingested_at(self) -> str:
        return self.started_at.isoformat(timespec="seconds")


def load_sources(config: ArchiveConfig) -> SourcesConfig:
    """Load the source mappings named by the project configuration."""
    return load_sources_config(
        config.resolve(config.sources_file),
        landing_dir=config.resolve(config.landing_dir),
        check_files=False,
    )


def _raw_table(source: str) -> str:
    return f"raw.{source}"


def _ensure_raw_table(con: duckdb.DuckDBPyConnection, source: str) -> None:
    cols = [f'"{c}" VARCHAR' for c in CANONICAL_FIELDS]
    cols += [f'"{c}" VARCHAR' for c in RAW_LINEAGE if c != "source_row"]
    cols += ['"source_row" BIGINT', '"run_id" VARCHAR', '"active" BOOLEAN']
    con.execute(f"CREATE TABLE IF NOT EXISTS {_raw_table(source)} ({', '.join(cols)})")


def _insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Append a frame inside the caller's transaction, creating the table from it if absent."""
    con.register("_frame", frame)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM _frame LIMIT 0")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


def _persist_ingest(
    con: duckdb.DuckDBPyConnection, source: str, result: IngestResult, run_id: str
) -> None:
    rows = result.rows.copy()
    rows["run_id"] = run_id
    rows["active"] = True
    deliveries = result.manifest_rows(run_id)
    con.execute("BEGIN TRANSACTION")
    try:
        _ensure_raw_table(con, source)
        for old_path in result.superseded_files:
            con.execute(
                f"UPDATE {_raw_table(source)} SET active = false "
                "WHERE source_file = ? AND run_id <> ?",
                [str(old_path), run_id],
            )
        if len(rows):
            _insert_frame(con, _raw_table(source), rows)
        for name, frame in (
            ("quarantine.rows", result.quarantined_rows),
            ("quarantine.files", result.quarantined_files),
            ("ops.deliveries", deliveries),
        ):
            if len(frame):
                _insert_frame(
                    con, name, frame.assign(run_id=run_id) if "run_id" not in frame else frame
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _drop_suppressed(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, result: IngestResult
) -> IngestResult:
    """Quarantine (reason ``erased``, no content) re-delivered rows of erased people."""
    suppression = read_suppression(con)
    if suppression is None or suppression.empty or result.rows.empty:
        return result
    ring = keyring(ctx.config)
    if ring is None:
        raise RuntimeError("the suppression list exists but no key is configured to check it")
    # every key of the ring: entries made before a key rotation keep working
    flags = pd.Series(False, index=result.rows.index)
    for kid in ring.ids():
        flags |= is_suppressed(result.rows, suppression, ring.derive("suppression", kid))
    if not flags.any():
        return result
    erased = erased_quarantine_rows(result.rows, flags)
    log.info("ingest     %d re-delivered rows of erased customers quarantined", int(flags.sum()))
    return replace(
        result,
        rows=result.rows.loc[~flags.to_numpy()].reset_index(drop=True),
        quarantined_rows=_concat(result.quarantined_rows, erased),
    )


def ingest_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext, source: str) -> dict[str, Any]:
    """Ingest the new deliveries of one source into ``raw.<source>`` and the quarantine tables.

    A file the reader cannot handle at all is quarantined as a whole by ``ingest_source``; an
    unexpected error is recorded in ``quarantine.files`` with its message and the run goes on.
    """
    ensure_schemas(con)
    sources_cfg = load_sources(ctx.config)
    src = next((s for s in sources_cfg.sources if s.name == source), None)
    if src is None:
        raise KeyError(f"source {source!r} is not declared in {ctx.config.sources_file}")
    manifest = read_table(con, "ops.deliveries")
    result = ingest_source(
        src, sources_cfg.landing_dir, ctx.run_id, ctx.ingested_at, manifest=manifest
    )
    result = _drop_suppressed(con, ctx, result)
    _persist_ingest(con, source, result, ctx.run_id)
    stats = {
        "source": source,
        "files_new": sum(f.status in ("new", "changed") for f in result.files),
        "files_skipped": sum(f.status in ("duplicate", "unchanged") for f in result.files),
        "rows_in": int(
            sum((f.rows_read or 0) for f in result.files if f.status in ("new", "changed"))
        ),
        "rows_ingested": len(result.rows),
        "rows_quarantined": len(result.quarantined_rows),
        "files_quarantined": len(result.quarantined_files),
        "warnings": list(result.warnings),
    }
    log.info(
        "ingest %-10s files new=%d skipped=%d rows in=%d kept=%d quarantined=%d",
        source,
        stats["files_new"],
        stats["files_skipped"],
        stats["rows_in"],
        stats["rows_ingested"],
        stats["rows_quarantined"],
    )
    for w in result.warnings:
        log.warning("ingest %s: %s", source, w)
    return stats


def active_raw_rows(con: duckdb.DuckDBPyConnection, sources: list[SourceConfig]) -> pd.DataFrame:
    """The current version of every record of the given sources, as one all-text frame.

    One row per record however often it was delivered (``warehouse.versions``), with
    ``deleted_at_source``; text columns stay Arrow-backed ``string``, the dtype cleaning works in.
    """
    return current_raw_rows(con, sources)


_LINEAGE_KEY = ["record_key", "source_file", "source_sha256", "source_row"]


def _incremental_clean(
    con: duckdb.DuckDBPyConnection, raw: pd.DataFrame, options: CleaningOptions
) -> CleanResult | None:
    """Clean only raw rows that are new or changed since the last clean; None = clean all.

    Cleaning is row by row except for two whole-set inputs, which are checked so the result
    equals a full clean: each source's inferred day/month order (stored in
    ``clean.date_orders``; a change means a full clean) and the shared-switchboard phones (the
    new rows are cleaned with the union's switchboards, and old rows whose flag flips are
    cleaned again with them).
    """
    prev = {
        name: read_table(con, f"clean.{name}")
        for name in ("records", "transactions", "interactions", "follow_up", "date_orders")
    }
    if any(v is None for v in prev.values()) or raw.empty:
        return None
    orders = date_orders(raw, options)
    stored = dict(zip(prev["date_orders"]["source_system"], prev["date_orders"]["date_order"],
                      strict=True))  # fmt: skip
    if stored != orders:
        return None
    old = prev["records"]
    same = (
        raw[_LINEAGE_KEY]
        .astype("string")
        .merge(old[_LINEAGE_KEY].astype("string"), on=_LINEAGE_KEY, how="left", indicator=True)[
            "_merge"
        ]
        .eq("both")
        .to_numpy()
    )
    fresh = raw[~same]
    keep_keys = set(raw.loc[same, "record_key"])
    kept = old[_isin(old["record_key"], keep_keys)]
    if fresh.empty and len(kept) == len(old):
        return None if old.empty else _reuse(prev, kept)
    explicit = replace(options, date_order=orders)
    first = clean_records(fresh, explicit)
    union_phone = pd.concat([kept["phone"], first.records["phone"]], ignore_index=True)
    union_key = pd.concat([kept["name_key"], first.records["name_key"]], ignore_index=True)
    shared = flag_shared_phones(union_phone, union_key, options.shared_phone_min_names)
    old_flags = kept["phone_shared"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    flipped = shared.to_numpy()[: len(kept)] != old_flags
    if flipped.any():
        # a switchboard appeared or vanished: re-clean the old rows it touches as well
        affected = set(kept.loc[flipped, "record_key"])
        keep_keys -= affected
        kept = kept[~_isin(kept["record_key"], affected)]
        fresh = pd.concat([fresh, raw[_isin(raw["record_key"], affected)]], ignore_index=True)
    switchboards = frozenset(union_phone[shared.to_numpy()].dropna().astype(str))
    new = clean_records(fresh, replace(explicit, shared_phones=switchboards))

    keep_set = pa.array(list(keep_keys), type=pa.large_string())

    def merge(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        older = prev[name]
        return pd.concat([older[_isin(older["record_key"], keep_set)], frame], ignore_index=True)

    records = merge("records", new.records)
    return CleanResult(
        records=records,
        transactions=merge("transactions", new.transactions),
        interactions=merge("interactions", new.interactions),
        follow_up=merge("follow_up", new.follow_up),
        unmapped_industries=unmapped_from_records(records),
    )


def _isin(values: pd.Series, keys: set[str] | pa.Array) -> np.ndarray:
    """``values.isin(keys)`` for text keys through Arrow's hash ``is_in`` (≈ 7× faster at 1 M)."""
    value_set = keys if isinstance(keys, pa.Array) else pa.array(list(keys), pa.large_string())
    column = pa.array(values.astype("string"), type=pa.large_string())
    return pc.is_in(column, value_set=value_set).to_numpy(zero_copy_only=False)


def _reuse(prev: dict[str, pd.DataFrame | None], kept: pd.DataFrame) -> CleanResult:
    """Nothing new: the previous clean layer as it is."""
    return CleanResult(
        records=kept,
        transactions=prev["transactions"],
        interactions=prev["interactions"],
        follow_up=prev["follow_up"],
        unmapped_industries=unmapped_from_records(kept),
    )  # type: ignore[arg-type]


def clean_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> dict[str, Any]:
    """Clean every active raw row into ``clean.*`` (replaced in one transaction)."""
    sources_cfg = load_sources(ctx.config)
    raw = active_raw_rows(con, sources_cfg.sources)
    create_version_views(con, sources_cfg.sources)
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in sources_cfg.sources},
        departments={s.name: s.department for s in sources_cfg.sources},
    )
    result = _incremental_clean(con, raw, options) if ctx.config.clean_incremental else None
    mode = "incremental" if result is not None else "full"
    if result is None:
        result = clean_records(raw, options)
    result = replace(result, records=mark_deleted_at_source(result.records, raw))
    replace_tables(
        con,
        {
            "clean.records": result.records,
            "clean.transactions": result.transactions,
            "clean.interactions": result.interactions,
            "clean.follow_up": result.follow_up,
            "clean.unmapped_industries": result.unmapped_industries,
            "clean.date_orders": pd.DataFrame(
                list(date_orders(raw, options).items()), columns=["source_system", "date_order"]
            ),
        },
    )
    stats = {
        "mode": mode,
        "raw_rows": len(raw),
        "clean_records": len(result.records),
        "deleted_at_source": int(result.records["deleted_at_source"].notna().sum()),
        "transactions": len(result.transactions),
        "interactions": len(result.interactions),
        "follow_up": len(result.follow_up),
    }
    log.info(
        "clean      (%s) records=%d transactions=%d interactions=%d follow_up=%d",
        mode,
        stats["clean_records"],
        stats["transactions"],
        stats["interactions"],
        stats["follow_up"],
    )
    return stats


@dataclass
class MatchInputs:
    """What the match stage reads: records, decisions, the state hashes and the rematch plan.

    ``plan`` is None for a full rebuild, else (changed records, previous records, previous
    pairs, previous params) for an incremental link.
    """

    records: pd.DataFrame
    decisions: pd.DataFrame | None
    state: dict[str, str]
    plan: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, ModelParams] | None


def match_inputs(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> MatchInputs:
    """Read what the match stage links and decide between a full and an incremental rematch."""
    records = read_table(con, "clean.records")
    if records is None:
        raise RuntimeError("clean.records is missing: run the clean stage first")
    decisions = read_table(con, "match.decisions")
    state = {
        "settings": _frame_hash(pd.DataFrame([{"s": ctx.config.matching.model_dump_json()}])),
        "decisions": _frame_hash(decisions),
    }
    plan = _incremental_plan(con, records, state) if ctx.config.match_incremental else None
    return MatchInputs(records, decisions, state, plan)


def match_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> dict[str, Any]:
    """Block, score and cluster the clean records into ``match.*``."""
    inputs = match_inputs(con, ctx)
    if inputs.plan is None:
        # a full relink (records removed, first run) keeps the model of the previous run when
        # the settings are unchanged, as sharded rebuilds do: no customer moves because EM
        # re-estimated the weights on a slightly different night
        from .sharding import reusable_params  # here: sharding imports this module

        params = reusable_params(con, inputs.state) if ctx.config.scale.reuse_params else None
        result = link_records(
            inputs.records, ctx.config.matching, decisions=inputs.decisions, params=params
        )
    else:
        changed, previous, pairs, params_prev = inputs.plan
        result = link_incremental(
            changed, previous, pairs, ctx.config.matching, inputs.decisions, params_prev
        )
    return write_match(con, ctx, inputs, result)


def write_match(
    con: duckdb.DuckDBPyConnection, ctx: RunContext, inputs: MatchInputs, result: LinkResult
) -> dict[str, Any]:
    """Write a link result into ``match.*`` in one transaction and return the stage's figures."""
    records, plan = inputs.records, inputs.plan
    mode = "full" if plan is None else "incremental"
    params = pd.DataFrame(
        [
            {
                "run_id": ctx.run_id,
                "created_at": ctx.ingested_at,
                "params": result.params.to_json(),
                "mode": mode,
                **inputs.state,
            }
        ]
    )
    replace_tables(
        con,
        {
            "match.pairs": result.pairs,
            "match.clusters": result.clusters,
            "match.review_queue": result.review_queue,
            "match.blocking_stats": result.blocking_stats.assign(run_id=ctx.run_id),
            "match.params": _concat(read_table(con, "match.params"), params),
        },
        # the records just linked, copied inside DuckDB (no 1 M-row round trip through pandas);
        # nothing writes clean.records between this stage's read and this write
        copies={"match.linked_records": "clean.records"},
    )
    n_clusters = int(result.clusters["cluster_key"].nunique()) if len(result.clusters) else 0
    stats = {
        "candidate_pairs": len(result.pairs),
        "matched_pairs": int((result.pairs["decision"] == "match").sum())
        if len(result.pairs)
        else 0,
        "review_queue": len(result.review_queue),
        "clusters": n_clusters,
        "mode": mode,
        "records_relinked": len(records) if plan is None else len(plan[0]),
    }
    log.info(
        "match      (%s, %d records linked) candidate pairs=%d matched=%d review=%d clusters=%d",
        stats["mode"],
        stats["records_relinked"],
        stats["candidate_pairs"],
        stats["matched_pairs"],
        stats["review_queue"],
        stats["clusters"],
    )
    return stats


def _frame_hash(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty:
        return "empty"
    text = frame.astype("string").fillna("\x00")
    rows = pd.util.hash_pandas_object(text, index=False).to_numpy()
    return f"{int(rows.astype('uint64').sum() % (1 << 63)):x}-{len(frame)}"


def _incremental_plan(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, state: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, ModelParams] | None:
    """What an incremental link needs, or None when only a full rebuild is right.

    Full rebuild when: no previous link, the matching settings or steward decisions changed,
    or records were removed (superseded files, erasure). Otherwise only the new and changed
    records are linked against the previous set, with the previous model parameters.
    """
    table = read_table(con, "match.params")
    previous = read_table(con, "match.linked_records")
    pairs = read_table(con, "match.pairs")
    if table is None or table.empty or previous is None or pairs is None:
        return None
    last = table.sort_values("created_at").iloc[-1]
    if any(str(last.get(k)) != v for k, v in state.items()):
        return None
    old_keys = set(previous["record_key"])
    if not old_keys <= set(records["record_key"]):
        return None
    cols = [c for c in records.columns if c in previous.columns]
    if len(cols) != len(records.columns):
        return None
    old_sig = pd.Series(
        pd.util.hash_pandas_object(
            previous[cols].astype("string").fillna("\x00"), index=False
        ).to_numpy(),
        index=previous["record_key"].to_numpy(),
    )
    new_sig = pd.util.hash_pandas_object(
        records[cols].astype("string").fillna("\x00"), index=False
    ).to_numpy()
    before = old_sig.reindex(records["record_key"].to_numpy()).to_numpy()
    changed = records[before != new_sig]
    return changed, previous[cols], pairs, ModelParams.from_json(last["params"])


def latest_params(con: duckdb.DuckDBPyConnection) -> ModelParams | None:
    """The model parameters estimated by the latest match run, if any."""
    table = read_table(con, "match.params")
    if table is None or table.empty:
        return None
    return ModelParams.from_json(table.sort_values("created_at")["params"].iloc[-1])


def _best_scores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Best in-cluster link probability per record (1.0 for singletons), computed in DuckDB.

    Only the ``match`` pairs' best score per record leaves DuckDB (match.pairs is ~12 rows a
    record at scale); NaN or null probabilities never win, as with pandas' ``max``.
    """
    best = con.sql(
        "WITH ends AS ("
        " SELECT left_key AS record_key, probability FROM match.pairs"
        "  WHERE decision = 'match' AND NOT isnan(probability)"
        " UNION ALL"
        " SELECT right_key, probability FROM match.pairs"
        "  WHERE decision = 'match' AND NOT isnan(probability)),"
        " best AS (SELECT record_key, max(probability) AS p FROM ends GROUP BY record_key)"
        " SELECT c.record_key, coalesce(best.p, 1.0)::DOUBLE AS match_score"
        " FROM match.clusters AS c LEFT JOIN best USING (record_key)"
    ).to_arrow_table()
    return best.to_pandas(types_mapper=lambda t: _TEXT if pa.types.is_string(t) else None)


def _check_required(con: duckdb.DuckDBPyConnection, names: tuple[str, ...], hint: str) -> None:
    """Fail with a clear error naming the tables a stage needs that do not exist."""
    missing = [n for n in names if not table_exists(con, n)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: {hint} first")


def _required(
    con: duckdb.DuckDBPyConnection,
    names: tuple[str, ...],
    hint: str,
    columns: dict[str, tuple[str, ...]] | None = None,
) -> list[pd.DataFrame]:
    """Read tables a stage cannot run without; a clear error names the missing ones.

    ``columns`` limits a table to the listed columns it has (the others are never read).
    """
    _check_required(con, names, hint)
    frames = []
    for name in names:
        wanted = (columns or {}).get(name)
        if wanted is not None:
            have = set(table_columns(con, name))
            wanted = tuple(c for c in wanted if c in have)
        frames.append(read_table(con, name, columns=wanted))
    return frames  # type: ignore[return-value]


def golden_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> dict[str, Any]:
    """Assign stable customer IDs and build the new golden state into ``staging.*``."""
    hint = "run the clean and match stages"
    _check_required(con, ("clean.records", "match.clusters", "match.pairs"), hint)
    records, clusters = _required(
        con, ("clean.records", "match.clusters"), hint, columns={"clean.records": RECORD_COLUMNS}
    )
    previous = read_table(con, "golden.crosswalk")
    id_history = read_table(con, "golden.customer_ids")
    existing_ids: list[str] = []
    if id_history is not None:
        existing_ids = id_history["customer_id"].dropna().astype(str).unique().tolist()
    ids = assign_customer_ids(
        clusters,
        previous[["record_key", "customer_id"]] if previous is not None else None,
        ctx.run_date,
        existing_ids=existing_ids,
    )
    golden = build_golden(
        records,
        ids.assignments,
        _best_scores(con),
        read_table(con, "clean.transactions") if table_exists(con, "clean.transactions") else None,
        read_table(con, "clean.interactions") if table_exists(con, "clean.interactions") else None,
        ctx.config.golden,
        ctx.run_id,
        ctx.run_date,
    )
    golden.customers = carry_forward_run_ids(
        golden.customers, read_table(con, "golden.customers"), ["customer_id"], "updated_run_id"
    )
    golden.attribute_lineage = carry_forward_run_ids(
        golden.attribute_lineage,
        read_table(con, "golden.attribute_lineage"),
        ["customer_id", "attribute"],
        "run_id",
    )
    events = ids.events.assign(run_id=ctx.run_id, run_date=ctx.run_date.isoformat())
    staged = {f"staging.{k.split('.', 1)[1]}": v for k, v in golden.as_dict().items()}
    staged["staging.id_events"] = events
    replace_tables(con, staged)
    counts = events["event"].value_counts().to_dict() if len(events) else {}
    stats = {
        "golden_customers": len(golden.customers),
        "crosswalk_rows": len(golden.crosswalk),
        "ids_created": int(counts.get("created", 0)),
        "merges": int(counts.get("merged_into", 0)),
        "splits": int(counts.get("split_from", 0)),
    }
    log.info(
        "golden     customers=%d (new ids=%d merges=%d splits=%d)",
        stats["golden_customers"],
        stats["ids_created"],
        stats["merges"],
        stats["splits"],
    )
    return stats


def carry_forward_run_ids(
    new: pd.DataFrame, old: pd.DataFrame | None, keys: list[str], run_col: str
) -> pd.DataFrame:
    """Keep the previous run id on rows whose content did not change.

    ``updated_run_id`` means "the run that last changed this row", so re-running on the same
    inputs yields identical golden content (and no new snapshot).
    """
    if old is None or old.empty or new.empty or run_col not in old.columns:
        return new
    new = new.reset_index(drop=True)
    content = [c for c in new.columns if c != run_col and c in old.columns]
    if len(content) != len(new.columns) - 1:
        return new  # the schema changed: every row counts as changed
    as_text = lambda f: _as_text(f, content)  # noqa: E731
    joined = (
        new[keys]
        .reset_index()
        .merge(
            pd.concat(
                [old[keys], old[[run_col]].rename(columns={run_col: "_old_run"})], axis=1
            ).assign(_old_sig=pd.util.hash_pandas_object(as_text(old), index=False).to_numpy()),
            on=keys,
            how="left",
        )
    )
    new_sig = pd.util.hash_pandas_object(as_text(new), index=False).to_numpy()
    same = joined["_old_sig"].to_numpy() == new_sig[joined["index"].to_numpy()]
    out = new.copy()
    pos = joined.loc[same, "index"].to_numpy()
    out.loc[out.index[pos], run_col] = joined.loc[same, "_old_run"].to_numpy()
    return out


def _as_text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns as pandas text (missing as NUL) for row signatures.

    Arrow ``date32`` columns are cast by Arrow first (same ``YYYY-MM-DD`` text as pandas'
    ``astype("string")``, ≈ 40× faster on millions of rows).
    """
    out = {}
    for c in columns:
        col = frame[c]
        if isinstance(col.dtype, pd.ArrowDtype) and pa.types.is_date(col.dtype.pyarrow_dtype):
            col = col.astype(pd.ArrowDtype(pa.string()))
        out[c] = col.astype("string").fillna("\x00")
    return pd.DataFrame(out, index=frame.index)


def quality_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> list[CheckOutcome]:
    """Validate the staged golden state with the Great Expectations suites; store the outcomes."""
    customers, crosswalk, records = _required(
        con,
        ("staging.customers", "staging.crosswalk", "clean.records"),
        "run the golden stage",
        columns={"clean.records": GOLDEN_SUITE_RECORD_COLUMNS},
    )
    previous = read_table(con, "golden.customers")
    outcomes = validate_golden(customers, crosswalk, records, previous, ctx.config.quality)
    frame = pd.DataFrame(
        [
            {
                "run_id": ctx.run_id,
                "name": o.name,
                "layer": o.layer,
                "critical": o.critical,
                "success": o.success,
                "observed": json.dumps(o.observed, ensure_ascii=False, default=str),
                "description": o.description,
            }
            for o in outcomes
        ]
    )
    previous_results = read_table(con, "ops.check_results")
    if previous_results is not None:
        previous_results = previous_results[previous_results["run_id"] != ctx.run_id]
    replace_tables(con, {"ops.check_results": _concat(previous_results, frame)})
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


def swap_in_golden(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> None:
    """Replace ``golden.*`` with the staged state, update history and ID events: one transaction.

    The staged tables are copied inside DuckDB (no pandas round trip); only the history (SCD2,
    computed in pandas from the customers' tracked columns) is written from a frame.
    """
    missing = [f"golden.{t}" for t in GOLDEN_TABLES if not table_exists(con, f"staging.{t}")]
    if missing:
        raise RuntimeError(f"staging tables missing: {missing}")
    events = read_table(con, "staging.id_events")
    tracked = read_table(con, "staging.customers", ["customer_id", *TRACKED_ATTRIBUTES])
    assert tracked is not None  # checked above
    history = update_history(
        read_table(con, "golden.customers_history"),
        tracked,
        ctx.run_id,
        ctx.run_date,
        id_events=events,
        delivery_reasons=delivery_reasons(con, "staging.crosswalk", "clean.records"),
    )
    frames: dict[str, pd.DataFrame] = {"golden.customers_history": history}
    appends: dict[str, str] = {}
    old_ids = table_schema(con, "golden.customer_ids")
    if events is not None and old_ids and old_ids == table_schema(con, "staging.id_events"):
        appends["golden.customer_ids"] = "staging.id_events"  # same as the concat, in SQL
    else:
        frames["golden.customer_ids"] = _concat(read_table(con, "golden.customer_ids"), events)
    copies = {f"golden.{t}": f"staging.{t}" for t in GOLDEN_TABLES}
    swap_tables(con, copies, frames, appends)
    crash_point("publish:swapped")
    create_views(con)


def golden_snapshot_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """The published golden tables, keyed ``golden.<name>``, as Arrow (for snapshot and mart)."""
    return read_tables_arrow(con, [f"golden.{n}" for n in EXPORTED])


def _concat(old: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame:
    parts = [f for f in (old, new) if f is not None and len(f)]
    if not parts:
        return new if new is not None else pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def ensure_dir(path: Path) -> Path:
    """Create a folder (and parents) and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext, stage: str, stats: dict) -> None:
    """Store one stage's figures in ``ops.stage_stats`` (the run summary and report read them)."""
    row = pd.DataFrame(
        [
            {
                "run_id": ctx.run_id,
                "stage": stage,
                "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "stats": json.dumps(stats, ensure_ascii=False, default=str),
            }
        ]
    )
    old = read_table(con, "ops.stage_stats")
    if old is not None:
        old = old[~((old["run_id"] == ctx.run_id) & (old["stage"] == stage))]
    replace_tables(con, {"ops.stage_stats": _concat(old, row)})


def run_stats(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict]:
    """Every stage's figures recorded for a run, keyed by stage name."""
    table = read_table(con, "ops.stage_stats")
    if table is None:
        return {}
    rows = table[table["run_id"] == run_id]
    return {r.stage: json.loads(r.stats) for r in rows.itertuples()}


def check_outcomes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[CheckOutcome]:
    """The expectation outcomes stored for a run."""
    table = read_table(con, "ops.check_results")
    if table is None:
        return []
    rows = table[table["run_id"] == run_id]
    return [
        CheckOutcome(
            name=r.name,
            layer=r.layer,
            critical=bool(r.critical),
            success=bool(r.success),
            observed=json.loads(r.observed),
            description=r.description,
        )
        for r in rows.itertuples()
    ]


def swap_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> dict[str, Any]:
    """Swap the staged golden state into ``golden.*`` and export it as Parquet.

    Refuses (``PublishBlocked``) when the run's expectations have not run or a critical one
    failed, so a bad night never reaches analysts or the archive.
    """
    outcomes = check_outcomes(con, ctx.run_id)
    if not outcomes:
        raise PublishBlocked(f"run {ctx.run_id}: quality checks have not run; not publishing")
    failed = blocking_failures(outcomes)
    if failed:
        names = ", ".join(o.name for o in failed)
        raise PublishBlocked(f"run {ctx.run_id}: critical expectations failed: {names}")
    swap_in_golden(con, ctx)
    cfg = ctx.config
    exported = export_parquet(con, ensure_dir(cfg.resolve(cfg.exports_dir) / "golden"))
    mart = publish_analyst_mart(cfg, golden_snapshot_tables(con))
    log.info(
        "publish    golden tables swapped in; %d Parquet files exported; analyst mart %d tables",
        len(exported),
        len(mart),
    )
    return {"exported_files": len(exported), "analyst_mart_tables": len(mart)}


def snapshot_stage(con: duckdb.DuckDBPyConnection, ctx: RunContext) -> dict[str, Any]:
    """Publish the golden layer as an immutable snapshot; apply retention; copy off-site."""
    cfg = ctx.config
    outcomes = check_outcomes(con, ctx.run_id)
    if not outcomes or blocking_failures(outcomes):
        raise PublishBlocked(f"run {ctx.run_id}: expectations missing or failed; no snapshot")
    deliveries = read_table(con, "ops.deliveries")
    source_manifest: list[dict] = []
    if deliveries is not None:
        source_manifest = deliveries[deliveries["run_id"] == ctx.run_id].to_dict("records")
    archive_dir = ensure_dir(cfg.resolve(cfg.archive_dir))
    kind = due_kind(ctx.run_date, list_snapshots(archive_dir))
    info = publish_snapshot(
        golden_snapshot_tables(con),
        archive_dir,
        ctx.run_id,
        ctx.started_at,
        manifest_extra={
            **snapshot_encryption_note(cfg),
            "run_date": ctx.run_date.isoformat(),
            "source_manifest": source_manifest,
            "expectations": [
                {"name": o.name, "critical": o.critical, "success": o.success} for o in outcomes
            ],
        },
        kind=kind,
        # month-end and year-end archives are kept even when nothing changed that day
        skip_if_unchanged=kind == "daily",
        writer=snapshot_writer(cfg),
    )
    crash_point("snapshot:published")
    stats: dict[str, Any] = {"kind": kind}
    if info is None:
        stats["snapshot"] = None
        log.info("snapshot   golden content unchanged since the last snapshot: none written")
    else:
        stats["snapshot"] = str(info.path)
        stats["snapshot_id"] = info.snapshot_id
        log.info("snapshot   %s", info.path)
        if cfg.offsite:
            stats["offsite"] = copy_offsite(info.path, cfg.offsite, reader=snapshot_reader(cfg))
            log.info("snapshot   off-site copy %s", stats["offsite"])
    plan = apply_retention(cfg.resolve(cfg.archive_dir), cfg.retention, ctx.run_date)
    stats["snapshots_deleted"] = len(plan.delete)
    return stats

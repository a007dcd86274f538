"""Publishing the golden layer: run-id carry-forward, the staged → golden swap, snapshot tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.archive import read_tables_arrow, swap_tables, table_schema
from warehouse.db import ChunkedTables, read_table, replace_tables, table_exists
from warehouse.golden_delta import staged_delta, state_swap
from warehouse.golden_staged import staged_full
from warehouse.history import HISTORY_COLUMNS, TRACKED_ATTRIBUTES, update_history
from warehouse.naming import EXPORTED, GOLDEN_TABLES
from warehouse.ops import concat_frames
from warehouse.signatures import row_signatures
from warehouse.versions import delivery_reasons

__all__ = [
    "carry_forward_run_ids",
    "golden_snapshot_tables",
    "inserted_from",
    "stage_golden",
    "swap_in_golden",
]


HISTORY_CHUNK_CUSTOMERS = 40_000
"""Customers a chunk of a whole history fold (a first run: every customer); ≈ 100,000 source
records of the demo data, as `scale.golden_chunk_records`."""


def carry_forward_run_ids(
    new: pd.DataFrame, old: pd.DataFrame | None, keys: Sequence[str], run_col: str
) -> pd.DataFrame:
    """Keep the previous run id on rows whose content did not change.

    ``updated_run_id`` means "the run that last changed this row", so re-running on the same
    inputs yields identical golden content (and no new snapshot).
    """
    keys = list(keys)
    if old is None or old.empty or new.empty or run_col not in old.columns:
        return new
    new = new.reset_index(drop=True)
    content = [c for c in new.columns if c != run_col and c in old.columns]
    if len(content) != len(new.columns) - 1:
        return new  # the schema changed: every row counts as changed
    joined = (
        new[keys]
        .reset_index()
        .merge(
            pd.concat(
                [old[keys], old[[run_col]].rename(columns={run_col: "_old_run"})], axis=1
            ).assign(_old_sig=row_signatures(old, content)),
            on=keys,
            how="left",
        )
    )
    new_sig = row_signatures(new, content)
    same = joined["_old_sig"].to_numpy() == new_sig[joined["index"].to_numpy()]
    out = new.copy()
    pos = joined.loc[same, "index"].to_numpy()
    out.loc[out.index[pos], run_col] = joined.loc[same, "_old_run"].to_numpy()
    return out


def stage_golden(
    con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame], events: pd.DataFrame
) -> None:
    """Write a new golden state (``golden.<name>`` keys) and its ID events into ``staging.*``."""
    staged = {f"staging.{k.split('.', 1)[1]}": v for k, v in tables.items()}
    staged["staging.id_events"] = events
    replace_tables(con, staged)


def swap_in_golden(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    run_date: date,
    history_chunk: int = HISTORY_CHUNK_CUSTOMERS,
) -> dict[str, str] | None:
    """Replace ``golden.*`` with the staged state, update history and ID events: one transaction.

    A staged delta (the incremental golden build, ``staged_delta``) replaces just the rows of
    its customers (DELETE + INSERT by ``customer_id``); a full build staged under hidden names
    (``golden._staged_<table>`` behind the views ``staging.<table>``, ``golden_staged``) is
    renamed in, the views dropped, after every other write of the transaction (no row
    copied); a full state staged as ``staging.*`` tables is copied inside DuckDB. The golden
    state's input hashes staged as a delta (``state_swap``) replace just the changed records'
    rows of ``match.golden_inputs``, else they are copied whole. Only the history (SCD2,
    computed in pandas from the customers' tracked columns) is written from a frame: the rows
    of the customers this run changed or removed, replacing theirs (the whole table when its
    open rows are not the published customers: folded ``history_chunk`` customers at a time
    into ``staging._history_whole``, each range committed, then copied in the swap; the same
    rows as one fold of every customer, as each customer's history depends on its own rows
    only). A first run (no history yet) selects every customer's first row in SQL, and its ID
    events are copied from ``staging.id_events``: the same rows and types as the pandas fold
    and the frame of the events, without reading every customer into pandas. The caller
    recreates the views afterwards.

    Returns:
        ``golden.<table>`` → SQL condition on ``customer_id`` selecting the customers whose
        rows were replaced (valid until the next run's golden stage), for every exported
        table; None when a whole table was replaced.
    """
    missing = [f"golden.{t}" for t in GOLDEN_TABLES if not table_exists(con, f"staging.{t}")]
    if missing:
        raise RuntimeError(f"staging tables missing: {missing}")
    current = _history_is_current(con)
    first = not current and _no_history(con)
    # the ID events in pandas only where a fold reads them (a first run copies them in SQL)
    events = None if first else read_table(con, "staging.id_events")
    folded: str | None = None  # the whole history, folded in customer ranges
    frames: dict[str, pd.DataFrame] = {}
    row_updates: dict[str, tuple[str, pd.DataFrame | str]] = {}
    if current:
        # only customers this run changed (or that left the golden layer) can get new history
        # rows: fold just them, replace just their rows (SQL), leave every other row alone
        scope = _history_scope(con, run_id)
        history = update_history(
            read_table(con, "golden.customers_history", where=scope),
            _tracked(con, scope),
            run_id,
            run_date,
            id_events=events,
            delivery_reasons=delivery_reasons(con, "staging.crosswalk", "clean.records", scope),
        )
        row_updates["golden.customers_history"] = (scope, history)
    elif first:
        # a first run: every customer's first row, selected in SQL by a view the swap
        # copies from (the same rows as update_history's fold of no history: no pandas round
        # trip of every customer, no staging table written to be copied again)
        folded = _first_history(con, run_id, run_date)
    else:
        # every customer's history folded again (its open rows are not the published
        # customers): a range of customers at a time into staging, the copy swapped in
        # below; few customers: in one frame
        folded = _fold_in_chunks(con, run_id, run_date, events, history_chunk)
        if folded is None:
            frames["golden.customers_history"] = update_history(
                read_table(con, "golden.customers_history"),
                _tracked(con, None),
                run_id,
                run_date,
                id_events=events,
                delivery_reasons=delivery_reasons(con, "staging.crosswalk", "clean.records"),
            )
    appends: dict[str, str] = {}
    copies_ids: dict[str, str] = {}
    old_ids = table_schema(con, "golden.customer_ids")
    staged_ids = table_schema(con, "staging.id_events")
    if staged_ids and old_ids and old_ids == staged_ids:
        appends["golden.customer_ids"] = "staging.id_events"  # same as the concat, in SQL
    elif staged_ids and old_ids is None:
        copies_ids = {"golden.customer_ids": "staging.id_events"}  # the frame's rows, in SQL
    else:
        if events is None:
            events = read_table(con, "staging.id_events")
        frames["golden.customer_ids"] = concat_frames(
            read_table(con, "golden.customer_ids"), events
        )
    delta = staged_delta(con)
    # a full build staged under hidden names in golden is renamed in (no row copied), its
    # staging views dropped with it; one staged as staging.* tables is copied
    renames = None if delta else staged_full(con)
    copies = {} if delta or renames else {f"golden.{t}": f"staging.{t}" for t in GOLDEN_TABLES}
    row_updates.update(delta or {})
    # the inputs the next incremental golden build compares: after a nightly only the changed
    # records' rows are replaced (DELETE + INSERT), in the same transaction
    state_copies, state_updates = state_swap(con)
    copies.update(state_copies)
    copies.update(copies_ids)
    if folded is not None:  # the history folded whole, chunk by chunk
        copies["golden.customers_history"] = folded
    swap_tables(
        con,
        copies,
        frames,
        appends,
        {**row_updates, **state_updates},
        renames=renames,
        drop_views=[f"staging.{t}" for t in GOLDEN_TABLES] if renames else (),
    )
    if folded == _HISTORY_FIRST:
        con.execute(f"DROP VIEW IF EXISTS {folded}")
    elif folded is not None:
        con.execute(f"DROP TABLE IF EXISTS {folded}")
    if delta is None or frames or copies_ids or folded is not None:
        return None
    changed = {target: where for target, (where, _) in row_updates.items()}
    changed["golden.customer_ids"] = "customer_id IN (SELECT customer_id FROM staging.id_events)"
    return changed


def inserted_from(
    con: duckdb.DuckDBPyConnection, changed: Mapping[str, str] | None
) -> dict[str, str]:
    """``golden.<table>`` → the staged delta table :func:`swap_in_golden` inserted its rows from.

    For those tables the swap deleted the rows ``changed[table]`` selects and inserted the
    delta's rows, so the changed rows can be read from the (small) delta table.
    """
    if not changed:
        return {}
    delta = staged_delta(con) or {}
    return {t: rows for t, (where, rows) in delta.items() if changed.get(t) == where}


_SCOPE = "staging._history_scope"
_HISTORY_WHOLE = "staging._history_whole"
_HISTORY_FIRST = "staging._history_first"


def _no_history(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether no customer has history yet (no ``golden.customers_history``, or no row)."""
    if not table_exists(con, "golden.customers_history"):
        return True
    (rows,) = con.execute("SELECT count(*) FROM golden.customers_history").fetchall()[0]
    return rows == 0


def _first_history(con: duckdb.DuckDBPyConnection, run_id: str, run_date: date) -> str:
    """Create the view of every staged customer's first history row; return its name.

    The rows, column types and order of ``update_history(None, customers, run_id, run_date,
    id_events)`` written to the warehouse: one open ``created`` row per customer of
    ``staging.customers``, its reason the customer's last ID event in ``staging.id_events``
    (``merged into C…``, ``split from C…``) or ``new customer``.
    """
    events = "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS event, NULL::VARCHAR AS other"
    columns = {c for c, _t in table_schema(con, "staging.id_events") or []}
    if {"customer_id", "event"} <= columns:
        other = "other_customer_id" if "other_customer_id" in columns else "NULL"
        # the last event of each customer, in the table's row order (drop_duplicates keep last)
        events = (
            "SELECT customer_id::VARCHAR AS customer_id, event::VARCHAR AS event,"
            f" {other}::VARCHAR AS other FROM staging.id_events"
            " QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY rowid DESC) = 1"
        )
    typed = {"registered_date": "DATE", "is_returning": "BOOLEAN"}
    tracked = ", ".join(
        f'CAST(c."{a}" AS {typed.get(a, "VARCHAR")}) AS "{a}"' for a in TRACKED_ATTRIBUTES
    )
    reason = (
        "CASE WHEN e.event IS NOT NULL AND e.event <> 'created' THEN"
        " replace(e.event, '_', ' ') || coalesce(' ' || e.other, '') ELSE 'new customer' END"
    )
    con.execute(
        f"CREATE OR REPLACE VIEW {_HISTORY_FIRST} AS"
        f" SELECT CAST(c.customer_id AS VARCHAR) AS customer_id, {tracked},"
        f" DATE '{run_date.isoformat()}' AS valid_from, NULL::DATE AS valid_to,"
        f" true AS is_current, 'created' AS change_type, {reason} AS change_reason,"
        f" '' AS changed_attributes, NULL::VARCHAR AS closed_reason,"
        f" {_literal(run_id)} AS run_id, NULL::VARCHAR AS closed_run_id"
        f" FROM staging.customers AS c LEFT JOIN ({events}) AS e"
        " ON e.customer_id = CAST(c.customer_id AS VARCHAR) ORDER BY c.customer_id"
    )
    return _HISTORY_FIRST


def _fold_in_chunks(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    run_date: date,
    events: pd.DataFrame | None,
    chunk: int,
) -> str | None:
    """Fold every customer's history ``chunk`` customers at a time into ``_HISTORY_WHOLE``.

    Customers are taken in ``customer_id`` order (those staged and those with history), each
    range read, folded (``update_history``) and appended on its own (committed: DuckDB keeps
    the rows of an open transaction in memory), so memory holds one range's frames.

    Returns:
        The table holding the whole new history, or None when every customer fits in one
        chunk (the caller folds them in one frame, as before).
    """
    old = table_exists(con, "golden.customers_history")
    ids = "SELECT customer_id FROM staging.customers"
    if old:
        ids += " UNION ALL SELECT customer_id FROM golden.customers_history"
    bounds = [
        str(row[0])
        for row in con.execute(
            f"SELECT customer_id FROM (SELECT customer_id, row_number() OVER (ORDER BY"
            f" customer_id) - 1 AS n FROM (SELECT DISTINCT customer_id FROM ({ids})"
            f" WHERE customer_id IS NOT NULL)) WHERE n % {int(chunk)} = 0 ORDER BY customer_id"
        ).fetchall()
    ]
    if len(bounds) <= 1:
        return None
    # the reasons of every customer in one join (per range it rescanned every clean record:
    # ranges x records), looked up by customer id in each range's fold
    reasons = delivery_reasons(con, "staging.crosswalk", "clean.records")
    writer = ChunkedTables(con, [_HISTORY_WHOLE])
    # the events' customer ids as text once (per range it converted every event again)
    ids_of = None if events is None or not len(events) else events["customer_id"].astype("string")
    for i, low in enumerate(bounds):
        high = bounds[i + 1] if i + 1 < len(bounds) else None
        where = "customer_id >= " + _literal(low)
        where += "" if high is None else " AND customer_id < " + _literal(high)
        part = None
        if events is not None and ids_of is not None:
            keep = (ids_of >= low) & ((ids_of < high) if high is not None else True)
            part = events[keep.fillna(False).to_numpy(dtype=bool)]
        writer.append(
            _HISTORY_WHOLE,
            update_history(
                read_table(con, "golden.customers_history", where=where) if old else None,
                _tracked(con, where),
                run_id,
                run_date,
                id_events=part,
                delivery_reasons=reasons,
            ),
        )
    return _HISTORY_WHOLE


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _history_is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the history's open rows are the published customers (the usual case)."""
    if not all(table_exists(con, f"golden.{t}") for t in ("customers_history", "customers")):
        return False
    cols = {c for c, _ in table_schema(con, "golden.customers_history") or []}
    if not set(HISTORY_COLUMNS) <= cols:
        return False
    (stale,) = con.execute(
        "SELECT count(*) FROM golden.customers AS g FULL JOIN"
        " (SELECT customer_id FROM golden.customers_history WHERE valid_to IS NULL) AS h"
        " USING (customer_id) WHERE g.customer_id IS NULL OR h.customer_id IS NULL"
    ).fetchall()[0]
    return stale == 0


def _history_scope(con: duckdb.DuckDBPyConnection, run_id: str) -> str:
    """Create the set of customers whose history this run may change; its SQL condition.

    A customer whose staged row kept its previous ``updated_run_id`` has the content of its
    published row (``carry_forward_run_ids``), so its open history row still holds.
    """
    con.execute(
        f"CREATE OR REPLACE TABLE {_SCOPE} AS"
        " SELECT customer_id FROM staging.customers WHERE updated_run_id = ?"
        " OR customer_id NOT IN (SELECT customer_id FROM golden.customers)"
        " UNION SELECT customer_id FROM golden.customers"
        " WHERE customer_id NOT IN (SELECT customer_id FROM staging.customers)",
        [run_id],
    )
    return f"customer_id IN (SELECT customer_id FROM {_SCOPE})"


def _tracked(con: duckdb.DuckDBPyConnection, where: str | None) -> pd.DataFrame:
    tracked = read_table(con, "staging.customers", ["customer_id", *TRACKED_ATTRIBUTES], where)
    assert tracked is not None  # checked by the caller
    return tracked


def golden_snapshot_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """The published golden tables, keyed ``golden.<name>``, as Arrow (for snapshot and mart)."""
    return read_tables_arrow(con, [f"golden.{n}" for n in EXPORTED])

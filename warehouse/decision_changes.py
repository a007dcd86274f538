"""Steward decisions changed since the last link: their records are what a nightly relinks.

A link keeps a copy of ``match.decisions`` as it was made under (`LINKED_DECISIONS`, written
by `keep_linked_decisions` after every match write). When only the decisions changed since
(the matching settings are the same), the next run need not relink everything: the records
of every decision added, changed or removed (`decided_records`) are relinked as changed
records, with the decisions applied, and their clusters assembled again; every other record
keeps its link. The copy is trusted only when its hash is the decisions hash the last link
recorded in ``match.params`` (`warehouse.match_state.match_state`): a warehouse without the
copy, or with one from another link (a write that failed after the link's), is linked in
full once.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import read_table, table_exists
from warehouse.signatures import frame_hash, row_signatures

__all__ = ["LINKED_DECISIONS", "decided_records", "keep_linked_decisions", "with_decided_rows"]

LINKED_DECISIONS = "match.linked_decisions"
"""``match.decisions`` as the last link was made under (every column, the same types)."""

_DECIDED = "_decided_records"


def keep_linked_decisions(con: duckdb.DuckDBPyConnection) -> None:
    """Keep ``match.decisions`` as it is now as `LINKED_DECISIONS` (the link just written).

    Called once ``match.*`` holds the new link (a run holds the run lock: no decision is
    recorded between the link's read of the decisions and this copy; had one been, the copy's
    hash is not the link's and the next run links in full).
    """
    if table_exists(con, "match.decisions"):
        con.execute(f"CREATE OR REPLACE TABLE {LINKED_DECISIONS} AS SELECT * FROM match.decisions")
    else:
        con.execute(
            f"CREATE OR REPLACE TABLE {LINKED_DECISIONS}"
            " (left_key VARCHAR, right_key VARCHAR, decision VARCHAR)"
        )


def decided_records(con: duckdb.DuckDBPyConnection, linked_hash: str) -> pd.Series | None:
    """The record keys of every steward decision added, changed or removed since the last link.

    A decision row of ``match.decisions`` not in `LINKED_DECISIONS` (every column compared:
    a new pair, another decision, a later one) or the other way round (a withdrawn one) names
    both its records. Comparing whole rows may name a few records more than needed (a
    decision re-taken unchanged): they are relinked to the same result.

    Args:
        con: the warehouse.
        linked_hash: the decisions hash of the last link (``match.params``' ``decisions``).

    Returns:
        The record keys (unique, text), or None when `LINKED_DECISIONS` is missing or is not
        the decisions the last link was made under (a full link is right then).
    """
    linked = read_table(con, LINKED_DECISIONS)
    if linked is None or frame_hash(linked) != linked_hash:
        return None
    now = read_table(con, "match.decisions")
    if now is None or now.empty:
        changed = [linked]
    elif linked.empty:
        changed = [now]
    else:
        changed = [_rows_not_in(now, linked), _rows_not_in(linked, now)]
    keys = pd.concat(
        [frame[side].astype(str) for frame in changed for side in ("left_key", "right_key")],
        ignore_index=True,
    )
    return pd.Series(pd.unique(keys.to_numpy(dtype=object)), name="record_key", dtype=object)


def _rows_not_in(frame: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` that `other` does not hold (over every column of either)."""
    columns = sorted(set(frame.columns) | set(other.columns))
    mine = row_signatures(frame.reindex(columns=columns))
    theirs = row_signatures(other.reindex(columns=columns))
    return frame[~np.isin(mine, theirs)]


def with_decided_rows(
    con: duckdb.DuckDBPyConnection, changed_rows: str, keys: pd.Series
) -> pd.DataFrame:
    """The changed records' table `changed_rows` with the decided records' clean rows added.

    `changed_rows` holds ``clean.records`` rows (`warehouse.match_state.RematchPlan`'s
    ``changed_rows``); the ``clean.records`` rows of `keys` it lacks are inserted (keys no
    longer clean are skipped: a removed record makes the link a full one anyway).

    Returns:
        Every row of `changed_rows` afterwards.
    """
    con.register(_DECIDED, pd.DataFrame({"record_key": keys.astype(str).to_numpy(dtype=object)}))
    try:
        con.execute(
            f"INSERT INTO {changed_rows} BY NAME SELECT * FROM clean.records"
            f" WHERE record_key IN (SELECT record_key FROM {_DECIDED})"
            f" AND record_key NOT IN (SELECT record_key FROM {changed_rows})"
        )
    finally:
        con.unregister(_DECIDED)
    rows = read_table(con, changed_rows)
    assert rows is not None
    return rows

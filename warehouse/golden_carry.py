"""Keep the published run id on rebuilt golden rows whose content did not change, in DuckDB.

``updated_run_id`` (customers) and ``run_id`` (attribute lineage) mean "the run that last
changed this row", so a rebuild on the same inputs yields identical golden content (and no new
snapshot). ``warehouse.publish.carry_forward_run_ids`` decides this in pandas by hashing the text
of every row of both frames; here the rebuilt rows are handed to DuckDB once and compared with
the published table there, column by column as text (``CAST … AS VARCHAR``, null equal to
null), so the published rows are never read into pandas: after a full build of 1 M records that
is ≈ 10 M lineage rows not converted and hashed in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from warehouse.db import table_columns, to_duckdb_arrow

__all__ = ["carry_forward_published"]

_NEW = "_golden_carry_new"
_PUBLISHED = "_golden_carry_published"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def carry_forward_published(
    con: duckdb.DuckDBPyConnection,
    new: pd.DataFrame,
    table: str,
    keys: Sequence[str],
    run_col: str,
    published: pa.Table | None = None,
) -> pd.DataFrame:
    """``new`` with ``run_col`` taken from ``table``'s row of the same keys where the content is
    the same (every other column of ``new`` equal as text, missing equal to missing).

    The same decision as ``carry_forward_run_ids(new, <table read into pandas>, keys,
    run_col)``: nothing is carried when ``table`` is absent or empty, lacks ``run_col`` or
    lacks a column of ``new`` (a schema change: every row counts as changed).

    Args:
        con: the warehouse holding the published ``table``.
        new: the rebuilt rows (``run_col`` set to this run).
        table: the published table, e.g. ``golden.customers``.
        keys: the columns identifying a row (unique in ``table``).
        run_col: the run-id column.
        published: ``table``'s rows of at least every customer (``customer_id``) of ``new``,
            read beforehand (``SELECT * FROM table WHERE customer_id IN …``): compared
            instead of ``table`` itself (the same rows can match: the keys hold the customer),
            so the whole table is not scanned here. None: ``table``.

    Returns:
        ``new`` (index reset) with the published run id on its unchanged rows.
    """
    keys = list(keys)
    present = table_columns(con, table)
    if new.empty or run_col not in present:
        return new
    new = new.reset_index(drop=True)
    content = [c for c in new.columns if c != run_col and c in present]
    if len(content) != len(new.columns) - 1:
        return new  # the schema changed: every row counts as changed
    frame = to_duckdb_arrow(new[content])
    frame = frame.append_column("_pos", pa.array(np.arange(len(new), dtype=np.int64)))
    on = " AND ".join(f"n.{_quote(k)} IS NOT DISTINCT FROM g.{_quote(k)}" for k in keys)
    same = " AND ".join(
        f"n.{_quote(c)}::VARCHAR IS NOT DISTINCT FROM g.{_quote(c)}::VARCHAR"
        for c in content
        if c not in keys
    )
    if published is not None and "customer_id" not in keys:
        raise ValueError("rows read beforehand are a customer's: customer_id must be a key")
    con.register(_NEW, frame)
    if published is not None:
        con.register(_PUBLISHED, published)
    try:
        kept = con.sql(
            f"SELECT n._pos, g.{_quote(run_col)}::VARCHAR AS run FROM {_NEW} AS n"
            f" JOIN {table if published is None else _PUBLISHED} AS g ON {on}"
            + (f" WHERE {same}" if same else "")
        ).to_arrow_table()
    finally:
        con.unregister(_NEW)
        if published is not None:
            con.unregister(_PUBLISHED)
    if not kept.num_rows:
        return new
    pos = kept.column("_pos").to_numpy()
    out = new.copy()
    runs = out[run_col].astype(object).to_numpy(copy=True)
    runs[pos] = kept.column("run").to_numpy(zero_copy_only=False)
    out[run_col] = pd.Series(runs, index=out.index).astype(new[run_col].dtype)
    return out

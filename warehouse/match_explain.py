"""What a steward's explanation reads of the last link: the two records as it prepared them
among all the records, and the pair's row in ``match.pairs`` when the link scored it."""

from __future__ import annotations

import duckdb
import pandas as pd

from warehouse.db import table_columns, table_exists
from warehouse.match_state import PREPARED_TABLE, PREPARED_VERSION, prepared_frame

__all__ = ["last_link_rows"]


def last_link_rows(
    con: duckdb.DuckDBPyConnection, left_key: str, right_key: str
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The last link's prepared rows of two records and its stored row of their pair.

    Args:
        con: the warehouse.
        left_key: one record key.
        right_key: the other.

    Returns:
        (prepared, pair): ``match.prepared``'s rows of the two records in the order given, in
        the form the matcher scores (None when the table is missing or lacks one of them: the
        records were not linked yet); ``match.pairs``' row(s) of the pair in either order
        (None when the link did not score it).
    """
    prepared = pair = None
    if table_exists(con, PREPARED_TABLE):
        drop = PREPARED_VERSION in table_columns(con, PREPARED_TABLE)
        select = f"* EXCLUDE ({PREPARED_VERSION})" if drop else "*"
        rows = prepared_frame(
            con.sql(
                f"SELECT {select} FROM {PREPARED_TABLE} WHERE record_key IN ($1, $2)",
                params=[left_key, right_key],
            ).to_arrow_table()
        )
        if len(rows) == 2 and left_key != right_key:
            order = rows["record_key"].astype(object).map({left_key: 0, right_key: 1})
            prepared = rows.iloc[order.to_numpy(dtype=int).argsort()].reset_index(drop=True)
    if table_exists(con, "match.pairs"):
        found = con.sql(
            "SELECT rule, probability, decision FROM match.pairs"
            " WHERE (left_key = $1 AND right_key = $2) OR (left_key = $2 AND right_key = $1)",
            params=[left_key, right_key],
        ).df()
        pair = found if len(found) else None
    return prepared, pair

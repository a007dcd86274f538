"""The match layer's state in the warehouse: latest ``match.params``, rematch plan, writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from warehouse.db import read_table, replace_tables, table_columns, table_exists
from warehouse.ops import concat_frames
from warehouse.signatures import frame_hash

_TEXT = pd.StringDtype("pyarrow", na_value=float("nan"))

__all__ = [
    "LatestParams",
    "RematchPlan",
    "best_scores",
    "best_scores_sql",
    "latest_params_row",
    "match_state",
    "rematch_plan",
    "write_match_tables",
]


@dataclass(frozen=True)
class LatestParams:
    """The latest row of ``match.params``: the model parameters (JSON) and the state hashes."""

    params_json: str
    settings: str
    decisions: str

    def state(self) -> dict[str, str]:
        """The state hashes, keyed as ``match_state`` keys them."""
        return {"settings": self.settings, "decisions": self.decisions}


@dataclass
class RematchPlan:
    """What an incremental link needs: the changed records, the previous set, pairs and params."""

    changed: pd.DataFrame
    previous: pd.DataFrame
    pairs: pd.DataFrame
    params_json: str


def latest_params_row(con: duckdb.DuckDBPyConnection) -> LatestParams | None:
    """The latest run's row of ``match.params`` (the one reader of it), or None."""
    table = read_table(con, "match.params")
    if table is None or table.empty:
        return None
    last = table.sort_values("created_at").iloc[-1]
    return LatestParams(
        params_json=last["params"],
        settings=str(last.get("settings")),
        decisions=str(last.get("decisions")),
    )


def match_state(settings_json: str, decisions: pd.DataFrame | None) -> dict[str, str]:
    """The hashes of the matching settings and steward decisions a link was made under."""
    return {
        "settings": frame_hash(pd.DataFrame([{"s": settings_json}])),
        "decisions": frame_hash(decisions),
    }


def rematch_plan(
    con: duckdb.DuckDBPyConnection, state: Mapping[str, str]
) -> RematchPlan | None:
    """What an incremental link needs, or None when only a full rebuild is right.

    Full rebuild when: no previous link, the matching settings or steward decisions changed,
    or records were removed (superseded files, erasure). Otherwise only the new and changed
    records are linked against the previous set, with the previous model parameters. The
    changed records are found in DuckDB (``clean.records EXCEPT match.linked_records``): only
    they travel to pandas.
    """
    latest = latest_params_row(con)
    if latest is None or latest.state() != dict(state):
        return None
    if not (table_exists(con, "match.linked_records") and table_exists(con, "match.pairs")):
        return None
    cols = table_columns(con, "clean.records")
    if sorted(cols) != sorted(table_columns(con, "match.linked_records")):
        return None
    (removed,) = con.execute(
        "SELECT count(*) FROM match.linked_records WHERE record_key NOT IN"
        " (SELECT record_key FROM clean.records)"
    ).fetchall()[0]
    if removed:
        return None
    listed = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
    changed = read_table(
        con,
        "clean.records",
        where=f"record_key IN (SELECT record_key FROM (SELECT {listed} FROM clean.records"
        f" EXCEPT SELECT {listed} FROM match.linked_records))",
    )
    previous = read_table(con, "match.linked_records", cols)
    pairs = read_table(con, "match.pairs")
    assert changed is not None and previous is not None and pairs is not None
    return RematchPlan(changed, previous, pairs, latest.params_json)


def write_match_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, pd.DataFrame],
    params_row: Mapping[str, object],
) -> None:
    """Replace ``match.*`` with a link result in one transaction and append its params row.

    Args:
        con: the warehouse.
        tables: ``match.pairs``, ``match.clusters``, ``match.review_queue``,
            ``match.blocking_stats`` frames.
        params_row: the ``match.params`` row (run_id, created_at, params, mode, state hashes).
    """
    replace_tables(
        con,
        {
            **tables,
            "match.params": concat_frames(
                read_table(con, "match.params"), pd.DataFrame([dict(params_row)])
            ),
        },
        # the records just linked, copied inside DuckDB (no 1 M-row round trip through pandas);
        # nothing writes clean.records between this stage's read and this write
        copies={"match.linked_records": "clean.records"},
    )


def best_scores_sql() -> str:
    """SQL of ``record_key, match_score``: the best in-cluster link probability per record."""
    return (
        "WITH ends AS ("
        " SELECT left_key AS record_key, probability FROM match.pairs"
        "  WHERE decision = 'match' AND NOT isnan(probability)"
        " UNION ALL"
        " SELECT right_key, probability FROM match.pairs"
        "  WHERE decision = 'match' AND NOT isnan(probability)),"
        " best AS (SELECT record_key, max(probability) AS p FROM ends GROUP BY record_key)"
        " SELECT c.record_key, coalesce(best.p, 1.0)::DOUBLE AS match_score"
        " FROM match.clusters AS c LEFT JOIN best USING (record_key)"
    )


def best_scores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Best in-cluster link probability per record (1.0 for singletons), computed in DuckDB.

    Only the ``match`` pairs' best score per record leaves DuckDB (match.pairs is ~12 rows a
    record at scale); NaN or null probabilities never win, as with pandas' ``max``.
    """
    best = con.sql(best_scores_sql()).to_arrow_table()
    return best.to_pandas(types_mapper=lambda t: _TEXT if pa.types.is_string(t) else None)

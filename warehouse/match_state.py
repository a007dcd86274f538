"""The match layer's state in the warehouse: latest ``match.params``, rematch plan, writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.db import (
    create_empty_table,
    memory_limit_at_most,
    read_table,
    replace_tables,
    table_columns,
    table_exists,
    to_duckdb_arrow,
)
from warehouse.decision_changes import decided_records, with_decided_rows
from warehouse.ops import clean_changes_since, concat_frames, linked_run, record_match_run
from warehouse.signatures import frame_hash

if TYPE_CHECKING:
    from warehouse.match_subset import StoredSubset

_TEXT = pd.StringDtype("pyarrow", na_value=float("nan"))
log = logging.getLogger("customer_archive")

__all__ = [
    "LINKED_LAYOUT",
    "LINKED_TABLE",
    "PREPARED_TABLE",
    "READ_ROW_HASH",
    "READ_ROW_ID",
    "LatestParams",
    "ReadPairs",
    "RematchPlan",
    "StoredMatch",
    "best_scores",
    "best_scores_sql",
    "drop_changed_rows",
    "latest_params_row",
    "linked_layout",
    "match_state",
    "prepared_frame",
    "read_stored",
    "rematch_plan",
    "stored_is_usable",
    "stored_row_hash",
    "write_match_delta",
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


PREPARED_TABLE = "match.prepared"
"""The matcher's prepared records of the last link, one row per record_key (see `read_stored`)."""
PREPARED_VERSION = "prepared_version"
"""Column of `match.prepared`: the fingerprint of the code that prepared the row."""


@dataclass
class StoredMatch:
    """The previous link as ``match.*`` keeps it, read without record keys on the pairs.

    Attributes:
        prepared: ``match.prepared`` (without its version column), ordered by record_key.
        pairs: ``match.pairs`` as columns of numbers: left, right (positions into
            `prepared`), rule and hard (codes into `rule_names` / `hard_names`, -1 = none),
            score, probability and every ``<comparison>_level``.
        rule_names, hard_names: the labels behind the codes.
        labels: per prepared row, the position of its cluster's first record (None when
            read for a delta: `more` is set).
        steward_pairs: the pairs holding a steward decision (left_key, right_key,
            steward_decision).
        more: None when `pairs` holds every stored pair; else `pairs` holds only the strong
            ones (probability at or above the match threshold) and those with a steward
            decision, and ``more(mask)`` reads the stored pairs touching the prepared rows
            `mask` selects (same columns and codes as `pairs`).
    """

    prepared: pd.DataFrame
    pairs: dict[str, np.ndarray]
    rule_names: list[str]
    hard_names: list[str]
    labels: np.ndarray | None
    steward_pairs: pd.DataFrame
    more: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None


@dataclass
class RematchPlan:
    """What an incremental link needs: the changed records, the previous link and params.

    The previous link is read from ``match.prepared`` (`stored`: nothing is prepared again)
    or, for a delta read around the change only, through `reach`.
    """

    changed: pd.DataFrame
    params_json: str
    stored: StoredMatch | None = None
    delta: bool = False
    """Whether the link may be written as a delta (`write_match_delta`): `stored` (or
    `reach`) is set and every table it updates row by row exists."""
    reach: StoredSubset | None = None
    """Set instead of `stored` for a delta read around the change only
    (`warehouse.match_subset`): nothing of ``match.*`` is read up front."""
    changed_rows: str | None = None
    """The temporary table holding `changed` as ``clean.records`` holds it (every column, the
    types DuckDB stores), kept for the delta write's ``match.linked_records`` refresh
    (`write_match_delta`'s ``relinked_rows``: their fingerprints are hashed from it); the
    caller drops it (`drop_changed_rows`)."""


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


LINKED_TABLE = "match.linked_records"
"""The records of the last link, one row per record: ``record_key`` and ``fingerprint``, the
content hash (DuckDB's ``hash`` of every column, `linked_layout`) of its ``clean.records``
row as that link read it. A later link finds the changed records by comparing fingerprints
(`rematch_plan`). Before branch ``linkhash`` it was a full copy of ``clean.records`` (every
column): a warehouse holding that copy is still planned from it and its next match write
replaces it with the fingerprints (`linked_is_current`)."""
LINKED_LAYOUT = "match.linked_layout"
"""One row: what the fingerprints of `LINKED_TABLE` hash (`linked_layout`)."""
_FINGERPRINT = ("record_key", "fingerprint")
_HASH_PROBE = (
    "hash('客户档案'::VARCHAR, NULL::VARCHAR, true, NULL::BOOLEAN, 1::BIGINT, 0.5::DOUBLE,"
    " DATE '2026-12-07', NULL::DATE)::VARCHAR"
)
"""DuckDB's hash of fixed values of the types ``clean.records`` holds: a DuckDB whose
``hash`` differs (another release) hashes these otherwise, and its fingerprints are not
compared with the stored ones (a full link writes them again)."""


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join('"' + c.replace('"', '""') + '"' for c in columns)


_PAIR_KEYS = ("left_key", "right_key")

READ_ROW_ID = "stored_row_id"
"""The column of a read of stored pairs holding each pair's ``rowid`` in ``match.pairs``."""
READ_ROW_HASH = "stored_row_hash"
"""The column of a read of stored pairs holding the hash of each pair's stored values."""


def stored_row_hash(con: duckdb.DuckDBPyConnection, alias: str | None = None) -> str:
    """The SQL hash of a ``match.pairs`` row's values (every column but its two keys, in the
    table's order; `alias`: the table's alias in the query): how `write_match_delta` compares
    a stored pair with the delta's row of the same keys."""
    rest = [c for c in table_columns(con, "match.pairs") if c not in _PAIR_KEYS]
    return _row_hash(rest, alias)


def _row_hash(columns: Sequence[str], alias: str | None = None) -> str:
    if alias is None:
        return f"hash({_quoted(columns)})"
    return "hash(" + ", ".join(f"{alias}.{_quoted([c])}" for c in columns) + ")"


def storage_layout(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """A hash of where the rows of the table `name` (``schema.table``) are stored: its
    catalog oid and every column segment's row group, column, start, row count, compression,
    block and offset, persistence and updates (``pragma_storage_info``: metadata, no block of
    the table is read or decrypted).

    A ``rowid`` names a row by its row group's place and its offset in it. Rows are renumbered
    only when a checkpoint rewrites row groups without the rows deleted before (DuckDB's
    vacuum): the rewritten row groups hold other counts and other blocks, so an equal layout
    means the rowids read before it still name the same rows (`write_match_delta` then skips
    reading the keys at those rowids; `_write_changed_rows`). A table replaced whole has
    another oid."""
    schema, table = name.split(".")
    ((layout,),) = con.execute(
        "SELECT hash((SELECT list(table_oid) FROM duckdb_tables()"
        "  WHERE database_name = current_database() AND schema_name = ? AND table_name = ?),"
        " (SELECT list(s ORDER BY s) FROM (SELECT (row_group_id, column_id, column_path,"
        "  segment_id, segment_type, start, count, compression, block_id, block_offset,"
        f"  persistent, has_updates) AS s FROM pragma_storage_info({_sql_text(name)}))))",
        [schema, table],
    ).fetchall()
    return int(layout)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class ReadPairs:
    """The stored pairs a nightly link read (every stored pair among the records it read),
    as the delta write needs them: each pair's ends (positions into `keys`), its ``rowid`` in
    ``match.pairs`` and the hash of its stored values (`stored_row_hash`), read with the
    pairs (`warehouse.match_subset.StoredSubset`). `write_match_delta` finds the stored rows
    of its scope among these instead of scanning every stored pair (the write's scope lies
    within the records read), and deletes by the rowids (checked: a checkpoint since the
    read may have moved them).

    Attributes:
        keys: record keys (text) the positions refer to.
        left, right: positions into `keys`.
        row_id: ``rowid`` in ``match.pairs``.
        row_hash: `stored_row_hash` of the pair (unsigned 64-bit).
        layout: `storage_layout` of ``match.pairs`` before the first of the reads (None: not
            taken; the write then checks the keys at the rowids it deletes).
    """

    keys: np.ndarray
    left: np.ndarray
    right: np.ndarray
    row_id: np.ndarray
    row_hash: np.ndarray
    layout: int | None = None

    @classmethod
    def take(
        cls, keys: np.ndarray, pairs: dict[str, np.ndarray], layout: int | None = None
    ) -> ReadPairs:
        """Take the rowids and hashes out of a read's `pairs` (``left``/``right``: positions
        into `keys`); the ends are copied. `layout`: see the attribute."""
        return cls(
            np.asarray(keys, dtype=object),
            np.asarray(pairs["left"], dtype=np.int32).copy(),
            np.asarray(pairs["right"], dtype=np.int32).copy(),
            np.asarray(pairs.pop(READ_ROW_ID), dtype=np.int64),
            np.asarray(pairs.pop(READ_ROW_HASH), dtype=np.uint64),
            layout,
        )

    def scope(self, records: pa.Array, dropped_left: pa.Array, dropped_right: pa.Array) -> pa.Table:
        """The pairs with an end among `records` (``in_scope``) or both ends among the
        dropped pairs' (``also``: a superset of the dropped pairs, matched by key later), by
        key: row_id, left_key, right_key, row_hash, in_scope, also. Decided a record at a
        time (positions), the keys taken only for the pairs kept."""
        keys = pa.array(self.keys, type=pa.string())

        def among(values: pa.Array) -> np.ndarray:
            return pc.is_in(keys, value_set=values).to_numpy(zero_copy_only=False)

        hit = among(records)
        in_scope = hit[self.left] | hit[self.right]
        also = among(dropped_left)[self.left] & among(dropped_right)[self.right]
        kept = np.flatnonzero(in_scope | also)
        return pa.table({
            "row_id": self.row_id[kept],
            "left_key": keys.take(pa.array(self.left[kept])),
            "right_key": keys.take(pa.array(self.right[kept])),
            "row_hash": self.row_hash[kept],
            "in_scope": in_scope[kept],
            "also": also[kept],
        })  # fmt: skip


def linked_layout(con: duckdb.DuckDBPyConnection, source: str = "clean.records") -> pd.DataFrame:
    """What a fingerprint of ``clean.records`` hashes now, as `LINKED_LAYOUT` stores it.

    Columns: ``columns`` (JSON: every column's name and type, by name: the order they are
    hashed in) and ``hash_probe`` (`_HASH_PROBE`). `source`: ``clean.records`` or a table of
    some of its rows (the same columns, as ``CREATE TABLE … AS`` copies them).
    """
    relation = con.sql(f"SELECT * FROM {source} LIMIT 0")
    columns = sorted(zip(relation.columns, (str(t) for t in relation.types), strict=True))
    ((probe,),) = con.execute(f"SELECT {_HASH_PROBE}").fetchall()
    return pd.DataFrame(
        {"columns": [json.dumps(columns, ensure_ascii=False)], "hash_probe": [str(probe)]}
    )


def _fingerprint_sql(con: duckdb.DuckDBPyConnection, source: str = "clean.records") -> str:
    """SQL of ``record_key, fingerprint`` of `source`'s rows (``clean.records`` or a table of
    some of its rows: the same columns), hashed as `linked_layout` says."""
    columns = [name for name, _ in json.loads(linked_layout(con, source)["columns"].iloc[0])]
    return f"SELECT record_key, hash({_quoted(columns)}) AS fingerprint FROM {source}"


def linked_is_current(con: duckdb.DuckDBPyConnection, source: str = "clean.records") -> bool:
    """Whether `LINKED_TABLE` holds fingerprints hashed as `linked_layout` hashes `source`."""
    if not (table_exists(con, LINKED_TABLE) and table_exists(con, LINKED_LAYOUT)):
        return False
    if table_columns(con, LINKED_TABLE) != list(_FINGERPRINT):
        return False
    if sorted(table_columns(con, LINKED_LAYOUT)) != ["columns", "hash_probe"]:
        return False
    stored = con.execute(f"SELECT columns, hash_probe FROM {LINKED_LAYOUT}").fetchall()
    now = linked_layout(con, source)
    return stored == [(now["columns"].iloc[0], now["hash_probe"].iloc[0])]


def _linked_format(con: duckdb.DuckDBPyConnection) -> str | None:
    """How `LINKED_TABLE` tells the changed records: ``fingerprint`` (`linked_is_current`),
    ``copy`` (a warehouse of before ``linkhash``: a copy of ``clean.records`` of the same
    columns), or None (a full link is needed)."""
    if linked_is_current(con):
        return "fingerprint"
    if table_exists(con, LINKED_TABLE) and sorted(table_columns(con, "clean.records")) == sorted(
        table_columns(con, LINKED_TABLE)
    ):
        return "copy"
    return None


def rematch_plan(
    con: duckdb.DuckDBPyConnection,
    state: Mapping[str, str],
    prepared_version: str | None = None,
    strong_at: float | None = None,
    subset: bool = False,
) -> RematchPlan | None:
    """What an incremental link needs, or None when only a full rebuild is right.

    Full rebuild when: no previous link, the matching settings changed, the steward
    decisions changed since a link that kept no record of them (`warehouse.decision_changes`;
    when it did, the records of every decision added, changed or removed count as changed
    records: `decided_records`), records were removed (superseded files, erasure), the
    columns of ``clean.records`` (or DuckDB's hash) changed since the last link, or
    ``match.prepared`` does not hold every linked record prepared by `prepared_version`
    (another preparation code: every record is prepared and linked again). Otherwise only
    the new and changed records are linked against the previous set, with the previous
    model parameters. The changed records are
    found in DuckDB (their fingerprint in ``clean.records`` differs from or is missing in
    ``match.linked_records``): only they travel to pandas. When the clean change log covers
    every clean since the last link (``warehouse.ops.clean_changes_since``) only the records
    it lists are compared (the same result: no other row of ``clean.records`` changed since),
    else every record. The previous link is read from ``match.prepared`` (`read_stored`).
    With `strong_at` (the match threshold) and every table a delta updates, only the strong
    pairs are read now and the others on demand (`read_stored`): the plan is then a delta's
    (``delta``), and `con` must stay open until the link is done. With `subset` too, not
    even those: the plan's `reach` reads only the part of the stored link the change
    reaches (`warehouse.match_subset.StoredSubset`).
    """
    latest = latest_params_row(con)
    if latest is None or latest.settings != state["settings"]:
        return None
    decided = None  # only the steward decisions changed: their records are relinked too
    if latest.decisions != state["decisions"]:
        decided = decided_records(con, latest.decisions)
        if decided is None:
            return None
    if not table_exists(con, "match.pairs"):
        return None
    form = _linked_format(con)
    if form is None:
        return None
    if prepared_version is None or not stored_is_usable(con, prepared_version):
        return None
    changed = _changed_records(con, form)
    if changed is None:
        return None
    if decided is not None and len(decided):
        changed = with_decided_rows(con, CHANGED_ROWS, decided)
    delta = all(table_exists(con, name) for name in DELTA_TABLES)
    if delta and subset and strong_at is not None:
        from warehouse.match_subset import StoredSubset

        reach = StoredSubset(con, strong_at)
        return RematchPlan(changed, latest.params_json, None, True, reach, CHANGED_ROWS)
    try:
        stored = read_stored(con, strong_at if delta else None)
    except ValueError as err:  # unusable: every record is linked again
        log.warning("match.prepared not used (%s): a full link", err)
        drop_changed_rows(con)
        return None
    return RematchPlan(changed, latest.params_json, stored, delta, changed_rows=CHANGED_ROWS)


_LOGGED_ROWS = {
    "clean.records": "_rematch_clean_rows",
    LINKED_TABLE: "_rematch_linked_rows",
}
"""Temporary tables of the ``rowid`` of each side's rows of the logged records."""


CHANGED_ROWS = "_rematch_changed_rows"
"""The temporary table of the changed records' ``clean.records`` rows (`RematchPlan`)."""


def drop_changed_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary table of a plan's changed rows (`RematchPlan.changed_rows`)."""
    con.execute(f"DROP TABLE IF EXISTS {CHANGED_ROWS}")


def _changed_records(con: duckdb.DuckDBPyConnection, form: str) -> pd.DataFrame | None:
    """The rows of ``clean.records`` whose fingerprint ``match.linked_records`` does not
    hold; None when a linked record is no longer clean (removed: a full rebuild is right).

    `form` is `_linked_format`'s: ``fingerprint`` compares the fingerprints of the rows (the
    clean side hashed now), ``copy`` (an older warehouse's full copy) every column.

    The rows are kept in DuckDB too, as the temporary table `CHANGED_ROWS`: a delta write
    hashes the relinked records' fingerprints from there (a scan of their few rows, not of
    ``clean.records`` again; nothing writes ``clean.records`` in between).

    When the clean change log covers every clean since the last link
    (``warehouse.ops.clean_changes_since``), only the rows of the records it lists are
    compared: their ``rowid`` are found over the key column alone, and DuckDB reads the other
    columns of those rows only. The result is the same: no other row changed since that link
    left ``match.linked_records`` equal to ``clean.records``'s fingerprints. Else (first run,
    an older warehouse, a full clean, a link more than ``CLEAN_LOG_RUNS`` cleans behind)
    every row of both tables is compared.
    """
    logged = clean_changes_since(con, linked_run(con))
    within = dict.fromkeys(_LOGGED_ROWS, "")
    if logged is not None:
        for table, rows in _LOGGED_ROWS.items():
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {rows} AS SELECT rowid AS id FROM {table}"
                f" SEMI JOIN {logged} USING (record_key)"
            )
            within[table] = f" WHERE rowid IN (SELECT id FROM {rows})"
    clean, linked = within["clean.records"], within[LINKED_TABLE]
    try:
        (removed,) = con.execute(
            f"SELECT count(*) FROM (SELECT record_key FROM {LINKED_TABLE}{linked}"
            f" EXCEPT SELECT record_key FROM clean.records{clean})"
        ).fetchall()[0]
        if removed:
            return None
        if form == "fingerprint":
            now = _fingerprint_sql(con, "clean.records") + clean
            stored = f"SELECT {_quoted(_FINGERPRINT)} FROM {LINKED_TABLE}{linked}"
        else:
            listed = _quoted(table_columns(con, "clean.records"))
            now = f"SELECT {listed} FROM clean.records{clean}"
            stored = f"SELECT {listed} FROM {LINKED_TABLE}{linked}"
        keys = f"record_key IN (SELECT record_key FROM ({now} EXCEPT {stored}))"
        where = keys if logged is None else f"{clean.removeprefix(' WHERE ')} AND {keys}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {CHANGED_ROWS} AS SELECT * FROM clean.records"
            f" WHERE {where}"
        )
        changed = read_table(con, CHANGED_ROWS)
    finally:
        for rows in _LOGGED_ROWS.values():
            con.execute(f"DROP TABLE IF EXISTS {rows}")
        if logged is not None:
            con.execute(f"DROP TABLE IF EXISTS {logged}")
    assert changed is not None
    return changed


def stored_is_usable(con: duckdb.DuckDBPyConnection, prepared_version: str) -> bool:
    """Whether ``match.prepared`` holds exactly the linked records, all of `prepared_version`."""
    if not (table_exists(con, PREPARED_TABLE) and table_exists(con, "match.clusters")):
        return False
    if PREPARED_VERSION not in table_columns(con, PREPARED_TABLE):
        return False
    (other, rows, linked, clustered) = con.execute(
        f"SELECT (SELECT count(*) FROM {PREPARED_TABLE}"
        f"         WHERE {PREPARED_VERSION} IS DISTINCT FROM ?),"
        f" (SELECT count(*) FROM {PREPARED_TABLE}),"
        f" (SELECT count(*) FROM {LINKED_TABLE} AS l"
        f"   SEMI JOIN {PREPARED_TABLE} AS p USING (record_key)),"
        " (SELECT count(*) FROM match.clusters)",
        [prepared_version],
    ).fetchall()[0]
    (total,) = con.execute(f"SELECT count(*) FROM {LINKED_TABLE}").fetchall()[0]
    return other == 0 and rows == linked == total == clustered


_READ_FIRST = "coalesce(p.probability >= ? OR p.steward_decision IS NOT NULL, false)"
"""The stored pairs a delta reads up front (the parameter: the match threshold)."""

_POSITIONS = (
    "CREATE OR REPLACE TEMP TABLE _match_positions AS SELECT record_key,"
    " (row_number() OVER (ORDER BY record_key) - 1)::BIGINT AS pos FROM {table}"
)


def read_stored(con: duckdb.DuckDBPyConnection, strong_at: float | None = None) -> StoredMatch:
    """The previous link from ``match.prepared``, ``match.pairs`` and ``match.clusters``.

    Record keys are turned into positions inside DuckDB (the prepared records' order by
    record_key), so the pairs reach Python as numbers only: no key strings per pair.

    Args:
        con: the warehouse (kept open while `StoredMatch.more` is used).
        strong_at: None = read every pair and the cluster labels; else read only the pairs
            whose probability is at least this (or that hold a steward decision), no labels,
            and set `StoredMatch.more` to read the others a nightly delta needs.

    Raises:
        ValueError: a pair or cluster names a record ``match.prepared`` does not hold.
    """
    con.execute(_POSITIONS.format(table=PREPARED_TABLE))
    try:
        prepared = prepared_frame(
            con.sql(
                f"SELECT * EXCLUDE ({PREPARED_VERSION}) FROM {PREPARED_TABLE} ORDER BY record_key"
            ).to_arrow_table()
        )
        keys = prepared["record_key"].to_numpy(dtype=object)
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
            raise ValueError("DuckDB's record_key order is not the matcher's (a collation?)")
        names, levels = stored_pair_labels(con)
        select = stored_pair_select(levels, "l.pos AS left", "r.pos AS right")
        where = "" if strong_at is None else f" WHERE {_READ_FIRST}"
        table = con.sql(
            f"SELECT {select} FROM match.pairs AS p"
            " JOIN _match_positions AS l ON p.left_key = l.record_key"
            " JOIN _match_positions AS r ON p.right_key = r.record_key"
            f"{where} ORDER BY l.pos, r.pos",
            params=[names["rule"], names["hard_rule"], *([] if strong_at is None else [strong_at])],
        ).to_arrow_table()
        if strong_at is None:
            (total,) = con.execute("SELECT count(*) FROM match.pairs").fetchall()[0]
            unknown = total - table.num_rows
        else:  # the pairs not read now must fit the records too
            (unknown,) = con.execute(
                "SELECT count(*) FROM match.pairs AS p WHERE NOT EXISTS"
                " (SELECT 1 FROM _match_positions AS l WHERE l.record_key = p.left_key)"
                " OR NOT EXISTS"
                " (SELECT 1 FROM _match_positions AS r WHERE r.record_key = p.right_key)"
            ).fetchall()[0]
        if unknown:
            raise ValueError(f"{unknown} stored pair(s) name records not in {PREPARED_TABLE}")
        pairs = {c: table.column(c).to_numpy() for c in table.column_names}
        del table
        labels = None
        if strong_at is None:
            labels = (
                con.sql(
                    "SELECT k.pos, f.pos AS label FROM match.clusters AS c"
                    " JOIN _match_positions AS k USING (record_key)"
                    " JOIN _match_positions AS f ON c.cluster_key = f.record_key"
                    " ORDER BY k.pos"
                )
                .to_arrow_table()
                .column("label")
                .to_numpy()
                .astype(np.int64)
            )
            if len(labels) != len(prepared):
                raise ValueError(f"match.clusters does not cover {PREPARED_TABLE}")
        steward = read_table(
            con,
            "match.pairs",
            ["left_key", "right_key", "steward_decision"],
            where="steward_decision IS NOT NULL",
        )
        assert steward is not None
    finally:
        con.execute("DROP TABLE IF EXISTS _match_positions")
    more = None
    if strong_at is not None:
        keys = arrow_keys(prepared["record_key"])

        def more(mask: np.ndarray) -> dict[str, np.ndarray]:
            return _pairs_touching(
                con, keys, mask, names["rule"], names["hard_rule"], levels, strong_at
            )

    return StoredMatch(prepared, pairs, names["rule"], names["hard_rule"], labels, steward, more)


def stored_pair_labels(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, list[str]], list[str]]:
    """The labels behind the rule codes of ``match.pairs`` and its level columns.

    Returns:
        ({"rule": [...], "hard_rule": [...]}, each sorted: a code is an index into it; the
        ``<comparison>_level`` columns).
    """
    names = {
        column: [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {column} FROM match.pairs WHERE {column} IS NOT NULL"
                f" ORDER BY {column}"
            ).fetchall()
        ]
        for column in ("rule", "hard_rule")
    }
    levels = [c for c in table_columns(con, "match.pairs") if c.endswith("_level")]
    return names, levels


def stored_pair_select(levels: list[str], left: str, right: str) -> str:
    """The select list that reads stored pairs (alias ``p``) as the matcher's arrays.

    `left` and `right` select the two ends; rule and hard rule become codes into the label
    lists of `stored_pair_labels`, passed as the first two query parameters.
    """
    return ", ".join(
        [
            left,
            right,
            "(coalesce(list_position(?::VARCHAR[], p.rule), 0) - 1)::SMALLINT AS rule",
            "p.score",
            "p.probability",
            "(coalesce(list_position(?::VARCHAR[], p.hard_rule), 0) - 1)::SMALLINT AS hard",
            *('p."' + c.replace('"', '""') + '"' for c in levels),
        ]
    )


def arrow_keys(keys: pd.Series) -> pa.Array:
    """Record keys as one Arrow string array (positions index into it)."""
    return pa.array(keys.to_numpy(dtype=object), type=pa.string())


def _pairs_touching(
    con: duckdb.DuckDBPyConnection,
    keys: pa.Array,
    mask: np.ndarray,
    rule_names: list[str],
    hard_names: list[str],
    levels: list[str],
    strong_at: float,
) -> dict[str, np.ndarray]:
    """The stored pairs with an endpoint among ``keys[mask]`` not read up front (below
    `strong_at`, no steward decision), as `read_stored` reads pairs.

    Filtered by record key inside DuckDB; only the matching pairs' keys reach Python, where
    they become positions into `keys` (hashed in Arrow).
    """
    import pyarrow.compute as pc

    wanted = pa.table({"record_key": keys.filter(pa.array(mask))})
    select = stored_pair_select(levels, "p.left_key", "p.right_key")
    con.register("_match_wanted", wanted)
    try:
        table = con.sql(
            f"SELECT {select} FROM match.pairs AS p"
            " WHERE (p.left_key IN (SELECT record_key FROM _match_wanted)"
            " OR p.right_key IN (SELECT record_key FROM _match_wanted))"
            f" AND NOT {_READ_FIRST}",
            params=[rule_names, hard_names, strong_at],
        ).to_arrow_table()
    finally:
        con.unregister("_match_wanted")
    out = {
        side: pc.index_in(table.column(f"{side}_key"), value_set=keys)
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
        for side in ("left", "right")
    }
    for name in table.column_names[2:]:
        out[name] = table.column(name).to_numpy()
    return out


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def prepared_frame(table: pa.Table) -> pd.DataFrame:
    """Prepared records as the matcher holds them: flags bool, text as pandas' default
    ``str`` (Arrow-backed, NaN for null), a column of nulls only as object (None).

    The same frame as ``pd.DataFrame`` of the columns as Python objects infers, built from
    the Arrow buffers without making a Python string of every value (≈ 8× less CPU).
    """
    columns: dict[str, object] = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_boolean(field.type):
            columns[field.name] = column.fill_null(False).to_numpy()
        elif (
            pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        ) and column.null_count < len(column):
            columns[field.name] = column.to_pandas(types_mapper=lambda _: _STR)
        else:
            values = column.to_numpy(zero_copy_only=False)
            columns[field.name] = np.asarray(values, dtype=object)
    return pd.DataFrame(columns, copy=False)


def write_match_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, pd.DataFrame],
    params_row: Mapping[str, object],
    prepared: pd.DataFrame | pa.RecordBatchReader | None = None,
    prepared_version: str | None = None,
    prepared_rows: str = "all",
    relinked: pd.Series | None = None,
    pair_batches: pa.RecordBatchReader | Sequence[pa.RecordBatchReader] | None = None,
) -> None:
    """Replace ``match.*`` with a link result in one transaction and append its params row.

    Args:
        con: the warehouse.
        tables: ``match.pairs``, ``match.clusters``, ``match.review_queue``,
            ``match.blocking_stats`` frames.
        params_row: the ``match.params`` row (run_id, created_at, params, mode, state hashes).
        prepared: the prepared records to keep in ``match.prepared``: every linked record
            (`prepared_rows` "all": the table is replaced) or only those this run prepared
            or re-flagged ("changed": their rows are replaced by record_key). None drops
            ``match.prepared`` (the next incremental link prepares every record again).
            Every record's rows may also come as `prepared_batches`' stream (with
            `pair_batches` only: a sharded rebuild stages them in a file).
        prepared_version: the fingerprint of the code that prepared them (required with
            `prepared`).
        prepared_rows: "all" or "changed".
        relinked: the record keys an incremental link relinked (new and changed records):
            only their fingerprints in ``match.linked_records`` are hashed from
            ``clean.records`` again (no record was removed, else the link is a full one);
            None = every record's (also when the stored fingerprints are not hashed as
            `linked_layout` hashes now: an older warehouse's copy is replaced).
        pair_batches: ``match.pairs`` as a stream of Arrow record batches (then not in
            `tables`): DuckDB reads it a batch at a time, so the pairs never exist as one
            frame (a full link's 14 M pairs at 1 M records). Several streams (consecutive
            pairs, in order) are written as their ``UNION ALL``: DuckDB's threads store
            them side by side (one stream is read by one thread), the rows in the same order.
    """
    if pair_batches is not None and "match.pairs" in tables:
        raise ValueError("match.pairs given twice: as a frame and as record batches")
    # logged first (every row may change): a failed write leaves a `full` entry, never a gap
    record_match_run(con, str(params_row["run_id"]), "full")
    frames: dict[str, pd.DataFrame] = {
        **tables,
        "match.params": concat_frames(
            read_table(con, "match.params"), pd.DataFrame([dict(params_row)])
        ),
    }
    upserts: dict[str, tuple[pd.DataFrame, str]] = {}
    drops: list[str] = []
    streams: dict[str, pa.RecordBatchReader] = {}
    if prepared is None:
        drops.append(PREPARED_TABLE)
    else:
        if prepared_version is None:
            raise ValueError("prepared records need the version of the code that prepared them")
        if isinstance(prepared, pa.RecordBatchReader):
            if prepared_rows != "all" or pair_batches is None:
                raise ValueError("a stream of prepared records is written whole, with pairs")
            if PREPARED_VERSION not in prepared.schema.names:
                raise ValueError(f"the prepared records' stream has no {PREPARED_VERSION} column")
            streams[PREPARED_TABLE] = prepared
        elif prepared_rows == "all" and pair_batches is not None:
            # streamed like the pairs, a slice at a time, and written first: the frame is let
            # go once DuckDB has read it, before the pairs are written
            streams[PREPARED_TABLE] = _frame_stream(prepared, {PREPARED_VERSION: prepared_version})
        else:
            rows = prepared.assign(**{PREPARED_VERSION: prepared_version})
            if prepared_rows == "all":
                frames[PREPARED_TABLE] = rows
            elif prepared_rows == "changed":
                upserts[PREPARED_TABLE] = (rows, "record_key")
            else:
                raise ValueError(f"prepared_rows must be 'all' or 'changed', not {prepared_rows!r}")
    del prepared
    parts: list[pa.RecordBatchReader] = []
    if isinstance(pair_batches, pa.RecordBatchReader):
        streams["match.pairs"] = pair_batches
    elif pair_batches is not None:
        parts = list(pair_batches)
    views = {name: f"_stream_{name.replace('.', '_')}" for name in streams}
    # the streams, registered as views, are copied in like tables (in the same transaction)
    copies = {name: views[name] for name in streams if name != "match.pairs"}
    # the fingerprints of the linked records, hashed inside DuckDB in the write's transaction
    # (no round trip through pandas; nothing writes clean.records between this stage's read
    # and this write): a view over clean.records, copied whole or refreshed by key
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_FINGERPRINTS} AS {_fingerprint_sql(con)}")
    if relinked is not None and not linked_is_current(con):
        relinked = None
    if relinked is None:
        copies[LINKED_TABLE] = _FINGERPRINTS
        frames[LINKED_LAYOUT] = linked_layout(con)
    if "match.pairs" in streams:
        copies["match.pairs"] = views["match.pairs"]
    for name, stream in streams.items():
        con.register(views[name], stream)
    registered = list(views.values())
    if parts:  # one view over the parts, in order
        part_views = [f"_stream_match_pairs_{i}" for i in range(len(parts))]
        for view, part in zip(part_views, parts, strict=True):
            con.register(view, part)
        registered += part_views
        copies["match.pairs"] = "_stream_match_pairs"
        con.execute(
            "CREATE OR REPLACE TEMP VIEW _stream_match_pairs AS "
            + " UNION ALL ".join(f"SELECT * FROM {view}" for view in part_views)
        )
    del streams, pair_batches, parts
    try:
        replace_tables(
            con,
            frames,
            copies=copies,
            upserts=upserts,
            drops=drops,
            refreshes=(
                {}
                if relinked is None
                else {
                    LINKED_TABLE: (
                        _FINGERPRINTS,
                        pd.DataFrame({"record_key": relinked.astype(str).to_numpy(dtype=object)}),
                    )
                }
            ),
        )
    finally:
        con.execute(f"DROP VIEW IF EXISTS {_FINGERPRINTS}")
        if len(registered) > len(views):
            con.execute("DROP VIEW IF EXISTS _stream_match_pairs")
        for view in registered:
            con.unregister(view)


_FINGERPRINTS = "_linked_fingerprints"
"""The temporary view of ``clean.records``' fingerprints a full write copies."""

_PREPARED_BATCH_ROWS = 100_000


def prepared_batches(prepared: pd.DataFrame, version: str) -> pa.RecordBatchReader:
    """Every prepared record as the record batches `write_match_tables` streams into
    ``match.prepared`` (with the code's `version`): a sharded rebuild stages them in a file
    and hands the file's stream back to `write_match_tables`."""
    return _frame_stream(prepared, {PREPARED_VERSION: version})


def _frame_stream(
    frame: pd.DataFrame, constants: Mapping[str, str], rows: int = _PREPARED_BATCH_ROWS
) -> pa.RecordBatchReader:
    """`frame` plus constant columns as Arrow record batches of `rows` rows, converted one
    slice at a time (all-null columns typed as text, as `to_duckdb_arrow` types them).

    The stream holds the frame until it is read to the end, then lets go of it.
    """
    first = pa.Table.from_pandas(frame.iloc[:rows].assign(**constants), preserve_index=False)
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in first.schema]
    )
    del first

    def batches(frame: pd.DataFrame = frame) -> Iterator[pa.RecordBatch]:
        for start in range(0, len(frame), rows):
            part = frame.iloc[start : start + rows].assign(**constants)
            yield from pa.Table.from_pandas(part, preserve_index=False).cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


DELTA_TABLES = ("match.pairs", "match.clusters", "match.review_queue")
"""The tables a nightly link updates row by row (`write_match_delta`); the others are small."""


DELTA_WRITE_MEMORY_MIB = 512
"""DuckDB's ``memory_limit`` while `write_match_delta` works (at most; a lower limit stays).
At 1 M records the write's own rise was ≈ 0.9 GB under the 2 GiB (or a 1 GiB) limit and
≈ 0.5 GB under 512 MiB, at the same CPU (BENCHMARKS.md, branch ``nmatch9``)."""


@dataclass(frozen=True)
class DeltaWrite:
    """What `write_match_delta` changed: rows deleted and inserted per table."""

    deleted: dict[str, int]
    inserted: dict[str, int]


def write_match_delta(
    con: duckdb.DuckDBPyConnection,
    records: pd.Series,
    tables: MutableMapping[str, pd.DataFrame],
    params_row: Mapping[str, object],
    prepared: pd.DataFrame,
    prepared_version: str,
    relinked: pd.Series,
    dropped: pd.DataFrame | None = None,
    within: pd.Series | None = None,
    relinked_rows: str | None = None,
    read_pairs: ReadPairs | None = None,
) -> DeltaWrite:
    """Write a nightly link's delta over ``match.*`` in one transaction.

    The delta's rows replace the stored rows of its scope: the ``match.clusters`` rows of
    `records`, and the ``match.pairs`` and ``match.review_queue`` rows with an endpoint in
    `records` (and, with `within`, the other endpoint in `within`). Only rows that differ are
    written: a stored row of the scope equal to a delta row (every column) stays as it is; a
    stored row of the scope the delta lacks, or holds otherwise, is deleted, as are the
    `dropped` pairs; a delta row not stored as it is is inserted. Every row outside the scope
    stays as it is (not read, not rewritten). ``match.blocking_stats`` is replaced, the params
    row appended, ``match.prepared`` updated with the rows this run prepared or re-flagged
    and the relinked records' fingerprints in ``match.linked_records`` replaced (every
    record's when the stored ones are not hashed as `linked_layout` hashes now: an older
    warehouse's full copy of ``clean.records`` is replaced). The records whose
    ``match.pairs`` or ``match.clusters`` rows were deleted or inserted are logged in the same
    transaction (``warehouse.ops.record_match_run``): the golden build hashes only those.

    The rows to delete and insert are worked out under DuckDB's ``memory_limit`` lowered to
    `DELTA_WRITE_MEMORY_MIB` (`memory_limit_at_most`; set back after the write): the scope's
    scan of ``match.pairs`` and the comparison run beside the delta's frames, and under the
    warehouse's limit (2 GiB by default) DuckDB kept the scanned blocks cached on top of
    them — a 1 M nightly's peak. Each delta frame is taken out of `tables` once DuckDB holds
    its rows, so a caller that keeps no other reference lets it go before the next.

    Args:
        con: the warehouse (``match.*`` written by an earlier link).
        records: the affected record keys (`dedupe.LinkDelta.records`).
        tables: ``match.pairs``, ``match.clusters``, ``match.review_queue`` rows of the
            affected records and ``match.blocking_stats``; the first three are removed from
            it (handed over).
        params_row: the ``match.params`` row.
        prepared: the prepared rows this run prepared or re-flagged.
        prepared_version: the fingerprint of the code that prepared them.
        relinked: the new and changed record keys.
        dropped: pairs (left_key, right_key) deleted from ``match.pairs`` and
            ``match.review_queue`` besides the affected records' (`dedupe.LinkDelta.dropped`).
        within: the records the link read (`dedupe.LinkDelta.partial`: its pairs hold the
            affected records' pairs with these only); None = every record.
        relinked_rows: a table holding the `relinked` records' ``clean.records`` rows as
            they are now (`RematchPlan.changed_rows`), their fingerprints hashed from it;
            None: from ``clean.records`` (a scan of every column of it).
        read_pairs: every stored pair among the records `within` (with `within` only), as
            the link read them with their rowids and hashes: the stored pairs of the scope
            (and the dropped ones) are found among these, not by a scan of ``match.pairs``
            (docs/dedupe.md, "The nightly link from the reached records only").

    Returns:
        Rows deleted and inserted per table.

    Raises:
        ValueError: a table the delta updates is missing (a full write is needed).
        duckdb.Error: a write failed; every table keeps its previous content.
    """
    for name in (*DELTA_TABLES, PREPARED_TABLE, LINKED_TABLE):
        if not table_exists(con, name):
            raise ValueError(f"{name} is missing: a nightly link cannot be written as a delta")
    # the relinked rows' table has clean.records' columns: the write reads nothing else of it
    refresh = linked_is_current(con, relinked_rows or "clean.records")
    rows = prepared.assign(**{PREPARED_VERSION: prepared_version})
    params = concat_frames(read_table(con, "match.params"), pd.DataFrame([dict(params_row)]))
    views = {
        "_delta_keys": _key_table(records),
        "_delta_relinked": _key_table(relinked),
        "_delta_prepared": to_duckdb_arrow(rows),
        "_delta_params": to_duckdb_arrow(params),
        "_delta_dropped": pa.table(
            {
                side: pa.array(
                    [] if dropped is None else dropped[side].astype(str).to_numpy(dtype=object),
                    type=pa.string(),
                )
                for side in ("left_key", "right_key")
            }
        ),
    }
    if within is not None:
        views["_delta_within"] = _key_table(within)
    if read_pairs is not None:
        if within is None:
            raise ValueError("the pairs a link read are the stored pairs of a partial delta")
        views[_READ_PAIRS] = read_pairs.scope(
            views["_delta_keys"].column("record_key").combine_chunks(),
            views["_delta_dropped"].column("left_key").combine_chunks(),
            views["_delta_dropped"].column("right_key").combine_chunks(),
        )
    if not refresh:
        views["_delta_layout"] = to_duckdb_arrow(linked_layout(con))
    stats = tables.get("match.blocking_stats")
    if stats is not None:
        views["_delta_stats"] = to_duckdb_arrow(stats)
    deleted: dict[str, int] = {}
    inserted: dict[str, int] = {}
    for view, table in views.items():
        con.register(view, table)
    with memory_limit_at_most(con, DELTA_WRITE_MEMORY_MIB):
        temps = [_CHANGED_KEYS]
        began = False
        try:
            # the rows to delete and insert are worked out before the transaction, into temporary
            # tables it only reads, and the delta's table is created from column DDL: DuckDB 2.0.0
            # (threads > 1) scans as empty an insert of >= one row group (122,880 rows) into a
            # table created empty by a CTAS in the same transaction — a 1 M-record nightly's 0.8 M
            # delta pairs then compared as an empty delta, every stored pair of its scope deleted
            # and none inserted (`_changed_rows`; docs/warehouse.md)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_CHANGED_KEYS} (record_key VARCHAR)")
            # each table's storage layout when its rowids were read (the read pairs': before
            # the link's first read of them): the write skips the key check while it is equal
            layouts: dict[str, int | None] = {}
            if read_pairs is not None:
                layouts["match.pairs"] = read_pairs.layout
            for name in DELTA_TABLES:
                view = f"_delta_{name.split('.')[1]}"
                # one delta frame at a time in Arrow, let go of once DuckDB holds its rows
                con.register(view, to_duckdb_arrow(tables.pop(name)))
                try:
                    temps += _changed_rows(
                        con, name, view, within is not None, logged=name in _LOGGED_TABLES,
                        stored=_READ_PAIRS if read_pairs is not None and name == "match.pairs"
                        else None, layouts=layouts,
                    )  # fmt: skip
                finally:
                    con.unregister(view)
            for by_rowid in (True, False):
                con.execute("BEGIN TRANSACTION")
                began = True
                try:
                    for name in DELTA_TABLES:
                        deleted[name], inserted[name] = _write_changed_rows(
                            con, name, by_rowid, layout=layouts.get(name)
                        )
                except RowidsMoved as moved:
                    # (a checkpoint since the comparison: delete by key, as a scan of them)
                    con.execute("ROLLBACK")
                    began = False
                    log.warning("%s; the delta is written by key", moved)
                    continue
                break
            record_match_run(con, str(params_row["run_id"]), "incremental", _CHANGED_KEYS)
            con.execute(
                f"DELETE FROM {PREPARED_TABLE} WHERE record_key IN"
                " (SELECT record_key FROM _delta_prepared)"
            )
            con.execute(f"INSERT INTO {PREPARED_TABLE} BY NAME SELECT * FROM _delta_prepared")
            if refresh:
                con.execute(
                    f"DELETE FROM {LINKED_TABLE} WHERE record_key IN"
                    " (SELECT record_key FROM _delta_relinked)"
                )
                con.execute(
                    f"INSERT INTO {LINKED_TABLE} BY NAME"
                    f" {_fingerprint_sql(con, relinked_rows or 'clean.records')}"
                    " WHERE record_key IN (SELECT record_key FROM _delta_relinked)"
                )
            else:  # an older warehouse's copy (or other hashes): every record's fingerprint
                con.execute(f"CREATE OR REPLACE TABLE {LINKED_TABLE} AS {_fingerprint_sql(con)}")
                con.execute(
                    f"CREATE OR REPLACE TABLE {LINKED_LAYOUT} AS SELECT * FROM _delta_layout"
                )
            if stats is not None:
                con.execute(
                    "CREATE OR REPLACE TABLE match.blocking_stats AS SELECT * FROM _delta_stats"
                )
            con.execute("CREATE OR REPLACE TABLE match.params AS SELECT * FROM _delta_params")
            con.execute("COMMIT")
        except BaseException:
            if began:
                con.execute("ROLLBACK")
            raise
        finally:
            for view in views:
                con.unregister(view)
            for temp in temps:
                con.execute(f"DROP TABLE IF EXISTS {temp}")
    return DeltaWrite(deleted, inserted)


def _key_table(keys: pd.Series) -> pa.Table:
    """`keys` as a one-column Arrow table (``record_key``, text)."""
    return pa.table({"record_key": pa.array(keys.astype(str).to_numpy(dtype=object),
                                            type=pa.string())})  # fmt: skip


_LOGGED_TABLES = ("match.pairs", "match.clusters")
"""The tables whose changed rows name the records logged (what the golden build reads)."""
_CHANGED_KEYS = "_delta_changed_keys"
_READ_PAIRS = "_delta_stored_pairs"
"""The registered `ReadPairs.scope` (row_id, left_key, right_key, row_hash, in_scope, also)."""


def _temp(name: str, what: str) -> str:
    """The temporary table of `what` (``gone`` / ``added``) rows of the table `name`."""
    return f"_delta_{what}_{name.split('.')[1]}"


def _changed_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    view: str,
    within: bool,
    logged: bool = False,
    stored: str | None = None,
    layouts: dict[str, int | None] | None = None,
) -> list[str]:
    """The rows of `name` in the delta's scope that `view`'s rows replace, as temporary tables
    (``_temp(name, "gone")``: keys of the rows to delete; ``_temp(name, "added")``: rows to
    insert). Run outside the write's transaction (see `write_match_delta`).

    The scope: rows of the affected records (``_delta_keys``); for pair tables, those with an
    endpoint there (and, with `within`, the other in ``_delta_within``). The delta's rows are
    cast to the stored types first (as an insert would), then compared on every column. With
    `logged`, the records of every row deleted or inserted (both endpoints of a pair) are
    appended to ``_CHANGED_KEYS``. With `stored` (``match.pairs`` only: `ReadPairs.scope`,
    the stored pairs of the scope within the records read and of the dropped ones, marked),
    the stored rows are found there, not in a scan of the table. Without `stored`, the table's
    `storage_layout` as its scan finds the rowids is set in `layouts` (when given).

    Returns:
        The temporary tables made (the gone and added rows).
    """
    if name == "match.clusters":
        scope = "record_key IN (SELECT record_key FROM _delta_keys)"
        key = ["record_key"]
    else:
        scope = (
            "(left_key IN (SELECT record_key FROM _delta_keys)"
            " OR right_key IN (SELECT record_key FROM _delta_keys))"
        )
        key = ["left_key", "right_key"]
    gone, added = _temp(name, "gone"), _temp(name, "added")
    keys = ", ".join(key)
    # a row is compared by its key and one hash of its other columns (DuckDB's `hash`, as
    # the linked records' fingerprints): the scope's stored rows are held as key + hash,
    # not whole, and the set differences hash three columns a row, not every column
    rest = [c for c in table_columns(con, name) if c not in key]
    digest = _row_hash(rest)
    try:
        create_empty_table(con, "_delta_new", f"SELECT * FROM {name}", replace=True, temp=True)
        con.execute(f"INSERT INTO _delta_new BY NAME SELECT * FROM {view}")
        # one scan of the stored table: the scope's rows (key, hash) and, for pairs, the
        # stored rows of the dropped pairs, each with its `rowid` (what the write deletes by:
        # no second scan of the table's keys; `_write_changed_rows`)
        pairs = name != "match.clusters"
        also = (
            "(left_key IN (SELECT left_key FROM _delta_dropped)"
            " AND right_key IN (SELECT right_key FROM _delta_dropped))"
        )
        if stored is not None and name != "match.pairs":
            raise ValueError("only the stored pairs can be given as read")
        if stored is not None:  # (scope and dropped pairs marked already)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _delta_scan AS SELECT row_id, left_key,"
                f" right_key, row_hash, in_scope FROM {stored} WHERE in_scope OR also"
            )
        else:
            if layouts is not None:
                layouts[name] = storage_layout(con, name)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _delta_scan AS SELECT row_id, {keys}, {digest}"
                f" AS row_hash, in_scope FROM (SELECT rowid AS row_id, *, {scope} AS in_scope"
                f"{f', {also} AS also' if pairs else ''} FROM {name})"
                f" WHERE in_scope{' OR also' if pairs else ''}"
            )
        if within and pairs and stored is None:  # (after the scan: the table is large)
            con.execute(
                "UPDATE _delta_scan SET in_scope = false WHERE in_scope AND (left_key NOT IN"
                " (SELECT record_key FROM _delta_within)"
                " OR right_key NOT IN (SELECT record_key FROM _delta_within))"
            )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _delta_old AS SELECT {keys}, row_hash"
            " FROM _delta_scan WHERE in_scope"
        )
        # a stored row of the scope the delta lacks or holds otherwise, and the dropped pairs
        dropped = f" UNION SELECT {keys} FROM _delta_dropped" if pairs else ""
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {gone} AS SELECT DISTINCT {keys} FROM"
            f" (SELECT * FROM _delta_old EXCEPT SELECT {keys}, {digest} FROM _delta_new)"
            f"{dropped}"
        )
        # the stored rows of those keys (every one, as a delete by key finds them), by rowid
        on = " AND ".join(f"s.{k} = g.{k}" for k in key)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_temp(name, 'rows')} AS SELECT s.row_id,"
            f" {', '.join(f's.{k}' for k in key)} FROM _delta_scan AS s JOIN {gone} AS g ON {on}"
        )
        # a delta row not stored as it is: a set difference (DISTINCT: as EXCEPT gave it),
        # as the delta's rows are unique (one a pair, one a record); EXCEPT ALL gave the same
        # rows at ≈ 3× the CPU (DuckDB numbers the repeats of every row first)
        of_new = ", ".join(f"n.{_quoted([c])}" for c in rest)
        same = " AND ".join(
            [*(f"n.{k} IS NOT DISTINCT FROM o.{k}" for k in key), f"hash({of_new}) = o.row_hash"]
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {added} AS SELECT DISTINCT n.* FROM _delta_new AS n"
            f" ANTI JOIN _delta_old AS o ON {same}"
        )
    finally:
        for temp in ("_delta_new", "_delta_old", "_delta_scan"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    if logged:
        for k in key:
            con.execute(
                f"INSERT INTO {_CHANGED_KEYS} SELECT {k} FROM {gone} UNION SELECT {k} FROM {added}"
            )
    return [gone, added, _temp(name, "rows")]


class RowidsMoved(RuntimeError):
    """The stored rows `_changed_rows` found by ``rowid`` are no longer at those rowids (a
    checkpoint between the comparison and the write reorganised the table)."""


def _write_changed_rows(
    con: duckdb.DuckDBPyConnection, name: str, by_rowid: bool = True, layout: int | None = None
) -> tuple[int, int]:
    """Delete the gone rows of `name` and insert the added ones (`_changed_rows`).

    The gone rows are deleted by the ``rowid`` the comparison's scan found them at
    (``_temp(name, "rows")``), not by a join of the gone keys with every stored row's key (a
    scan of the table's key columns: ≈ 2 CPU s for ``match.pairs`` at 1 M records). The keys
    stored at those rowids are checked against the keys found first: a rowid that moved (a
    checkpoint between the comparison, run before the write's transaction, and the write)
    raises `RowidsMoved`, and the caller rolls back and writes by key (`by_rowid` False).
    That check reads the key columns of every vector holding a gone row (at 1 M records
    ≈ 90 k gone pairs lie in nearly every vector of ``match.pairs``, decrypted again: the
    link let its blocks go); it is skipped when the table's `storage_layout` is `layout`, the
    layout when the rowids were read (no row group rewritten since: no row moved).

    Returns:
        (rows deleted, rows inserted).

    Raises:
        RowidsMoved: with `by_rowid`, a stored row's key is not the key found at its rowid.
    """
    key = ["record_key"] if name == "match.clusters" else ["left_key", "right_key"]
    rows = _temp(name, "rows")
    if by_rowid:
        ((expected,),) = con.execute(f"SELECT count(*) FROM {rows}").fetchall()
        if layout is None or storage_layout(con, name) != layout:
            # (the stored keys at those rowids, read by rowid: not a scan of every key)
            at = f"SELECT {', '.join(key)} FROM {name} WHERE rowid IN (SELECT row_id FROM {rows})"
            ((found, differ),) = con.execute(
                f"SELECT (SELECT count(*) FROM ({at})),"
                f" (SELECT count(*) FROM ({at} EXCEPT ALL SELECT {', '.join(key)} FROM {rows}))"
            ).fetchall()
            if found != expected or differ:
                raise RowidsMoved(f"{name}: rows moved since the delta's comparison")
        (deleted,) = con.execute(
            f"DELETE FROM {name} WHERE rowid IN (SELECT row_id FROM {rows})"
        ).fetchone() or (0,)
        if deleted != expected:  # (a rowid past the table's end; rolled back by the caller)
            raise RowidsMoved(f"{name}: {deleted} rows deleted of {expected} found")
    else:
        on = " AND ".join(f"t.{k} = g.{k}" for k in key)
        (deleted,) = con.execute(
            f"DELETE FROM {name} AS t USING {_temp(name, 'gone')} AS g WHERE {on}"
        ).fetchone() or (0,)
    (inserted,) = con.execute(
        f"INSERT INTO {name} SELECT * FROM {_temp(name, 'added')}"
    ).fetchone() or (0,)
    return int(deleted), int(inserted)


def best_scores_sql(within: str | None = None) -> str:
    """SQL of ``record_key, match_score``: the best in-cluster link probability per record.

    With `within` (a table of ``record_key``) only those records' scores (the same values).
    """
    only = {
        side: "" if within is None else f" AND {side} IN (SELECT record_key FROM {within})"
        for side in ("left_key", "right_key", "c.record_key")
    }
    return (
        "WITH ends AS ("
        " SELECT left_key AS record_key, probability FROM match.pairs"
        f"  WHERE decision = 'match' AND NOT isnan(probability){only['left_key']}"
        " UNION ALL"
        " SELECT right_key, probability FROM match.pairs"
        f"  WHERE decision = 'match' AND NOT isnan(probability){only['right_key']}),"
        " best AS (SELECT record_key, max(probability) AS p FROM ends GROUP BY record_key)"
        " SELECT c.record_key, coalesce(best.p, 1.0)::DOUBLE AS match_score"
        " FROM match.clusters AS c LEFT JOIN best USING (record_key)"
        + ("" if within is None else f" WHERE TRUE{only['c.record_key']}")
    )


def best_scores(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Best in-cluster link probability per record (1.0 for singletons), computed in DuckDB.

    Only the ``match`` pairs' best score per record leaves DuckDB (match.pairs is ~12 rows a
    record at scale); NaN or null probabilities never win, as with pandas' ``max``.
    """
    best = con.sql(best_scores_sql()).to_arrow_table()
    return best.to_pandas(types_mapper=lambda t: _TEXT if pa.types.is_string(t) else None)

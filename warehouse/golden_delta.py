"""Incremental golden build: rebuild only the customers whose inputs changed, merge in SQL.

A customer's golden rows (customer, crosswalk, lineage, contacts, addresses, facts) depend only
on its own records, their best match scores and their facts, plus the run date through
classification (tier, lifecycle, 12-month revenue). So a night only needs to

1. hash the golden inputs of every record that may have changed in DuckDB (a TEMP table:
   record_key, customer_id, input hash) and compare them with the inputs of the published
   golden state
   (``match.golden_inputs``): a customer is *touched* when one of its records is new, gone,
   moved to another customer or changed (values, match score, transactions, interactions);
   only the changed records' rows are staged (``staging.golden_inputs`` is a view of the
   published inputs and ``staging.delta_golden_inputs``, ``stage_input_state``, and the swap
   replaces just those rows of ``match.golden_inputs``, ``state_swap``). The records that may
   have changed (``golden_scope``) are those the clean and match change logs list since the
   published state's run (``warehouse.ops.clean_changes_since``, ``match_changes_since``) and
   those of the clusters whose customer id was assigned again; when the logs do not cover
   every clean and link since that run (first run, a full clean or link, an older warehouse,
   too many runs), every record is hashed;
2. run ``build_golden`` on the touched customers' records only;
3. re-classify, as of the run date, only the untouched customers whose classification can
   change since the published state's date (a business date crossing a bound, found in SQL);
4. stage the result as a delta: ``staging.delta_<name>`` holds the rebuilt rows (and the
   re-classified customers), ``staging.<name>`` is a view of the new state over ``golden.*``;
   the swap deletes and inserts just those customers' rows, in one transaction.

The result equals a full build (tests compare content hashes). A full build is used when there
is no previous state, when the golden settings or the code changed, or when the published
golden tables are no longer the ones the state describes (a restore, an erasure, a manual
edit): ``match.golden_state`` keeps a fingerprint of them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from warehouse.classification import reclassify_candidates_sql
from warehouse.db import (
    create_empty_table,
    read_table,
    table_columns,
    table_exists,
    to_duckdb_arrow,
)
from warehouse.golden_staged import drop_staged
from warehouse.naming import GOLDEN_TABLES
from warehouse.ops import clean_changes_since, match_changes_since
from warehouse.settings import ClassificationSettings

log = logging.getLogger("customer_archive")

__all__ = [
    "ASSIGNMENTS",
    "INPUTS_TABLE",
    "STATE_TABLE",
    "TOUCHED_CUSTOMERS",
    "TOUCHED_RECORDS",
    "ClusterInvariantError",
    "GoldenPlan",
    "PublishedGolden",
    "check_exact_clusters",
    "clear_staged",
    "customer_where",
    "golden_fingerprint",
    "golden_scope",
    "id_assignment_inputs",
    "logged_changes",
    "plan_golden",
    "published_golden",
    "published_state",
    "read_subset",
    "reclassify_inputs",
    "stage_delta",
    "stage_input_state",
    "stage_inputs",
    "stage_state",
    "staged_delta",
    "state_swap",
    "store_assignments",
    "touched_records_where",
]

# beside match.linked_records (admin only: record → customer links are not for the ops role)
INPUTS_TABLE = "match.golden_inputs"
STATE_TABLE = "match.golden_state"
_STAGED_INPUTS = "staging.golden_inputs"
_NEW_INPUTS = "_golden_inputs_new"  # TEMP: this run's input hash of every record
_INPUT_CHANGES = "_golden_input_changes"  # TEMP: records whose inputs differ from the published
_REPLACED_INPUTS = "staging._golden_inputs_replaced"
_DELTA_INPUTS = "staging.delta_golden_inputs"
_STAGED_STATE = "staging.golden_state"
_TOUCHED = "staging._golden_touched"
TOUCHED_CUSTOMERS = _TOUCHED
"""Table of the ``customer_id`` of the customers to rebuild (written by ``plan_golden``; a
table of the warehouse, so another connection reads it too)."""
_CHANGED = "staging._golden_changed"  # touched + re-classified: whose golden.customers row changes
# Intermediates used only inside the golden stage are TEMP tables (one connection): in memory or
# the DuckDB temp directory, never written (encrypted, logged) into the warehouse file.
_CANDIDATES = "_golden_reclassify"
_ASSIGN = "_golden_assignments_frame"
ASSIGNMENTS = "_golden_assignments"
"""``record_key, customer_id`` of every clustered record this run (``store_assignments``): a
TEMP table of the golden stage's connection."""
_STABLE = "_golden_stable"
_ID_SCOPE = "_golden_id_clusters"  # TEMP: the clusters that may have changed (record, cluster)
_ID_CUSTOMERS = "_golden_id_customers"  # TEMP: the published customers of their records
_LOGGED = "_golden_logged"  # TEMP: the records the change logs list since the published run
_REASSIGNED = "_golden_reassigned"  # TEMP: records of the clusters assigned an id again
_SCOPE = "_golden_scope"  # TEMP: the records whose inputs may have changed (golden_scope)
TOUCHED_RECORDS = "_golden_touched_records"
"""TEMP table of the ``record_key`` of the touched customers' records (after ``plan_golden``)."""
_FINGERPRINTED = ("customers", "crosswalk")
# classification columns re-derived for untouched customers: column → SQL of the new value
_CLASS_SQL = {
    "tier": "{n}::VARCHAR",
    # every record deleted at source: classification does not apply (kept as published)
    "lifecycle": "CASE WHEN g.lifecycle = 'deleted_at_source' THEN g.lifecycle"
    " ELSE {n}::VARCHAR END",
    "is_returning": "{n}::BOOLEAN",
    "last_business_date": "{n}::DATE",
    "revenue_12m": "{n}::DOUBLE",
}


@dataclass(frozen=True)
class PublishedGolden:
    """The published golden state an incremental build starts from (``published_golden``):
    the golden tables' ``parts``, the date its classification is as of and the run that
    built it (None: unknown, a state from before it was kept)."""

    parts: Parts
    as_of: date | None
    run_id: str | None
    exact_clusters: bool = False
    """The build that staged it checked that each ``match.clusters`` cluster's records were
    exactly one customer's crosswalk records (``check_exact_clusters``): a nightly may then
    read only the changed clusters to assign ids (``id_assignment_inputs``)."""


@dataclass(frozen=True)
class GoldenPlan:
    """The customers to rebuild (``touched``), the published ones kept (``kept`` count) and
    the date the published classification is as of (None: unknown)."""

    touched: pd.Series
    kept: int
    as_of: date | None = None
    parts: Parts | None = None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _facts_hash_sql(table: str) -> str:
    return (
        f"SELECT record_key, sum(hash(f)::HUGEINT) AS h, count(*) AS n FROM {table} AS f"
        " GROUP BY record_key"
    )


def stage_inputs(
    con: duckdb.DuckDBPyConnection,
    assignments: pd.DataFrame | str,
    record_columns: Sequence[str],
    scores_sql: str,
    within: str | None = None,
) -> int:
    """Hash every record's golden inputs (a TEMP table; ``stage_input_state`` stages them).

    With `within` (a table of ``record_key``: ``golden_scope``) only those records' inputs
    are hashed, and only their facts read.

    Args:
        con: the warehouse (read-write).
        assignments: ``record_key, customer_id`` of every clean record (this run's IDs), or
            the name of a table holding them (``ASSIGNMENTS``).
        record_columns: the ``clean.records`` columns the golden build reads.
        scores_sql: SQL yielding ``record_key, match_score`` (the best link score per record).
        within: only these records (None: every record).

    Returns:
        The number of records hashed.
    """
    only = "" if within is None else f" WHERE record_key IN (SELECT record_key FROM {within})"
    present = set(table_columns(con, "clean.records"))
    cols = ", ".join(f"r.{_quote(c)}" for c in record_columns if c in present)
    facts = []
    joins = []
    for i, table in enumerate(("clean.transactions", "clean.interactions")):
        if table_exists(con, table):
            facts_table = table if within is None else f"(SELECT * FROM {table}{only})"
            joins.append(f" LEFT JOIN ({_facts_hash_sql(facts_table)}) AS f{i} USING (record_key)")
            facts += [f"f{i}.h", f"f{i}.n"]
    source = assignments if isinstance(assignments, str) else _ASSIGN
    if not isinstance(assignments, str):
        con.register(_ASSIGN, to_duckdb_arrow(assignments[["record_key", "customer_id"]]))
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_NEW_INPUTS} AS"
            f" SELECT r.record_key, a.customer_id,"
            f" hash({cols}, s.match_score{''.join(', ' + f for f in facts)}) AS input_hash"
            f" FROM (SELECT * FROM clean.records{only}) AS r JOIN {source} AS a USING (record_key)"
            f" LEFT JOIN ({scores_sql}) AS s USING (record_key)" + "".join(joins)
        )
    finally:
        if not isinstance(assignments, str):
            con.unregister(_ASSIGN)
    (hashed,) = con.execute(f"SELECT count(*) FROM {_NEW_INPUTS}").fetchall()[0]
    return int(hashed)


class ClusterInvariantError(RuntimeError):
    """The published crosswalk and ``match.clusters`` break the invariant a nightly's id
    assignment relies on (``id_assignment_inputs``), or an id assignment broke it."""


def id_assignment_inputs(
    con: duckdb.DuckDBPyConnection, run_date: date, logged: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]] | None:
    """What ``assign_customer_ids`` must see when the unchanged clusters keep their ids.

    A cluster is *stable* when its records are exactly the records of one published customer
    (``golden.crosswalk``): that customer's id picks it as home, nothing else claims it, and
    it yields no ID event, so ``assign_customer_ids`` over the other clusters and the other
    previous customers gives the same ids and events as over all of them. Found in SQL and
    kept in ``_golden_stable`` for ``store_assignments``.

    With `logged` (``logged_changes``: the records the clean and match change logs list since
    the published state's run; pass it only when that state is *cluster-exact*,
    ``PublishedGolden.exact_clusters``) only the clusters that may have changed are read:
    those holding a logged record or a record of a published customer that has one. Every
    other cluster is stable. The invariant that makes this true: when the published state
    was staged, the records of each ``match.clusters`` cluster were exactly the crosswalk
    records of one customer (``store_assignments`` checked it); a cluster none of whose
    records the logs list has the same rows since, and no record of its customer left it.
    Its customers' crosswalk rows are then exactly the unread clusters' records: the counts
    are compared, and on a difference (``match.clusters`` or ``golden.crosswalk`` changed
    outside a logged run) every cluster is read instead, with a warning: the run assigns the
    same ids as a full read, and no later night fails on it.

    Returns:
        ``(clusters, previous, issued)``: the other clusters (``record_key, cluster_key``), the
        other published customers' crosswalk rows (``record_key, customer_id``) and the ids
        already issued with ``run_date``'s stamp (all that ``assign_customer_ids`` reads of
        the issued ids); None without a published crosswalk.

    """
    if not table_exists(con, "golden.crosswalk"):
        return None
    for temp in (_ID_SCOPE, _ID_CUSTOMERS):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    clusters_table, crosswalk = "match.clusters", "golden.crosswalk"
    if logged is not None:
        try:
            _read_only_changed_clusters(con, logged)
        except ClusterInvariantError as exc:
            # a night must not fail because of what an earlier hand changed: read them all
            log.warning("golden ids: %s; every cluster is read this run", exc)
            logged = None
        else:
            clusters_table = _ID_SCOPE
            crosswalk = (
                f"(SELECT * FROM golden.crosswalk"
                f" WHERE customer_id IN (SELECT customer_id FROM {_ID_CUSTOMERS}))"
            )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_STABLE} AS"
        " WITH j AS (SELECT c.cluster_key::VARCHAR AS cluster_key, x.customer_id"
        f"  FROM {clusters_table} AS c LEFT JOIN golden.crosswalk AS x USING (record_key)),"
        " cs AS (SELECT cluster_key, count(*) AS n, count(customer_id) AS known,"
        "  count(DISTINCT customer_id) AS ids, min(customer_id) AS customer_id"
        "  FROM j GROUP BY cluster_key),"
        f" ps AS (SELECT customer_id, count(*) AS n FROM {crosswalk} AS x GROUP BY customer_id)"
        " SELECT cs.cluster_key, cs.customer_id FROM cs JOIN ps USING (customer_id)"
        " WHERE cs.ids = 1 AND cs.known = cs.n AND cs.n = ps.n"
    )
    clusters = read_table(
        con,
        clusters_table,
        ["record_key", "cluster_key"],
        where=f"cluster_key::VARCHAR NOT IN (SELECT cluster_key FROM {_STABLE})",
    )
    only = ""
    if logged is not None:
        only = f" AND customer_id IN (SELECT customer_id FROM {_ID_CUSTOMERS})"
    previous = read_table(
        con,
        "golden.crosswalk",
        ["record_key", "customer_id"],
        where=f"customer_id NOT IN (SELECT customer_id FROM {_STABLE}){only}",
    )
    assert clusters is not None and previous is not None
    stamp = f"C{run_date.strftime('%Y%m%d')}%"
    history = table_exists(con, "golden.customer_ids")
    issued = [
        str(r[0])
        for r in con.execute(
            "SELECT customer_id FROM golden.crosswalk WHERE customer_id LIKE ?"
            + (
                " UNION SELECT customer_id FROM golden.customer_ids WHERE customer_id LIKE ?"
                if history
                else ""
            ),
            [stamp, stamp] if history else [stamp],
        ).fetchall()
        if r[0] is not None
    ]
    return clusters, previous, issued


def _read_only_changed_clusters(con: duckdb.DuckDBPyConnection, logged: str) -> None:
    """``_ID_SCOPE``: the clusters that may have changed since the published state (those
    holding a `logged` record or a record of a published customer that has one), and
    ``_ID_CUSTOMERS``: the published customers of their records and of the logged ones.
    Check that what is left out matches (see ``id_assignment_inputs``)."""
    con.execute(
        f"CREATE TEMP TABLE {_ID_CUSTOMERS} AS SELECT DISTINCT customer_id FROM golden.crosswalk"
        f" WHERE record_key IN (SELECT record_key FROM {logged})"
    )
    con.execute(
        f"CREATE TEMP TABLE {_ID_SCOPE} AS"
        f" WITH seeds AS (SELECT record_key FROM {logged}"
        f"  UNION SELECT record_key FROM golden.crosswalk"
        f"  WHERE customer_id IN (SELECT customer_id FROM {_ID_CUSTOMERS})),"
        " keys AS (SELECT DISTINCT cluster_key FROM match.clusters"
        "  WHERE record_key IN (SELECT record_key FROM seeds))"
        " SELECT record_key, cluster_key FROM match.clusters"
        " WHERE cluster_key IN (SELECT cluster_key FROM keys)"
    )
    con.execute(
        f"INSERT INTO {_ID_CUSTOMERS} SELECT DISTINCT customer_id FROM golden.crosswalk"
        f" WHERE record_key IN (SELECT record_key FROM {_ID_SCOPE})"
        f" AND customer_id NOT IN (SELECT customer_id FROM {_ID_CUSTOMERS})"
    )
    (left_clusters, left_crosswalk) = con.execute(
        f"SELECT (SELECT count(*) FROM match.clusters) - (SELECT count(*) FROM {_ID_SCOPE}),"
        " (SELECT count(*) FROM golden.crosswalk) - (SELECT count(*) FROM golden.crosswalk"
        f"  WHERE customer_id IN (SELECT customer_id FROM {_ID_CUSTOMERS}))"
    ).fetchall()[0]
    if left_clusters != left_crosswalk:
        raise ClusterInvariantError(
            f"the clusters no change log lists hold {left_clusters} records but their"
            f" published customers {left_crosswalk}: match.clusters or golden.crosswalk was"
            " changed outside a logged run since the published golden state"
        )


def store_assignments(
    con: duckdb.DuckDBPyConnection, assignments: pd.DataFrame, stable: bool = True
) -> bool:
    """Write ``ASSIGNMENTS``: ``assignments`` (of the clusters handed to
    ``assign_customer_ids``), plus with ``stable`` the stable clusters' records with their
    kept ids (``id_assignment_inputs``; after a read of only the changed clusters, the other
    clusters' records with their published customers' ids). With ``stable`` the records of
    ``assignments`` are kept too (``_REASSIGNED``): only their customer id may differ from
    the published one, so ``golden_scope`` needs no comparison of every record's.

    Then check what the next night's ``id_assignment_inputs`` relies on for this run's
    assignments (``check_exact_clusters``).

    Returns:
        Whether the staged state is cluster-exact (``stage_state(exact_clusters=...)``).

    Raises:
        ClusterInvariantError: the handed clusters did not get one id each, distinct from
            each other's and from the kept ids.
    """
    con.execute(f"DROP TABLE IF EXISTS {_REASSIGNED}")
    con.register(_ASSIGN, to_duckdb_arrow(assignments[["record_key", "customer_id"]]))
    restricted = stable and table_exists(con, _ID_SCOPE)
    kept = ""
    if stable:
        kept = (
            f" UNION ALL SELECT c.record_key::VARCHAR, s.customer_id"
            f" FROM {_ID_SCOPE if restricted else 'match.clusters'} AS c"
            f" JOIN {_STABLE} AS s ON c.cluster_key::VARCHAR = s.cluster_key"
        )
    if restricted:  # the clusters not read: their records keep their published customer
        kept += (
            " UNION ALL SELECT record_key, customer_id FROM golden.crosswalk"
            f" WHERE customer_id NOT IN (SELECT customer_id FROM {_ID_CUSTOMERS})"
        )
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {ASSIGNMENTS} AS"
            f" SELECT record_key::VARCHAR AS record_key, customer_id::VARCHAR AS customer_id"
            f" FROM {_ASSIGN}" + kept
        )
        if stable:
            con.execute(
                f"CREATE TEMP TABLE {_REASSIGNED} AS SELECT record_key::VARCHAR AS record_key"
                f" FROM {_ASSIGN}"
            )
        exact = check_exact_clusters(con, _ASSIGN, _ID_SCOPE if restricted else None)
    finally:
        con.unregister(_ASSIGN)
    for temp in (_STABLE, _ID_SCOPE, _ID_CUSTOMERS):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    return exact


def check_exact_clusters(
    con: duckdb.DuckDBPyConnection, handed: str, read: str | None = None
) -> bool:
    """Whether ``ASSIGNMENTS`` is *cluster-exact*: every record of ``match.clusters`` is a
    ``clean.records`` record (so in the crosswalk this run stages) and each cluster's records
    are exactly one customer's. Only what this run decided is checked: the clusters handed
    to ``assign_customer_ids`` (`handed`: ``record_key, customer_id``) get one id each,
    distinct from each other's and from every kept id; and the records of the clusters read
    (`read`, after a read of only the changed clusters; None: every cluster) are clean. The
    kept clusters are exact by construction (stable: exactly one published customer) or by
    the published state's being exact (the clusters not read).

    Returns:
        False when a clustered record is not clean (the next night reads every cluster).

    Raises:
        ClusterInvariantError: a handed cluster got two ids, two handed clusters one id, or
            a handed id is a kept one: ``assign_customer_ids`` broke its contract.
    """
    clusters = "match.clusters" if read is None else read
    (split, shared, reused) = con.execute(
        f"WITH h AS (SELECT h.customer_id, c.cluster_key FROM {handed} AS h"
        f"  JOIN {clusters} AS c ON c.record_key = h.record_key::VARCHAR)"
        " SELECT (SELECT count(*) FROM (SELECT cluster_key FROM h GROUP BY cluster_key"
        "   HAVING count(DISTINCT customer_id) > 1)),"
        "  (SELECT count(*) FROM (SELECT customer_id FROM h GROUP BY customer_id"
        "   HAVING count(DISTINCT cluster_key) > 1)),"
        f"  (SELECT count(*) FROM {ASSIGNMENTS} WHERE customer_id IN"
        f"   (SELECT customer_id::VARCHAR FROM {handed}) AND record_key NOT IN"
        f"   (SELECT record_key::VARCHAR FROM {handed}))"
    ).fetchall()[0]
    if split or shared or reused:
        raise ClusterInvariantError(
            f"customer id assignment: {split} cluster(s) got two ids, {shared} id(s) went to"
            f" two clusters, {reused} kept record(s) share an id given to another cluster"
        )
    (records, clean) = con.execute(
        f"SELECT (SELECT count(DISTINCT record_key) FROM {clusters}),"
        f" (SELECT count(DISTINCT record_key) FROM clean.records"
        f"  WHERE record_key IN (SELECT record_key FROM {clusters}))"
    ).fetchall()[0]
    if records != clean:
        log.info(
            "golden     %d clustered record(s) not in clean.records: the next night reads"
            " every cluster to assign ids",
            records - clean,
        )
    return bool(records == clean)


Parts = dict[str, tuple[int, int | None]]
"""``golden table`` → (row count, sum of row hashes or None when not fingerprinted / empty)."""


def _parts(con: duckdb.DuckDBPyConnection, schema: str) -> Parts:
    """Row counts (and content hash sums of the key tables) of ``<schema>.<golden table>``
    (absent tables left out)."""
    present = _relations(con, schema)
    return {
        name: _parts_of(con, f"{schema}.{name}", name) for name in GOLDEN_TABLES if name in present
    }


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    """The tables and views of ``schema`` (one catalog query for all of them)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?"
        " UNION SELECT view_name FROM duckdb_views() WHERE schema_name = ?",
        [schema, schema],
    ).fetchall()
    return {str(r[0]) for r in rows}


def _digest(parts: Parts) -> str:
    """The fingerprint of ``parts`` (missing tables as ``-``; see ``golden_fingerprint``)."""
    out = []
    for name in GOLDEN_TABLES:
        if name not in parts:
            out.append(f"{name}:-")
            continue
        n, h = parts[name]
        out.append(f"{name}:{n}:{'' if name not in _FINGERPRINTED else h}")
    return hashlib.sha256("|".join(out).encode()).hexdigest()


def golden_fingerprint(con: duckdb.DuckDBPyConnection, schema: str) -> str:
    """A fingerprint of ``<schema>.<golden table>``: row counts, content hash of the key ones."""
    return _digest(_parts(con, schema))


def _parts_of(
    con: duckdb.DuckDBPyConnection, table: str, name: str, where: str = ""
) -> tuple[int, int | None]:
    """Row count (and content hash sum of a fingerprinted table) of an existing ``table``."""
    hashed = "sum(hash(t)::HUGEINT)" if name in _FINGERPRINTED else "NULL"
    n, h = con.execute(f"SELECT count(*), {hashed} FROM {table} AS t {where}").fetchall()[0]
    return int(n), None if h is None else int(h)


def _delta_digest(con: duckdb.DuckDBPyConnection, published: Parts) -> str:
    """The fingerprint of the staged delta state from the published one's parts: each sum less
    the replaced published rows plus the delta rows (sums of row hashes add up)."""
    parts: Parts = {}
    for name in GOLDEN_TABLES:
        n, h = published[name]
        where = f"WHERE customer_id IN (SELECT customer_id FROM {_keys(name)})"
        gone = _parts_of(con, f"golden.{name}", name, where)  # both exist: staged_delta
        new = _parts_of(con, _delta(name), name)
        count = n - gone[0] + new[0]
        total = None
        if name in _FINGERPRINTED and count:
            total = (h or 0) - (gone[1] or 0) + (new[1] or 0)
        parts[name] = (count, total)
    return _digest(parts)


def stage_state(
    con: duckdb.DuckDBPyConnection,
    settings_hash: str,
    as_of: date,
    published: Parts | None = None,
    run_id: str | None = None,
    exact_clusters: bool = False,
) -> None:
    """Write ``staging.golden_state`` (settings hash, fingerprint of ``staging.*``, run date,
    the run that built it: ``logged_changes`` reads the change logs since that run, and
    whether its assignments were checked cluster-exact: ``store_assignments``).

    After a delta build with the published state's ``parts`` (``GoldenPlan.parts``), the
    fingerprint is derived from them and the delta (no scan of the staged views).
    """
    if published is not None and staged_delta(con) is not None:
        fingerprint = _delta_digest(con, published)
    else:
        fingerprint = golden_fingerprint(con, "staging")
    frame = pd.DataFrame(
        [
            {
                "settings_hash": settings_hash,
                "fingerprint": fingerprint,
                "as_of": as_of.isoformat(),
                "run_id": run_id,
                "exact_clusters": exact_clusters,
            }
        ]
    )
    frame["run_id"] = frame["run_id"].astype("string")
    con.register("_golden_state", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {_STAGED_STATE} AS SELECT * FROM _golden_state")
    finally:
        con.unregister("_golden_state")


def state_swap(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """The state tables to publish beside the golden tables, as ``swap_tables`` arguments.

    Returns:
        ``(copies, row_updates)``: target → staged table copied whole, and target → (SQL
        condition, delta table) for the rows to replace. After an incremental build the
        input hashes were staged as a delta (``stage_input_state``): ``match.golden_inputs``
        gets its replaced records' rows deleted and the delta's rows inserted, which is what
        the staged view (published inputs less the replaced records plus the delta) holds,
        without rewriting every record's row. Otherwise (a full build, or a published table
        whose columns differ from the delta's) the staged inputs are copied whole.
        ``match.golden_state`` (one row) is always copied.
    """
    if not (table_exists(con, _STAGED_INPUTS) and table_exists(con, _STAGED_STATE)):
        return {}, {}
    copies = {STATE_TABLE: _STAGED_STATE}
    if _inputs_staged_as_delta(con):
        (replaced,) = con.execute(f"SELECT count(*) FROM {_REPLACED_INPUTS}").fetchall()[0]
        log.info("golden     inputs published as a delta: %d records replaced", replaced)
        where = f"record_key IN (SELECT record_key FROM {_REPLACED_INPUTS})"
        return copies, {INPUTS_TABLE: (where, _DELTA_INPUTS)}
    return {INPUTS_TABLE: _STAGED_INPUTS, **copies}, {}


def _inputs_staged_as_delta(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``staging.golden_inputs`` is the delta view over ``match.golden_inputs`` (and
    the published table has the delta's columns and types, so DELETE + INSERT equals it)."""
    staged = _relations(con, "staging")
    parts = (_STAGED_INPUTS, _DELTA_INPUTS, _REPLACED_INPUTS)
    if not all(t.split(".", 1)[1] in staged for t in parts):
        return False
    (views,) = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'staging' AND view_name = ?",
        [_STAGED_INPUTS.split(".", 1)[1]],
    ).fetchall()[0]
    if views != 1 or not table_exists(con, INPUTS_TABLE):
        return False

    def schema(name: str) -> list[tuple[str, str]]:
        return [(str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {name}").fetchall()]

    return schema(INPUTS_TABLE) == schema(_DELTA_INPUTS)


def published_state(con: duckdb.DuckDBPyConnection) -> str | None:
    """The fingerprint of the published golden state (``match.golden_state``), if any."""
    if not table_exists(con, STATE_TABLE):
        return None
    rows = con.execute(f"SELECT fingerprint FROM {STATE_TABLE}").fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None


def published_golden(con: duckdb.DuckDBPyConnection, settings_hash: str) -> PublishedGolden | None:
    """The published golden state an incremental build may start from, or None when only a
    full build is right: no published state, the settings hash differs, or ``golden.*`` is
    not the state the published inputs describe (the reason is logged)."""
    if not (table_exists(con, INPUTS_TABLE) and table_exists(con, STATE_TABLE)):
        log.info("golden     full build: no published golden state yet")
        return None
    golden = _relations(con, "golden")
    missing = [t for t in GOLDEN_TABLES if t not in golden]
    if missing:
        log.info("golden     full build: golden tables missing: %s", ", ".join(missing))
        return None
    have = table_columns(con, STATE_TABLE)
    optional = ", ".join(c if c in have else "NULL" for c in ("as_of", "run_id", "exact_clusters"))
    rows = con.execute(
        f"SELECT settings_hash, fingerprint, {optional} FROM {STATE_TABLE}"
    ).fetchall()
    if len(rows) != 1:
        log.info("golden     full build: %d rows in %s (expected 1)", len(rows), STATE_TABLE)
        return None
    row = rows[0]
    if row[0] != settings_hash:
        log.info("golden     full build: golden settings or code changed since the last build")
        return None
    parts = _parts(con, "golden")
    if row[1] != _digest(parts):
        log.warning(
            "golden     full build: golden.* is not the state the last build published"
            " (fingerprint differs: changed outside a run, restored, or erased)"
        )
        return None
    as_of = date.fromisoformat(row[2]) if row[2] else None
    return PublishedGolden(
        parts=parts,
        as_of=as_of,
        run_id=None if row[3] is None else str(row[3]),
        exact_clusters=bool(row[4]),
    )


def logged_changes(con: duckdb.DuckDBPyConnection, published: PublishedGolden) -> str | None:
    """A TEMP table of the records the clean and match change logs list since the run that
    built the published state, or None when a log cannot tell (the reason is logged).

    Since that run a record's ``clean.records`` row and facts can only have changed if the
    cleans logged it (``clean_changes_since``: rows and facts are written by record), and
    its ``match.pairs`` or ``match.clusters`` rows only if a link logged it
    (``match_changes_since``). None when a log cannot tell (see those) or the state does
    not name its run. Read by ``id_assignment_inputs`` and ``golden_scope``.
    """
    if published.run_id is None:
        log.info("golden     every record hashed: the published state names no run")
        return None
    logs = {
        "clean": clean_changes_since(con, published.run_id),
        "match": match_changes_since(con, published.run_id),
    }
    try:
        short = [name for name, table in logs.items() if table is None]
        if short:
            log.info(
                "golden     every record hashed: the %s change log does not cover every run"
                " since the published golden state's (%s)",
                " and ".join(short),
                published.run_id,
            )
            return None
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_LOGGED} AS SELECT record_key FROM {logs['clean']}"
            f" UNION SELECT record_key FROM {logs['match']}"
        )
    finally:
        for table in logs.values():
            if table is not None:
                con.execute(f"DROP TABLE IF EXISTS {table}")
    return _LOGGED


def golden_scope(con: duckdb.DuckDBPyConnection, logged: str | None) -> str | None:
    """A TEMP table of the records whose golden inputs may differ from the published ones, or
    None when every record's must be hashed.

    A record's inputs are its ``clean.records`` row and facts, its best match score and its
    customer id. Since the run that built the published state they can only have changed for
    the records the change logs list (`logged`: ``logged_changes``) and the records of the
    clusters assigned an id again (``store_assignments``: a stable cluster keeps its
    published customer's id). None when the logs cannot tell (`logged` None) or the ids were
    assigned over every cluster. Call after ``store_assignments``.
    """
    if logged is None:
        return None
    if not table_exists(con, _REASSIGNED):
        log.info("golden     every record hashed: customer ids assigned over every cluster")
        return None
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SCOPE} AS SELECT record_key FROM {logged}"
        f" UNION SELECT record_key FROM {_REASSIGNED}"
    )
    return _SCOPE


def plan_golden(
    con: duckdb.DuckDBPyConnection,
    settings_hash: str,
    published: PublishedGolden | None = None,
    within: str | None = None,
) -> GoldenPlan | None:
    """The customers whose golden rows must be rebuilt, or None when only a full build is right.

    Call after ``stage_inputs``. None when ``published_golden`` finds no usable published
    state (``published``: already found). With `within` (``golden_scope``, the records
    ``stage_inputs`` hashed) only those records are compared: the others did not change.
    """
    if published is None:
        published = published_golden(con, settings_hash)
        if published is None:
            return None
    old = INPUTS_TABLE
    if within is not None:
        old = (
            f"(SELECT * FROM {INPUTS_TABLE} WHERE record_key IN (SELECT record_key FROM {within}))"
        )
    # a record new, gone, moved or changed touches its old and its new customer
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_INPUT_CHANGES} AS"
        f" SELECT record_key, n.customer_id AS new_id, o.customer_id AS old_id,"
        f" n.input_hash AS new_hash"
        f" FROM {_NEW_INPUTS} AS n FULL JOIN {old} AS o USING (record_key)"
        f" WHERE n.customer_id IS DISTINCT FROM o.customer_id"
        f" OR n.input_hash IS DISTINCT FROM o.input_hash"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {_TOUCHED} AS"
        f" SELECT new_id AS customer_id FROM {_INPUT_CHANGES} WHERE new_id IS NOT NULL"
        f" UNION SELECT old_id FROM {_INPUT_CHANGES} WHERE old_id IS NOT NULL"
    )
    # the touched customers' records (this run's ids, clean records only)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {TOUCHED_RECORDS} AS SELECT record_key FROM {ASSIGNMENTS}"
        f" WHERE customer_id IN (SELECT customer_id FROM {_TOUCHED})"
        f" AND record_key IN (SELECT record_key FROM clean.records)"
    )
    touched = read_table(con, _TOUCHED)
    assert touched is not None
    (kept,) = con.execute(
        f"SELECT count(*) FROM golden.customers WHERE customer_id NOT IN"
        f" (SELECT customer_id FROM {_TOUCHED})"
    ).fetchall()[0]
    return GoldenPlan(
        touched=touched["customer_id"], kept=int(kept), as_of=published.as_of,
        parts=published.parts,
    )  # fmt: skip


def read_subset(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str] | None,
    where: str,
) -> pd.DataFrame | None:
    """``read_table`` of the rows of ``table`` matching ``where`` (absent columns left out)."""
    if not table_exists(con, table):
        return None
    present = table_columns(con, table)
    cols = [c for c in columns if c in present] if columns is not None else present
    return read_table(con, table, cols, where=where)


def touched_records_where() -> str:
    """SQL condition: the record belongs to a touched customer (after ``plan_golden``)."""
    return f"record_key IN (SELECT record_key FROM {TOUCHED_RECORDS})"


def customer_where(touched: bool) -> str:
    """SQL condition on ``customer_id``: in (or not in) the touched customers."""
    return f"customer_id {'' if touched else 'NOT '}IN (SELECT customer_id FROM {_TOUCHED})"


def _delta(name: str) -> str:
    return f"staging.delta_{name}"


def _keys(name: str) -> str:
    """The table of customers whose ``golden.<name>`` rows the staged delta replaces."""
    return _CHANGED if name == "customers" else _TOUCHED


def clear_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the staged golden state: views of a delta build or of a full one, tables of a full
    one (``staging.<table>`` or the hidden ``golden._staged_<table>``, ``golden_staged``)."""
    views = {
        r[0]
        for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'staging'"
        ).fetchall()
    }
    for name in GOLDEN_TABLES:
        kind = "VIEW" if name in views else "TABLE"
        con.execute(f"DROP {kind} IF EXISTS staging.{name}")
        con.execute(f"DROP TABLE IF EXISTS {_delta(name)}")
    con.execute(f"DROP TABLE IF EXISTS {_CHANGED}")
    drop_staged(con)
    _clear_staged_inputs(con, views)


def _clear_staged_inputs(con: duckdb.DuckDBPyConnection, views: set[str]) -> None:
    name = _STAGED_INPUTS.split(".", 1)[1]
    con.execute(f"DROP {'VIEW' if name in views else 'TABLE'} IF EXISTS {_STAGED_INPUTS}")
    for table in (_DELTA_INPUTS, _REPLACED_INPUTS):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def stage_input_state(con: duckdb.DuckDBPyConnection, incremental: bool) -> None:
    """Stage every record's input hash as ``staging.golden_inputs`` (published with the
    golden tables as ``match.golden_inputs``); drop this stage's TEMP tables.

    After an incremental build (``plan_golden`` found the changed records) only the changed
    rows are written: ``staging.golden_inputs`` is a view of the published inputs less the
    replaced records plus ``staging.delta_golden_inputs``, so a night writes its change, not
    a copy of every record's hash. After a full build it is a table of every record.
    """
    views = {
        r[0]
        for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'staging'"
        ).fetchall()
    }
    _clear_staged_inputs(con, views)
    if not incremental:
        con.execute(f"CREATE TABLE {_STAGED_INPUTS} AS SELECT * FROM {_NEW_INPUTS}")
    else:
        con.execute(f"CREATE TABLE {_REPLACED_INPUTS} AS SELECT record_key FROM {_INPUT_CHANGES}")
        con.execute(
            f"CREATE TABLE {_DELTA_INPUTS} AS SELECT record_key, new_id AS customer_id,"
            f" new_hash AS input_hash FROM {_INPUT_CHANGES} WHERE new_id IS NOT NULL"
        )
        con.execute(
            f"CREATE VIEW {_STAGED_INPUTS} AS SELECT * FROM {INPUTS_TABLE}"
            f" WHERE record_key NOT IN (SELECT record_key FROM {_REPLACED_INPUTS})"
            f" UNION ALL SELECT * FROM {_DELTA_INPUTS}"
        )
    for temp in (_NEW_INPUTS, _INPUT_CHANGES, _SCOPE, _REASSIGNED, TOUCHED_RECORDS, _LOGGED):
        con.execute(f"DROP TABLE IF EXISTS {temp}")


def reclassify_inputs(
    con: duckdb.DuckDBPyConnection,
    plan: GoldenPlan,
    settings: ClassificationSettings,
    as_of: date,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What re-classifying the untouched customers as of ``as_of`` needs (``classify`` inputs).

    Only the untouched customers whose classification can differ from the published one are
    read (``reclassify_candidates_sql``): those with a business date crossing a bound between
    the published state's date and ``as_of``. All untouched customers when the published
    state's date is unknown.

    Returns:
        ``(customers: customer_id, registered_date; transactions: customer_id, txn_date,
        txn_amount; record_sources: customer_id, source_system)``.
    """
    keep = customer_where(touched=False)
    if plan.as_of is not None:
        sql, params = reclassify_candidates_sql(settings, plan.as_of, as_of, keep)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_CANDIDATES} AS {sql}", params)
        keep = f"customer_id IN (SELECT customer_id FROM {_CANDIDATES})"
    customers = read_subset(con, "golden.customers", ["customer_id", "registered_date"], keep)
    txns = read_subset(con, "golden.transactions", ["customer_id", "txn_date", "txn_amount"], keep)
    sources = read_subset(con, "golden.crosswalk", ["customer_id", "source_system"], keep)
    con.execute(f"DROP TABLE IF EXISTS {_CANDIDATES}")
    assert customers is not None and txns is not None and sources is not None
    if len(txns):
        txns["txn_date"] = pd.to_datetime(txns["txn_date"].astype("string")).astype("datetime64[s]")
    return customers, txns, sources


def stage_delta(
    con: duckdb.DuckDBPyConnection,
    rebuilt: dict[str, pd.DataFrame],
    classes: pd.DataFrame,
    run_id: str,
) -> dict[str, int]:
    """Stage the new golden state as a delta on ``golden.*``; no table is copied.

    ``staging.delta_<name>`` holds the touched customers' rebuilt rows (for ``customers`` also
    the untouched customers whose classification changed), typed as ``golden.<name>``;
    ``staging.<name>`` is a view of the new state (the published rows of the other customers
    plus the delta), so the quality suites and the history read it as before, and
    ``swap_in_golden`` replaces just the delta's customers (``staged_delta``).

    Args:
        con: the warehouse (read-write).
        rebuilt: ``golden.<name>`` → the touched customers' new rows.
        classes: re-classified untouched customers (``customer_id, tier, lifecycle,
            is_returning, last_business_date, revenue_12m``); those whose values differ from
            the published ones get them, and this run as ``updated_run_id``.
        run_id: this run.

    Returns:
        ``golden.<name>`` → rows in its delta.
    """
    clear_staged(con)
    for name in GOLDEN_TABLES:
        create_empty_table(con, _delta(name), f"SELECT * FROM golden.{name}")
    for key, frame in rebuilt.items():
        name = key.split(".", 1)[1]
        con.register("_golden_rebuilt", to_duckdb_arrow(frame))
        try:
            con.execute(f"INSERT INTO {_delta(name)} BY NAME SELECT * FROM _golden_rebuilt")
        finally:
            con.unregister("_golden_rebuilt")
    new = {c: f"_new_{c}" for c in _CLASS_SQL}
    changed = " OR ".join(f"{c} IS DISTINCT FROM {n}" for c, n in new.items())
    picked = ", ".join(f"{_CLASS_SQL[c].format(n=f'n.{c}')} AS {n}" for c, n in new.items())
    con.register("_golden_classes", to_duckdb_arrow(classes))
    try:
        con.execute(
            f"INSERT INTO {_delta('customers')}"
            f" WITH j AS (SELECT g.*, {picked} FROM golden.customers AS g"
            f"  JOIN _golden_classes AS n USING (customer_id) WHERE g.{customer_where(False)})"
            f" SELECT * EXCLUDE ({', '.join(new.values())}) REPLACE ("
            + ", ".join(f"{n} AS {c}" for c, n in new.items())
            + f", ?::VARCHAR AS updated_run_id) FROM j WHERE {changed}",
            [run_id],
        )
    finally:
        con.unregister("_golden_classes")
    con.execute(
        f"CREATE TABLE {_CHANGED} AS SELECT customer_id FROM {_TOUCHED}"
        f" UNION SELECT customer_id FROM {_delta('customers')}"
    )
    counts = {}
    for name in GOLDEN_TABLES:
        con.execute(
            f"CREATE VIEW staging.{name} AS SELECT * FROM golden.{name}"
            f" WHERE customer_id NOT IN (SELECT customer_id FROM {_keys(name)})"
            f" UNION ALL SELECT * FROM {_delta(name)}"
        )
        (n,) = con.execute(f"SELECT count(*) FROM {_delta(name)}").fetchall()[0]
        counts[f"golden.{name}"] = int(n)
    return counts


def staged_delta(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]] | None:
    """The staged delta to swap in: ``golden.<name>`` → (SQL condition, delta table).

    The condition selects the published rows the delta replaces (its customers). None when
    the staged state is a full one (``staging.<name>`` tables) or incomplete.
    """
    needed = [_delta(n) for n in GOLDEN_TABLES] + [_TOUCHED, _CHANGED]
    staged = _relations(con, "staging")
    if not all(t.split(".", 1)[1] in staged for t in needed):
        return None
    (views,) = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'staging'"
        " AND view_name IN (" + ", ".join(f"'{n}'" for n in GOLDEN_TABLES) + ")"
    ).fetchall()[0]
    if views != len(GOLDEN_TABLES):
        return None
    return {
        f"golden.{n}": (
            f"customer_id IN (SELECT customer_id FROM {_keys(n)})",
            _delta(n),
        )
        for n in GOLDEN_TABLES
    }

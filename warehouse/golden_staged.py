"""A full golden build staged under hidden names in ``golden``, renamed in by the swap.

DuckDB 2.0.0 cannot move a table to another schema (``ALTER TABLE … SET SCHEMA`` and ``ALTER
SCHEMA … RENAME`` fail), so a full build staged in ``staging.*`` had to be COPIED into
``golden.*`` by the swap (``CREATE TABLE golden.<t> AS SELECT * FROM staging.<t>``: every row
written a second time, BENCHMARKS.md "Full-run golden, publish and snapshot"). Instead the full
build writes ``golden._staged_<table>`` (``staged_table``) and the staging contract is kept by
views: ``staging.<table>`` is ``SELECT * FROM golden._staged_<table>`` (``stage_views``), which
the golden suite, the history fold and the fingerprint read as before. The swap, in its one
transaction, drops ``golden.<table>``, renames ``golden._staged_<table>`` to ``<table>`` and
drops the views (``staged_full``): no row is copied, and a ROLLBACK (or a crash before COMMIT)
restores both names.

Until the swap the hidden tables are not published: a failed quality gate or a crash leaves
``golden.<table>`` exactly as it was, and the next golden stage drops them (``drop_staged``,
called by ``golden_delta.clear_staged``). Names in ``golden`` starting with ``_`` are never
published: the snapshot, the Parquet exports and the analyst mart read the tables by name
(``naming.EXPORTED``) and a role's ``golden.*`` grant leaves them out
(``warehouse.security.roles.is_table_allowed``).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from warehouse.naming import GOLDEN_TABLES

__all__ = ["STAGED_PREFIX", "drop_staged", "stage_views", "staged_full", "staged_table"]

SCHEMA = "golden"
STAGED_PREFIX = "_staged_"
"""The prefix of the tables a full golden build writes in ``golden`` before the swap."""


def staged_table(name: str) -> str:
    """The hidden table a full build stages ``golden.<name>`` in: ``golden._staged_<name>``."""
    return f"{SCHEMA}.{STAGED_PREFIX}{name}"


def stage_views(con: duckdb.DuckDBPyConnection, names: Sequence[str] = GOLDEN_TABLES) -> None:
    """Create ``staging.<name>`` as a view of ``golden._staged_<name>``, for each name whose
    hidden table exists (one that does not is missing from ``staging`` too, as before)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    have = set(_staged_names(con))
    for name in names:
        if STAGED_PREFIX + name in have:
            con.execute(f"CREATE OR REPLACE VIEW staging.{name} AS {_select(name)}")


def _select(name: str) -> str:
    return f"SELECT * FROM {staged_table(name)}"


def staged_full(con: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """The full build staged under hidden names: ``golden.<table>`` → ``golden._staged_<table>``.

    Every golden table must be staged so: ``golden._staged_<table>`` a table and
    ``staging.<table>`` a view of it. None otherwise (a delta build, a full state staged as
    ``staging.*`` tables, nothing staged): the swap copies or updates as before.
    """
    tables = set(_staged_names(con))
    views = {
        str(r[0]): str(r[1])
        for r in con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'staging'"
        ).fetchall()
    }
    for name in GOLDEN_TABLES:
        view = views.get(name, "").strip().rstrip(";")
        if STAGED_PREFIX + name not in tables or not view.endswith(_select(name)):
            return None
    return {f"{SCHEMA}.{name}": staged_table(name) for name in GOLDEN_TABLES}


def drop_staged(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop every ``golden._staged_*`` table (a build that failed, was blocked or killed).

    Returns:
        The names dropped.
    """
    names = _staged_names(con)
    for table in names:
        con.execute(f'DROP TABLE IF EXISTS {SCHEMA}."{table}"')
    return names


def _staged_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The ``golden._staged_*`` tables (their table names), sorted."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?"
        " AND starts_with(table_name, ?)",
        [SCHEMA, STAGED_PREFIX],
    ).fetchall()
    return sorted(str(r[0]) for r in rows)

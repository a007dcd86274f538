"""Roles (admin, steward, analyst, ops) and the tables each may read through the CLI."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

ROLE_ENV = "CUSTOMER_ARCHIVE_ROLE"
ROLES = frozenset({"admin", "steward", "analyst", "ops"})

_ALLOWED: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "steward": frozenset(
        {"golden.*", "match.review_queue", "match.decisions", "clean.follow_up", "analytics.*"}
    ),
    "analyst": frozenset({"mart.*"}),  # only inside the analyst mart file
    "ops": frozenset({"ops.*"}),  # quality figures and quarantine counts, no PII
}


def _check(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {sorted(ROLES)}")
    return role


def allowed_tables(role: str) -> frozenset[str]:
    """Table name patterns a role may read (``*`` = everything).

    This check is a convenience for the CLI; the real separation is what each role is
    GIVEN: analysts get only the analyst mart file and its key, never the warehouse key.

    Raises:
        ValueError: unknown role.
    """
    return _ALLOWED[_check(role)]


def is_table_allowed(role: str, table: str) -> bool:
    """Whether ``role`` may read ``schema.table`` (patterns of :func:`allowed_tables`)."""
    return any(fnmatch.fnmatchcase(table.lower(), p) for p in allowed_tables(role))


def resolve_role(env: Mapping[str, str] | None = None) -> str:
    """The caller's role from ``$CUSTOMER_ARCHIVE_ROLE`` (default ``admin``, the CLI owner).

    Raises:
        ValueError: the variable names an unknown role.
    """
    env = os.environ if env is None else env
    return _check(env.get(ROLE_ENV, "admin").strip().lower() or "admin")


def quarantine_counts(quarantined_rows: pd.DataFrame) -> pd.DataFrame:
    """Quarantine counts for ops (``ops.quarantine_counts``): no row content, no PII.

    Args:
        quarantined_rows: ``quarantine.rows`` (source_system, source_file, reason, …).

    Returns:
        ``source_system, source_file, reason, rows``.
    """
    import pandas as pd

    keys = [c for c in ("source_system", "source_file", "reason") if c in quarantined_rows]
    if quarantined_rows.empty:
        return pd.DataFrame(columns=[*keys, "rows"])
    return quarantined_rows.groupby(keys, dropna=False).size().reset_index(name="rows")


def role_database(con: duckdb.DuckDBPyConnection, role: str) -> duckdb.DuckDBPyConnection:
    """An in-memory database with copies of just the tables ``role`` may read.

    For ``steward`` and ``ops``: quarantined rows are never copied; ``ops`` gets their counts
    (``ops.quarantine_counts``) instead of their content.

    Args:
        con: the warehouse (read-only is enough).
        role: the role to copy for.
    """
    from warehouse.db import read_table

    out = duckdb.connect()
    tables = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
    ).fetchall()
    for (name,) in tables:
        if is_table_allowed(role, name) and not name.startswith("quarantine."):
            frame = con.sql(f"SELECT * FROM {name}").to_arrow_table()
            schema = name.split(".", 1)[0]
            out.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            out.register("_t", frame)
            out.execute(f"CREATE TABLE {name} AS SELECT * FROM _t")
            out.unregister("_t")
    if role == "ops" and is_table_allowed("admin", "quarantine.rows"):
        rows = read_table(con, "quarantine.rows")
        if rows is not None:
            out.execute("CREATE SCHEMA IF NOT EXISTS ops")
            out.register("_q", quarantine_counts(rows))
            out.execute("CREATE TABLE ops.quarantine_counts AS SELECT * FROM _q")
            out.unregister("_q")
    return out

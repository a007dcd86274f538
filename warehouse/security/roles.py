"""Roles (admin, steward, analyst, ops) and the tables each may read through the CLI."""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

ROLE_ENV = "CUSTOMER_ARCHIVE_ROLE"
ROLES = frozenset({"admin", "steward", "analyst", "ops"})

_ALLOWED: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    # stewards judge matches record by record (`explain`, the console): the clean records, the
    # scored pairs and the model run they came from, beside the golden tables
    "steward": frozenset(
        {
            "golden.*",
            "match.review_queue",
            "match.decisions",
            "match.pairs",
            "match.params",
            "clean.records",
            "clean.follow_up",
            "analytics.*",
        }
        | {"dormant.*", "filing.*"}  # the dormant archive (休眠档案) and the filing record
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
    """Whether ``role`` may read ``schema.table`` (patterns of :func:`allowed_tables`).

    A ``schema.*`` pattern never grants a table whose name starts with ``_``: those are not
    published (e.g. ``golden._staged_*``, a full golden build waiting for its quality gate:
    ``warehouse.golden_staged``). Only admin's ``*`` covers them.
    """
    name = table.lower()
    hidden = name.partition(".")[2].startswith("_")
    return any(
        fnmatch.fnmatchcase(name, p) and not (hidden and p.endswith(".*"))
        for p in allowed_tables(role)
    )


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


SAMPLE_KEYS = ("unexpected_examples", "unexpected_keys")


def check_results_without_examples(table: pa.Table) -> pa.Table:
    """``ops.check_results`` for ops: the figures of ``observed`` without the sample values.

    ``observed`` (JSON) may list up to five failing values and record keys — personal data;
    ops gets the counts only.
    """
    if "observed" not in table.column_names:
        return table
    cleaned: list[str | None] = []
    for text in table.column("observed").to_pylist():
        try:
            value = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            cleaned.append(None)  # not JSON: cannot tell figures from values, leave it out
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in SAMPLE_KEYS}
        cleaned.append(json.dumps(value, ensure_ascii=False) if value is not None else None)
    index = table.column_names.index("observed")
    return table.set_column(index, "observed", pa.array(cleaned, pa.string()))


def role_database(
    con: duckdb.DuckDBPyConnection, role: str, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A locked, in-memory database with copies of just the tables ``role`` may read.

    For ``steward`` and ``ops``: quarantined rows are never copied; ``ops`` gets their counts
    and reasons (``ops.quarantine_counts``) instead of their content. ``steward`` also gets
    the point-in-time macros ``analytics.customer_as_of(customer_id, date)`` and
    ``analytics.customers_as_of(date)`` over its copy of ``golden.customers_history``.
    The connection is sandboxed (:func:`warehouse.security.sandbox.lock_down`): no file or
    network access, no extensions, settings locked.

    Args:
        con: the warehouse (read-only is enough).
        role: the role to copy for.
        threads: DuckDB threads of the copy, set before the settings are locked (``None``:
            DuckDB's default).
    """
    from warehouse.db import table_columns, table_exists
    from warehouse.security.sandbox import lock_down
    from warehouse.views_sql import AS_OF_ALL_MACRO_SQL, AS_OF_MACRO_SQL

    out = duckdb.connect()
    try:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall()
        for (name,) in tables:
            if is_table_allowed(role, name) and not name.startswith("quarantine."):
                frame = con.sql(f"SELECT * FROM {name}").to_arrow_table()
                if role == "ops" and name == "ops.check_results":
                    frame = check_results_without_examples(frame)
                schema = name.split(".", 1)[0]
                out.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                out.register("_t", frame)
                out.execute(f"CREATE TABLE {name} AS SELECT * FROM _t")
                out.unregister("_t")
        if role == "ops" and table_exists(con, "quarantine.rows"):
            have = [c for c in ("source_system", "source_file", "reason")
                    if c in table_columns(con, "quarantine.rows")]  # fmt: skip
            rows = con.execute(f"SELECT {', '.join(have)} FROM quarantine.rows").df()
            out.execute("CREATE SCHEMA IF NOT EXISTS ops")
            out.register("_q", quarantine_counts(rows))
            out.execute("CREATE TABLE ops.quarantine_counts AS SELECT * FROM _q")
            out.unregister("_q")
        if role == "steward" and is_table_allowed(role, "golden.customers_history"):
            have = out.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'golden' "
                "AND table_name = 'customers_history'"
            ).fetchall()[0][0]
            if have:
                out.execute("CREATE SCHEMA IF NOT EXISTS analytics")
                out.execute(AS_OF_MACRO_SQL)
                out.execute(AS_OF_ALL_MACRO_SQL)
        if threads is not None:
            out.execute(f"SET threads = {int(threads)}")
        return lock_down(out)
    except BaseException:
        out.close()
        raise

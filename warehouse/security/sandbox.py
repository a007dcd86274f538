"""Sandboxed SQL for the non-admin roles: read-only, no files, no network, settings locked.

Two layers, so one mistake does not open the other:

* the statement check (:func:`check_read_only`): exactly one ``SELECT`` (or ``EXPLAIN``)
  statement; ``COPY``, ``ATTACH``, ``PRAGMA``, ``SET``, ``INSTALL``/``LOAD``, ``CREATE``,
  ``EXPORT``, ``CALL`` … are refused before DuckDB sees them;
* the engine lock (:func:`lock_down`): ``enable_external_access = false`` (no file, directory
  or network access: ``read_csv``, ``read_parquet``, ``read_text``, ``glob``, ``sniff_csv``,
  ``COPY … TO``, ``ATTACH`` of a file all fail), no extension auto-loading or installing,
  then ``lock_configuration = true`` so no ``SET``/``RESET``/``PRAGMA`` can turn any of it back.
"""

from __future__ import annotations

import duckdb

# settings applied in this order; lock_configuration must come last
LOCKED_SETTINGS: tuple[tuple[str, str], ...] = (
    ("enable_external_access", "false"),
    ("autoload_known_extensions", "false"),
    ("autoinstall_known_extensions", "false"),
    ("allow_community_extensions", "false"),
    ("allow_unsigned_extensions", "false"),
    ("lock_configuration", "true"),
)
_READ_ONLY_TYPES = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class SandboxError(PermissionError):
    """A statement a sandboxed role may not run (not a single read-only query)."""


def lock_down(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Close a connection to the outside: no file/network access, no extensions, settings locked.

    Call it after everything the role is given is attached or copied in: from here on the
    connection can read only what it already holds.

    Returns:
        The same connection.
    """
    for name, value in LOCKED_SETTINGS:
        con.execute(f"SET {name} = {value}")
    return con


def check_read_only(sql: str) -> None:
    """Refuse anything but exactly one ``SELECT`` / ``EXPLAIN`` statement.

    Raises:
        SandboxError: several statements, or one of another kind (``COPY``, ``ATTACH`` …).
    """
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SandboxError(f"cannot parse the query: {exc}") from exc
    if len(statements) != 1:
        raise SandboxError(f"one query at a time ({len(statements)} statements given)")
    kind = statements[0].type
    if kind not in _READ_ONLY_TYPES:
        raise SandboxError(f"{kind.name} statements are not allowed for this role (read-only)")


def sandboxed_query(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """Run one read-only query on a locked connection (:func:`check_read_only` first).

    Returns a relation (``fetchall``, ``df``, ``to_arrow_table``); DuckDB may report some
    refusals only when it is read, so read it where refusals are handled.

    Raises:
        SandboxError: the statement is not a single read-only query.
        duckdb.Error: DuckDB refused it (e.g. a file-reading table function).
    """
    check_read_only(sql)
    return con.sql(sql)

"""`customer-archive sql`: run one query read-only and print or write the result."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

from ..access import audit, keyring, open_warehouse
from ..settings import ArchiveConfig
from .errors import DataError, SecurityError, UsageError
from .render import render_csv, render_json, render_table

MART_KEY_ENV = "CUSTOMER_ARCHIVE_MART_KEY"


def open_for_role(cfg: ArchiveConfig, role: str) -> duckdb.DuckDBPyConnection:
    """A read-only connection holding only what ``role`` may read.

    * admin: the warehouse itself (unrestricted);
    * analyst: the analyst mart (masked PII), opened with the mart key only;
    * steward, ops: an in-memory database with copies of just their tables (ops: quality
      figures and quarantine counts, never row content; steward: ``customer_as_of``).

    Every non-admin connection is sandboxed (``warehouse.security.sandbox``): no file or
    network access, no extensions, configuration locked. Run queries on it through
    :func:`warehouse.security.sandboxed_query` (one read-only statement).
    """
    if role == "admin":
        return open_warehouse(cfg, read_only=True)
    if role == "analyst":
        from warehouse.security import KeyRing, analyst_mart_key, lock_down, open_analyst_mart
        from warehouse.security.keys import parse_key

        mart = cfg.resolve(cfg.security.analyst_mart)
        if not mart.exists():
            raise DataError(f"analyst mart {mart} does not exist: run the pipeline first")
        env_key = os.environ.get(MART_KEY_ENV)
        if env_key:
            ring = KeyRing(parse_key(env_key))
        else:
            master = keyring(cfg)
            if master is None:
                raise UsageError(f"no mart key: set ${MART_KEY_ENV} (`keys mart-key` prints it)")
            ring = analyst_mart_key(master)
        return lock_down(open_analyst_mart(mart, ring, read_only=True))
    from warehouse.security import role_database

    with open_warehouse(cfg, read_only=True) as con:
        return role_database(con, role)


def run_query(
    cfg: ArchiveConfig,
    query: str,
    fmt: str,
    output: str | None,
    max_rows: int = 50,
    role: str = "admin",
) -> int:
    """Run ``query`` read-only, as ``role``, and render it as table/CSV/JSON/Parquet.

    Returns:
        The process exit code (0 on success).

    Raises:
        UsageError: ``--format parquet`` without ``--output``.
        DataError: no warehouse yet; DuckDB's own errors (bad SQL, unknown table) pass through
            to the CLI's error path as one line.
    """
    if fmt == "parquet" and not output:
        raise UsageError("--format parquet needs --output FILE")
    path = cfg.resolve(cfg.warehouse)
    if not path.exists():
        raise DataError(f"warehouse {path} does not exist: run `customer-archive run` first")
    with open_for_role(cfg, role) as con:
        # Arrow keeps SQL types: an INTEGER column with NULLs stays integer, NULL stays NULL.
        if role == "admin":
            relation = con.sql(query)
            table = pa.table({}) if relation is None else relation.to_arrow_table()
        else:
            from warehouse.security import SandboxError, sandboxed_query

            try:
                table = sandboxed_query(con, query).to_arrow_table()
            except (SandboxError, duckdb.Error) as exc:
                audit(cfg, "query", query[:500], result="denied",
                      details={"role": role, "error": type(exc).__name__})  # fmt: skip
                raise SecurityError(f"refused for role {role}: {exc}") from exc
    rows = table.num_rows
    audit(cfg, "query", query[:500], details={"role": role, "rows": rows, "format": fmt})
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert output is not None
        pq.write_table(table, output)
        print(f"wrote {rows} rows to {output}")
        return 0
    if fmt == "csv":
        text = render_csv(table)
    elif fmt == "json":
        text = render_json(table)
    else:
        text = render_table(table, max_rows)
    if output:
        Path(output).write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        print(f"wrote {rows} rows to {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0

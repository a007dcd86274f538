"""`customer-archive sql`: run one query read-only and print or write the result."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.security import (
    KeyRing,
    SandboxError,
    analyst_mart_key,
    lock_down,
    neutralize_formulas,
    open_analyst_mart,
    role_database,
    sandboxed_query,
)
from warehouse.security.keys import parse_key

from ..access import audit, keyring, open_warehouse
from ..settings import ArchiveConfig

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
        mart = cfg.resolve(cfg.security.analyst_mart)
        if not mart.exists():
            raise SystemExit(f"analyst mart {mart} does not exist: run the pipeline first")
        env_key = os.environ.get(MART_KEY_ENV)
        if env_key:
            ring = KeyRing(parse_key(env_key))
        else:
            master = keyring(cfg)
            if master is None:
                raise SystemExit(f"no mart key: set ${MART_KEY_ENV} (`keys mart-key` prints it)")
            ring = analyst_mart_key(master)
        return lock_down(open_analyst_mart(mart, ring, read_only=True))
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
    """
    path = cfg.resolve(cfg.warehouse)
    if not path.exists():
        print(f"warehouse {path} does not exist: run `customer-archive run` first", file=sys.stderr)
        return 2
    with open_for_role(cfg, role) as con:
        if role == "admin":
            frame = con.execute(query).df()
        else:
            try:
                frame = sandboxed_query(con, query).df()
            except (SandboxError, duckdb.Error) as exc:
                audit(cfg, "query", query[:500], result="denied",
                      details={"role": role, "error": type(exc).__name__})  # fmt: skip
                print(f"refused for role {role}: {exc}", file=sys.stderr)
                return 3
    audit(cfg, "query", query[:500], details={"role": role, "rows": len(frame), "format": fmt})
    if fmt == "parquet":
        if not output:
            print("--format parquet needs --output FILE", file=sys.stderr)
            return 2
        frame.to_parquet(output, index=False)
        print(f"wrote {len(frame)} rows to {output}")
        return 0
    if fmt == "csv":
        text = neutralize_formulas(frame).to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", force_ascii=False, date_format="iso")
    else:
        with pd.option_context("display.max_columns", 50, "display.width", 200):
            text = frame.head(max_rows).to_string(index=False)
        if len(frame) > max_rows:
            text += f"\n… {len(frame) - max_rows} more rows ({len(frame)} in all)"
        else:
            text += f"\n({len(frame)} rows)"
    if output:
        Path(output).write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        print(f"wrote {len(frame)} rows to {output}")
    else:
        print(text)
    return 0

"""`customer-archive console`: the steward console over this project's warehouse.

Wiring only: the steward role's copy of the warehouse (``role_database``) as what the pages
read, the warehouse file's modification time as the sign of a new run, and the audited
``review decide`` path (``stewardship.decide_audited``) as the one way decisions are written.
"""

from __future__ import annotations

import sys

import duckdb
import pandas as pd

from console import Backend, DecisionRejected, create_app
from warehouse.archive import RunLockedError
from warehouse.security import role_database

from ..access import audit, open_warehouse
from ..settings import ArchiveConfig
from .stewardship import decide_audited

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def console_backend(cfg: ArchiveConfig, steward: str, user_header: str | None = None) -> Backend:
    """The console's view of ``cfg``'s warehouse: read as steward, decide audited."""
    path = cfg.resolve(cfg.warehouse)

    def load() -> duckdb.DuckDBPyConnection:
        with open_warehouse(cfg, read_only=True) as con:
            # a page runs a handful of small look-ups: one thread each avoids waking (and, on
            # a busy machine, waiting for) the whole DuckDB worker pool per query
            return role_database(con, "steward", threads=1)

    def version() -> object:
        wal = path.with_name(path.name + ".wal")
        stamps = [p.stat().st_mtime_ns for p in (path, wal) if p.exists()]
        return tuple(stamps)

    def decide(triples: list[tuple[str, str, str]], note: str, who: str) -> pd.DataFrame:
        try:
            return decide_audited(cfg, triples, who, note, channel="console")
        except ValueError as exc:
            raise DecisionRejected(str(exc)) from exc
        except RunLockedError as exc:
            raise DecisionRejected(f"a pipeline run holds the warehouse, try again: {exc}") from exc

    return Backend(
        load=load, version=version, decide=decide, steward=steward, user_header=user_header
    )


def console_command(
    cfg: ArchiveConfig, host: str, port: int, steward: str, user_header: str | None = None
) -> int:
    """Serve the steward console until interrupted (local-only unless ``host`` says otherwise).

    ``user_header``: the header a login proxy in front sets to the signed-in user; that name
    then decides (and is audited) instead of ``steward``.
    """
    import uvicorn

    path = cfg.resolve(cfg.warehouse)
    if not path.exists():
        print(f"warehouse {path} does not exist: run `customer-archive run` first", file=sys.stderr)
        return 2
    if host not in LOCAL_HOSTS:
        print(
            f"warning: serving on {host}, reachable from other machines; put the console "
            "behind your company login (docs/console.md)",
            file=sys.stderr,
        )
    app = create_app(console_backend(cfg, steward, user_header))
    print("reading the steward's tables and building the search keys …", flush=True)
    app.state.console.data()  # at start, not on the first page (seconds on large archives)
    audit(cfg, "console_start", f"{host}:{port}", details={"steward": steward})
    print(f"steward console for {steward}: http://{host}:{port}/  (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0

"""Which golden customers the per-customer checks validate, and their stored failures.

After an incremental golden build the staged state is the published one plus a delta
(``staging.delta_customers``). The published customers were validated when they were staged,
and those that failed a per-customer check then are kept in ``ops.golden_check_failures``; so
a nightly run validates only the delta's customers plus those earlier failures, and a bad
golden row keeps failing until it is fixed. Every customer is validated again after a full
build, a change of the quality settings, or when the published golden state is not the one
the stored failures describe (a run blocked before publishing, a restore, an erasure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from warehouse.db import table_exists
from warehouse.golden_delta import published_state, staged_delta
from warehouse.ops import replace_check_failures

__all__ = ["FAILURES_TABLE", "STATE_TABLE", "golden_check_scope", "store_golden_failures"]

FAILURES_TABLE = "ops.golden_check_failures"
"""Golden customers failing a per-customer check: ``run_id, check_name, customer_id``."""
STATE_TABLE = "ops.golden_check_state"
"""``settings, fingerprint, run_id``: the quality settings and the staged golden state
(``staging.golden_state``'s fingerprint) the stored failures were found in."""
_SCOPE = "_golden_check_scope"
_DELTA_CUSTOMERS = "staging.delta_customers"


def golden_check_scope(con: duckdb.DuckDBPyConnection, settings: str) -> str | None:
    """A temporary table of the customers the per-customer checks must validate; None = all.

    Args:
        con: the warehouse, with this run's staged golden state.
        settings: the quality settings (their JSON) of this run.

    Returns:
        The table's name (``customer_id``: the staged delta's customers plus the customers
        that failed before), or None when every customer must be validated.
    """
    if staged_delta(con) is None:
        return None  # a full build is staged
    if not (table_exists(con, FAILURES_TABLE) and table_exists(con, STATE_TABLE)):
        return None
    published = published_state(con)
    stored = con.execute(f"SELECT settings, fingerprint FROM {STATE_TABLE}").fetchall()
    if published is None or stored != [(settings, published)]:
        return None
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SCOPE} AS"
        f" SELECT customer_id FROM {_DELTA_CUSTOMERS} WHERE customer_id IS NOT NULL"
        f" UNION SELECT customer_id FROM {FAILURES_TABLE}"
    )
    return _SCOPE


def store_golden_failures(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    settings: str,
    failing: Mapping[str, Sequence[str]],
) -> None:
    """Replace the stored failures of the per-customer golden checks (one transaction).

    ``failing`` holds every failing customer of each check over the whole staged state (what
    ``golden_check_scope`` validated covers every earlier failure), keyed by check name.
    """
    fingerprint = None
    if table_exists(con, "staging.golden_state"):
        rows = con.execute("SELECT fingerprint FROM staging.golden_state").fetchall()
        fingerprint = str(rows[0][0]) if len(rows) == 1 else None
    replace_check_failures(
        con,
        (FAILURES_TABLE, STATE_TABLE),
        "customer_id",
        run_id,
        failing,
        {"settings": settings, "fingerprint": fingerprint},
    )

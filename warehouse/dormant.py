"""The dormant archive (休眠档案): customers with no business for ``dormant_after_years``.

Seed 004: 停止合作满3年的客户档案，经审批后可转为"休眠档案"，单独存储并降低访问权限，
仍需保留基础信息以备追溯. Review lists the candidates (``golden.customers.lifecycle`` is
``dormant``, computed with ``golden.classification.dormant_after_years``); approval copies
the customer's golden rows into the ``dormant`` schema (readable by steward and admin only)
and registers it; from then on the customer is left out of the analyst mart, the registers
and the packages. When business resumes (the run classifies the customer as no longer
dormant) it is reactivated: the registry and ``dormant.events`` keep the trail, the copies
are removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.db import append_table, read_table, table_exists, transaction

SCHEMA = "dormant"
REGISTRY = "dormant.registry"
EVENTS = "dormant.events"
#: golden tables copied into the dormant store on approval (base information and detail)
COPIED = ("customers", "contacts", "addresses", "transactions", "interactions",
          "customers_history", "attribute_lineage")  # fmt: skip


def _registry(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    return read_table(con, REGISTRY) if table_exists(con, REGISTRY) else None


def dormant_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Customers currently in the dormant archive (approved and not reactivated)."""
    if not table_exists(con, REGISTRY):
        return set()
    rows = con.execute(f"SELECT customer_id FROM {REGISTRY} WHERE status = 'dormant'").fetchall()
    return {str(r[0]) for r in rows}


def dormant_candidates(customers: pd.DataFrame, archived: set[str]) -> pd.DataFrame:
    """Customers classified dormant that are not in the dormant archive yet (the review list).

    Args:
        customers: ``golden.customers``.
        archived: ids already in the dormant archive.

    Returns:
        ``customer_id, customer_name, customer_type, last_business_date, lifecycle``.
    """
    columns = ["customer_id", "customer_name", "customer_type", "last_business_date", "lifecycle"]
    dormant = customers[
        (customers["lifecycle"].astype("string") == "dormant")
        & ~customers["customer_id"].isin(archived)
    ]
    return dormant[columns].sort_values("customer_id").reset_index(drop=True)


def approve_dormant(
    con: duckdb.DuckDBPyConnection,
    customer_ids: Sequence[str],
    *,
    actor: str,
    reason: str,
    on: date,
) -> list[str]:
    """Move approved candidates into the dormant archive (one transaction).

    Args:
        con: the warehouse (read-write).
        customer_ids: the customers approved; each must be a current candidate.
        actor: who approved (审批人).
        reason: the approval reference.
        on: the approval date.

    Returns:
        The ids moved.

    Raises:
        ValueError: an id is not a candidate (unknown, not dormant, or already archived).
    """
    customers = read_table(con, "golden.customers")
    if customers is None:
        raise ValueError("no golden.customers: run `customer-archive run` first")
    candidates = dormant_candidates(customers, dormant_ids(con))
    wanted = list(dict.fromkeys(customer_ids))
    refused = sorted(set(wanted) - set(candidates["customer_id"].astype(str)))
    if refused:
        raise ValueError(
            f"not dormant candidates (unknown, not dormant, or already archived): {refused}"
        )
    if not wanted:
        return []
    chosen = candidates[candidates["customer_id"].isin(wanted)]
    ids_sql = ", ".join("'" + c.replace("'", "''") + "'" for c in wanted)
    with transaction(con):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for table in COPIED:
            if not table_exists(con, f"golden.{table}"):
                continue
            target = f"{SCHEMA}.{table}"
            if table_exists(con, target):
                con.execute(f"DELETE FROM {target} WHERE customer_id IN ({ids_sql})")
                con.execute(
                    f"INSERT INTO {target} BY NAME "
                    f"SELECT * FROM golden.{table} WHERE customer_id IN ({ids_sql})"
                )
            else:
                con.execute(
                    f"CREATE TABLE {target} AS "
                    f"SELECT * FROM golden.{table} WHERE customer_id IN ({ids_sql})"
                )
        if table_exists(con, REGISTRY):
            con.execute(f"DELETE FROM {REGISTRY} WHERE customer_id IN ({ids_sql})")
        registry = pd.DataFrame(
            {
                "customer_id": chosen["customer_id"].astype("string"),
                "status": "dormant",
                "last_business_date": pd.to_datetime(chosen["last_business_date"]).dt.date,
                "dormant_since": on,
                "approved_by": actor,
                "reason": reason,
                "reactivated_on": pd.Series([None] * len(chosen), dtype="object"),
            }
        )
        registry["reactivated_on"] = pd.to_datetime(registry["reactivated_on"]).dt.date
        append_table(con, REGISTRY, registry)
        _append_events(con, wanted, "archived", on, f"休眠档案: {reason}", actor)
    return wanted


def _append_events(
    con: duckdb.DuckDBPyConnection,
    ids: Sequence[str],
    event: str,
    on: date,
    reason: str,
    actor: str,
) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(list(ids), dtype="string"),
            "event": event,
            "event_date": on,
            "reason": reason,
            "actor": actor,
        }
    )
    frame["event_date"] = pd.to_datetime(frame["event_date"]).dt.date
    append_table(con, EVENTS, frame)


def reactivate_resumed(
    con: duckdb.DuckDBPyConnection, on: date, actor: str = "pipeline"
) -> list[str]:
    """Reactivate archived customers whose business resumed (no longer classified dormant).

    Called after every publish. The registry row becomes ``reactivated`` (with the date), an
    event ``reactivated`` is recorded, and the dormant copies are removed (the customer is
    back in the golden layer, which never lost it).

    Returns:
        The ids reactivated.
    """
    archived = dormant_ids(con)
    if not archived or not table_exists(con, "golden.customers"):
        return []
    rows = con.execute(
        f"SELECT c.customer_id FROM golden.customers c JOIN {REGISTRY} r USING (customer_id) "
        "WHERE r.status = 'dormant' AND c.lifecycle IS DISTINCT FROM 'dormant' "
        "ORDER BY c.customer_id"
    ).fetchall()
    ids = [str(r[0]) for r in rows]
    if not ids:
        return []
    ids_sql = ", ".join("'" + c.replace("'", "''") + "'" for c in ids)
    with transaction(con):
        con.execute(
            f"UPDATE {REGISTRY} SET status = 'reactivated', reactivated_on = ? "
            f"WHERE customer_id IN ({ids_sql})",
            [on],
        )
        for table in COPIED:
            if table_exists(con, f"{SCHEMA}.{table}"):
                con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE customer_id IN ({ids_sql})")
        _append_events(con, ids, "reactivated", on, "业务恢复: 自动转回活跃档案", actor)
    return ids


def dormant_events(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """``dormant.events`` (archived / reactivated, with date, reason and actor), if any."""
    return read_table(con, EVENTS) if table_exists(con, EVENTS) else None


def hide_customers(tables: Mapping[str, pa.Table], customer_ids: set[str]) -> dict[str, pa.Table]:
    """The tables without the rows of ``customer_ids`` (by ``customer_id``), e.g. for the mart."""
    if not customer_ids:
        return dict(tables)
    hidden = pa.array(sorted(customer_ids), type=pa.string())
    out = {}
    for name, table in tables.items():
        if "customer_id" in table.column_names:
            ids = table.column("customer_id").cast(pa.string())
            table = table.filter(pc.invert(pc.fill_null(pc.is_in(ids, value_set=hidden), False)))
        out[name] = table
    return out

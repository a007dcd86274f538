"""Stable lifelong customer IDs (客户编号, `C`+YYYYMMDD+sequence) with an ID history."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from dedupe.pairset import arrow_strings

_ID = re.compile(r"^C(\d{8})(\d{3,})$")
EVENTS = ("created", "merged_into", "split_from", "grown", "retired")


class CustomerIdError(ValueError):
    """A customer id does not have the `C`+YYYYMMDD+sequence form or history is inconsistent."""


@dataclass
class IdAssignment:
    """Result of ID assignment.

    Attributes:
        assignments: record_key, customer_id — every clustered record once.
        events: customer_id, event, other_customer_id, run_date — what changed this run.
    """

    assignments: pd.DataFrame
    events: pd.DataFrame


def _id_order(customer_id: str) -> tuple[str, int, str]:
    match = _ID.match(customer_id)
    if match is None:
        raise CustomerIdError(f"customer id {customer_id!r} is not C+YYYYMMDD+sequence")
    return match.group(1), int(match.group(2)), customer_id


def _next_ids(run_date: date, used: Iterable[str], count: int) -> list[str]:
    stamp = run_date.strftime("%Y%m%d")
    highest = 0
    for cid in used:
        day, seq, _ = _id_order(cid)
        if day == stamp:
            highest = max(highest, seq)
    return [f"C{stamp}{seq:03d}" for seq in range(highest + 1, highest + 1 + count)]


def assign_customer_ids(
    clusters: pd.DataFrame,
    previous: pd.DataFrame | None,
    run_date: date,
    existing_ids: Iterable[str] = (),
) -> IdAssignment:
    """Give every cluster a customer_id, keeping previous ids wherever records overlap.

    Each previous id goes to the cluster holding most of its records (ties: the cluster with
    the smallest cluster_key); a cluster claimed by several ids keeps the one with the largest
    overlap (ties: the oldest id) and the others are recorded as `merged_into` it. Clusters
    without an id get new ones, numbered in cluster_key order after the highest id already
    issued for `run_date`; new ids carved out of a surviving id are `split_from` it.

    Args:
        clusters: record_key, cluster_key.
        previous: the previous crosswalk (record_key, customer_id), or None on the first run.
        run_date: date stamped into new ids.
        existing_ids: every id ever issued (retired ones included), never reused.

    Returns:
        The assignments and this run's ID events.
    """
    clusters = clusters[["record_key", "cluster_key"]].astype(str)
    prev = (
        previous[["record_key", "customer_id"]].astype(str)
        if previous is not None and len(previous)
        else pd.DataFrame({"record_key": pd.Series(dtype=str), "customer_id": pd.Series(dtype=str)})
    )
    overlap = (
        clusters.merge(prev, on="record_key", how="inner")
        .groupby(["cluster_key", "customer_id"], sort=False)
        .size()
        .rename("n")
        .reset_index()
    )
    overlap["age"] = overlap["customer_id"].map(_id_order)
    # Each old id first picks its home cluster (largest share of its records).
    home = overlap.sort_values(["customer_id", "n", "cluster_key"], ascending=[True, False, True])
    home = home.drop_duplicates("customer_id")
    # Each cluster keeps the id with the largest overlap among the ids whose home it is.
    winner = home.sort_values(["cluster_key", "n", "age"], ascending=[True, False, True])
    winner = winner.drop_duplicates("cluster_key")
    kept = dict(zip(winner["cluster_key"], winner["customer_id"], strict=True))
    cluster_keys = sorted(clusters["cluster_key"].unique())
    fresh_clusters = [c for c in cluster_keys if c not in kept]
    used = set(existing_ids) | set(prev["customer_id"])
    new_ids = _next_ids(run_date, used, len(fresh_clusters))
    id_of = {**kept, **dict(zip(fresh_clusters, new_ids, strict=True))}
    assignments = pd.DataFrame(
        {"record_key": clusters["record_key"], "customer_id": clusters["cluster_key"].map(id_of)}
    )
    events = _events(overlap, home, kept, fresh_clusters, id_of, prev, clusters)
    events["run_date"] = run_date.isoformat()
    return IdAssignment(assignments.reset_index(drop=True), events)


def _isin(values: pd.Series, wanted: pd.Series | list[str]) -> np.ndarray:
    """Whether each value is among `wanted` (null never is), hashed in Arrow."""
    found = pc.is_in(arrow_strings(values), value_set=arrow_strings(pd.Series(wanted, dtype="str")))
    return found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _events(
    overlap: pd.DataFrame,
    home: pd.DataFrame,
    kept: dict[str, str],
    fresh_clusters: list[str],
    id_of: dict[str, str],
    prev: pd.DataFrame,
    clusters: pd.DataFrame,
) -> pd.DataFrame:
    """This run's ID events, computed column-wise (one row per id and event)."""
    surviving = list(kept.values())
    lost = home[~_isin(home["customer_id"], surviving)]
    merged = pd.DataFrame(
        {
            "customer_id": lost["customer_id"].to_numpy(dtype=object),
            "event": "merged_into",
            "other_customer_id": lost["cluster_key"].map(id_of).to_numpy(dtype=object),
        }
    )
    biggest_source = (
        overlap.sort_values(["cluster_key", "n", "age"], ascending=[True, False, True])
        .drop_duplicates("cluster_key")
        .set_index("cluster_key")["customer_id"]
    )
    fresh = pd.Series(fresh_clusters, dtype="str")
    source = fresh.map(biggest_source)
    split = _isin(source, surviving)
    born = pd.DataFrame(
        {
            "customer_id": fresh.map(id_of).to_numpy(dtype=object),
            "event": np.where(split, "split_from", "created").astype(object),
            "other_customer_id": np.where(split, source.to_numpy(dtype=object), None),
        }
    )
    # grown: a kept id whose cluster now holds a record that id did not hold before.
    held = clusters[_isin(clusters["cluster_key"], list(kept))]
    held = held.assign(customer_id=held["cluster_key"].map(kept))
    found = held.merge(
        prev[["record_key", "customer_id"]].drop_duplicates(),
        on=["record_key", "customer_id"],
        how="left",
        indicator=True,
    )
    gained = found.loc[found["_merge"] == "left_only", "customer_id"].unique()
    grown = pd.DataFrame(
        {
            "customer_id": pd.Series(gained, dtype=object),
            "event": "grown",
            "other_customer_id": None,
        }
    )
    previous_ids = pd.Series(prev["customer_id"].unique(), dtype="str")
    retired_ids = previous_ids[~_isin(previous_ids, overlap["customer_id"])]
    retired = pd.DataFrame(
        {
            "customer_id": retired_ids.to_numpy(dtype=object),
            "event": "retired",
            "other_customer_id": None,
        }
    )
    frame = pd.concat([merged, born, grown, retired], ignore_index=True)
    frame = frame[["customer_id", "event", "other_customer_id"]].astype(object)
    return frame.sort_values(["customer_id", "event"], kind="stable").reset_index(drop=True)


def resolve_customer_id(customer_id: str, id_history: pd.DataFrame) -> str:
    """Follow `merged_into` events from an old id to the id that holds its records today.

    Args:
        customer_id: any id ever issued.
        id_history: rows of (customer_id, event, other_customer_id[, run_date]); the last
            `merged_into` per id (in row order) wins.

    Returns:
        The surviving customer id (the input itself when it was never merged).

    Raises:
        CustomerIdError: when the merge history loops.
    """
    merged = id_history[id_history["event"] == "merged_into"]
    target = dict(zip(merged["customer_id"], merged["other_customer_id"], strict=True))
    seen = {customer_id}
    current = customer_id
    while current in target:
        current = str(target[current])
        if current in seen:
            raise CustomerIdError(f"merge history of {customer_id!r} loops through {current!r}")
        seen.add(current)
    return current

"""The analyst mart (分析集市): every table with PII masked or pseudonymized, in its own files."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from warehouse.security.encryption import encrypt_parquet, open_encrypted_warehouse
from warehouse.security.keys import KeyRing
from warehouse.security.masking import map_distinct, mask_person_name, mask_series
from warehouse.security.pii import treatment

LOG = logging.getLogger(__name__)
MART_SCHEMA = "mart"
MART_PURPOSE = "analyst-mart"
PSEUDONYM_PURPOSE = "pseudonym"


def mart_table_name(name: str) -> str:
    """``golden.customers`` → ``mart.customers`` (the analyst mart's flat schema)."""
    return f"{MART_SCHEMA}.{name.rsplit('.', 1)[-1]}"


def _customer_types(tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    for name, frame in tables.items():
        if name.endswith("customers") and {"customer_id", "customer_type"} <= set(frame.columns):
            pairs = frame[["customer_id", "customer_type"]].dropna().drop_duplicates("customer_id")
            return dict(
                zip(
                    pairs["customer_id"].astype(str),
                    pairs["customer_type"].astype(str),
                    strict=True,
                )
            )
    return {}


def _mask_names(frame: pd.DataFrame, column: str, types: dict[str, str]) -> pd.Series:
    """Individuals' names masked, enterprises' kept; unknown type is masked (safe default)."""
    if "customer_type" in frame:
        kind = frame["customer_type"].astype("string")
    elif "customer_id" in frame:
        kind = frame["customer_id"].astype("string").map(types).astype("string")
    else:
        kind = pd.Series(pd.NA, index=frame.index, dtype="string")
    masked = map_distinct(frame[column], mask_person_name)
    keep = kind.eq("enterprise").fillna(False).astype(bool)
    return frame[column].astype("string").where(keep, masked)


def build_analyst_mart(
    tables: Mapping[str, pd.DataFrame], secret: bytes
) -> dict[str, pd.DataFrame]:
    """Mask every direct identifier of every table per the PII classes (deny unknown columns).

    Phones → ``139****5678``, emails → ``z***@example.com``, individuals' names → ``张*``
    (enterprise names kept), addresses and raw/free-text columns dropped (province, city,
    district kept), ``customer_id``/``record_key``/… replaced by keyed pseudonyms that are
    the same in every table, so analysts can still join and count.

    Args:
        tables: ``{"golden.customers": frame, …}``.
        secret: the pseudonym key (``KeyRing.derive("pseudonym")``).

    Returns:
        ``{"mart.customers": masked frame, …}``; dropped columns are listed in
        ``frame.attrs["dropped_columns"]``.

    Raises:
        ValueError: two tables would get the same mart name.
    """
    types = _customer_types(tables)
    out: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        target = mart_table_name(name)
        if target in out:
            raise ValueError(f"two tables map to analyst mart table {target}")
        masked = pd.DataFrame(index=frame.index)
        dropped: list[str] = []
        for column in frame.columns:
            how = treatment(str(column))
            if how == "drop":
                dropped.append(str(column))
            elif how == "keep":
                masked[column] = frame[column]
            elif how == "name_by_type":
                masked[column] = _mask_names(frame, str(column), types)
            else:
                masked[column] = mask_series(frame[column], how, secret)
        if dropped:
            LOG.info("analyst mart %s: dropped columns %s", target, dropped)
        masked.attrs["dropped_columns"] = dropped
        out[target] = masked.reset_index(drop=True)
    return out


def write_analyst_mart(
    tables: Mapping[str, pd.DataFrame],
    duckdb_path: Path,
    parquet_dir: Path,
    key: KeyRing,
    allow_unsafe_crypto: bool | None = None,
) -> dict[str, Path]:
    """Write the analyst mart as an encrypted DuckDB file and encrypted Parquet files.

    Both are encrypted with the mart key ``KeyRing(key.derive("analyst-mart"))`` — the key
    handed to analysts (see :func:`analyst_mart_key`); it does not open the warehouse.

    Args:
        tables: the output of :func:`build_analyst_mart`.
        duckdb_path: the mart database (replaced as a whole).
        parquet_dir: folder for ``mart.<table>.parquet``.
        key: the master key ring.
        allow_unsafe_crypto: see ``open_encrypted_warehouse``.

    Returns:
        Table name → Parquet file.
    """
    ring = analyst_mart_key(key)
    duckdb_path = Path(duckdb_path)
    temp = duckdb_path.with_name(f".{duckdb_path.name}.new")
    for leftover in (temp, temp.with_name(temp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = open_encrypted_warehouse(temp, ring, allow_unsafe_crypto=allow_unsafe_crypto)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {MART_SCHEMA}")
        for name, frame in tables.items():
            con.register("_mart_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _mart_frame")
            con.unregister("_mart_frame")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    temp.replace(duckdb_path)
    duckdb_path.with_name(duckdb_path.name + ".wal").unlink(missing_ok=True)
    parquet_dir = Path(parquet_dir)
    parquet_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, frame in tables.items():
        path = parquet_dir / f"{name}.parquet"
        encrypt_parquet(frame, path, ring)
        files[name] = path
    return files


def analyst_mart_key(key: KeyRing) -> KeyRing:
    """The key ring analysts are given: opens the mart only (derived one-way from the master)."""
    return KeyRing(key.derive(MART_PURPOSE))


def pseudonym_secret(key: KeyRing) -> bytes:
    """The pseudonym key for :func:`build_analyst_mart` (erasure finds mart rows with it)."""
    return key.derive(PSEUDONYM_PURPOSE)

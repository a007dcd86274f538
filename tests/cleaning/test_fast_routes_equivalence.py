"""Ingest + clean of a demo delivery: the fast routes give the same tables as the plain ones.

The plain routes are the per-value code the fast paths replace: ``is_valid_number`` +
``number_type`` per phone, ``normalize_phone`` on every distinct phone (no mobile segment,
landline key or extension split in Arrow), ``normalize_header`` on every distinct cell,
``cell_text`` on every XLSX cell.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import PhoneNumberFormat

import sources.read_excel as read_excel
import sources.row_checks as row_checks
from cleaning import address, phone, phone_bulk
from cleaning.pipeline import CleaningOptions, clean_records
from sources import ingest_source
from sources.config import load_sources_config
from sources.demo import write_demo

ROOT = Path(__file__).resolve().parents[2]


def _plain_number(digits: str, region: str) -> tuple[str, str] | None:
    try:
        num = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    kind = phone._TYPES.get(phonenumbers.number_type(num), "other")
    return phonenumbers.format_number(num, PhoneNumberFormat.E164), kind


def _no_mobile_segments(norms: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    n = len(norms)
    return np.zeros(n, dtype=bool), pa.nulls(n, pa.string()), pa.nulls(n, pa.string())


def _no_landline_keys(norms: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, list, list]:
    n = len(norms)
    return np.zeros(n, dtype=bool), [None] * n, [None] * n


def _no_extension_split(norms: pa.Array) -> tuple[pa.Array, pa.Array]:
    return norms, pa.nulls(len(norms), pa.string())


def _plain_convert(values: Any) -> tuple[list[str | None], int]:
    texts = [read_excel.cell_text(v) for v in values]
    return texts, sum(isinstance(v, float) and abs(v) >= 10**15 for v in values)


def _digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame.astype("string"), index=True).to_numpy()
    return hashlib.sha256(",".join(frame.columns).encode() + hashed.tobytes()).hexdigest()


def _run(landing: Path) -> dict[str, str]:
    """Content hashes of the ingested rows and every clean table."""
    address.parse_address.cache_clear()
    phone.normalize_phone.cache_clear()
    if hasattr(phone._number, "cache_clear"):
        phone._number.cache_clear()
    cfg = load_sources_config(ROOT / "sources" / "sources.yml", landing, check_files=False)
    results = [ingest_source(s, cfg.landing_dir, "run", "2026-11-23T00:00:00") for s in cfg.sources]
    raw = pd.concat([r.rows for r in results], ignore_index=True)
    departments = {s.name: s.department for s in cfg.sources}
    clean = clean_records(raw, CleaningOptions(departments=departments))
    tables = {"raw": raw, "quarantine": pd.concat([r.quarantined_rows for r in results])}
    for name in ("records", "transactions", "interactions", "follow_up", "unmapped_industries"):
        tables[name] = getattr(clean, name)
    assert len(raw) > 1000 and len(clean.records) == len(raw)
    return {name: _digest(frame) for name, frame in tables.items()}


def test_fast_routes_give_identical_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_demo(tmp_path, entities=800, seed=11, delivery_date="2026-11-23")
    landing = tmp_path / "landing"
    fast = _run(landing)
    monkeypatch.setattr(phone, "_number", _plain_number)
    monkeypatch.setattr(phone_bulk, "_mobile_fast_path", _no_mobile_segments)
    monkeypatch.setattr(phone_bulk, "_landline_fast_path", _no_landline_keys)
    monkeypatch.setattr(phone_bulk, "_split_extension", _no_extension_split)
    monkeypatch.setattr(row_checks, "_not_header_pattern", lambda names: None)
    monkeypatch.setattr(read_excel, "_convert_column", _plain_convert)
    plain = _run(landing)
    assert fast == plain

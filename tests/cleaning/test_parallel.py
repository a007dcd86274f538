"""Distinct values cleaned in a process pool give exactly what the calling process gives."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from cleaning import CleaningOptions, _parallel, clean_records, worker_pool


def _pid(_: object) -> int:
    return os.getpid()


def _square(v: int) -> int:
    return v * v


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 20 values, so the demo's few hundred distinct values do reach the pool."""
    monkeypatch.setattr(_parallel, "MIN_VALUES_PER_CHUNK", 20)


def test_pool_keeps_order_and_runs_in_other_processes(small_chunks: None) -> None:
    values = list(range(200))
    assert _parallel.apply_values(_square, values) == [v * v for v in values]  # no pool open
    with worker_pool(2):
        assert _parallel.apply_values(_square, values) == [v * v for v in values]
        pids = set(_parallel.apply_values(_pid, values))
        assert os.getpid() not in pids and len(pids) >= 1
        assert _parallel.apply_values(_square, [3]) == [9]  # too few values: parsed here
    assert _parallel._pool is None  # closed with the block


def test_unpicklable_function_fails_loudly(small_chunks: None) -> None:
    with worker_pool(2), pytest.raises(Exception, match=r"pickle|lambda"):
        _parallel.apply_values(lambda v: v, list(range(100)))


def test_one_worker_opens_no_pool() -> None:
    with worker_pool(1):
        assert _parallel._pool is None


def _varied(raw: pd.DataFrame, copies: int) -> pd.DataFrame:
    """``copies`` copies of the dirty rows, each with its own names, phones, mails, addresses."""
    frames = []
    for i in range(copies):
        part = raw.copy()
        part["record_key"] = part["record_key"] + f"-{i}"
        part["customer_name"] = part["customer_name"] + str(i)
        part["address"] = part["address"] + f"{i}号"
        part["phone"] = part["phone"].str.replace("5678", f"{5600 + i}", regex=False)
        part["email"] = f"{i}." + part["email"]
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def test_clean_records_identical_with_two_workers(
    mixed_raw: pd.DataFrame, small_chunks: None
) -> None:
    """Dirty rows cleaned with 1 and 2 workers: every clean table is equal."""
    raw = _varied(mixed_raw, 60)
    options = CleaningOptions(departments={"crm": "销售部"})
    single = clean_records(raw, options)
    with worker_pool(2):
        pooled = clean_records(raw, options)
    for name in ("records", "transactions", "interactions", "follow_up", "unmapped_industries"):
        pd.testing.assert_frame_equal(getattr(pooled, name), getattr(single, name), obj=name)
    assert len(single.records) == len(raw)
    assert single.records["customer_name"].nunique() > 4 * 20  # the pool had chunks to parse

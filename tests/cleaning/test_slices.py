"""``clean_slices``: slices cleaned in helper processes come back in order, equal, never hang."""

from __future__ import annotations

import os
import threading
import time
from functools import partial

import pandas as pd
import pytest

from cleaning import _slices
from cleaning._slices import HelperError, clean_slices
from cleaning.incremental import clean_batch
from cleaning.pipeline import CleaningOptions
from warehouse.clean_full import slice_bounds


def _frame(n: int) -> pd.DataFrame:
    phones = ["139 1234 5678", "010-6275 1234 转 8001", "+86 21 6888 8888", "12345", None]
    return pd.DataFrame(
        {
            "record_key": [f"crm:{i}" for i in range(n)],
            "source_system": "crm",
            "source_record_id": [str(i) for i in range(n)],
            "source_row": [str(i + 1) for i in range(n)],
            "customer_name": [f"北京星辰{i % 7}科技有限公司上海分公司" for i in range(n)],
            "contact_name": ["张伟经理", "Mr. JOHN SMITH", None, "王女士"][0:1] * n,
            "phone": [phones[i % len(phones)] for i in range(n)],
            "address": [f"沪浦东新区世纪大道{i}号" for i in range(n)],
            "registered_date": ["2024年3月15日", "15/03/2024", "无"][0:1] * n,
        },
        dtype="string",
    )


RAW = _frame(60)


def _read(start: int, stop: int) -> pd.DataFrame:
    return RAW.iloc[start:stop].reset_index(drop=True)


def _rows(frame: pd.DataFrame) -> list[str]:
    return frame["record_key"].tolist()


def _exit_in_helper(parent: int, raw: pd.DataFrame) -> list[str]:
    if os.getpid() != parent:
        os._exit(3)  # the helper dies without answering
    return _rows(raw)


def _sleep_in_helper(parent: int, raw: pd.DataFrame) -> list[str]:
    if os.getpid() != parent:
        time.sleep(60)
    return _rows(raw)


def _fail(raw: pd.DataFrame) -> list[str]:
    raise ValueError(f"bad slice of {len(raw)} rows")


def test_helpers_clean_slices_as_this_process_does() -> None:
    clean = partial(clean_batch, options=CleaningOptions(), orders={"crm": "auto"},
                    shared=frozenset())  # fmt: skip
    bounds = slice_bounds(len(RAW), 25, processes=2)
    alone = list(clean_slices(_read, bounds, clean, helpers=0))
    side_by_side = list(clean_slices(_read, bounds, clean, helpers=1))
    assert len(side_by_side) == len(alone) == len(bounds) == 4
    for (raw_a, res_a), (raw_b, res_b) in zip(alone, side_by_side, strict=True):
        pd.testing.assert_frame_equal(raw_a, raw_b)
        for table in ("records", "transactions", "interactions", "follow_up"):
            pd.testing.assert_frame_equal(getattr(res_a, table), getattr(res_b, table))
    assert [k for raw, _ in side_by_side for k in _rows(raw)] == _rows(RAW)


def test_a_dead_helper_s_slices_are_cleaned_here() -> None:
    bounds = slice_bounds(len(RAW), 10, processes=2)
    out = list(clean_slices(_read, bounds, partial(_exit_in_helper, os.getpid()), helpers=1))
    assert [k for _, rows in out for k in rows] == _rows(RAW)


def test_a_helper_that_does_not_answer_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_slices, "HELPER_TIMEOUT", 1.0)
    bounds = slice_bounds(len(RAW), 30, processes=2)
    started = time.monotonic()
    out = list(clean_slices(_read, bounds, partial(_sleep_in_helper, os.getpid()), helpers=1))
    assert [k for _, rows in out for k in rows] == _rows(RAW)
    assert time.monotonic() - started < 30  # not the helper's 60 s


def test_an_error_in_a_helper_is_raised_with_its_traceback() -> None:
    bounds = slice_bounds(len(RAW), 30, processes=2)
    slices = clean_slices(_read, bounds, _fail, helpers=1)
    with pytest.raises(ValueError, match="bad slice of 30 rows"):
        next(slices)  # this process's own slice fails as it would alone
    slices = clean_slices(_read, bounds, partial(_fail_in_helper_only, os.getpid()), helpers=1)
    assert _rows(next(slices)[0]) == _rows(RAW)[:30]
    with pytest.raises(HelperError, match="ValueError: bad slice of 30 rows"):
        next(slices)


def _fail_in_helper_only(parent: int, raw: pd.DataFrame) -> list[str]:
    if os.getpid() != parent:
        return _fail(raw)
    return _rows(raw)


def _slow_in_helper(parent: int, raw: pd.DataFrame) -> tuple[int, list[str]]:
    if os.getpid() != parent:
        time.sleep(0.3)
    return os.getpid(), _rows(raw)


def test_a_slow_helper_cannot_make_this_process_hold_every_slice() -> None:
    reads: list[int] = []

    def read(start: int, stop: int) -> pd.DataFrame:
        reads.append(start)
        return _read(start, stop)

    bounds = slice_bounds(len(RAW), 5, processes=2)  # 12 slices
    held = []
    out = []
    for raw, (pid, rows) in clean_slices(read, bounds, partial(_slow_in_helper, os.getpid()),
                                         helpers=1):  # fmt: skip
        out.append((pid, rows))
        held.append(len(reads) - len(out))  # read, not yielded yet (this one yielded)
        assert rows == _rows(raw)
    assert [k for _, rows in out for k in rows] == _rows(RAW)
    assert max(held) <= 1 * _slices.HELPER_DEPTH + 2  # besides the one yielded; not all 12
    assert {pid for pid, _ in out} - {os.getpid()}  # the helper cleaned some
    assert out[0][0] == os.getpid()  # the first slice is this process's (helpers start)


def test_read_ahead_reads_the_next_slice_beside_the_cleaning_in_order() -> None:
    """``read_ahead``: slice i + 1 is read in a thread while slice i is cleaned and yielded;
    the same slices and results in the same order."""
    bounds = slice_bounds(len(RAW), 15)
    started = {start: threading.Event() for start, _ in bounds}
    threads: list[tuple[int, str]] = []
    overlapped: list[bool] = []

    def read(start: int, stop: int) -> pd.DataFrame:
        threads.append((start, threading.current_thread().name))
        started[start].set()
        return _read(start, stop)

    def clean(raw: pd.DataFrame) -> list[str]:
        following = int(raw["source_row"].iloc[0]) - 1 + 15
        if following in started:  # the next slice's read runs while this one is cleaned
            overlapped.append(started[following].wait(timeout=10))
        return _rows(raw)

    alone = list(clean_slices(_read, bounds, _rows))
    ahead = list(clean_slices(read, bounds, clean, read_ahead=True))
    assert [r for _, r in ahead] == [r for _, r in alone] and len(ahead) == len(bounds) > 2
    assert [start for start, _ in threads] == [start for start, _ in bounds]  # each once
    assert threads[0][1] == threading.main_thread().name  # the first: nothing to overlap yet
    assert all(name.startswith("slice-read") for _, name in threads[1:])
    assert overlapped == [True] * (len(bounds) - 1)


def test_read_ahead_raises_a_read_error_and_stops() -> None:
    def read(start: int, stop: int) -> pd.DataFrame:
        if start >= 30:
            raise OSError(f"cannot read slice {start}")
        return _read(start, stop)

    slices = clean_slices(read, slice_bounds(len(RAW), 15), _rows, read_ahead=True)
    assert len(next(slices)[0]) == 15
    assert len(next(slices)[0]) == 15
    with pytest.raises(OSError, match="slice 30"):
        next(slices)

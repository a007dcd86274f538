"""A chunked full clean parses a name shared by several slices once, with the collector off."""

from __future__ import annotations

import gc

import pandas as pd
import pytest

import cleaning.company
from cleaning import clean_records
from cleaning.memos import clear_value_memos, value_memos
from cleaning.pipeline import collector_paused


@pytest.fixture(autouse=True)
def _fresh_memos():
    clear_value_memos()
    yield
    clear_value_memos()


def _slice(keys: range) -> pd.DataFrame:
    """Rows of two sources naming the same companies and contacts in every slice."""
    n = len(keys)
    return pd.DataFrame(
        {
            "record_key": [f"crm:{k}" for k in keys],
            "source_system": "crm",
            "source_record_id": [str(k) for k in keys],
            "source_file": "crm.csv",
            "source_row": [str(k) for k in keys],
            "source_sha256": "abc",
            "ingested_at": "2024-03-20T00:00:00",
            "customer_name": [
                "北京某某（上海）科技有限公司杭州分公司",
                "王先生",
                "臺灣積體電路製造股份有限公司",
            ][:n],
            "contact_name": ["张伟经理", "李女士", "Mr. JOHN SMITH"][:n],
            "customer_type": [None, "个人", None][:n],
        },
        dtype="string",
    )


def test_names_shared_by_slices_are_parsed_once_with_the_same_records() -> None:
    whole = clean_records(pd.concat([_slice(range(3)), _slice(range(3, 6))], ignore_index=True))
    clear_value_memos()
    memo = cleaning.company.parse_normalized_company_name
    first = clean_records(_slice(range(3)))
    parsed_first = memo.cache_info().misses
    second = clean_records(_slice(range(3, 6)))

    assert memo.cache_info().misses == parsed_first  # the second slice parsed no name again
    assert memo.cache_info().hits >= 3
    both = pd.concat([first.records, second.records], ignore_index=True)
    pd.testing.assert_frame_equal(both, whole.records)


def test_the_slice_memos_are_dropped_with_the_others() -> None:
    clean_records(_slice(range(3)))
    names = {memo.__qualname__ for memo in value_memos()}
    assert {"parse_normalized_company_name", "split_normalized_person_name",
            "_individual_name_key"} <= names  # fmt: skip
    assert cleaning.company.parse_normalized_company_name.cache_info().currsize > 0
    clear_value_memos()
    assert cleaning.company.parse_normalized_company_name.cache_info().currsize == 0


def test_a_clean_runs_with_the_cyclic_collector_paused(monkeypatch) -> None:
    seen: list[bool] = []
    real = cleaning.company.parse_normalized_company_name

    def watching(display: str | None):
        seen.append(gc.isenabled())
        return real(display)

    monkeypatch.setattr("cleaning._steps.parse_normalized_company_name", watching)
    assert gc.isenabled()
    clean_records(_slice(range(3)))
    assert seen and not any(seen)  # off while cleaning
    assert gc.isenabled()  # and on again after


def test_the_collector_pause_keeps_a_caller_s_setting_and_survives_errors() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()

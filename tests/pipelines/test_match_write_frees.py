"""The full match stage's write hands the prepared frame over instead of holding it.

``write_match_tables`` streams ``match.prepared`` first and lets go of the frame before the
pairs are written; a reference kept by the stage meanwhile keeps every prepared record
resident through the pairs' write (≈ +250 MB at 1 M records: the full run's peak).
"""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest

import pipelines.stages.match as match_stage
from dedupe.link import link_compact
from tests.dedupe.synth import make_records


class _Seen(Exception):
    """Raised by the spy once it has looked: the write itself is not under test here."""


def test_the_full_write_holds_no_reference_to_the_prepared_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records, _ = make_records(120, seed=3)
    result = link_compact(records)
    held: list[bool] = []

    def spy(con: object, tables: object, params_row: object, prepared: object,
            *args: object, **kwargs: object) -> None:  # fmt: skip
        assert isinstance(prepared, pd.DataFrame) and len(prepared) > 0
        ref = weakref.ref(prepared)
        del prepared  # the write's own reference, as write_match_tables lets go of it
        gc.collect()
        held.append(ref() is not None)
        raise _Seen

    monkeypatch.setattr(match_stage, "write_match_tables", spy)
    ctx = SimpleNamespace(run_id="r1", ingested_at=pd.Timestamp("2026-12-01"))
    inputs = SimpleNamespace(plan=None, state={})
    with pytest.raises(_Seen):
        match_stage._write_compact(duckdb.connect(), ctx, inputs, result)  # type: ignore[arg-type]
    assert held == [False]
    assert result.prepared is None  # the result lets go of it too

"""Link records end to end: block, compare, score, apply hard rules and decisions, cluster."""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import pandas as pd
import pyarrow as pa

from dedupe.assemble import CompactLink, LinkResult, assemble_compact, decision_positions
from dedupe.blocking import Codes, generate_candidate_codes
from dedupe.levels import comparisons_for, rules_for
from dedupe.model import ModelParams
from dedupe.pairset import arrow_strings
from dedupe.prepare import prepare_records
from dedupe.rules import normalize_decisions
from dedupe.scoring import score_candidates_compact
from dedupe.settings import MatchSettings

__all__ = ["CompactLink", "LinkResult", "link_compact", "link_records"]


def link_records(
    records: pd.DataFrame,
    settings: MatchSettings | None = None,
    decisions: pd.DataFrame | None = None,
    params: ModelParams | None = None,
) -> LinkResult:
    """Resolve `clean.records` into clusters of records of the same customer (客户去重).

    Args:
        records: clean.records (record_key plus any compared fields).
        settings: matching settings; None = defaults.
        decisions: steward decisions (left_key, right_key, decision 'match' | 'no-match',
            decided_by, decided_at); the latest per pair wins.
        params: previously estimated model parameters to reuse; None = estimate by EM.

    Returns:
        The scored pairs, clusters, review queue, blocking stats and the parameters used.
    """
    return link_compact(records, settings, decisions, params, arrow_text=False).to_result()


def link_compact(
    records: pd.DataFrame,
    settings: MatchSettings | None = None,
    decisions: pd.DataFrame | None = None,
    params: ModelParams | None = None,
    arrow_text: bool = True,
    prepare_helpers: int = 0,
    prepare_chunk_records: int | None = None,
) -> CompactLink:
    """`link_records` without the frame of every pair (the full match stage writes
    ``match.pairs`` from it a batch at a time: `CompactLink.pair_reader`).

    Same arguments as `link_records`; the records are dropped once prepared. With
    `arrow_text`, the prepared text columns the matcher reads only through their codes are
    held as Arrow strings (`arrow_text_columns`): the result is the same. `prepare_helpers`,
    `prepare_chunk_records`: helper processes preparing record chunks and the chunks' size
    (`prepare_records`' ``helpers`` and ``chunk_records``; the same frame).
    """
    settings = settings or MatchSettings()
    warnings: list[str] = []
    prepared = prepare_records(records, settings, prepare_chunk_records, prepare_helpers)
    # not needed once prepared: a caller that handed the records over frees them here
    del records
    if arrow_text:
        prepared = arrow_text_columns(prepared, object_columns(settings))
    return_free_memory()
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    decided = decision_positions(normalize_decisions(decisions), keys, warnings)
    rules = rules_for(settings)
    codes: Codes = {}
    cand = generate_candidate_codes(
        prepared,
        rules,
        settings.max_block_size,
        settings.block_window,
        extra=(decided[0], decided[1]),
        codes=codes,
    )
    stats = cand.stats
    # the rules' threads freed their temporaries into their own heaps: handed back first
    return_free_memory()
    # the pair set takes the candidate arrays over (int32 positions, int16 rule codes)
    pairs, params = score_candidates_compact(
        prepared, cand.left, cand.right, (cand.rule, cand.rule_names), settings, params, codes
    )
    # the factorized columns are not needed to assemble: freed first
    del cand, codes
    return_free_memory()
    return assemble_compact(prepared, pairs, decided, settings, params, stats, warnings)


_STR = pd.StringDtype("pyarrow", na_value=np.nan)
_OBJECT_COLUMNS = ("record_key", "name_key", "name_pinyin", "name_key_masked", "id_number",
                   "phone", "email")  # fmt: skip
"""Prepared text columns kept as Python objects (None for null): the matcher reads their
values one by one (`dedupe.rules._names_compatible` tests ``is None``) or counts them
(`dedupe.model.term_frequencies`: equal counts keep the object column's order)."""


def object_columns(settings: MatchSettings) -> frozenset[str]:
    """The prepared text columns `arrow_text_columns` leaves as objects under `settings`."""
    tf = {c.tf_column for c in comparisons_for(settings) if c.tf_column is not None}
    return frozenset(_OBJECT_COLUMNS) | tf


def arrow_text_columns(prepared: pd.DataFrame, keep: frozenset[str]) -> pd.DataFrame:
    """`prepared` with its text columns (but `keep`) as Arrow strings, one column at a time.

    A Python string costs ≈ 50 bytes of header and UCS-2/UCS-4 text, an Arrow string 4 bytes
    of offset and its UTF-8 bytes: ≈ 1 KB less per prepared record. The matcher reads these
    columns through `pd.factorize` codes and their distinct values (the same codes, in the
    same order, as from the object column), through ``astype("string")`` or ``isin``, or
    into the review queue's string columns: the link does not change. A column holding
    anything but strings and nulls (or only nulls) stays as it is.
    """
    out = {}
    for column in prepared.columns:
        values = prepared[column]
        if column in keep or values.dtype != object:
            out[column] = values
            continue
        try:
            arr = pa.array(values.to_numpy(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = None
        if arr is None or not pa.types.is_string(arr.type):
            out[column] = values
            continue
        out[column] = pd.Series(arr.to_pandas(types_mapper=lambda _: _STR), index=prepared.index)
    return pd.DataFrame(out, copy=False)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def return_free_memory() -> None:
    """Hand memory freed by the step before back to the system.

    Freed memory otherwise stays with the allocators (glibc's heap behind Python and NumPy,
    Arrow's pool behind pandas' Arrow-backed columns) and the next step's arrays stack on
    it: the match stage's resident peak is the sum of what each step left free. Nothing is
    moved or recomputed (results do not change); costs a few milliseconds.
    """
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:  # glibc only (malloc_trim); other C libraries keep their heap
        _LIBC.malloc_trim(0)

"""Link records end to end: block, compare, score, apply hard rules and decisions, cluster."""

from __future__ import annotations

import pandas as pd

from dedupe.assemble import CompactLink, LinkResult, assemble_compact, decision_positions
from dedupe.blocking import Codes, generate_candidates
from dedupe.levels import rules_for
from dedupe.model import ModelParams
from dedupe.pairset import arrow_strings
from dedupe.prepare import prepare_records
from dedupe.rules import normalize_decisions
from dedupe.scoring import score_candidates
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
    return link_compact(records, settings, decisions, params).to_result()


def link_compact(
    records: pd.DataFrame,
    settings: MatchSettings | None = None,
    decisions: pd.DataFrame | None = None,
    params: ModelParams | None = None,
) -> CompactLink:
    """`link_records` without the frame of every pair (the full match stage writes
    ``match.pairs`` from it a batch at a time: `CompactLink.pair_reader`).

    Same arguments as `link_records`; the records are dropped once prepared.
    """
    settings = settings or MatchSettings()
    warnings: list[str] = []
    prepared = prepare_records(records, settings)
    # not needed once prepared: a caller that handed the records over frees them here
    del records
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    decided = decision_positions(normalize_decisions(decisions), keys, warnings)
    rules = rules_for(settings)
    codes: Codes = {}
    cand = generate_candidates(
        prepared, rules, settings.max_block_size, settings.block_window,
        extra=(decided[0], decided[1]), codes=codes,
    )
    pairs, params = score_candidates(
        prepared, cand.left, cand.right, cand.rule, settings, params, codes
    )
    stats = cand.stats
    # the candidate arrays and the factorized columns are not needed to assemble: freed first
    del cand, codes
    return assemble_compact(prepared, pairs, decided, settings, params, stats, warnings)

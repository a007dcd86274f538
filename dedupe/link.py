"""Link records end to end: block, compare, score, apply hard rules and decisions, cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedupe.blocking import BLOCKING_RULES, generate_candidates, still_blocked
from dedupe.clustering import cluster_pairs
from dedupe.comparisons import COMPARISONS, Comparison, PairContext, compute_levels
from dedupe.model import (
    ComparisonParams,
    ModelParams,
    score_pairs,
    term_frequencies,
    tf_adjustment,
)
from dedupe.prepare import RecordsError, prepare_records
from dedupe.review import build_review_queue
from dedupe.rules import hard_rule_reasons, normalize_decisions
from dedupe.settings import MatchSettings
from dedupe.training import estimate_m, estimate_prior, estimate_u


@dataclass
class LinkResult:
    """Output of a linking run (match.pairs / clusters / review_queue / blocking_stats).

    Attributes:
        pairs: left_key, right_key, rule, score, probability, <comparison>_level …, hard_rule,
            steward_decision, decision ('match' | 'review' | 'no_match').
        clusters: record_key, cluster_key (smallest record_key of the cluster).
        review_queue: review-band pairs, both records side by side with per-field evidence.
        blocking_stats: rule, pairs, new_pairs, oversize_blocks.
        params: the model parameters used (estimated or given).
        warnings: problems that did not stop the run (e.g. decisions on unknown records).
        prepared: the matcher's view of the records (hand it to `link_incremental` next time
            so unchanged records are not prepared again).
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    review_queue: pd.DataFrame
    blocking_stats: pd.DataFrame
    params: ModelParams
    warnings: list[str] = field(default_factory=list)
    prepared: pd.DataFrame | None = None


def _comparisons(settings: MatchSettings) -> list[Comparison]:
    return [COMPARISONS[name] for name in settings.comparisons]


def _decision_positions(
    decisions: pd.DataFrame, keys: pd.Index, warnings: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lpos = keys.get_indexer(decisions["left_key"])
    rpos = keys.get_indexer(decisions["right_key"])
    known = (lpos >= 0) & (rpos >= 0)
    if (~known).any():
        warnings.append(
            f"{int((~known).sum())} steward decision(s) name records not in this run; "
            "kept for later"
        )
    return lpos[known], rpos[known], decisions["decision"].to_numpy(dtype=object)[known]


def _score_candidates(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    settings: MatchSettings,
    params: ModelParams | None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, ModelParams, PairContext]:
    comparisons = _comparisons(settings)
    ctx = PairContext(prepared, left, right)
    levels = compute_levels(ctx, comparisons)
    if params is None:
        params = _estimate(prepared, ctx, levels, comparisons, settings)
    else:
        params.check(comparisons)
    bonus = None
    if settings.tf_adjustment:
        bonus = tf_adjustment(
            prepared, left, levels, comparisons, params, settings.tf_max_bonus
        )
    score, probability = score_pairs(levels, comparisons, params, bonus)
    return levels, score, probability, params, ctx


def _estimate(
    prepared: pd.DataFrame,
    ctx: PairContext,
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    settings: MatchSettings,
) -> ModelParams:
    """u from random pairs, m by EM per blocking rule, then λ over all record pairs."""
    u = estimate_u(prepared, comparisons, settings.u_sample_pairs, settings.seed)
    rules = [BLOCKING_RULES[name] for name in settings.blocking_rules]
    m, iterations = estimate_m(
        ctx, levels, comparisons, rules, u,
        settings.em_max_iterations, settings.em_tolerance, settings.seed,
    )
    params = ModelParams(
        prior=0.5,
        comparisons={
            c.name: ComparisonParams(list(c.labels), m[c.name].tolist(), u[c.name].tolist())
            for c in comparisons
        },
        iterations=iterations,
    )
    for comp in comparisons:
        if comp.tf_column is not None:
            params.set_tf_table(comp.tf_column, term_frequencies(prepared, comp.tf_column))
    bonus = None
    if settings.tf_adjustment:
        bonus = tf_adjustment(
            prepared, ctx.left, levels, comparisons, params, settings.tf_max_bonus
        )
    score, _ = score_pairs(levels, comparisons, params, bonus)
    params.prior = estimate_prior(score, len(prepared), settings.prior)
    return params


def _assemble(
    prepared: pd.DataFrame,
    pairs: pd.DataFrame,
    decisions: pd.DataFrame,
    settings: MatchSettings,
    params: ModelParams,
    stats: pd.DataFrame,
    warnings: list[str],
) -> LinkResult:
    """Apply steward decisions, cluster, and build the result frames from scored pairs."""
    keys = pd.Index(prepared["record_key"])
    left = keys.get_indexer(pairs["left_key"])
    right = keys.get_indexer(pairs["right_key"])
    dec = pairs[["left_key", "right_key"]].merge(
        decisions[["left_key", "right_key", "decision"]], how="left", on=["left_key", "right_key"]
    )["decision"].astype(object)
    dec = dec.where(dec.notna(), "").to_numpy(dtype=object)
    hard = pairs["hard_rule"].astype(object)
    hard = hard.where(hard.notna(), None).to_numpy(dtype=object)
    steward_match = dec == "match"
    contested = steward_match & pd.notna(hard)
    if contested.any():
        warnings.append(
            f"{int(contested.sum())} steward 'match' decision(s) contradict a hard rule; "
            "sent back to review"
        )
    cannot = pd.notna(hard) | (dec == "no-match")
    must = steward_match & ~contested
    probability = pairs["probability"].to_numpy(dtype=np.float64)
    labels, refused = cluster_pairs(
        len(prepared), left, right, probability, must, cannot,
        settings.match_threshold, settings.min_cross_support,
    )
    record_keys = prepared["record_key"].to_numpy(dtype=object)
    clusters = pd.DataFrame({"record_key": record_keys, "cluster_key": record_keys[labels]})
    same = labels[left] == labels[right]
    band = (probability >= settings.review_threshold) & ~same & ~cannot
    review = (band | refused | contested) & ~same & (dec != "no-match")
    decision = np.where(same, "match", np.where(review, "review", "no_match"))
    pairs = pairs.copy()
    pairs["steward_decision"] = pd.array(np.where(dec == "", None, dec), dtype="string")
    pairs["decision"] = decision
    reason = np.where(
        contested, "steward_match_contradicts_" + hard.astype(str),
        np.where(refused, "weak_link_between_clusters", "review_band"),
    )
    queue = build_review_queue(prepared, pairs, review, reason, _comparisons(settings), params)
    return LinkResult(
        pairs.reset_index(drop=True), clusters, queue, stats, params, warnings, prepared
    )


def _pairs_frame(
    prepared: pd.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    rule: np.ndarray,
    levels: dict[str, np.ndarray],
    score: np.ndarray,
    probability: np.ndarray,
    hard: np.ndarray,
) -> pd.DataFrame:
    record_keys = prepared["record_key"].to_numpy(dtype=object)
    frame = pd.DataFrame(
        {
            "left_key": record_keys[left],
            "right_key": record_keys[right],
            "rule": rule,
            "score": score,
            "probability": probability,
        }
    )
    for name, codes in levels.items():
        frame[f"{name}_level"] = codes
    frame["hard_rule"] = pd.array(hard, dtype="string")
    return frame


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
    settings = settings or MatchSettings()
    warnings: list[str] = []
    prepared = prepare_records(records)
    decided = normalize_decisions(decisions)
    dl, dr, _ = _decision_positions(decided, pd.Index(prepared["record_key"]), warnings)
    rules = [BLOCKING_RULES[name] for name in settings.blocking_rules]
    cand = generate_candidates(
        prepared, rules, settings.max_block_size, settings.block_window, extra=(dl, dr)
    )
    levels, score, probability, params, ctx = _score_candidates(
        prepared, cand.left, cand.right, settings, params
    )
    hard = hard_rule_reasons(ctx, settings.merge_branches)
    pairs = _pairs_frame(
        prepared, cand.left, cand.right, cand.rule, levels, score, probability, hard
    )
    return _assemble(prepared, pairs, decided, settings, params, cand.stats, warnings)


def link_incremental(
    new_records: pd.DataFrame,
    existing_records: pd.DataFrame,
    existing_pairs: pd.DataFrame,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None,
    params: ModelParams,
    existing_prepared: pd.DataFrame | None = None,
) -> LinkResult:
    """Link new or changed records against the existing set without re-scoring old pairs.

    Only blocks holding a new/changed record are expanded and only pairs touching one are
    scored; old pairs between unchanged records are reused. With the same params, the clusters
    equal a full rebuild's (see docs/dedupe.md for the one caveat: a block crossing the size cap).

    Args:
        new_records: new records and new versions of changed records (same record_key).
        existing_records: the records of the previous run.
        existing_pairs: the previous run's `LinkResult.pairs`.
        settings: matching settings; None = defaults.
        decisions: all steward decisions so far.
        params: the model parameters of the previous run (required: no re-estimation).
        existing_prepared: the previous run's `LinkResult.prepared`; when given, only the new
            records are prepared (much faster), else every record is prepared again.

    Returns:
        A LinkResult over all records (existing + new); `blocking_stats` counts new pairs only.
    """
    settings = settings or MatchSettings()
    warnings: list[str] = []
    new_keys = pd.Index(new_records["record_key"].astype(str).to_numpy(dtype=object))
    old_keys = existing_records["record_key"].astype(str).to_numpy(dtype=object)
    if existing_prepared is not None and len(existing_prepared) == len(existing_records):
        changed = new_keys.get_indexer(existing_prepared["record_key"]) >= 0
        old_versions = existing_prepared[changed]
        reuse = existing_prepared[~changed]
        prepared = pd.concat([reuse, prepare_records(new_records)], ignore_index=True)
        prepared = prepared.sort_values("record_key", kind="stable").reset_index(drop=True)
        if prepared["record_key"].duplicated().any():
            raise RecordsError("new records repeat a record_key among themselves")
    else:
        changed = new_keys.get_indexer(old_keys) >= 0
        old_versions = prepare_records(existing_records[changed])
        kept = existing_records[~changed]
        prepared = prepare_records(pd.concat([kept, new_records], ignore_index=True))
    keys = pd.Index(prepared["record_key"])
    focus = new_keys.get_indexer(keys) >= 0
    decided = normalize_decisions(decisions)
    old_left = keys.get_indexer(existing_pairs["left_key"].to_numpy(dtype=object))
    old_right = keys.get_indexer(existing_pairs["right_key"].to_numpy(dtype=object))
    usable = (old_left >= 0) & (old_right >= 0)
    usable[usable] &= ~focus[old_left[usable]] & ~focus[old_right[usable]]
    rules = [BLOCKING_RULES[name] for name in settings.blocking_rules]
    # Reused pairs must still come out of blocking: a block that grew past the cap is windowed.
    decided_id = set(zip(decided["left_key"], decided["right_key"], strict=True))
    blocked = still_blocked(
        prepared, rules, settings.max_block_size, settings.block_window,
        old_left[usable], old_right[usable],
    )
    if not blocked.all():
        lost = np.nonzero(usable)[0][~blocked]
        steward = np.array(
            [(a, b) in decided_id for a, b in zip(
                existing_pairs["left_key"].to_numpy(dtype=object)[lost],
                existing_pairs["right_key"].to_numpy(dtype=object)[lost], strict=True,
            )],
            dtype=bool,
        )
        usable[lost[~steward]] = False
    old = existing_pairs[usable]
    dl, dr, _ = _decision_positions(decided, keys, warnings)
    n = np.int64(len(prepared))
    old_id = old_left[usable] * n + old_right[usable]
    missing = ~np.isin(np.minimum(dl, dr) * n + np.maximum(dl, dr), old_id)
    cand = generate_candidates(
        prepared, rules, settings.max_block_size, settings.block_window, focus=focus,
        extra=(dl[missing], dr[missing]), hot_values=old_versions,
    )
    levels, score, probability, params, ctx = _score_candidates(
        prepared, cand.left, cand.right, settings, params
    )
    hard = hard_rule_reasons(ctx, settings.merge_branches)
    fresh = _pairs_frame(
        prepared, cand.left, cand.right, cand.rule, levels, score, probability, hard
    )
    old = old[~np.isin(old_id, cand.left * n + cand.right)]
    pairs = pd.concat([old[fresh.columns], fresh], ignore_index=True)
    pairs = pairs.sort_values(["left_key", "right_key"], kind="stable").reset_index(drop=True)
    return _assemble(prepared, pairs, decided, settings, params, cand.stats, warnings)

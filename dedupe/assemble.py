"""Turn scored pairs into a run's result: steward decisions, clustering, decisions, review queue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from dedupe.clustering import cluster_pairs
from dedupe.levels import comparisons_for
from dedupe.model import ModelParams
from dedupe.pairset import PairSet, arrow_strings, positions_of
from dedupe.review import build_review_queue
from dedupe.rules import id_number_matches
from dedupe.settings import MatchSettings


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
        pair_set: `pairs` as integer positions into `prepared` and compact arrays (hand it to
            `link_incremental` next time so old pairs are not looked up by key again).
        labels: cluster label per row of `prepared` (position of the cluster's first record).
        refreshed: incremental runs: which rows of `prepared` this run prepared or re-flagged
            (new or changed records, whole-set flags flipped); None = all of them.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    review_queue: pd.DataFrame
    blocking_stats: pd.DataFrame
    params: ModelParams
    warnings: list[str] = field(default_factory=list)
    prepared: pd.DataFrame | None = None
    pair_set: PairSet | None = None
    labels: np.ndarray | None = None
    refreshed: np.ndarray | None = None

    def matched_pairs(self) -> int:
        """How many pairs were decided ``match``."""
        return int((self.pairs["decision"] == "match").sum()) if len(self.pairs) else 0

    def cluster_count(self) -> int:
        """How many clusters (customers-to-be) the records form."""
        return int(self.clusters["cluster_key"].nunique()) if len(self.clusters) else 0


def decision_positions(
    decisions: pd.DataFrame, keys: pa.Array, warnings: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (left < right) and decision of the steward decisions naming known records."""
    lpos = positions_of(decisions["left_key"].astype(object).to_numpy(), keys)
    rpos = positions_of(decisions["right_key"].astype(object).to_numpy(), keys)
    known = (lpos >= 0) & (rpos >= 0)
    if (~known).any():
        warnings.append(
            f"{int((~known).sum())} steward decision(s) name records not in this run; "
            "kept for later"
        )
    lpos, rpos = lpos[known], rpos[known]
    return (
        np.minimum(lpos, rpos),
        np.maximum(lpos, rpos),
        decisions["decision"].to_numpy(dtype=object)[known],
    )


_STEWARD = ("match", "no-match")
STEWARD_OVERRIDABLE = frozenset({"name_conflict", "place_conflict"})
"""Hard rules a steward's 'match' decision overrides (the others send it back to review)."""


def steward_per_pair(
    pairs: PairSet, n: int, dl: np.ndarray, dr: np.ndarray, dd: np.ndarray
) -> np.ndarray:
    """Steward decision per pair as a code (-1 none, 0 match, 1 no-match), found by id."""
    out = np.full(len(pairs), -1, dtype=np.int8)
    if len(dl) == 0 or len(pairs) == 0:
        return out
    ids = pairs.ids(n)
    wanted = dl * np.int64(n) + dr
    at = np.searchsorted(ids, wanted)
    hit = at < len(ids)
    hit[hit] &= ids[at[hit]] == wanted[hit]
    out[at[hit]] = np.where(dd[hit] == "match", 0, 1)
    return out


def exclusive_codes(prepared: pd.DataFrame, settings: MatchSettings) -> tuple[np.ndarray, ...]:
    """Per-record codes of attributes one customer may hold at most one value of.

    Valid 居民身份证号 (one person, one number), valid credit codes (统一社会信用代码: one
    legal entity, one code) and, unless
    ``merge_branches``, the branch part of the name (headquarters = no branch). Unknown or
    invalid codes are -1 (compatible with anything).
    """
    out = []
    if "id_number_valid" in prepared and prepared["id_number_valid"].any():
        # 居民身份证号: one person, one valid number (a hard rule like credit codes)
        valid = prepared["id_number_valid"].to_numpy(dtype=bool)
        numbers = prepared["id_number"].astype("string").where(valid)
        out.append(pd.factorize(numbers, use_na_sentinel=True)[0].astype(np.int64))
    if "credit_code" in prepared:
        valid = prepared.get("credit_code_valid", pd.Series(False, index=prepared.index))
        codes = (
            prepared["credit_code"]
            .astype("string")
            .where(valid.astype("boolean").fillna(False).to_numpy(dtype=bool))
        )
        out.append(pd.factorize(codes, use_na_sentinel=True)[0].astype(np.int64))
    if not settings.merge_branches and "branch_key" in prepared:
        ent = prepared.get("customer_type", pd.Series("enterprise", index=prepared.index))
        branch = prepared["branch_key"].astype("string").fillna("\x00headquarters")
        known = ent.astype("string").eq("enterprise").fillna(False).to_numpy(bool)
        known &= ~prepared["branch_soft"].to_numpy(dtype=bool)  # a place qualifier: unknown
        branch = branch.where(known)
        out.append(pd.factorize(branch, use_na_sentinel=True)[0].astype(np.int64))
    return tuple(out)


def assemble(
    prepared: pd.DataFrame,
    pairs: PairSet,
    decisions: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: MatchSettings,
    params: ModelParams,
    stats: pd.DataFrame,
    warnings: list[str],
    previous: np.ndarray | None = None,
    touched: np.ndarray | None = None,
) -> LinkResult:
    """Apply steward decisions, cluster, and build the result frames from scored pairs.

    Args:
        prepared: the prepared records.
        pairs: scored pairs sorted by (left, right).
        decisions: (left, right, decision) positions of the steward decisions on known records.
        settings: matching settings.
        params: model parameters used.
        stats: blocking stats to report.
        warnings: warnings so far (appended to).
        previous, touched: an earlier run's cluster labels and the records whose component
            may have changed (incremental runs; see `cluster_pairs`).

    Returns:
        The run's LinkResult (`assemble_compact`'s result with its pairs frame built).
    """
    return assemble_compact(
        prepared, pairs, decisions, settings, params, stats, warnings, previous, touched
    ).to_result()


PAIR_BATCH_ROWS = 500_000
"""Rows of ``match.pairs`` built at a time from a `CompactLink` (bounded memory)."""
_DECISIONS = ("no_match", "review", "match")


@dataclass
class CompactLink:
    """A link's result with the pairs kept as numbers: no frame of every pair.

    The full match stage writes ``match.pairs`` from it a batch at a time (`pair_reader`);
    `to_result` gives the `LinkResult` with the whole pairs frame (the same rows).

    Attributes:
        pair_set: the scored pairs (positions into `prepared`).
        keys: the record keys of `prepared`, in order (Arrow strings).
        steward: steward decision per pair (-1 none, 0 'match', 1 'no-match').
        decision: decision per pair (0 'no_match', 1 'review', 2 'match').
        clusters, review_queue, blocking_stats, params, warnings, prepared, labels: as in
            `LinkResult`.
    """

    pair_set: PairSet
    keys: pa.Array
    steward: np.ndarray
    decision: np.ndarray
    clusters: pd.DataFrame
    review_queue: pd.DataFrame
    blocking_stats: pd.DataFrame
    params: ModelParams
    warnings: list[str]
    prepared: pd.DataFrame
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.pair_set)

    def matched_pairs(self) -> int:
        """How many pairs were decided ``match``."""
        return int((self.decision == 2).sum())

    def cluster_count(self) -> int:
        """How many clusters (customers-to-be) the records form."""
        return int(self.clusters["cluster_key"].nunique()) if len(self.clusters) else 0

    def pairs_frame(self, rows: slice | None = None) -> pd.DataFrame:
        """The rows `rows` (all when None) of the pairs frame (`LinkResult.pairs` columns)."""
        pairs = self.pair_set if rows is None else self.pair_set.take(rows)
        dec = self.steward if rows is None else self.steward[rows]
        decision = self.decision if rows is None else self.decision[rows]
        frame = pairs.to_frame(self.keys)
        frame["steward_decision"] = pd.Series(
            pa.array(_STEWARD).take(pa.array(dec.astype(np.int32), mask=dec < 0)),
            dtype="string",
        )
        frame["decision"] = pd.Series(
            pa.array(list(_DECISIONS)).take(pa.array(decision.astype(np.int32))),
            dtype=frame["left_key"].dtype,
        )
        return frame

    def pair_batches(
        self, rows: int = PAIR_BATCH_ROWS, start: int = 0, stop: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """``match.pairs`` as Arrow record batches of at most `rows` pairs, in pair order
        (the pairs ``start:stop``; all by default).

        Built from the arrays directly (keys and labels taken in Arrow, numbers wrapped),
        not through a pandas frame per batch: the same rows and types as `pairs_frame`.
        """
        schema = self.pair_schema()
        stop = len(self) if stop is None else min(stop, len(self))
        for at in range(start, stop, rows):
            yield self._pair_batch(slice(at, min(at + rows, stop)), schema)

    def _pair_batch(self, rows: slice, schema: pa.Schema) -> pa.RecordBatch:
        """The pairs at `rows` as one record batch of `schema` (`pair_schema`)."""
        pairs = self.pair_set
        dec = self.steward[rows]
        columns: dict[str, pa.Array] = {
            "left_key": self.keys.take(pa.array(pairs.left[rows])),
            "right_key": self.keys.take(pa.array(pairs.right[rows])),
            "rule": _labels(pairs.rule[rows], pairs.rule_names),
            "score": pa.array(pairs.score[rows]),
            "probability": pa.array(pairs.probability[rows]),
            **{f"{name}_level": pa.array(codes[rows]) for name, codes in pairs.levels.items()},
            "hard_rule": _labels(pairs.hard[rows], pairs.hard_names),
            "steward_decision": _labels(dec, list(_STEWARD)),
            "decision": _labels(self.decision[rows], list(_DECISIONS)),
        }
        return pa.RecordBatch.from_arrays(
            [columns[f.name].cast(f.type) for f in schema], schema=schema
        )

    def pair_schema(self) -> pa.Schema:
        """The Arrow schema of `pair_batches`."""
        return pa.Table.from_pandas(self.pairs_frame(slice(0, 0)), preserve_index=False).schema

    def pair_reader(self, rows: int = PAIR_BATCH_ROWS) -> pa.RecordBatchReader:
        """`pair_batches` as one stream (DuckDB reads it batch by batch)."""
        return pa.RecordBatchReader.from_batches(self.pair_schema(), self.pair_batches(rows))

    def pair_readers(self, parts: int, rows: int = PAIR_BATCH_ROWS) -> list[pa.RecordBatchReader]:
        """`pair_batches` as up to `parts` streams of consecutive pairs, in pair order.

        DuckDB reads one Arrow stream in one thread: written as the ``UNION ALL`` of these
        streams (in order), its threads compress and store the parts side by side.
        Each part but the last holds a whole number of `rows` batches, so the batches are
        the ones `pair_reader` makes.
        """
        batches = -(-len(self) // rows)
        per = max(1, -(-batches // max(1, parts))) * rows
        schema = self.pair_schema()
        starts = range(0, max(len(self), 1), per)
        return [
            pa.RecordBatchReader.from_batches(schema, self.pair_batches(rows, at, at + per))
            for at in starts
        ]

    def to_result(self) -> LinkResult:
        """The `LinkResult`, with the frame of every pair built."""
        return LinkResult(
            self.pairs_frame(),
            self.clusters,
            self.review_queue,
            self.blocking_stats,
            self.params,
            self.warnings,
            self.prepared,
            self.pair_set,
            self.labels,
        )


def _labels(codes: np.ndarray, names: list[str]) -> pa.Array:
    """Label per code (-1 = null) as an Arrow string array."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.array(names, type=pa.string()).take(indices)


def assemble_compact(
    prepared: pd.DataFrame,
    pairs: PairSet,
    decisions: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: MatchSettings,
    params: ModelParams,
    stats: pd.DataFrame,
    warnings: list[str],
    previous: np.ndarray | None = None,
    touched: np.ndarray | None = None,
) -> CompactLink:
    """`assemble` without the frame of every pair: decisions kept as codes per pair.

    Same arguments as `assemble`. Only the pairs going to review (a few thousand) become a
    frame, for the review queue.
    """
    n = len(prepared)
    keys = arrow_strings(prepared["record_key"].to_numpy(dtype=object))
    left, right = pairs.left, pairs.right
    dec = steward_per_pair(pairs, n, *decisions)
    steward_match = dec == 0
    # name/place conflicts are the model's judgement: a steward's 'match' overrides them
    names = np.array([*pairs.hard_names, ""], dtype=object)
    overridable = np.isin(names, list(STEWARD_OVERRIDABLE))[pairs.hard]
    contested = steward_match & (pairs.hard >= 0) & ~overridable
    if contested.any():
        warnings.append(
            f"{int(contested.sum())} steward 'match' decision(s) contradict a hard rule; "
            "sent back to review"
        )
    no_match = dec == 1
    cannot = ((pairs.hard >= 0) & ~(steward_match & overridable)) | no_match
    must = steward_match & ~contested
    if settings.id_number_match:
        # the same valid 居民身份证号 with compatible names outweighs the model's own
        # judgements (a person known in two cities: place_conflict), as a steward's match does
        firm = ((pairs.hard >= 0) & ~overridable) | no_match
        same_id = id_number_matches(prepared, left, right) & ~firm
        must |= same_id
        cannot &= ~same_id
        del firm, same_id
    probability = pairs.probability
    labels, refused = cluster_pairs(
        n,
        left,
        right,
        probability,
        must,
        cannot,
        settings.match_threshold,
        settings.min_cross_support,
        previous,
        touched,
        exclusive=exclusive_codes(prepared, settings),
    )
    del must
    clusters = pd.DataFrame(
        {
            "record_key": prepared["record_key"].to_numpy(dtype=object),
            "cluster_key": prepared["record_key"].to_numpy(dtype=object)[labels],
        }
    )
    same = labels[left] == labels[right]
    band = (probability >= settings.review_threshold) & ~same & ~cannot
    review = (band | refused | contested) & ~same & ~no_match
    del band, cannot
    decision = np.where(same, 2, np.where(review, 1, 0)).astype(np.int8)
    # Reasons only for the pairs going to review (a few thousand), not one object per pair.
    chosen = np.nonzero(review)[0]
    reason = np.full(len(chosen), "review_band", dtype=object)
    reason[refused[chosen]] = "weak_link_between_clusters"
    against = contested[chosen]
    if against.any():
        hard_names = np.array([*pairs.hard_names, None], dtype=object)
        hard = hard_names[pairs.hard[chosen[against]]].astype(str)
        reason[against] = "steward_match_contradicts_" + hard
    queue = build_review_queue(
        prepared,
        pairs.take(chosen).to_frame(keys),
        np.ones(len(chosen), dtype=bool),
        reason,
        comparisons_for(settings),
        params,
    )
    return CompactLink(
        pairs, keys, dec, decision, clusters, queue, stats, params, warnings, prepared, labels
    )

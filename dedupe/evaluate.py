"""Error analysis (匹配评估): a linking run's accuracy against labelled truth, errors classed.

Pure functions over frames, shared by `customer-archive evaluate` and the accuracy benchmark:
pairwise and B-cubed precision/recall/F1 of the clusters, and each missed pair (same entity, two
customers) and each false pair (two entities, one customer) put in the stage that decided it:

| class | missed pair (should merge) | false pair (should not) |
|---|---|---|
| `not_candidate` | blocking never paired the records | merged through others (transitive) |
| `below_review` | candidate scored below the review band | — (counts as transitive) |
| `review_band` | scored in the review band, left for a steward | — |
| `hard_rule` | a hard rule (branch, credit code) forbade it | — |
| `refused_by_clustering` | scored a match, clustering refused the union | — |
| `scored_match` | — | the pair itself scored a match |

Truth comes either as entity labels per record (`record_key, entity_id`, e.g. a labelled sample)
or as steward decisions (`left_key, right_key, decision` = match / no-match): labelled pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedupe.metrics import Scores, bcubed_scores, pairwise_scores

MISSED_CLASSES: tuple[str, ...] = (
    "not_candidate",
    "below_review",
    "review_band",
    "hard_rule",
    "refused_by_clustering",
)
FALSE_CLASSES: tuple[str, ...] = ("scored_match", "transitive")


@dataclass
class AccuracyReport:
    """Accuracy of one run against truth, with its errors classified.

    Attributes:
        records: records evaluated (present in both the clusters and the truth).
        pairwise, bcubed: cluster scores (None when the truth is labelled pairs only).
        true_pairs, predicted_pairs: pairs of records that should / do share a customer.
        missed: missed pair count per class (`MISSED_CLASSES`).
        false: false pair count per class (`FALSE_CLASSES`).
        by_case: per hard case (e.g. `near_name`): entities, missed and false pairs, and the
            false-merge rate (share of the case's entities merged with another entity).
        missed_pairs, false_pairs: the error pairs (left_key, right_key, class, probability,
            rule, hard_rule, ...), for inspection.
    """

    records: int
    pairwise: Scores | None
    bcubed: Scores | None
    true_pairs: int
    predicted_pairs: int
    missed: dict[str, int]
    false: dict[str, int]
    by_case: pd.DataFrame = field(default_factory=pd.DataFrame)
    missed_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    false_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary (no pair lists)."""

        def sc(s: Scores | None) -> dict[str, float] | None:
            return None if s is None else {"precision": s.precision, "recall": s.recall, "f1": s.f1}

        return {
            "records": self.records,
            "pairwise": sc(self.pairwise),
            "bcubed": sc(self.bcubed),
            "true_pairs": self.true_pairs,
            "predicted_pairs": self.predicted_pairs,
            "missed": self.missed,
            "false": self.false,
            "by_case": self.by_case.to_dict(orient="records"),
        }


def _ordered(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    lk = left.astype(str).to_numpy(dtype=object)
    rk = right.astype(str).to_numpy(dtype=object)
    swap = lk > rk
    return np.where(swap, rk, lk), np.where(swap, lk, rk)


def _pairs_within(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """All unordered record pairs (left_key < right_key) sharing `group`."""
    g = frame[["record_key", group]].dropna()
    sizes = g.groupby(group)["record_key"].transform("size")
    g = g[sizes > 1]
    joined = g.merge(g, on=group, suffixes=("_l", "_r"))
    joined = joined[joined["record_key_l"] < joined["record_key_r"]]
    return pd.DataFrame(
        {
            "left_key": joined["record_key_l"].to_numpy(),
            "right_key": joined["record_key_r"].to_numpy(),
        }
    )


def _with_pair_facts(errors: pd.DataFrame, pairs: pd.DataFrame | None) -> pd.DataFrame:
    """Attach the scored pair's columns (probability, rule, hard_rule, decision) by key."""
    if pairs is None or pairs.empty or errors.empty:
        out = errors.copy()
        for column in ("probability", "rule", "hard_rule", "decision"):
            out[column] = None
        out["candidate"] = False
        return out
    lk, rk = _ordered(pairs["left_key"], pairs["right_key"])
    keep = [c for c in pairs.columns if c not in ("left_key", "right_key")]
    facts = pairs[keep].copy()
    facts["left_key"], facts["right_key"] = lk, rk
    facts = facts.drop_duplicates(["left_key", "right_key"])
    out = errors.merge(facts, on=["left_key", "right_key"], how="left", indicator=True)
    out["candidate"] = out.pop("_merge").eq("both").to_numpy()
    return out


def classify_missed(
    missed: pd.DataFrame, match_threshold: float, review_threshold: float
) -> np.ndarray:
    """Class of each missed pair (see `MISSED_CLASSES`) from its pair facts."""
    prob = pd.to_numeric(missed.get("probability"), errors="coerce").fillna(-1.0).to_numpy()
    hard = missed.get("hard_rule", pd.Series(None, index=missed.index)).notna().to_numpy()
    cand = missed["candidate"].to_numpy(dtype=bool)
    return np.select(
        [~cand, hard, prob >= match_threshold, prob >= review_threshold],
        ["not_candidate", "hard_rule", "refused_by_clustering", "review_band"],
        default="below_review",
    ).astype(object)


def classify_false(false: pd.DataFrame, match_threshold: float) -> np.ndarray:
    """Class of each false pair: the pair itself scored a match, or it was merged through others."""
    prob = pd.to_numeric(false.get("probability"), errors="coerce").fillna(-1.0).to_numpy()
    steward = false.get("steward_decision", pd.Series(None, index=false.index))
    by_steward = steward.astype("string").eq("match").fillna(False).to_numpy()
    direct = (prob >= match_threshold) | by_steward
    return np.where(direct, "scored_match", "transitive").astype(object)


def _by_case(
    clusters: pd.DataFrame,
    truth: pd.DataFrame,
    missed: pd.DataFrame,
    false: pd.DataFrame,
    cases: pd.DataFrame,
) -> pd.DataFrame:
    """Per hard case: entities, missed/false pairs touching them, false-merge rate."""
    case_of = cases.set_index("entity_id")["hard_case"].fillna("none").astype(str)
    ent = truth.set_index("record_key")["entity_id"]
    frame = clusters.merge(truth, on="record_key")
    frame["case"] = frame["entity_id"].map(case_of).fillna("none")
    # an entity is falsely merged when one of its records sits in a cluster holding another entity
    entities_per_cluster = frame.groupby("cluster_key")["entity_id"].transform("nunique")
    merged = frame.loc[entities_per_cluster > 1, "entity_id"].unique()
    per_entity = frame.drop_duplicates("entity_id")[["entity_id", "case"]]
    per_entity["falsely_merged"] = per_entity["entity_id"].isin(merged)
    rows = per_entity.groupby("case").agg(
        entities=("entity_id", "size"), falsely_merged=("falsely_merged", "sum")
    )
    rows["false_merge_rate"] = rows["falsely_merged"] / rows["entities"]

    def count(pairs: pd.DataFrame) -> pd.Series:
        if pairs.empty:
            return pd.Series(dtype=np.int64)
        left = pairs["left_key"].map(ent).map(case_of).fillna("none")
        right = pairs["right_key"].map(ent).map(case_of).fillna("none")
        both = pd.concat([left, right[left != right]])
        return both.value_counts()

    rows["missed_pairs"] = count(missed).reindex(rows.index).fillna(0).astype(int)
    rows["false_pairs"] = count(false).reindex(rows.index).fillna(0).astype(int)
    return rows.reset_index().rename(columns={"case": "hard_case"})


def evaluate_links(
    clusters: pd.DataFrame,
    truth: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
    match_threshold: float = 0.95,
    review_threshold: float = 0.60,
    cases: pd.DataFrame | None = None,
) -> AccuracyReport:
    """Score clusters against per-record entity labels and classify every error pair.

    Args:
        clusters: record_key, cluster_key (every record of the run).
        truth: record_key, entity_id (a labelled sample: records absent here are ignored).
        pairs: the run's scored pairs (left_key, right_key, probability, rule, hard_rule,
            decision …); None = every missed pair counts as `not_candidate`.
        match_threshold, review_threshold: the run's thresholds (to class missed pairs).
        cases: entity_id, hard_case (optional) for the per-hard-case split.

    Returns:
        The `AccuracyReport`.

    Example:
        >>> c = pd.DataFrame({"record_key": ["a", "b", "c"], "cluster_key": ["a", "a", "c"]})
        >>> t = pd.DataFrame({"record_key": ["a", "b", "c"], "entity_id": [1, 1, 1]})
        >>> evaluate_links(c, t).missed
        {'not_candidate': 2, 'below_review': 0, 'review_band': 0, 'hard_rule': 0, 'refused_by_clustering': 0}
    """  # noqa: E501
    truth = truth[["record_key", "entity_id"]].dropna().astype({"record_key": str})
    clusters = clusters[["record_key", "cluster_key"]].astype(str)
    labelled = clusters[clusters["record_key"].isin(truth["record_key"])]
    truth = truth[truth["record_key"].isin(labelled["record_key"])]
    true = _pairs_within(truth, "entity_id")
    predicted = _pairs_within(labelled, "cluster_key")
    both = true.merge(predicted, on=["left_key", "right_key"], how="outer", indicator=True)
    missed = _with_pair_facts(both[both["_merge"] == "left_only"][["left_key", "right_key"]], pairs)
    false = _with_pair_facts(both[both["_merge"] == "right_only"][["left_key", "right_key"]], pairs)
    missed["class"] = classify_missed(missed, match_threshold, review_threshold)
    false["class"] = classify_false(false, match_threshold)
    by_case = pd.DataFrame()
    if cases is not None and "hard_case" in cases.columns:
        by_case = _by_case(labelled, truth, missed, false, cases)
    return AccuracyReport(
        records=len(labelled),
        pairwise=pairwise_scores(labelled, truth) if len(labelled) else None,
        bcubed=bcubed_scores(labelled, truth) if len(labelled) else None,
        true_pairs=len(true),
        predicted_pairs=len(predicted),
        missed={c: int((missed["class"] == c).sum()) for c in MISSED_CLASSES},
        false={c: int((false["class"] == c).sum()) for c in FALSE_CLASSES},
        by_case=by_case,
        missed_pairs=missed,
        false_pairs=false,
    )


def evaluate_decisions(
    clusters: pd.DataFrame,
    labels: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
    match_threshold: float = 0.95,
    review_threshold: float = 0.60,
) -> AccuracyReport:
    """Score clusters against labelled pairs (steward decisions: match / no-match).

    Precision and recall are over the labelled pairs only: a `match` pair in one cluster is a
    true positive, apart a missed pair; a `no-match` pair in one cluster is a false pair.
    B-cubed needs entity labels and is left out.

    Args:
        clusters: record_key, cluster_key.
        labels: left_key, right_key, decision ('match' | 'no-match'; latest per pair wins if
            decided_at is given).
        pairs: the run's scored pairs, to class the errors.
        match_threshold, review_threshold: the run's thresholds.

    Returns:
        The `AccuracyReport` (pairwise = precision/recall over the labelled pairs).
    """
    from dedupe.rules import normalize_decisions

    dec = normalize_decisions(labels)
    cluster_of = clusters.astype({"record_key": str}).set_index("record_key")["cluster_key"]
    lc = dec["left_key"].map(cluster_of)
    rc = dec["right_key"].map(cluster_of)
    known = lc.notna() & rc.notna()
    dec, same = dec[known], (lc == rc)[known]
    is_match = dec["decision"].eq("match")
    tp = int((is_match & same).sum())
    fp = int((~is_match & same).sum())
    fn = int((is_match & ~same).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    missed = _with_pair_facts(dec.loc[is_match & ~same, ["left_key", "right_key"]], pairs)
    false = _with_pair_facts(dec.loc[~is_match & same, ["left_key", "right_key"]], pairs)
    missed["class"] = classify_missed(missed, match_threshold, review_threshold)
    false["class"] = classify_false(false, match_threshold)
    return AccuracyReport(
        records=int(pd.concat([dec["left_key"], dec["right_key"]]).nunique()),
        pairwise=Scores(precision, recall, f1),
        bcubed=None,
        true_pairs=int(is_match.sum()),
        predicted_pairs=int(same.sum()),
        missed={c: int((missed["class"] == c).sum()) for c in MISSED_CLASSES},
        false={c: int((false["class"] == c).sum()) for c in FALSE_CLASSES},
        missed_pairs=missed,
        false_pairs=false,
    )


def format_report(report: AccuracyReport, title: str = "") -> str:
    """Plain-text report: scores, error classes, per-hard-case split."""
    lines = [title] if title else []
    lines.append(
        f"  records evaluated: {report.records}  true pairs: {report.true_pairs}  "
        f"predicted pairs: {report.predicted_pairs}"
    )
    if report.pairwise is not None:
        lines.append(f"  pairwise: {report.pairwise}")
    if report.bcubed is not None:
        lines.append(f"  B-cubed:  {report.bcubed}")
    n_missed = sum(report.missed.values())
    n_false = sum(report.false.values())
    lines.append(f"  missed pairs: {n_missed}")
    for k, v in report.missed.items():
        share = v / n_missed if n_missed else 0.0
        lines.append(f"    {k:<24}{v:>8}  {share:6.1%}")
    lines.append(f"  false pairs:  {n_false}")
    for k, v in report.false.items():
        share = v / n_false if n_false else 0.0
        lines.append(f"    {k:<24}{v:>8}  {share:6.1%}")
    if not report.by_case.empty:
        lines.append("  per hard case: entities  falsely merged (rate)  missed pairs  false pairs")
        for row in report.by_case.itertuples(index=False):
            lines.append(
                f"    {row.hard_case:<20}{row.entities:>8}{row.falsely_merged:>8} "
                f"({row.false_merge_rate:6.2%}){row.missed_pairs:>12}{row.false_pairs:>12}"
            )
    return "\n".join(lines)


def truth_frame(truth: pd.DataFrame) -> pd.DataFrame:
    """A user's truth file as (record_key, entity_id, [hard_case]).

    Accepts `record_key, entity_id` or `source_system, source_record_id, entity_id` (the
    demo's and the corpus's truth.csv); a `hard_case` column is kept.

    Raises:
        ValueError: when the columns are missing.
    """
    if "entity_id" not in truth.columns:
        raise ValueError("the truth file needs an entity_id column")
    out = pd.DataFrame(index=truth.index)
    if "record_key" in truth.columns:
        out["record_key"] = truth["record_key"].astype(str)
    elif {"source_system", "source_record_id"} <= set(truth.columns):
        out["record_key"] = (
            truth["source_system"].astype(str) + ":" + truth["source_record_id"].astype(str)
        )
    else:
        raise ValueError("the truth file needs record_key or source_system + source_record_id")
    out["entity_id"] = truth["entity_id"].astype(str)
    if "hard_case" in truth.columns:
        out["hard_case"] = truth["hard_case"]
    return out


def evaluate_run(
    crosswalk: pd.DataFrame,
    pairs: pd.DataFrame | None,
    truth: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    match_threshold: float = 0.95,
    review_threshold: float = 0.60,
) -> AccuracyReport:
    """Accuracy of a published run (golden.crosswalk + match.pairs) against a labelled sample.

    Args:
        crosswalk: golden.crosswalk (source_system, source_record_id, customer_id) — or any
            frame with record_key and customer_id.
        pairs: match.pairs of the run (None: errors are not classed beyond not_candidate).
        truth: entity labels per record (see `truth_frame`); records of the sample missing
            from the crosswalk count as singletons.
        labels: labelled pairs (left_key, right_key, decision) instead of `truth`, e.g. the
            steward decisions.
        cases: entity_id, hard_case for the per-case split (or a `hard_case` column in truth).
        match_threshold, review_threshold: the run's thresholds.

    Returns:
        The `AccuracyReport`.

    Raises:
        ValueError: when neither truth nor labels is given.
    """
    cw = crosswalk.copy()
    if "record_key" not in cw.columns:
        cw["record_key"] = (
            cw["source_system"].astype(str) + ":" + cw["source_record_id"].astype(str)
        )
    clusters = cw[["record_key", "customer_id"]].rename(columns={"customer_id": "cluster_key"})
    clusters = clusters.astype(str)
    if labels is not None:
        return evaluate_decisions(clusters, labels, pairs, match_threshold, review_threshold)
    if truth is None:
        raise ValueError("give a truth sample (entity per record) or labelled pairs")
    sample = truth_frame(truth)
    missing = sample.loc[~sample["record_key"].isin(clusters["record_key"]), ["record_key"]]
    clusters = pd.concat(
        [clusters, missing.assign(cluster_key="missing:" + missing["record_key"])],
        ignore_index=True,
    )
    if cases is None and "hard_case" in sample.columns:
        cases = sample[["entity_id", "hard_case"]].drop_duplicates("entity_id")
    return evaluate_links(
        clusters,
        sample[["record_key", "entity_id"]],
        pairs,
        match_threshold,
        review_threshold,
        cases,
    )

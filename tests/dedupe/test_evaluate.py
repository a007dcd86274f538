"""Error analysis: scores and the class of every missed and false pair (dedupe.evaluate)."""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe.evaluate import evaluate_decisions, evaluate_links, evaluate_run, format_report

# five records of two entities (E1: a b c, E2: d e); the run put a, b in one customer, c apart,
# and d, e with a in... see each case.
TRUTH = pd.DataFrame(
    {"record_key": ["a", "b", "c", "d", "e"], "entity_id": ["E1", "E1", "E1", "E2", "E2"]}
)
CASES = pd.DataFrame({"entity_id": ["E1", "E2"], "hard_case": ["near_name", None]})


def _clusters(mapping: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"record_key": list(mapping), "cluster_key": list(mapping.values())})


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        # (probability, hard rule) of the missed pair a–c, or None when blocking never paired it
        (None, "not_candidate"),
        ((0.3, None), "below_review"),
        ((0.8, None), "review_band"),
        ((0.99, "branch_conflict"), "hard_rule"),
        ((0.99, None), "refused_by_clustering"),
    ],
)
def test_missed_pairs_are_classed_by_the_stage_that_kept_them_apart(pair, expected) -> None:
    clusters = _clusters({"a": "a", "b": "a", "c": "c", "d": "d", "e": "d"})
    rows = [{"left_key": "a", "right_key": "b", "probability": 0.99, "hard_rule": None}]
    if pair is not None:
        rows.append(
            {"left_key": "c", "right_key": "a", "probability": pair[0], "hard_rule": pair[1]}
        )  # either order of the keys
    report = evaluate_links(clusters, TRUTH, pd.DataFrame(rows))
    missed = report.missed_pairs.set_index(["left_key", "right_key"])["class"]
    assert missed[("a", "c")] == expected
    assert report.missed[expected] == 2 - (expected != "not_candidate")  # b–c never a candidate
    assert report.true_pairs == 4 and report.predicted_pairs == 2


def test_false_pairs_direct_or_through_others_and_false_merge_rate() -> None:
    clusters = _clusters({"a": "a", "b": "a", "c": "a", "d": "a", "e": "e"})
    pairs = pd.DataFrame(
        {
            "left_key": ["a", "a", "c"],
            "right_key": ["b", "c", "d"],
            "probability": [0.99, 0.99, 0.97],
            "hard_rule": [None, None, None],
        }
    )
    report = evaluate_links(clusters, TRUTH, pairs, cases=CASES)
    assert report.false == {"scored_match": 1, "transitive": 2}  # c–d direct; a–d, b–d chained
    assert report.missed["not_candidate"] == 1  # d–e
    by_case = report.by_case.set_index("hard_case")
    assert by_case.loc["near_name", "falsely_merged"] == 1
    assert by_case.loc["none", "false_merge_rate"] == 1.0
    assert report.pairwise.precision == pytest.approx(3 / 6)
    assert "scored_match" in format_report(report, "t")


def test_labelled_pairs_from_steward_decisions() -> None:
    clusters = _clusters({"a": "a", "b": "a", "c": "c", "d": "a"})
    labels = pd.DataFrame(
        {
            "left_key": ["a", "c", "a", "b"],
            "right_key": ["b", "a", "d", "zz"],
            "decision": ["match", "match", "no-match", "match"],
        }
    )
    report = evaluate_decisions(clusters, labels)
    # a–b right, a–c missed, a–d false; b–zz names an unknown record and is ignored
    assert report.pairwise.precision == pytest.approx(0.5)
    assert report.pairwise.recall == pytest.approx(0.5)
    assert report.bcubed is None
    assert report.missed["not_candidate"] == 1 and report.false["transitive"] == 1


def test_evaluate_run_reads_a_crosswalk_and_a_truth_file() -> None:
    crosswalk = pd.DataFrame(
        {
            "source_system": ["crm", "crm", "leads"],
            "source_record_id": ["1", "2", "9"],
            "customer_id": ["C1", "C1", "C2"],
        }
    )
    # leads:7 is in the sample but not in the crosswalk: a singleton
    truth = pd.DataFrame(
        {
            "source_system": ["crm", "crm", "leads", "leads"],
            "source_record_id": ["1", "2", "9", "7"],
            "entity_id": ["E", "E", "F", "F"],
            "hard_case": ["family", "family", None, None],
        }
    )
    report = evaluate_run(crosswalk, None, truth=truth)
    assert report.records == 4 and report.true_pairs == 2
    assert report.missed == {**dict.fromkeys(report.missed, 0), "not_candidate": 1}
    assert set(report.by_case["hard_case"]) == {"family", "none"}
    labels = pd.DataFrame(
        {"left_key": ["crm:1"], "right_key": ["leads:9"], "decision": ["no-match"]}
    )
    assert evaluate_run(crosswalk, None, labels=labels).pairwise.precision == 1.0
    with pytest.raises(ValueError, match="truth"):
        evaluate_run(crosswalk, None)

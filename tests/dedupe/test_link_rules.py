"""Hard rules, steward decisions, review queue and accuracy of a full link."""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe import DecisionError, MatchSettings, bcubed_scores, link_records, pairwise_scores
from tests.dedupe.conftest import record


def _same_cluster(result, a: str, b: str) -> bool:
    cl = result.clusters.set_index("record_key")["cluster_key"]
    return bool(cl[a] == cl[b])


def _base_rows() -> list[dict]:
    # Background records so EM has non-matches to learn from.
    rows = []
    for i in range(40):
        rows.append(
            record(
                record_key=f"z:{i:03d}",
                name_key=f"公司{i:03d}",
                phone=f"+86139{i:08d}",
                email=f"u{i}@c{i}.cn",
                email_domain=f"c{i}.cn",
                contact_name=f"李{i}",
                address=f"路{i}号",
                district="朝阳区" if i % 2 else "海淀区",
            )
        )
        rows.append(
            record(
                record_key=f"y:{i:03d}",
                name_key=f"公司{i:03d}",
                phone=f"+86139{i:08d}",
                email=f"u{i}@c{i}.cn",
                email_domain=f"c{i}.cn",
                contact_name=f"李{i}",
                address=f"路{i}号",
                district="朝阳区" if i % 2 else "海淀区",
            )
        )
    return rows


@pytest.mark.parametrize(
    ("left", "right", "settings", "merged"),
    [
        ({}, {}, MatchSettings(), True),
        (
            {"credit_code": "91110108MA01ABCD1X", "credit_code_valid": True},
            {"credit_code": "91310000MA1FL0001Y", "credit_code_valid": True},
            MatchSettings(),
            False,
        ),
        ({"branch": None}, {"branch": "上海分公司"}, MatchSettings(), False),
        ({"branch": None}, {"branch": "上海分公司"}, MatchSettings(merge_branches=True), True),
    ],
)
def test_hard_rules(left: dict, right: dict, settings: MatchSettings, merged: bool) -> None:
    rows = [*_base_rows(), record(record_key="a:1", **left), record(record_key="b:1", **right)]
    result = link_records(pd.DataFrame(rows), settings)
    assert _same_cluster(result, "a:1", "b:1") is merged
    assert _same_cluster(result, "z:000", "y:000")


def test_steward_decisions_override_scores() -> None:
    rows = [
        *_base_rows(),
        record(record_key="a:1"),
        record(record_key="b:1"),
        record(
            record_key="c:1",
            name_key="远东物流",
            phone="+8613700000000",
            email=None,
            contact_name="赵敏",
            address=None,
        ),
    ]
    decisions = pd.DataFrame(
        {
            "left_key": ["b:1", "a:1"],
            "right_key": ["a:1", "c:1"],
            "decision": ["no-match", "match"],
            "decided_by": ["steward", "steward"],
            "decided_at": ["2024-03-15", "2024-03-15"],
        }
    )
    # no sorted-neighbourhood rules: in a set this small they would pair every record
    rules = [r for r in MatchSettings().blocking_rules if not r.startswith("name_neighbours")]
    result = link_records(
        pd.DataFrame(rows), MatchSettings(blocking_rules=rules), decisions=decisions
    )
    assert not _same_cluster(result, "a:1", "b:1")
    assert _same_cluster(result, "a:1", "c:1")
    pair = result.pairs.query("left_key == 'a:1' and right_key == 'c:1'")
    assert pair["rule"].item() == "steward" and pair["decision"].item() == "match"


def test_steward_match_against_credit_rule_goes_back_to_review() -> None:
    rows = [
        *_base_rows(),
        record(record_key="a:1", credit_code="91110108MA01ABCD1X", credit_code_valid=True),
        record(record_key="b:1", credit_code="91310000MA1FL0001Y", credit_code_valid=True),
    ]
    decisions = pd.DataFrame({"left_key": ["a:1"], "right_key": ["b:1"], "decision": ["match"]})
    result = link_records(pd.DataFrame(rows), decisions=decisions)
    assert not _same_cluster(result, "a:1", "b:1")
    queue = result.review_queue.query("left_key == 'a:1' and right_key == 'b:1'")
    assert queue["reason"].item().startswith("steward_match_contradicts_credit_code")
    assert any("contradict" in w for w in result.warnings)


def test_bad_decision_value_is_rejected() -> None:
    decisions = pd.DataFrame({"left_key": ["a"], "right_key": ["b"], "decision": ["maybe"]})
    with pytest.raises(DecisionError, match="maybe"):
        link_records(
            pd.DataFrame([record(record_key="a"), record(record_key="b")]), decisions=decisions
        )


def test_every_record_in_exactly_one_cluster(linked, synthetic) -> None:
    records = synthetic[0]
    assert sorted(linked.clusters["record_key"]) == sorted(records["record_key"])
    smallest = linked.clusters.groupby("cluster_key")["record_key"].min()
    assert (smallest.index == smallest.to_numpy()).all()


def test_pairs_contract(linked) -> None:
    pairs = linked.pairs
    assert (pairs["left_key"] < pairs["right_key"]).all()
    assert set(pairs["decision"]) <= {"match", "review", "no_match"}
    assert {"score", "probability", "rule", "name_key_level"} <= set(pairs.columns)


def test_review_queue_shows_both_sides_and_evidence(linked) -> None:
    queue = linked.review_queue
    assert len(queue) > 0
    assert {"left_customer_name", "right_customer_name", "name_key_level", "phone_weight"} <= set(
        queue.columns
    )
    band = queue["reason"] == "review_band"
    assert (queue.loc[band, "probability"] < MatchSettings().match_threshold).all()


def test_end_to_end_accuracy(linked, synthetic) -> None:
    pairwise = pairwise_scores(linked.clusters, synthetic[1])
    bcubed = bcubed_scores(linked.clusters, synthetic[1])
    assert pairwise.f1 >= 0.9 and pairwise.precision >= 0.97
    assert bcubed.f1 >= 0.93

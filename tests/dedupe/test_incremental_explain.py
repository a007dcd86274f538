"""Incremental runs equal full rebuilds; explanations and params serialization."""

from __future__ import annotations

import pandas as pd
import pytest

from dedupe import (
    MatchSettings,
    ModelError,
    ModelParams,
    explain_pair,
    link_incremental,
    link_records,
)
from tests.dedupe.conftest import record
from tests.dedupe.synth import make_records


def _partition(clusters: pd.DataFrame) -> set[frozenset[str]]:
    return set(clusters.groupby("cluster_key")["record_key"].apply(frozenset))


def test_incremental_equals_full_rebuild() -> None:
    records, _ = make_records(1200, seed=21)
    new_entities, _ = make_records(15, seed=77)
    new_entities["record_key"] = "new:" + new_entities["record_key"]
    # New records that duplicate existing customers, plus changed existing records.
    dupes = records.sample(12, random_state=3).copy()
    dupes["record_key"] = "dup:" + dupes["record_key"]
    changed = records.sample(12, random_state=4).copy()
    changed["phone"] = None
    base = link_records(records)
    new = pd.concat([new_entities, dupes, changed], ignore_index=True)
    inc = link_incremental(new, records, base.pairs, None, None, base.params)
    everything = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], new], ignore_index=True
    )
    full = link_records(everything, params=base.params)
    assert _partition(inc.clusters) == _partition(full.clusters)
    merged = inc.pairs.merge(full.pairs, on=["left_key", "right_key"], suffixes=("_i", "_f"))
    assert len(merged) == len(full.pairs) == len(inc.pairs)
    assert (merged["probability_i"] - merged["probability_f"]).abs().max() < 1e-9


def test_params_round_trip_json(linked) -> None:
    params = ModelParams.from_json(linked.params.to_json())
    assert params.to_json() == linked.params.to_json()
    with pytest.raises(ModelError):
        ModelParams.from_json("{not json")


def test_explain_pair_shows_fields_and_verdict(linked) -> None:
    left = record(record_key="a:1")
    right = record(record_key="b:1", phone="+8613700000000")
    exp = explain_pair(left, right, linked.params)
    by_name = {f.comparison: f for f in exp.fields}
    assert by_name["name_key"].level == "exact_org" and by_name["phone"].level == "else"
    assert by_name["phone"].weight < 0 < by_name["email"].weight
    total = sum(f.weight for f in exp.fields) + exp.tf_adjustment
    assert exp.score == pytest.approx(total)
    text = exp.to_text()
    assert "a:1" in text and "verdict" in text


def test_explain_reports_hard_rule(linked) -> None:
    exp = explain_pair(
        record(credit_code="91110108MA01ABCD1X", credit_code_valid=True),
        record(credit_code="91310000MA1FL0001Y", credit_code_valid=True),
        linked.params,
    )
    assert exp.hard_rule == "credit_code_conflict" and exp.verdict.startswith("no_match")


def _phone_block(count: int) -> pd.DataFrame:
    """`count` different people sharing one switchboard phone (one blocking block)."""
    names = ["赵一鸣", "钱二宝", "孙三元", "李四海", "周五福", "吴六合", "郑七星"]
    return pd.DataFrame(
        [
            record(
                record_key=f"r:{i}",
                name_key=names[i],
                contact_name=None,
                email=None,
                address=None,
                district=None,
            )
            for i in range(count)
        ]
    )


@pytest.mark.parametrize(
    ("case", "before", "after"),
    [
        # a new member pushes the block over the cap: a full run windows it
        ("grows_past_cap", 5, 6),
        # a changed member leaves the block: it drops under the cap and pairs everyone
        ("shrinks_under_cap", 6, 5),
    ],
)
def test_incremental_pairs_equal_full_rebuild_when_block_crosses_cap(
    case: str, before: int, after: int
) -> None:
    settings = MatchSettings(max_block_size=5, block_window=1, blocking_rules=["phone"])
    records = _phone_block(max(before, after))
    existing = records.head(before)
    base = link_records(existing, settings)
    if after > before:
        new = records.iloc[before:after]
    else:
        new = records.iloc[after:before].assign(phone="+8613700000000")
    inc = link_incremental(new, existing, base.pairs, settings, None, base.params, base.prepared)
    everything = pd.concat([existing.head(after) if after < before else existing, new])
    full = link_records(everything, settings, params=base.params)
    pairs = {tuple(p) for p in full.pairs[["left_key", "right_key"]].to_numpy()}
    assert {tuple(p) for p in inc.pairs[["left_key", "right_key"]].to_numpy()} == pairs, case
    assert _partition(inc.clusters) == _partition(full.clusters)


@pytest.mark.parametrize("reuse", ["frames", "prepared", "previous"])
def test_incremental_reusing_previous_result_equals_full_rebuild(reuse: str) -> None:
    records, _ = make_records(300, seed=31)
    keys = records["record_key"].tolist()
    decisions = pd.DataFrame(
        {"left_key": [keys[3]], "right_key": [keys[4]], "decision": ["no-match"]}
    )
    dupes = records.sample(8, random_state=5).assign(record_key=lambda f: "dup:" + f["record_key"])
    changed = records.sample(8, random_state=6).assign(email=None, address="某某路1号")
    new = pd.concat([dupes, changed], ignore_index=True)
    base = link_records(records, decisions=decisions)
    kwargs = {
        "frames": {},
        "prepared": {"existing_prepared": base.prepared},
        "previous": {"previous": base},
    }[reuse]
    inc = link_incremental(new, records, base.pairs, None, decisions, base.params, **kwargs)
    everything = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], new], ignore_index=True
    )
    full = link_records(everything, decisions=decisions, params=base.params)
    pd.testing.assert_frame_equal(inc.pairs, full.pairs)
    pd.testing.assert_frame_equal(inc.clusters, full.clusters)
    pd.testing.assert_frame_equal(inc.review_queue, full.review_queue)
    if reuse != "previous":
        return
    # chained: the incremental result can seed the next incremental run
    more = records.sample(5, random_state=8).assign(record_key=lambda f: "more:" + f["record_key"])
    again = link_incremental(
        more, everything, inc.pairs, None, decisions, base.params, previous=inc
    )
    rebuilt = link_records(
        pd.concat([everything, more], ignore_index=True), decisions=decisions, params=base.params
    )
    pd.testing.assert_frame_equal(again.pairs, rebuilt.pairs)
    assert _partition(again.clusters) == _partition(rebuilt.clusters)


def test_incremental_relabels_pairs_whose_windowed_block_changed() -> None:
    # A small cap windows most blocks: a new member shifts neighbours, so the first rule that
    # generates an old pair (its label) can change; pairs must still equal a full rebuild.
    settings = MatchSettings(max_block_size=3, block_window=1)
    records, _ = make_records(300, seed=13)
    new = records.sample(12, random_state=2).assign(record_key=lambda f: "n:" + f["record_key"])
    base = link_records(records, settings)
    inc = link_incremental(new, records, base.pairs, settings, None, base.params, previous=base)
    full = link_records(pd.concat([records, new], ignore_index=True), settings, params=base.params)
    pd.testing.assert_frame_equal(inc.pairs, full.pairs)
    pd.testing.assert_frame_equal(inc.clusters, full.clusters)


def test_explained_weight_includes_the_prior_and_gives_the_shown_probability(linked) -> None:
    """The printed "match weight … bits → probability …" adds up: fields + tf + prior."""
    import re

    left = record(record_key="a:1")
    right = record(record_key="b:1", phone="+8613700000000")
    exp = explain_pair(left, right, linked.params)
    parts = sum(f.weight for f in exp.fields) + exp.tf_adjustment + exp.prior_weight
    assert exp.weight == pytest.approx(parts)
    shown = re.search(r"match weight ([+-][\d.]+) bits → probability ([\d.]+)", exp.to_text())
    assert shown is not None
    weight, probability = float(shown[1]), float(shown[2])
    assert weight == pytest.approx(parts, abs=0.006)
    assert probability == pytest.approx(1 / (1 + 2**-weight), abs=0.002)


@pytest.mark.parametrize(
    ("probability", "expected"),
    [(0.99, "match"), (0.95, "match"), (0.7, "review"), (0.05, "below")],
)
def test_explain_customer_labels_links_by_their_class(probability: float, expected: str) -> None:
    from dedupe.stewardship import explain_customer

    crosswalk = pd.DataFrame(
        {
            "customer_id": ["C1", "C1"],
            "record_key": ["a:1", "b:1"],
            "source_system": ["a", "b"],
            "match_score": [1.0, 1.0],
        }
    )
    # pairs.decision says "match" for every pair inside one cluster, whatever its probability
    pairs = pd.DataFrame(
        {
            "left_key": ["a:1"],
            "right_key": ["b:1"],
            "probability": [probability],
            "decision": ["match"],
        }
    )
    text = explain_customer("C1", None, crosswalk, pairs, 0.6, 0.95)
    line = next(x for x in text.splitlines() if "a:1 ~ b:1" in x)
    assert f"({expected}" in line
    if expected != "match":
        assert "joined through other links" in line


@pytest.mark.parametrize("change", ["leaves", "joins", "renamed"])
def test_windowed_block_that_stays_windowed_equals_full_rebuild(change: str) -> None:
    # Only the neighbours of a change are generated again in a block windowed before and
    # after it: a member leaving brings its two neighbours together (a pair a full run now
    # makes), one joining parts them; a renamed member moves from one place to another.
    settings = MatchSettings(max_block_size=3, block_window=1, blocking_rules=["phone"])
    records = _phone_block(7)
    middle = records.iloc[[3]]
    if change == "leaves":
        existing, new = records, middle.assign(phone="+8613700000000")
    elif change == "joins":
        existing, new = records.drop(index=3), middle
    else:
        existing, new = records, middle.assign(name_key="钱一宝")
    base = link_records(existing, settings)
    inc = link_incremental(new, existing, base.pairs, settings, None, base.params, previous=base)
    everything = pd.concat(
        [existing[~existing["record_key"].isin(new["record_key"])], new], ignore_index=True
    )
    full = link_records(everything, settings, params=base.params)
    pd.testing.assert_frame_equal(inc.pairs, full.pairs)
    pd.testing.assert_frame_equal(inc.clusters, full.clusters)
    pd.testing.assert_frame_equal(inc.review_queue, full.review_queue)


def test_explain_pair_reads_facts_of_the_other_records_from_the_prepared_rows(linked) -> None:
    """华信科技 exists in 北京 and in 上海: a record of it without a city could be either firm.
    Only the whole data set shows that; two records alone do not."""
    from dedupe.prepare import prepare_records

    beijing = record(record_key="a:1")
    shanghai = record(
        record_key="b:1", city="上海市", province="上海市", district="浦东新区",
        phone="+8613800000001", email="li@huaxin-sh.cn", contact_name="李娜",
    )  # fmt: skip
    no_city = record(
        record_key="c:1", city=None, province=None, district=None, address=None,
        phone=None, email=None, contact_name=None,
    )  # fmt: skip
    prepared = prepare_records(pd.DataFrame([beijing, shanghai, no_city]), MatchSettings())
    pair = prepared[prepared["record_key"].isin(["a:1", "c:1"])].reset_index(drop=True)

    told = explain_pair(beijing, no_city, linked.params, MatchSettings(), pair)
    alone = explain_pair(beijing, no_city, linked.params, MatchSettings())
    level = {e.comparison: e.level for e in told.fields}["name_key"]
    assert level == "exact_org_elsewhere_too"
    assert {e.comparison: e.level for e in alone.fields}["name_key"] == "exact_org"
    assert told.probability < alone.probability
    assert any("alone" in note for note in alone.notes)
    assert not any("alone" in note for note in told.notes)
    with pytest.raises(ValueError, match="expected"):
        explain_pair(no_city, beijing, linked.params, MatchSettings(), pair)

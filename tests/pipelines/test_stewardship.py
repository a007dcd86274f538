"""Steward workflow on a real run: decisions are honoured next run, explanations, audit samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines.access import open_warehouse
from pipelines.cli import main
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from tests.pipelines.conftest import write_project
from tests.pipelines.test_nightly import golden_state_hash
from warehouse import read_table


@pytest.fixture
def ran(project: Path) -> Path:
    out = run_pipeline(project, run_date="2026-11-24")
    assert out.success, out.errors
    return project


def _customer_of(cfg, key: str) -> str:
    with open_warehouse(cfg, read_only=True) as con:
        cw = read_table(con, "golden.crosswalk")
    return cw.set_index("record_key").loc[key, "customer_id"]


def _merged_pair_of_a_two_record_customer(cfg) -> tuple[str, str]:
    """The record keys of a matched pair that makes up a customer of two records."""
    with open_warehouse(cfg, read_only=True) as con:
        pairs = read_table(con, "match.pairs")
        cw = read_table(con, "golden.crosswalk")
    sizes = cw.groupby("customer_id").size()
    two = cw[cw["customer_id"].isin(sizes[sizes == 2].index)]
    merged = pairs[
        (pairs["decision"] == "match")
        & pairs["left_key"].isin(two["record_key"])
        & pairs["right_key"].isin(two["record_key"])
    ].iloc[0]
    return merged["left_key"], merged["right_key"]


def test_no_match_decision_splits_customer_next_run_and_is_explained(ran: Path, capsys) -> None:
    cfg = load_config(ran)
    left, right = _merged_pair_of_a_two_record_customer(cfg)
    before = _customer_of(cfg, left)
    assert before == _customer_of(cfg, right)

    args = ["--config", str(ran)]
    assert (
        main(["review", "decide", *args, left, right, "--decision", "no-match", "--by", "王芳"])
        == 0
    )
    again = run_pipeline(ran, run_date="2026-11-25")
    assert again.success, again.errors
    # only the decided records are relinked (issue #15): a decision is no reason to relink all
    assert again.stats.match.mode == "incremental"
    a, b = _customer_of(cfg, left), _customer_of(cfg, right)
    assert a != b
    assert before in {a, b}  # one part keeps the lifelong id …
    with open_warehouse(cfg, read_only=True) as con:
        events = read_table(con, "golden.customer_ids")
    new_id = b if a == before else a
    split = events[(events["customer_id"] == new_id) & (events["event"] == "split_from")]
    assert set(split["other_customer_id"]) == {before}  # … and the split is recorded

    capsys.readouterr()
    assert main(["explain", *args, left, right]) == 0
    text = capsys.readouterr().out
    assert "steward decision: no-match by 王芳" in text
    assert "different customers" in text


def _twin(project: Path, root: Path, *extra: str) -> Path:
    """A project under `root` with a copy of `project`'s state and key, reading its landing."""
    for part in ("state", "data"):
        if (project.parent / part).exists():
            shutil.copytree(project.parent / part, root / part)
    return write_project(root, load_config(project).landing_dir, extra)


def _pair_across_customers(cfg, taken: set[str]) -> tuple[str, str]:
    """A scored pair (review queue first) whose records are in two customers, none `taken`."""
    with open_warehouse(cfg, read_only=True) as con:
        queue = read_table(con, "match.review_queue")
        pairs = read_table(con, "match.pairs")
        cw = read_table(con, "golden.crosswalk").set_index("record_key")["customer_id"]
    for frame in (queue, pairs.sort_values("probability", ascending=False)):
        for left, right in frame[["left_key", "right_key"]].itertuples(index=False):
            if cw[left] != cw[right] and not {left, right} & taken:
                return left, right
    raise AssertionError("no pair across customers")


def _events(cfg) -> set[tuple]:
    with open_warehouse(cfg, read_only=True) as con:
        events = read_table(con, "golden.customer_ids")
    return set(events[["customer_id", "event", "other_customer_id"]].itertuples(index=False))


def test_decisions_relink_only_their_records_as_a_full_rebuild_would(
    ran: Path, tmp_path: Path
) -> None:
    """Issue #15: a no-match and a match decision are linked incrementally next run, to the
    clusters, customer ids, golden rows and ID events a full relink (same params) gives."""
    cfg = load_config(ran)
    a, b = _merged_pair_of_a_two_record_customer(cfg)
    c, d = _pair_across_customers(cfg, {a, b})
    before = _customer_of(cfg, a)
    args = ["--config", str(ran)]
    for left, right, decision in ((a, b, "no-match"), (c, d, "match")):
        assert main(["review", "decide", *args, left, right, "--decision", decision]) == 0
    (tmp_path / "full").mkdir()
    full = _twin(ran, tmp_path / "full", "match_incremental: false")

    nightly = run_pipeline(ran, run_date="2026-11-25")
    rebuild = run_pipeline(full, run_date="2026-11-25")
    assert nightly.success and rebuild.success, (nightly.errors, rebuild.errors)
    assert nightly.stats.match.mode == "incremental"
    assert nightly.stats.match.records_relinked <= 4  # the decided records (no clean change)
    assert rebuild.stats.match.mode == "full"

    full_cfg = load_config(full)
    assert _customer_of(cfg, a) != _customer_of(cfg, b)
    assert before in {_customer_of(cfg, a), _customer_of(cfg, b)}  # the lifelong id stays
    assert _customer_of(cfg, c) == _customer_of(cfg, d)
    with open_warehouse(cfg, read_only=True) as con:
        inc_clusters = read_table(con, "match.clusters")
        inc_cw = read_table(con, "golden.crosswalk")
    with open_warehouse(full_cfg, read_only=True) as con:
        full_clusters = read_table(con, "match.clusters")
        full_cw = read_table(con, "golden.crosswalk")

    def partition(clusters: pd.DataFrame) -> set[frozenset]:
        return set(clusters.groupby("cluster_key")["record_key"].agg(frozenset))

    assert partition(inc_clusters) == partition(full_clusters)
    for name in ("match.pairs", "match.review_queue"):  # the same pairs, scores, decisions
        with open_warehouse(cfg, read_only=True) as con:
            got = con.sql(f"SELECT * FROM {name} ORDER BY left_key, right_key").df()
        with open_warehouse(full_cfg, read_only=True) as con:
            want = con.sql(f"SELECT * FROM {name} ORDER BY left_key, right_key").df()
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    ids = ["record_key", "customer_id", "match_score"]
    pd.testing.assert_frame_equal(
        inc_cw[ids].sort_values("record_key").reset_index(drop=True),
        full_cw[ids].sort_values("record_key").reset_index(drop=True),
    )
    assert golden_state_hash(ran) == golden_state_hash(full)
    assert _events(cfg) == _events(full_cfg)


def test_decisions_without_the_last_links_copy_relink_in_full_once(ran: Path) -> None:
    """A warehouse whose last link kept no copy of its decisions (older, or a failed write):
    the next run after a decision links in full, the one after that incrementally."""
    cfg = load_config(ran)
    with open_warehouse(cfg) as con:
        con.execute("DROP TABLE match.linked_decisions")
        pairs = read_table(con, "match.pairs")
    left, right = pairs.iloc[0][["left_key", "right_key"]]
    args = ["--config", str(ran)]
    assert main(["review", "decide", *args, left, right, "--decision", "no-match"]) == 0
    once = run_pipeline(ran, run_date="2026-11-25")
    assert once.success and once.stats.match.mode == "full"
    assert main(["review", "decide", *args, left, right, "--decision", "match"]) == 0
    then = run_pipeline(ran, run_date="2026-11-26")
    assert then.success and then.stats.match.mode == "incremental"


def test_review_list_and_invalid_decision(ran: Path, capsys) -> None:
    assert main(["review", "list", "--config", str(ran), "--limit", "5"]) == 0
    out = capsys.readouterr().out
    assert "left_key" in out or "review queue is empty" in out
    code = main(["review", "decide", "--config", str(ran), "sales:NOPE", "sales:NOPE2",
                 "--decision", "match"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 4  # a data error: one line, no traceback
    assert err.startswith("data error: unknown record key") and err.count("\n") == 1


def test_audit_sample_is_stratified_reproducible_and_recorded(ran: Path, tmp_path: Path) -> None:
    cfg = load_config(ran)
    first, second = tmp_path / "a.xlsx", tmp_path / "b.csv"
    base = ["audit", "--config", str(ran), "--fraction", "0.1", "--seed", "2026Q4"]
    assert main([*base, "--out", str(first)]) == 0
    assert main([*base, "--out", str(second)]) == 0
    sheet = pd.read_excel(first, sheet_name="audit", dtype=str, engine="calamine")
    again = pd.read_csv(second, dtype=str, encoding="utf-8-sig")
    assert set(sheet["customer_id"]) == set(again["customer_id"])
    with open_warehouse(cfg, read_only=True) as con:
        golden = read_table(con, "golden.customers")
        audits = read_table(con, "ops.audits")
    share = sheet["customer_id"].nunique() / len(golden)
    assert 0.1 <= share <= 0.3  # at least one per (tier, province) stratum
    assert {"check_result", "checker", "source_record_id"} <= set(sheet.columns)
    assert len(audits) == 2


def test_evaluate_against_demo_truth_and_steward_labels(
    ran: Path, demo_dir: Path, tmp_path: Path, capsys
) -> None:
    truth = demo_dir / "truth.csv"
    assert main(["evaluate", "--config", str(ran), "--truth", str(truth),
                 "--errors", str(tmp_path / "err")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "pairwise: P=" in out and "not_candidate" in out
    assert (tmp_path / "err" / "missed_pairs.csv").exists()
    # no decisions yet, then one: precision/recall over the labelled pairs
    assert main(["evaluate", "--config", str(ran), "--labels", "steward"]) == 1
    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        cw = read_table(con, "golden.crosswalk")
    same = cw.groupby("customer_id")["record_key"].agg(list)
    left, right = next(keys for keys in same if len(keys) >= 2)[:2]
    main(["review", "decide", "--config", str(ran), left, right, "--decision", "match"])
    capsys.readouterr()
    assert main(["evaluate", "--config", str(ran), "--labels", "steward"]) == 0
    assert "P=1.0000 R=1.0000" in capsys.readouterr().out
    assert main(["evaluate", "--config", str(ran)]) == 2  # neither truth nor labels


def test_ids_resolves_a_known_id_and_refuses_an_unknown_one(ran: Path, capsys) -> None:
    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        known = str(read_table(con, "golden.customers")["customer_id"].iloc[0])
    capsys.readouterr()
    assert main(["ids", "--config", str(ran), known]) == 0
    assert capsys.readouterr().out.strip() == known
    assert main(["ids", "--config", str(ran), "C-NEVER-ISSUED"]) == 4  # data error, not echoed
    assert "unknown customer_id 'C-NEVER-ISSUED'" in capsys.readouterr().err


def test_truth_file_with_other_columns_is_a_usage_error_and_record_keys_work(
    ran: Path, demo_dir: Path, tmp_path: Path, capsys
) -> None:
    from pipelines.runner import evaluate_against_truth

    cfg = load_config(ran)
    entities = tmp_path / "entities.csv"  # an entity list (no record column), as corpora ship
    entities.write_text("entity_id,kind,name\nE1,enterprise,长沙泰聚网络科技有限公司\n",
                        encoding="utf-8")  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", "--config", str(ran), "--truth", str(entities)]) == 2
    err = capsys.readouterr().err
    assert "truth file error" in err and "entity_id and record_key" in err
    assert "internal error" not in err
    # the same truth keyed by record_key scores exactly as by source_system + source_record_id
    truth = pd.read_csv(demo_dir / "truth.csv", dtype=str)
    keyed = tmp_path / "keyed.csv"
    truth.assign(record_key=truth["source_system"] + ":" + truth["source_record_id"])[
        ["record_key", "entity_id"]
    ].to_csv(keyed, index=False)
    by_source = evaluate_against_truth(cfg, demo_dir / "truth.csv")
    by_key = evaluate_against_truth(cfg, keyed)
    assert by_key == by_source
    assert by_key["records_evaluated"] > 0


def test_explain_gives_the_links_own_score(ran: Path, capsys) -> None:
    """A steward's explanation is the pipeline's score: the records are read as the link
    prepared them among all the others (tests/dedupe: a firm's name carried in several
    cities), and the last link's own row of the pair is shown beside it."""
    from dedupe import explain_pair
    from pipelines.stages import latest_params
    from warehouse.match_explain import last_link_rows

    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        pairs = read_table(con, "match.pairs")
        records = read_table(con, "clean.records").set_index("record_key", drop=False)
        params = latest_params(con)
        sample = pairs.sample(80, random_state=0)
        inputs = [last_link_rows(con, p.left_key, p.right_key) for p in sample.itertuples()]
    for p, (prepared, stored) in zip(sample.itertuples(), inputs, strict=True):
        assert prepared is not None and list(prepared["record_key"]) == [p.left_key, p.right_key]
        assert stored is not None and stored["probability"].iloc[0] == p.probability
        left, right = records.loc[p.left_key], records.loc[p.right_key]
        told = explain_pair(left, right, params, cfg.matching, prepared)
        assert told.probability == pytest.approx(p.probability, abs=1e-9), (p.left_key, p.right_key)

    first = sample.iloc[0]
    assert main(["explain", first["left_key"], "--config", str(ran), first["right_key"]]) == 0
    out = capsys.readouterr().out
    told = f"last link: scored by rule {first['rule']}, probability {first['probability']:.4f}"
    assert told in out and "prepared from these two records alone" not in out


def test_explain_reads_the_two_records_when_the_link_left_no_prepared_rows(
    ran: Path, capsys
) -> None:
    """Without ``match.prepared`` (e.g. a warehouse from before it was kept), the two records
    read by key are prepared alone, and the published customers of both are named."""
    cfg = load_config(ran)
    left, right = _merged_pair_of_a_two_record_customer(cfg)
    with open_warehouse(cfg) as con:
        con.execute("DROP TABLE match.prepared")
    assert main(["explain", left, right, "--config", str(ran)]) == 0
    out = capsys.readouterr().out
    assert "prepared from these two records alone" in out
    customer = _customer_of(cfg, left)
    assert f"published: {left} → {customer}, {right} → {customer} (the same customer)" in out

"""Whole runs of the pipeline: counts reconcile, accuracy holds, bad nights never publish."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from expectations import checks_for_layer
from pipelines import stages
from pipelines.access import open_warehouse, snapshot_reader
from pipelines.runner import evaluate_against_truth, format_summary, run_pipeline
from pipelines.settings import load_config
from pipelines.stages import clean as clean_stage_module
from pipelines.stages import golden as golden_stage_module
from warehouse import read_table
from warehouse.archive import list_snapshots, verify_snapshot
from warehouse.publish import carry_forward_run_ids
from warehouse.versions import current_raw_rows, mark_deleted_at_source


def _q(cfg_path: Path, sql: str) -> list[tuple]:
    cfg = load_config(cfg_path)
    with open_warehouse(cfg, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_full_run_publishes_reconciled_golden_layer(project: Path, demo_dir: Path) -> None:
    out = run_pipeline(project, run_date="2026-11-24")
    assert out.success, out.errors
    cfg = load_config(project)

    # every source row is either ingested or quarantined, per source
    for source, st in out.stats.ingest.items():
        assert st.rows_in == st.rows_ingested + st.rows_quarantined, source
    # every clean record is in the crosswalk exactly once, and every customer has a record
    (n_clean,) = _q(project, "SELECT count(*) FROM clean.records")[0]
    (n_cw, n_keys) = _q(
        project, "SELECT count(*), count(DISTINCT record_key) FROM golden.crosswalk"
    )[0]
    assert n_clean == n_cw == n_keys
    (orphans,) = _q(
        project,
        "SELECT count(*) FROM golden.customers c ANTI JOIN golden.crosswalk x USING (customer_id)",
    )[0]
    assert orphans == 0
    ids = [r[0] for r in _q(project, "SELECT customer_id FROM golden.customers")]
    assert all(i.startswith("C20261124") for i in ids)
    assert len(set(ids)) == len(ids)

    # a verified snapshot with a manifest
    snaps = list_snapshots(cfg.resolve(cfg.archive_dir))
    assert len(snaps) == 1
    assert verify_snapshot(snaps[0].path, reader=snapshot_reader(cfg)).ok
    manifest = json.loads((snaps[0].path / "manifest.json").read_text())
    assert manifest["row_counts"]["golden.customers"] == len(ids)

    acc = evaluate_against_truth(cfg, demo_dir / "truth.csv")
    assert acc["pairwise"]["f1"] >= 0.90, acc


def test_rerun_without_new_files_changes_nothing(project: Path) -> None:
    sql = "SELECT * EXCLUDE (updated_run_id) FROM golden.customers ORDER BY customer_id"
    first = run_pipeline(project, run_date="2026-11-24")
    assert first.success, first.errors
    before = _q(project, sql)
    layers = {o.layer for o in first.outcomes}
    assert layers == {"raw", "clean", "golden"}, layers
    raw_sources = {o.observed["source_system"] for o in first.outcomes if o.layer == "raw"}
    assert raw_sources == {"marketing", "sales", "service"}
    report = _latest_report(project)
    assert "raw_rows_reconciled" in report and "clean_phone_e164" in report
    assert "golden_customer_id_unique" in report
    second = run_pipeline(project, run_date="2026-11-25")
    assert second.success, second.errors
    ingested = [v.rows_ingested for v in second.stats.ingest.values()]
    assert ingested and sum(ingested) == 0
    # no new delivery: every raw check passes, the delivery checks as skipped
    raw = [o for o in second.outcomes if o.layer == "raw"]
    assert len(raw) == len(checks_for_layer("raw")) * 3
    assert all(o.success for o in raw), [o for o in raw if not o.success]
    skipped = {o.name for o in raw if o.observed.get("skipped") == "no new delivery in this run"}
    assert skipped == {"raw_rows_reconciled", "raw_delivery_not_empty", "raw_row_count_band"}
    assert {o.layer for o in second.outcomes} == {"raw", "clean", "golden"}
    assert _q(project, sql) == before
    assert second.stats.snapshot.snapshot is None  # same content: no new snapshot


def _latest_report(project: Path) -> str:
    cfg = load_config(project)
    latest = cfg.resolve(cfg.reports_dir) / "latest.txt"
    return Path(latest.read_text(encoding="utf-8")).read_text(encoding="utf-8")


def test_broken_clean_layer_blocks_everything_after_it(project: Path, monkeypatch) -> None:
    """A critical clean check fails: match, golden, publish and snapshot never run."""
    real = clean_stage_module.clean_batch  # what the full clean cleans each chunk with

    def national_phones(*args, **kwargs):
        result = real(*args, **kwargs)
        phones = result.records["phone"]
        result.records.loc[phones.notna().idxmax(), "phone"] = "13912345678"  # not E.164
        return result

    monkeypatch.setattr(clean_stage_module, "clean_batch", national_phones)
    out = run_pipeline(project, run_date="2026-11-24")
    assert not out.success and out.blocked
    assert out.stats.clean is not None and out.stats.match is None and out.stats.golden is None
    failed = [(o.layer, o.name) for o in out.outcomes if not o.success and o.critical]
    assert failed == [("clean", "clean_phone_e164")]
    assert {o.layer for o in out.outcomes} == {"raw", "clean"}  # golden never ran
    summary = format_summary(out)
    assert "PUBLISH BLOCKED: critical expectation(s) failed: clean clean_phone_e164" in summary
    cfg = load_config(project)
    assert list_snapshots(cfg.resolve(cfg.archive_dir)) == []
    assert _q(project, "SELECT count(*) FROM information_schema.tables "
                       "WHERE table_schema = 'golden'") == [(0,)]  # fmt: skip
    alerts = (cfg.resolve(cfg.reports_dir) / "alerts.jsonl").read_text(encoding="utf-8")
    assert "publishing blocked by clean check(s) on clean/records: clean_phone_e164" in alerts
    assert "clean_phone_e164" in _latest_report(project)


def test_bad_rows_are_quarantined_and_counts_reconcile(project: Path) -> None:
    cfg = load_config(project)
    sales_dir = cfg.resolve(cfg.landing_dir) / "sales" / "2026-11-24"
    sales_dir.mkdir(parents=True)
    header = (
        "客户编号,客户名称,客户类型,联系人,手机,邮箱,地址,所属行业,"
        "统一社会信用代码,签约日期,合同编号,合同金额,更新时间"
    )
    lines = [
        header,
        "KX1,北京测试科技有限公司,企业,张三,13900000001,a@test.cn,北京市海淀区,软件,,2024-01-02,H1,100,2024-01-02",
        "KX2,too,few,columns",  # wrong column count
        ",无编号客户,企业,李四,13900000002,,,,,,,,",  # empty id
        "KX3,上海测试贸易有限公司,企业,王五,13900000003,b@test.cn,上海市浦东新区,零售,,2024-02-03,H2,200,2024-02-03",
    ]
    (sales_dir / "bad.csv").write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    out = run_pipeline(project, run_date="2026-11-24")
    assert out.success, out.errors
    st = out.stats.ingest["sales"]
    assert st.rows_in == st.rows_ingested + st.rows_quarantined
    assert st.rows_quarantined >= 2
    reasons = _q(project, "SELECT reason FROM quarantine.rows WHERE source_file LIKE '%bad.csv'")
    assert len(reasons) == 2 and all(r[0] for r in reasons)


def test_failing_critical_expectation_blocks_publish(project: Path, monkeypatch) -> None:
    good = run_pipeline(project, run_date="2026-11-24")
    assert good.success, good.errors
    cfg = load_config(project)
    snaps_before = list_snapshots(cfg.resolve(cfg.archive_dir))
    golden_before = _q(project, "SELECT * FROM golden.customers ORDER BY customer_id")

    real = golden_stage_module.build_golden_chunk

    def corrupt(*args, **kwargs):
        tables = real(*args, **kwargs)
        # corrupt: one customer twice (its customer_id on two rows); an incremental build
        # may rebuild a single customer, so no second customer is needed
        c = tables.customers
        tables.customers = pd.concat([c, c.iloc[[0]]], ignore_index=True)
        return tables

    monkeypatch.setattr(golden_stage_module, "build_golden_chunk", corrupt)
    (cfg.resolve(cfg.landing_dir) / "marketing" / "extra").mkdir(parents=True)
    (cfg.resolve(cfg.landing_dir) / "marketing" / "extra" / "more.jsonl").write_text(
        json.dumps(
            {"lead_id": "LX1", "company": "杭州新线索网络科技有限公司", "mobile": "13700000009"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    bad = run_pipeline(project, run_date="2026-11-25")
    assert not bad.success
    assert bad.blocked
    assert list_snapshots(cfg.resolve(cfg.archive_dir)) == snaps_before
    assert all(verify_snapshot(s.path, reader=snapshot_reader(cfg)).ok for s in snaps_before)
    assert _q(project, "SELECT * FROM golden.customers ORDER BY customer_id") == golden_before
    with open_warehouse(cfg, read_only=True) as con:
        results = read_table(con, "ops.check_results")
    failed = results[(results["run_id"] == bad.run_id) & ~results["success"].astype(bool)]
    assert failed["critical"].astype(bool).any()
    assert isinstance(failed, pd.DataFrame)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sql_command_reads_golden_table(project: Path, fmt: str, tmp_path: Path, capsys) -> None:
    from pipelines.cli import main

    assert run_pipeline(project, run_date="2026-11-24").success
    out_file = tmp_path / f"out.{fmt}"
    code = main(
        [
            "sql",
            "--config",
            str(project),
            "--format",
            fmt,
            "--output",
            str(out_file),
            "SELECT customer_id, customer_name FROM golden.customers ORDER BY 1 LIMIT 5",
        ]
    )
    assert code == 0
    text = out_file.read_text(encoding="utf-8-sig")
    assert "C2026" in text


def test_carry_forward_keeps_run_id_only_for_unchanged_rows() -> None:
    old = pd.DataFrame(
        {"customer_id": ["C1", "C2", "C3"], "phone": ["+861", "+862", None], "run": "r1"}
    )
    new = pd.DataFrame(
        {"customer_id": ["C3", "C2", "C4"], "phone": [None, "+869", "+864"], "run": "r2"},
        index=[7, 8, 9],
    )
    out = carry_forward_run_ids(new, old, ["customer_id"], "run")
    assert out.set_index("customer_id")["run"].to_dict() == {"C3": "r1", "C2": "r2", "C4": "r2"}


def test_incremental_run_links_only_new_records_and_equals_full_rebuild(project: Path) -> None:
    from dedupe import link_records

    assert run_pipeline(project, run_date="2026-11-24").success
    cfg = load_config(project)
    # the full link stores every prepared record: the nightly links against them
    stored, linked = _q(
        project,
        "SELECT (SELECT count(*) FROM match.prepared), (SELECT count(*) FROM clean.records)",
    )[0]
    assert stored == linked > 0
    leads = [
        {"lead_id": "LN1", "company": "杭州新线索网络科技有限公司", "mobile": "13700000009"},
        {"lead_id": "LN2", "company": "杭州新线索网络科技", "mobile": "137-0000-0009"},
        {"lead_id": "LN3", "contact": "周杰伦", "mobile": "13811112222", "email": "zjl@qq.com"},
    ]
    folder = cfg.resolve(cfg.landing_dir) / "marketing" / "2026-11-25"
    folder.mkdir(parents=True)
    (folder / "leads.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in leads) + "\n", encoding="utf-8"
    )
    second = run_pipeline(project, run_date="2026-11-25")
    assert second.success, second.errors
    assert second.stats.match.mode == "incremental"
    assert second.stats.match.records_relinked == 3
    # it read the records the three reach, wrote only the pair rows that changed
    m = second.stats.match
    assert m.records_read is not None and 3 <= m.records_read < stored
    assert m.pairs_deleted is not None and m.pairs_inserted is not None
    assert m.pairs_deleted + m.pairs_inserted < m.candidate_pairs / 4
    with open_warehouse(cfg, read_only=True) as con:
        records = read_table(con, "clean.records")
        clusters = read_table(con, "match.clusters")
        decisions = read_table(con, "match.decisions")
        params = stages.latest_params(con)
    full = link_records(records, cfg.matching, decisions=decisions, params=params)

    def groups(frame: pd.DataFrame) -> set[frozenset[str]]:
        return {frozenset(g) for _, g in frame.groupby("cluster_key")["record_key"]}

    assert groups(clusters) == groups(full.clusters)
    # the nightly wrote only the affected rows (a delta): the tables still equal a full link's
    with open_warehouse(cfg, read_only=True) as con:
        for name, frame, keys in (
            ("match.pairs", full.pairs, "left_key, right_key"),
            ("match.review_queue", full.review_queue, "left_key, right_key"),
        ):
            got = con.sql(f"SELECT * FROM {name} ORDER BY {keys}").df()
            con.register("_expected", frame)
            want = con.sql(f"SELECT * FROM _expected ORDER BY {keys}").df()
            con.unregister("_expected")
            pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    assert second.stats.match.candidate_pairs == len(full.pairs)
    assert second.stats.match.review_queue == len(full.review_queue)
    assert second.stats.match.clusters == full.cluster_count()
    # the two new leads of one company end up together
    cw = dict(_q(project, "SELECT record_key, customer_id FROM golden.crosswalk"))
    assert cw["marketing:LN1"] == cw["marketing:LN2"]


def test_incremental_clean_equals_full_clean(project: Path) -> None:
    """Nightly runs clean only new/changed rows; the clean layer equals a full re-clean."""
    from cleaning import CleaningOptions, clean_records

    assert run_pipeline(project, run_date="2026-11-24").success
    cfg = load_config(project)
    folder = cfg.resolve(cfg.landing_dir) / "marketing" / "2026-11-25"
    folder.mkdir(parents=True)
    leads = [
        {
            "lead_id": "LQ1",
            "company": "NULL",
            "contact": "吴亦凡先生",
            "mobile": "13911110000",
            "industry": "奇怪行业",
            "created_at": "2026-11-25T09:00:00+08:00",
        },
        {
            "lead_id": "LQ2",
            "company": "成都蓉城软件有限公司",
            "mobile": "028-88886666",
            "industry": "软件",
            "created_at": "2026-11-25T10:00:00+08:00",
        },
    ]
    (folder / "leads.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in leads) + "\n", encoding="utf-8"
    )
    second = run_pipeline(project, run_date="2026-11-25")
    assert second.success, second.errors
    assert second.stats.clean.mode == "incremental"
    sources = stages.load_sources(cfg)
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in sources.sources},
        departments={s.name: s.department for s in sources.sources},
    )
    with open_warehouse(cfg, read_only=True) as con:
        raw = current_raw_rows(con, sources.sources)
        stored = {
            t: read_table(con, f"clean.{t}")
            for t in ("records", "transactions", "interactions", "follow_up", "unmapped_industries")
        }
    full = clean_records(raw, options)
    full = dataclasses.replace(full, records=mark_deleted_at_source(full.records, raw))

    def norm(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        out = frame.astype("string").sort_values(keys).reset_index(drop=True)
        return out[sorted(out.columns)]

    pd.testing.assert_frame_equal(
        norm(stored["records"], ["record_key"]), norm(full.records, ["record_key"])
    )
    for name, keys in (
        ("transactions", ["record_key", "txn_id"]),
        ("interactions", ["record_key", "interaction_id"]),
        ("follow_up", ["record_key", "missing"]),
        ("unmapped_industries", ["industry_raw"]),
    ):
        pd.testing.assert_frame_equal(norm(stored[name], keys), norm(getattr(full, name), keys))


def test_incremental_clean_reflags_old_rows_when_a_switchboard_appears(project: Path) -> None:
    """A phone that becomes shared by a new delivery is flagged on the old rows too.

    (Names with a 字号 of two characters: in 北京甲科技 the one-character 甲 is no 字号, so 北京
    stays in the key, and three such names would sound alike by their first two characters.)
    """
    cfg = load_config(project)
    first = [
        {"lead_id": f"SB{i}", "company": name, "mobile": "010-66668888"}
        for i, name in enumerate(["北京金甲科技有限公司", "北京银乙贸易有限公司"])
    ]
    folder = cfg.resolve(cfg.landing_dir) / "marketing" / "2026-11-24"
    folder.mkdir(parents=True)
    (folder / "sb.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in first) + "\n", encoding="utf-8"
    )
    assert run_pipeline(project, run_date="2026-11-24").success
    later = cfg.resolve(cfg.landing_dir) / "marketing" / "2026-11-25"
    later.mkdir(parents=True)
    third = {"lead_id": "SB9", "company": "北京铜丙物流有限公司", "mobile": "010-66668888"}
    (later / "sb.jsonl").write_text(json.dumps(third, ensure_ascii=False) + "\n", encoding="utf-8")
    second = run_pipeline(project, run_date="2026-11-25")
    assert second.success, second.errors
    assert second.stats.clean.mode == "incremental"
    flags = dict(
        _q(
            project,
            "SELECT record_key, phone_shared FROM clean.records "
            "WHERE record_key LIKE 'marketing:SB%'",
        )
    )
    assert flags == {"marketing:SB0": True, "marketing:SB1": True, "marketing:SB9": True}


def _one_source_project(root: Path, csv: str) -> Path:
    """A project with one CRM source and one delivered CSV (``csv`` is its text)."""
    landing = root / "landing"
    (landing / "crm" / "2026-11-24").mkdir(parents=True)
    (landing / "crm" / "2026-11-24" / "a.csv").write_text(csv, encoding="utf-8")
    sources = root / "sources.yml"
    sources.write_text(
        "sources:\n"
        "  - name: crm\n"
        '    path: "crm/**/*.csv"\n'
        "    columns: {source_record_id: 客户编号, customer_name: 客户名称, phone: 手机}\n",
        encoding="utf-8",
    )
    cfg = root / "archive.yml"
    cfg.write_text(
        f"landing_dir: {landing}\nsources_file: {sources}\nwarehouse: state/warehouse.duckdb\n"
        "archive_dir: state/archive\nreports_dir: state/reports\nexports_dir: state/exports\n",
        encoding="utf-8",
    )
    return cfg


def test_first_night_with_everything_quarantined_succeeds_and_says_so(tmp_path: Path) -> None:
    from pipelines.runner import format_summary

    # the name column is missing: the whole file is quarantined, zero clean records
    cfg = _one_source_project(tmp_path, "客户编号,公司,手机\nK1,北京星辰,13912345678\n")
    out = run_pipeline(cfg, run_date="2026-11-24")
    assert out.success, out.errors
    st = out.stats.ingest["crm"]
    assert (st.rows_in, st.rows_ingested, st.rows_quarantined) == (1, 0, 1)
    assert out.stats.clean is not None and out.stats.clean.clean_records == 0
    assert out.stats.golden is not None and out.stats.golden.golden_customers == 0
    summary = format_summary(out)
    assert "zero clean records" in summary and "status:            OK" in summary
    assert _q(cfg, "SELECT count(*) FROM golden.customers") == [(0,)]


def test_a_file_quarantined_for_an_unknown_header_arrives_once_the_mapping_knows_it(
    tmp_path: Path,
) -> None:
    cfg = _one_source_project(
        tmp_path, "客户编号,公司,手机\nK1,北京星辰科技有限公司,13912345678\nK2,李娜,13812345678\n"
    )
    assert run_pipeline(cfg, run_date="2026-11-24").success
    assert _q(cfg, "SELECT count(*) FROM quarantine.files") == [(1,)]
    assert run_pipeline(cfg, run_date="2026-11-25").success  # skipped: the same mapping
    sources = tmp_path / "sources.yml"
    text = sources.read_text(encoding="utf-8")
    sources.write_text(text.replace("customer_name: 客户名称", "customer_name: [客户名称, 公司]"))
    out = run_pipeline(cfg, run_date="2026-11-26")
    assert out.success, out.errors
    st = out.stats.ingest["crm"]
    assert (st.files_new, st.rows_in, st.rows_ingested, st.rows_quarantined) == (1, 2, 2, 0)
    assert _q(cfg, "SELECT count(*) FROM golden.customers") == [(2,)]
    assert _q(cfg, "SELECT status FROM ops.deliveries ORDER BY status") == [
        ("new",),
        ("retried",),
        ("unchanged",),
    ]


def test_quarantine_tables_exist_after_a_clean_run(tmp_path: Path) -> None:
    cfg = _one_source_project(
        tmp_path, "客户编号,客户名称,手机\nK1,北京星辰科技有限公司,13912345678\n"
    )
    out = run_pipeline(cfg, run_date="2026-11-24")
    assert out.success, out.errors
    assert _q(cfg, "SELECT count(*) FROM quarantine.rows") == [(0,)]
    assert _q(cfg, "SELECT count(*) FROM quarantine.files") == [(0,)]
    types = dict(
        _q(
            cfg,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'quarantine' AND table_name = 'rows'",
        )
    )
    assert types["reason"] == "VARCHAR" and types["run_id"] == "VARCHAR"

"""Nightly runs as departments deliver: re-exports, deltas, deletions, late files, withdrawals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipelines.access import open_warehouse
from pipelines.cli.deliveries import withdraw
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from warehouse import ensure_schemas, read_table, replace_tables
from warehouse.archive._hashing import table_content_hash
from warehouse.naming import GOLDEN_TABLES
from warehouse.settings import SURVIVING_ATTRIBUTES

NEXT_DATE = "2026-11-24"
_LOGS = {"customers_history", "customer_ids"}  # append-only logs: they grow by design
_RUN_COLUMNS = {"updated_run_id", "run_id"}


def _q(project: Path, sql: str) -> list[tuple]:
    with open_warehouse(load_config(project), read_only=True) as con:
        return con.execute(sql).fetchall()


def golden_state_hash(project: Path) -> dict[str, str]:
    """Content hash of every golden table (not the logs), run-id columns left out."""
    out = {}
    with open_warehouse(load_config(project), read_only=True) as con:
        for name in GOLDEN_TABLES:
            if name in _LOGS:
                continue
            frame = read_table(con, f"golden.{name}")
            assert frame is not None, name
            out[name] = table_content_hash(frame.drop(columns=list(_RUN_COLUMNS & set(frame))))
    return out


def _sales_export(landing: Path) -> tuple[Path, pd.DataFrame]:
    path = next((landing / "sales").glob("*/crm_customers.csv"))
    return path, pd.read_csv(path, encoding="gb18030", dtype=str, keep_default_na=False)


def _deliver_sales(landing: Path, date: str, frame: pd.DataFrame) -> Path:
    path = landing / "sales" / date / "crm_customers.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, encoding="gb18030")
    return path


def test_full_reexport_in_a_new_date_folder_is_the_next_version(project: Path) -> None:
    """Issue #15: the CRM's whole export again, a few contacts changed: used to fail every night."""
    assert run_pipeline(project, run_date="2026-11-23").success
    landing = load_config(project).resolve(load_config(project).landing_dir)
    _, sales = _sales_export(landing)
    changed = sales.head(5).copy()
    sales.loc[changed.index, "手机"] = [f"1390000{i:04d}" for i in range(5)]
    gone = sales["客户编号"].iloc[-1]
    _deliver_sales(landing, NEXT_DATE, sales.iloc[:-1])

    night = run_pipeline(project, run_date=NEXT_DATE)
    assert night.success, night.errors
    keys = ", ".join(f"'sales:{k}'" for k in changed["客户编号"])
    # one clean record per source record, with the new phone (E.164)
    phones = dict(
        _q(project, f"SELECT record_key, phone FROM clean.records WHERE record_key IN ({keys})")
    )
    assert sorted(phones.values()) == [f"+861390000{i:04d}" for i in range(5)]
    # the golden record shows them: each customer's contacts carry the new phone
    shown = _q(
        project,
        "SELECT count(DISTINCT k.phone) FROM golden.contacts AS k JOIN golden.crosswalk AS c"
        f" USING (customer_id) WHERE c.record_key IN ({keys}) AND k.phone LIKE '+861390000%'",
    )
    assert shown == [(5,)]
    # the version history holds the old and the new phone, with the date and the delivery
    versions = _q(
        project,
        "SELECT valid_from::VARCHAR, change, changed_fields, delivery FROM history.record_versions"
        f" WHERE record_key IN ({keys}) AND version_no = 2",
    )
    assert len(versions) == 5
    assert all(
        v == (NEXT_DATE, "changed", "phone", f"sales/{NEXT_DATE}/crm_customers.csv")
        for v in versions
    )
    # the record missing from the full export is deleted at source, not erased
    assert _q(
        project,
        f"SELECT deleted_at_source::VARCHAR FROM clean.records WHERE record_key = 'sales:{gone}'",
    ) == [(NEXT_DATE,)]
    assert _q(
        project, f"SELECT count(*) FROM golden.crosswalk WHERE record_key = 'sales:{gone}'"
    ) == [(1,)]
    # the golden customers' history names the delivery as the reason
    reasons = _q(
        project,
        "SELECT change_reason FROM golden.customers_history"
        f" WHERE change_reason LIKE '%sales/{NEXT_DATE}/crm_customers.csv%'",
    )
    assert reasons, "no history row names the delivery"
    # and the nights after keep succeeding
    again = run_pipeline(project, run_date="2026-11-25")
    assert again.success, again.errors


def test_withdrawing_a_bad_full_delivery_restores_the_previous_state(project: Path) -> None:
    cfg = load_config(project)
    landing = cfg.resolve(cfg.landing_dir)
    assert run_pipeline(project, run_date=NEXT_DATE).success
    before = golden_state_hash(project)

    # a truncated export with scrambled phones: half the customers "deleted", others changed
    _, sales = _sales_export(landing)
    bad = sales.iloc[: len(sales) // 2].copy()
    bad.loc[bad.index[:10], "手机"] = "13800000000"
    _deliver_sales(landing, "2026-11-25", bad)
    night = run_pipeline(project, run_date=NEXT_DATE)
    assert night.success, night.errors
    assert golden_state_hash(project) != before
    deleted = _q(project, "SELECT count(*) FROM clean.records WHERE deleted_at_source IS NOT NULL")
    assert deleted[0][0] == len(sales) - len(bad)

    rows = withdraw(cfg, "sales/2026-11-25", reason="truncated CRM export")
    assert rows["path"].tolist() == ["sales/2026-11-25/crm_customers.csv"]
    assert withdraw(cfg, "sales/2026-11-25", reason="again").empty  # idempotent
    restored = run_pipeline(project, run_date=NEXT_DATE)
    assert restored.success, restored.errors
    assert golden_state_hash(project) == before
    listed = _q(project, "SELECT reason FROM ops.withdrawn_deliveries")
    assert listed == [("truncated CRM export",)]


def seed_match_model(source: Path, target: Path) -> None:
    """Give a fresh project the match model params of another (as if estimated there)."""
    with open_warehouse(load_config(source), read_only=True) as con:
        params = read_table(con, "match.params")
    assert params is not None
    source_cfg, target_cfg = load_config(source), load_config(target)
    key = target_cfg.resolve(target_cfg.security.key_file)
    if not key.exists():  # the same master key (a fresh project would generate its own)
        key.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_cfg.resolve(source_cfg.security.key_file), key)
    with open_warehouse(target_cfg) as con:
        ensure_schemas(con)
        replace_tables(con, {"match.params": params.tail(1)})


def _clusters(project: Path) -> tuple[dict[frozenset, str], pd.DataFrame]:
    with open_warehouse(load_config(project), read_only=True) as con:
        cw = read_table(con, "golden.crosswalk")
        customers = read_table(con, "golden.customers")
    assert cw is not None and customers is not None
    members = cw.groupby("customer_id")["record_key"].agg(frozenset)
    return {keys: cid for cid, keys in members.items()}, customers.set_index("customer_id")


@pytest.mark.slow
def test_short_replay_converges_to_a_full_rebuild(tmp_path: Path) -> None:
    settings = ReplaySettings(nights=5, entities=300, late_every=3, repeat_every=2)
    for folder in ("nightly", "rebuild"):
        (tmp_path / folder).mkdir()
    project = write_project(tmp_path / "nightly", tmp_path / "demo" / "landing")
    first_ids: dict[str, str] = {}
    nights = []
    for night in replay_nights(tmp_path / "demo", settings):
        outcome = run_pipeline(project, run_date=night.run_date)
        assert outcome.success, (night.run_date, outcome.errors)
        nights.append(night)
        if night.night == 0:
            first_ids = dict(_q(project, "SELECT record_key, customer_id FROM golden.crosswalk"))

    # a full rebuild from the same deliveries in a fresh warehouse, with the same match model
    # (a full relink reuses the previous run's EM weights: scale.reuse_params)
    rebuild = write_project(tmp_path / "rebuild", tmp_path / "demo" / "landing")
    seed_match_model(project, rebuild)
    assert run_pipeline(rebuild, run_date=nights[-1].run_date).success
    nightly_clusters, nightly_customers = _clusters(project)
    full_clusters, full_customers = _clusters(rebuild)
    assert set(nightly_clusters) == set(full_clusters)  # same clusters
    columns = [*SURVIVING_ATTRIBUTES, "lifecycle", "tier", "record_count", "source_count"]
    left = nightly_customers.loc[[nightly_clusters[k] for k in full_clusters], columns]
    right = full_customers.loc[list(full_clusters.values()), columns]
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True).astype("string"), right.reset_index(drop=True).astype("string")
    )

    # entities whose records never changed keep their customer_id
    versions = pd.DataFrame(
        _q(project, "SELECT record_key, count(*) FROM history.record_versions GROUP BY 1"),
        columns=["record_key", "versions"],
    ).set_index("record_key")["versions"]
    now = dict(_q(project, "SELECT record_key, customer_id FROM golden.crosswalk"))
    by_customer: dict[str, list[str]] = {}
    for key, cid in first_ids.items():
        by_customer.setdefault(cid, []).append(key)
    unchanged = [
        cid
        for cid, keys in by_customer.items()
        if all(versions.get(k, 0) == 1 for k in keys)
        and len(nightly_clusters.get(frozenset(keys), "")) > 0
    ]
    assert len(unchanged) > 0.8 * len(by_customer)
    kept = [cid for cid in unchanged if all(now[k] == cid for k in by_customer[cid])]
    assert kept == unchanged

    # history holds every change with its date and delivery
    rows = _q(
        project,
        "SELECT change, count(*), count(valid_from), count(delivery) FROM history.record_versions"
        " GROUP BY 1",
    )
    counts = {change: (n, dated, delivered) for change, n, dated, delivered in rows}
    assert all(n == dated == delivered for n, dated, delivered in counts.values())
    assert counts["changed"][0] >= sum(n.changed["sales"] for n in nights[1:]) * 0.9
    assert counts["deleted_at_source"][0] >= sum(n.deleted["marketing"] for n in nights[1:])
    sales_dates = {
        d
        for (d,) in _q(
            project,
            "SELECT DISTINCT valid_from::VARCHAR FROM history.record_versions"
            " WHERE change = 'changed' AND source_system = 'sales'",
        )
    }
    late_night = settings.late_every  # its sales export arrived two nights late
    assert {n.run_date for n in nights[1:] if n.night != late_night} <= sales_dates
    # a late export never overwrote newer values: the current sales records are the last export
    last = tmp_path / "demo" / "landing" / "sales" / nights[-1].run_date / "crm_customers.csv"
    export = pd.read_csv(last, encoding="gbk", dtype=str, keep_default_na=False)
    current = _q(
        project,
        "SELECT source_record_id, coalesce(phone, '') FROM history.record_versions"
        " WHERE is_current AND source_system = 'sales' AND change <> 'deleted_at_source'",
    )
    assert sorted(current) == sorted(zip(export["客户编号"], export["手机"], strict=True))

"""The nightly clean (only changed records, written back by key) equals a full clean.

Nights of the demo replay are ingested and cleaned with the stage functions (no match or
golden: only the clean layer is compared): full re-exports with changed contacts and records
missing (deleted at source), deltas with deletion markers, a late export, a byte-identical
re-send, and at the end a withdrawn delivery (older versions current again, records that only
it delivered gone).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cleaning import CleaningOptions, clean_records, date_order_frame
from cleaning.incremental import switchboards
from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.clean import CleanStats, clean_stage
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from sources.demo.replay import ReplaySettings, replay_nights
from tests.pipelines.conftest import write_project
from warehouse import read_table
from warehouse.versions import current_raw_rows, mark_deleted_at_source, withdraw_deliveries

_KEYS = {
    "records": ["record_key"],
    "transactions": ["record_key", "txn_id"],
    "interactions": ["record_key", "interaction_id"],
    "follow_up": ["record_key", "missing"],
    "unmapped_industries": ["industry_raw"],
    "date_orders": ["source_system"],
}


def _norm(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.astype("string").fillna("\x00").sort_values(keys).reset_index(drop=True)
    return out[sorted(out.columns)]


def _assert_equals_full_clean(con, project: Path) -> None:
    """``clean.*`` equal a full clean of the current raw state (content, any row order)."""
    sources = load_sources(load_config(project)).sources
    options = CleaningOptions(
        date_order={s.name: s.date_order for s in sources},
        departments={s.name: s.department for s in sources},
    )
    raw = current_raw_rows(con, sources)
    full = clean_records(raw, options)
    expected = {
        **{f.name: getattr(full, f.name) for f in dataclasses.fields(full)},
        "records": mark_deleted_at_source(full.records, raw),
        "date_orders": date_order_frame(raw, options),
    }
    for name, keys in _KEYS.items():
        stored = read_table(con, f"clean.{name}")
        assert stored is not None, name
        assert len(stored) == len(expected[name]), name
        pd.testing.assert_frame_equal(
            _norm(stored, keys), _norm(expected[name], keys), obj=f"clean.{name}"
        )


def _night(project: Path, run_date: str, run_id: str) -> CleanStats:
    cfg = load_config(project)
    ctx = RunContext(config=cfg, run_id=run_id, run_date=date.fromisoformat(run_date))
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            ingest_stage(con, ctx, source.name)
        stats = clean_stage(con, ctx)
        _assert_equals_full_clean(con, project)
        scope = con.execute(
            "SELECT mode, count(record_key) FROM ops.clean_scope WHERE run_id = ? GROUP BY 1",
            [run_id],
        ).fetchall()
    assert scope == [(stats.mode, stats.cleaned if stats.mode == "incremental" else 0)]
    return stats


def test_nightly_clean_equals_a_full_clean_through_reexports_deltas_late_files_and_withdrawal(
    tmp_path: Path,
) -> None:
    settings = ReplaySettings(
        nights=3, entities=150, late_every=2, repeat_every=2, change_share=0.05, delete_share=0.02
    )
    project = write_project(tmp_path, tmp_path / "demo" / "landing")
    runs: list[tuple[str, CleanStats]] = []
    for night in replay_nights(tmp_path / "demo", settings):
        runs.append((night.run_date, _night(project, night.run_date, f"run{night.night}")))
    modes = [stats.mode for _, stats in runs]
    assert modes == ["full", "incremental", "incremental", "incremental"]
    for _, stats in runs[1:]:
        # a whole sales export arrives every night, yet only changed records are cleaned
        assert 0 < stats.cleaned < 0.3 * stats.clean_records
    assert sum(stats.deleted_at_source > 0 for _, stats in runs[1:]) >= 1

    # withdraw the last night's deliveries: the versions before them are current again and
    # the records only they delivered leave the clean layer
    last = runs[-1][0]
    cfg = load_config(project)
    with open_warehouse(cfg) as con:
        before = con.execute("SELECT count(*) FROM clean.records").fetchall()[0]
        for source in ("sales", "marketing", "service"):
            withdraw_deliveries(con, f"{source}/{last}", reason="test: bad export")
    stats = _night(project, last, "withdrawn")
    assert stats.mode == "incremental" and stats.cleaned > 0 and stats.removed > 0
    assert before is not None and stats.clean_records == before[0] - stats.removed


def test_nightly_clean_suite_validates_new_rows_and_a_bad_new_row_still_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-record checks see only the records cleaned tonight (plus earlier failures),
    the whole-table checks every record; a bad record cleaned tonight fails the critical
    check, and stays failing on later nights until it is fixed."""
    import cleaning.incremental as incremental
    from expectations import blocking_failures
    from pipelines.stages.quality import clean_quality_stage

    settings = ReplaySettings(nights=2, entities=120, late_every=0, repeat_every=0)
    project = write_project(tmp_path, tmp_path / "demo" / "landing")
    nights = replay_nights(tmp_path / "demo", settings)
    cfg = load_config(project)
    real = incremental.clean_records
    bad: list[str] = []

    def corrupt(*args, **kwargs):  # a cleaning bug on one record cleaned tonight
        result = real(*args, **kwargs)
        row = result.records["phone"].notna().idxmax()
        result.records.loc[row, "phone"] = "13912345678"  # national form, not E.164
        bad.append(str(result.records.loc[row, "record_key"]))
        return result

    outcomes = []
    for night in nights:
        if night.night == 1:
            monkeypatch.setattr(incremental, "clean_records", corrupt)
        else:
            monkeypatch.setattr(incremental, "clean_records", real)
        ctx = RunContext(
            config=cfg, run_id=f"q{night.night}", run_date=date.fromisoformat(night.run_date)
        )
        with open_warehouse(cfg, create_key=True) as con:
            for source in load_sources(cfg).sources:
                ingest_stage(con, ctx, source.name)
            stats = clean_stage(con, ctx)
            checks = {o.name: o for o in clean_quality_stage(con, ctx)}
        outcomes.append((stats, checks))

    (first, ok), (second, broken), (third, still) = outcomes
    assert first.mode == "full" and second.mode == "incremental" == third.mode
    assert blocking_failures(list(ok.values())) == []
    phone = ok["clean_phone_e164"].observed
    assert phone["rows_validated"] == phone["rows_in_table"] == first.clean_records
    # tonight: only the records cleaned tonight are validated row by row ...
    phone = broken["clean_phone_e164"].observed
    assert phone["rows_validated"] == second.cleaned < phone["rows_in_table"]
    # ... the bad one fails the critical check, so publishing would be blocked
    assert not broken["clean_phone_e164"].success and broken["clean_phone_e164"].critical
    assert phone["unexpected_keys"] == bad and phone["unexpected_count"] == 1
    assert [o.name for o in blocking_failures(list(broken.values()))] == ["clean_phone_e164"]
    # whole-table checks count every record
    assert broken["clean_record_key_unique"].observed["element_count"] == second.clean_records
    # the next night did not touch the bad record: it is validated again and still fails
    assert not still["clean_phone_e164"].success
    assert still["clean_phone_e164"].observed["unexpected_keys"] == bad
    stored = _q_failures(project)
    assert stored == [("clean_phone_e164", bad[0])]


def _q_failures(project: Path) -> list[tuple]:
    with open_warehouse(load_config(project), read_only=True) as con:
        return con.execute(
            "SELECT check_name, record_key FROM ops.clean_check_failures ORDER BY 1, 2"
        ).fetchall()


def test_an_upgraded_cleaner_cleans_every_record_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records cleaned by an older cleaner would keep its rules beside records cleaned by the
    new one: after an upgrade (another `cleaner_version`, or none recorded) the next clean is
    full, whatever changed; the night after, with the same cleaner, is incremental again."""
    import pipelines.stages.clean as clean_module
    from cleaning.version import cleaner_version
    from warehouse.ops import stored_cleaner_version

    settings = ReplaySettings(nights=3, entities=120, late_every=0, repeat_every=0)
    project = write_project(tmp_path, tmp_path / "demo" / "landing")
    nights = replay_nights(tmp_path / "demo", settings)
    versions = [cleaner_version(), cleaner_version(), "0upgraded0", "0upgraded0"]
    modes, stored = [], []
    for night, version in zip(nights, versions, strict=True):
        monkeypatch.setattr(clean_module, "cleaner_version", lambda v=version: v)
        if night.night == 1:  # a warehouse from before versions were recorded
            with open_warehouse(load_config(project)) as con:
                con.execute("DROP TABLE ops.cleaner")
        modes.append(_night(project, night.run_date, f"u{night.night}").mode)
        with open_warehouse(load_config(project), read_only=True) as con:
            stored.append(stored_cleaner_version(con))
    assert modes == ["full", "full", "full", "incremental"]
    assert stored == versions


def _crm_night(project: Path, run_date: str, rows: list[tuple[str, str, str]]) -> CleanStats:
    """Deliver ``rows`` (id, name, phone) as the CRM's whole export of ``run_date``; clean."""
    cfg = load_config(project)
    folder = cfg.resolve(cfg.landing_dir) / "crm" / run_date
    folder.mkdir(parents=True)
    text = "客户编号,客户名称,电话\n" + "".join(f"{k},{n},{p}\n" for k, n, p in rows)
    (folder / "export.csv").write_text(text, encoding="utf-8")
    ctx = RunContext(config=cfg, run_id=run_date, run_date=date.fromisoformat(run_date))
    with open_warehouse(cfg, create_key=True) as con:
        ingest_stage(con, ctx, "crm")
        stats = clean_stage(con, ctx)
        _assert_equals_full_clean(con, project)
    return stats


def test_nightly_clean_counts_switchboards_only_on_phones_the_change_touches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A switchboard no changed record is on keeps its flags without its records being read.

    Phone A is a switchboard on three kept records; phone B gets its third name tonight (its
    two old records are flagged again) and C's record changes. Only B's and C's records
    decide a flag tonight: A's are not sounded out again (every flag still equals a full
    clean's).
    """
    landing = tmp_path / "landing"
    landing.mkdir()
    (tmp_path / "sources.yml").write_text(
        'sources:\n  - name: crm\n    path: "crm/**/*.csv"\n    delivery: full\n'
        "    columns: {source_record_id: 客户编号, customer_name: 客户名称, phone: 电话}\n",
        encoding="utf-8",
    )
    project = tmp_path / "archive.yml"
    project.write_text(
        f"landing_dir: {landing}\nsources_file: {tmp_path / 'sources.yml'}\n"
        "warehouse: state/warehouse.duckdb\narchive_dir: state/archive\n"
        "reports_dir: state/reports\nexports_dir: state/exports\n",
        encoding="utf-8",
    )
    a, b, c = "010-66668888", "010-77779999", "010-55556666"
    rows = [
        ("K1", "北京金甲科技有限公司", a),
        ("K2", "上海银乙贸易有限公司", a),
        ("K3", "广州铜丙物流有限公司", a),
        ("K4", "深圳铁丁科技有限公司", b),
        ("K5", "杭州锡戊贸易有限公司", b),
        ("K6", "成都钴己物流有限公司", c),
    ]
    assert _crm_night(project, "2026-11-24", rows).mode == "full"

    counted: list[set[str]] = []

    def spy(phone: pd.Series, name_key: pd.Series, min_names: int) -> frozenset[str]:
        counted.append(set(phone.dropna().astype(str)))
        return switchboards(phone, name_key, min_names)

    monkeypatch.setattr("pipelines.stages.clean.switchboards", spy)
    again = [*rows[:5], ("K6", "成都钴己快运有限公司", c), ("K7", "南京锌庚科技有限公司", b)]
    stats = _crm_night(project, "2026-11-25", again)
    assert stats.mode == "incremental" and stats.cleaned == 2 + 2  # K6, K7; K4, K5 reflagged

    with open_warehouse(load_config(project)) as con:
        phones = dict(con.execute("SELECT record_key, phone FROM clean.records").fetchall())
        flags = dict(con.execute("SELECT record_key, phone_shared FROM clean.records").fetchall())
    assert flags == {f"crm:K{i}": i != 6 for i in range(1, 8)}
    assert counted, "the switchboards were not counted"
    assert phones["crm:K1"] not in set().union(*counted)
    assert {phones["crm:K4"], phones["crm:K6"]} <= set().union(*counted)

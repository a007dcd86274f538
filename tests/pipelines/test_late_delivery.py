"""A late or repeated full delivery whose values do not change a record changes nothing downstream.

Issue #15 (night 3 of a trial): a late copy of an older full export arrived beside the night's
re-export. Its values were older or equal, so no record's current values changed but the ones
the re-export changed; yet every record's first sighting moved to the late file, and every
record was cleaned and linked again. The stages run here one by one (ingest, clean, match) on a
small demo; the history must still list the late file as the oldest version, with its date.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from pipelines.access import open_warehouse
from pipelines.settings import load_config
from pipelines.stages import load_sources
from pipelines.stages.clean import CleanStats, clean_stage
from pipelines.stages.context import RunContext
from pipelines.stages.ingest import ingest_stage
from pipelines.stages.match import MatchStats, match_stage
from sources.demo import write_demo
from tests.pipelines.conftest import write_project
from warehouse import read_table

SALES = "crm_customers.csv"


def _night(project: Path, run_date: str) -> tuple[CleanStats, MatchStats]:
    cfg = load_config(project)
    ctx = RunContext(config=cfg, run_id=f"run-{run_date}", run_date=date.fromisoformat(run_date))
    with open_warehouse(cfg, create_key=True) as con:
        for source in load_sources(cfg).sources:
            ingest_stage(con, ctx, source.name)
        return clean_stage(con, ctx), match_stage(con, ctx)


def _deliver(landing: Path, day: str, frame: pd.DataFrame) -> str:
    path = landing / "sales" / day / SALES
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, encoding="gb18030")
    return f"sales/{day}/{SALES}"


def _tables(project: Path) -> dict[str, pd.DataFrame]:
    with open_warehouse(load_config(project), read_only=True) as con:
        out = {}
        for name in ("clean.records", "match.linked_records", "match.pairs", "match.clusters"):
            frame = read_table(con, name)
            assert frame is not None, name
            out[name] = frame.astype("string").sort_values(list(frame.columns), ignore_index=True)
        return out


def test_a_late_older_export_beside_a_reexport_cleans_and_links_only_the_changed_records(
    tmp_path: Path,
) -> None:
    write_demo(tmp_path / "demo", entities=60, seed=3)
    landing = tmp_path / "demo" / "landing"
    project = write_project(tmp_path, landing)
    (first_file,) = (landing / "sales").glob(f"*/{SALES}")
    first = pd.read_csv(first_file, encoding="gb18030", dtype=str, keep_default_na=False)
    ids = first["客户编号"]
    _night(project, "2026-11-23")

    # night 2: the CRM's whole export again, three phones changed
    second = first.copy()
    second.loc[second.index[:3], "手机"] = [f"1390000{i:04d}" for i in range(3)]
    _deliver(landing, "2026-11-24", second)
    clean2, match2 = _night(project, "2026-11-24")
    assert clean2.cleaned == 3 and match2.records_relinked == 3

    # night 3: a late copy of an older export (2026-11-20: two phones older, the rest as first
    # delivered, one record not exported yet) and the night's re-export (two e-mails changed)
    late = first.copy()
    late.loc[late.index[10:12], "手机"] = ["13700000001", "13700000002"]
    late_path = _deliver(landing, "2026-11-20", late.iloc[:-1])
    third = second.copy()
    third.loc[third.index[20:22], "邮箱"] = ["new20@example.cn", "new21@example.cn"]
    _deliver(landing, "2026-11-25", third)
    clean3, match3 = _night(project, "2026-11-25")
    assert clean3.mode == "incremental" and clean3.versions_keys_recomputed > 0
    assert clean3.cleaned == 2, clean3  # only the two changed e-mails
    assert match3.mode == "incremental" and match3.records_relinked == 2, match3

    # the history still lists the late file as each record's oldest version, with its date
    with open_warehouse(load_config(project), read_only=True) as con:
        oldest = con.execute(
            "SELECT source_record_id, valid_from::VARCHAR, delivery, change"
            " FROM history.record_versions WHERE source_system = 'sales' AND version_no = 1"
        ).fetchall()
        older_phone = con.execute(
            "SELECT source_record_id, version_no, delivery, changed_fields"
            " FROM history.record_versions WHERE source_system = 'sales'"
            " AND source_record_id IN (?, ?) ORDER BY 1, 2",
            [ids.iloc[10], ids.iloc[11]],
        ).fetchall()
    late_first = {r[0] for r in oldest if r[1:] == ("2026-11-20", late_path, "created")}
    assert late_first == set(ids.iloc[:-1])
    assert [r[1:] for r in older_phone] == [
        (1, late_path, None),
        (2, "sales/2026-11-23/" + SALES, "phone"),
    ] * 2

    # night 4: the night-2 export again in another order under an older date (not
    # byte-identical, so read): no current value changes, nothing downstream moves
    before = _tables(project)
    _deliver(landing, "2026-11-21", second.iloc[::-1])
    clean4, match4 = _night(project, "2026-11-26")
    assert clean4.cleaned == 0 and match4.records_relinked == 0, (clean4, match4)
    after = _tables(project)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)

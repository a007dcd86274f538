"""A warehouse written before ``match.linked_records`` held fingerprints (a full copy of
``clean.records``) upgrades on its next run: the nightly is still incremental, relinks the
same records, and leaves the fingerprints behind."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.access import open_warehouse
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from warehouse import table_columns, table_exists

LEADS = [
    {"lead_id": "LU1", "company": "杭州升级测试网络科技有限公司", "mobile": "13700000019"},
    {"lead_id": "LU2", "company": "杭州升级测试网络科技", "mobile": "137-0000-0019"},
]


def _fingerprints_differ(con) -> int:  # type: ignore[no-untyped-def]
    """Rows of ``clean.records`` whose fingerprint ``match.linked_records`` does not hold."""
    (layout,) = con.execute("SELECT columns FROM match.linked_layout").fetchone()
    listed = ", ".join(f'"{name}"' for name, _ in json.loads(layout))
    return con.execute(
        f"SELECT count(*) FROM (SELECT record_key, hash({listed}) FROM clean.records"
        " EXCEPT SELECT record_key, fingerprint FROM match.linked_records)"
    ).fetchall()[0][0]


def test_a_warehouse_with_the_full_copy_upgrades_on_its_next_nightly(project: Path) -> None:
    assert run_pipeline(project, run_date="2026-11-24").success
    cfg = load_config(project)
    with open_warehouse(cfg) as con:
        assert table_columns(con, "match.linked_records") == ["record_key", "fingerprint"]
        assert _fingerprints_differ(con) == 0
        # as main wrote it before: a copy of every column, no layout table
        con.execute("CREATE OR REPLACE TABLE match.linked_records AS SELECT * FROM clean.records")
        con.execute("DROP TABLE match.linked_layout")
    folder = cfg.resolve(cfg.landing_dir) / "marketing" / "2026-11-25"
    folder.mkdir(parents=True)
    (folder / "leads.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in LEADS) + "\n", encoding="utf-8"
    )
    second = run_pipeline(project, run_date="2026-11-25")
    assert second.success, second.errors
    assert second.stats.match.mode == "incremental"
    assert second.stats.match.records_relinked == len(LEADS)
    with open_warehouse(cfg, read_only=True) as con:
        assert table_columns(con, "match.linked_records") == ["record_key", "fingerprint"]
        assert table_exists(con, "match.linked_layout")
        assert _fingerprints_differ(con) == 0
        (linked, clean) = con.execute(
            "SELECT (SELECT count(*) FROM match.linked_records),"
            " (SELECT count(*) FROM clean.records)"
        ).fetchall()[0]
        assert linked == clean
    # the night after compares fingerprints: nothing new, nothing relinked
    third = run_pipeline(project, run_date="2026-11-26")
    assert third.success, third.errors
    assert third.stats.match.mode == "incremental"
    assert third.stats.match.records_relinked == 0

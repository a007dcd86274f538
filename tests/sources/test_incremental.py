"""Incremental ingest: only new or changed deliveries are read; re-sends are skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from sources import SourceConfig, ingest_source, manifest_frame, plan_deliveries
from tests.sources.conftest import (
    COLUMNS,
    HEADERS,
    ROWS,
    assert_reconciled,
    csv_text,
    make_source,
    run,
)


def _deliver(landing: Path, relative: str, rows: list[list[str]]) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(HEADERS, rows).encode("gbk"))
    return path


def test_rerun_without_new_files_reads_nothing(landing: Path) -> None:
    _deliver(landing, "crm/2024-03-14/export.csv", ROWS)
    source = make_source()
    first = run(source, landing)
    assert [f.status for f in first.files] == ["new"]
    assert len(first.rows) == 3

    second = run(source, landing, manifest_frame(first.files, "run-1"))
    assert [f.status for f in second.files] == ["unchanged"]
    assert second.rows.empty and second.quarantined_rows.empty
    assert sum(f.rows_read for f in second.files) == 0
    assert "unchanged since run run-1" in second.files[0].note


def test_same_file_delivered_again_under_a_new_name_is_skipped(landing: Path) -> None:
    original = _deliver(landing, "crm/2024-03-14/export.csv", ROWS)
    source = make_source()
    manifest = manifest_frame(run(source, landing).files, "run-1")
    (landing / "crm" / "2024-03-15").mkdir()
    shutil.copy(original, landing / "crm" / "2024-03-15" / "export (1).csv")

    result = run(source, landing, manifest)
    by_path = {f.path: f for f in result.files}
    resent = by_path["crm/2024-03-15/export (1).csv"]
    assert resent.status == "duplicate"
    assert "same content as crm/2024-03-14/export.csv (run run-1)" in resent.note
    assert result.rows.empty
    assert any("export (1).csv" in w for w in result.warnings)


def test_two_copies_in_one_batch_read_once(landing: Path) -> None:
    _deliver(landing, "crm/2024-03-14/a.csv", ROWS)
    _deliver(landing, "crm/2024-03-14/b.csv", ROWS)
    result = run(make_source(), landing)
    assert [f.status for f in result.files] == ["new", "duplicate"]
    assert len(result.rows) == 3


def test_corrected_file_supersedes_the_old_version(landing: Path) -> None:
    _deliver(landing, "crm/2024-03-14/export.csv", ROWS)
    source = make_source()
    manifest = manifest_frame(run(source, landing).files, "run-1")
    corrected = [[*ROWS[0][:3], "13800000000", *ROWS[0][4:]], *ROWS[1:]]
    _deliver(landing, "crm/2024-03-14/export.csv", corrected)

    result = run(source, landing, manifest)
    assert [f.status for f in result.files] == ["changed"]
    assert result.superseded_files == ["crm/2024-03-14/export.csv"]
    assert result.rows["phone"].iloc[0] == "13800000000"
    history = pd.concat([manifest, manifest_frame(result.files, "run-2")], ignore_index=True)
    assert history["sha256"].nunique() == 2  # both versions stay in the manifest

    again = run(source, landing, history)
    assert [f.status for f in again.files] == ["unchanged"]


def test_same_record_in_two_new_files_keeps_both_versions(landing: Path) -> None:
    _deliver(landing, "crm/2024-03-14/export.csv", ROWS)
    newer = [[*ROWS[0][:5], "北京市朝阳区新地址"]]
    _deliver(landing, "crm/2024-03-15/export.csv", newer)
    result = run(make_source(), landing)
    k001 = result.rows.loc[result.rows["source_record_id"] == "K001"]
    # both are versions of K001 (sources.versions picks the newest as current)
    assert k001["address"].tolist() == ["北京市海淀区中关村", "北京市朝阳区新地址"]
    assert result.quarantined_rows.empty
    assert any("further versions" in w for w in result.warnings)


def test_manifest_without_required_columns_is_an_error(landing: Path) -> None:
    _deliver(landing, "crm/a.csv", ROWS)
    with pytest.raises(ValueError, match="sha256"):
        plan_deliveries(make_source(), landing, pd.DataFrame({"path": ["crm/a.csv"]}))


def test_hidden_and_lock_files_are_not_deliveries(landing: Path) -> None:
    _deliver(landing, "crm/a.csv", ROWS)
    _deliver(landing, "crm/~$a.xlsx", ROWS)
    _deliver(landing, "crm/.DS_Store", ROWS)
    assert [p.path for p in plan_deliveries(make_source(), landing, None)] == ["crm/a.csv"]


def test_disabled_source_ingests_nothing(landing: Path) -> None:
    _deliver(landing, "crm/a.csv", ROWS)
    result = run(make_source(enabled=False), landing)
    assert result.files == [] and result.rows.empty


def test_sources_without_id_get_a_stable_content_hash(landing: Path) -> None:
    _deliver(landing, "crm/2024-03-14/a.csv", ROWS)
    columns = {"customer_name": "客户名称", "phone": "手机", "address": "地址"}
    first = run(make_source(columns=columns), landing)
    ids = first.rows["source_record_id"]
    assert ids.str.fullmatch(r"[0-9a-f]{40}").all() and ids.is_unique

    shuffled = [ROWS[2], ROWS[0], ROWS[1]]
    _deliver(landing, "crm/2024-03-14/a.csv", shuffled)  # same rows, other order
    second = run(make_source(columns=columns), landing)
    assert sorted(second.rows["source_record_id"]) == sorted(ids)


def _quarantined_whole(landing: Path) -> tuple[pd.DataFrame, set[tuple[str, str, str]]]:
    """Run 1 reads an export whose name column has a header the mapping does not know."""
    drifted = ["公司名称" if h == "客户名称" else h for h in HEADERS]
    path = landing / "crm/2024-03-14/export.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text(drifted, ROWS).encode("gbk"))
    first = run(make_source(), landing)
    assert first.rows.empty and first.quarantined_files["reason"].str.contains("drift").all()
    rejected = {
        (f, sha, "run-1")
        for f, sha in zip(
            first.quarantined_files["source_file"],
            first.quarantined_files["source_sha256"],
            strict=True,
        )
    }
    return manifest_frame(first.files, "run-1"), rejected


def _with_alias() -> SourceConfig:
    return make_source(columns={**COLUMNS, "customer_name": ["客户名称", "公司名称"]})


def test_a_file_quarantined_whole_is_read_again_once_its_mapping_is_fixed(landing: Path) -> None:
    manifest, rejected = _quarantined_whole(landing)
    # the same mapping: reading it again would quarantine it again
    same = ingest_source(make_source(), landing, "run-2", "t", manifest, rejected=rejected)
    assert [f.status for f in same.files] == ["unchanged"] and same.rows.empty
    # the nights it was skipped as unchanged are recorded too: they never read it
    manifest = pd.concat([manifest, manifest_frame(same.files, "run-2")], ignore_index=True)

    fixed = ingest_source(_with_alias(), landing, "run-3", "t", manifest, rejected=rejected)
    assert_reconciled(fixed)
    assert [f.status for f in fixed.files] == ["retried"]
    assert "quarantined whole by run run-1" in fixed.files[0].note
    assert sorted(fixed.rows["customer_name"]) == sorted(r[1] for r in ROWS)
    assert fixed.quarantined_files.empty
    # read under the fixed mapping, recorded so: the night after skips it
    history = pd.concat([manifest, manifest_frame(fixed.files, "run-3")], ignore_index=True)
    after = ingest_source(_with_alias(), landing, "run-4", "t", history, rejected=rejected)
    assert [f.status for f in after.files] == ["unchanged"]


def test_the_same_export_sent_again_after_the_fix_is_read_once(landing: Path) -> None:
    manifest, rejected = _quarantined_whole(landing)
    resent = landing / "crm/2024-03-15/export (1).csv"
    resent.parent.mkdir(parents=True)
    shutil.copy(landing / "crm/2024-03-14/export.csv", resent)
    fixed = ingest_source(_with_alias(), landing, "run-2", "t", manifest, rejected=rejected)
    assert_reconciled(fixed)
    assert [f.status for f in fixed.files] == ["retried", "duplicate"]
    assert len(fixed.rows) == len(ROWS)


def test_a_file_quarantined_before_mappings_were_fingerprinted_is_read_again_once(
    landing: Path,
) -> None:
    manifest, rejected = _quarantined_whole(landing)
    old = manifest.drop(columns=["mapping_sha256"])  # a warehouse of an earlier version
    result = ingest_source(_with_alias(), landing, "run-2", "t", old, rejected=rejected)
    assert [f.status for f in result.files] == ["retried"] and len(result.rows) == len(ROWS)

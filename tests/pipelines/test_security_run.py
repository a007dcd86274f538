"""Security on a real run: masked analyst mart, encryption at rest, erasure, audit trail, roles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.access import open_warehouse, snapshot_reader
from pipelines.cli import main
from pipelines.cli.query import open_for_role
from pipelines.runner import run_pipeline
from pipelines.settings import load_config
from warehouse import read_table
from warehouse.archive import list_snapshots, load_snapshot


@pytest.fixture
def ran(project: Path) -> Path:
    out = run_pipeline(project, run_date="2026-11-24")
    assert out.success, out.errors
    return project


def _all_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    names = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE'"
    ).fetchall()
    return {n: con.execute(f"SELECT * FROM {n}").df() for (n,) in names}


def _text_values(frames: dict[str, pd.DataFrame]) -> set[str]:
    values: set[str] = set()
    for frame in frames.values():
        for col in frame.columns:
            values.update(str(v) for v in frame[col].dropna().unique())
    return values


def _national(e164: str) -> str:
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def test_analyst_mart_holds_no_unmasked_pii(ran: Path) -> None:
    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        golden = read_table(con, "golden.customers")
        records = read_table(con, "clean.records")
    phones = {_national(p) for p in records["phone"].dropna()}
    emails = set(records["email"].dropna())
    people = set(golden.loc[golden["customer_type"] == "individual", "customer_name"].dropna())
    with open_for_role(cfg, "analyst") as mart:
        tables = _all_tables(mart)
    assert tables, "the analyst mart is empty"
    text = "\n".join(_text_values(tables))
    leaked_phones = [p for p in phones if p in text]
    leaked_emails = [e for e in emails if e in text]
    assert not leaked_phones, leaked_phones[:5]
    assert not leaked_emails, leaked_emails[:5]
    values = _text_values(tables)
    assert not (people & values), sorted(people & values)[:5]
    # enterprises stay readable, and masked phones look like 139****5678
    enterprises = set(golden.loc[golden["customer_type"] == "enterprise", "customer_name"].dropna())
    assert enterprises & values
    assert any(re.fullmatch(r"1\d{2}\*{4}\d{4}", v) for v in values)


def test_warehouse_and_snapshots_are_encrypted_at_rest(ran: Path) -> None:
    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        phones = [_national(p) for p in read_table(con, "clean.records")["phone"].dropna()[:50]]
    files = [cfg.resolve(cfg.warehouse)]
    snap = list_snapshots(cfg.resolve(cfg.archive_dir))[-1]
    files += sorted(snap.path.glob("*.parquet"))
    for path in files:
        blob = path.read_bytes()
        hits = [p for p in phones if p.encode() in blob]
        assert not hits, f"{path.name} holds plaintext phones {hits[:3]}"
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(cfg.resolve(cfg.warehouse)), read_only=True).execute(
            "SELECT count(*) FROM golden.customers"
        ).fetchall()
    with pytest.raises(Exception):  # noqa: B017 - pyarrow raises its own error kinds
        pd.read_parquet(files[1])
    tables = load_snapshot(snap.path, reader=snapshot_reader(cfg))
    assert tables["golden.customers"].num_rows > 0


def test_erasure_removes_person_everywhere_and_rerun_does_not_bring_them_back(
    ran: Path,
) -> None:
    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        golden = read_table(con, "golden.customers")
        records = read_table(con, "clean.records").merge(
            read_table(con, "golden.crosswalk")[["record_key", "customer_id"]], on="record_key"
        )
    # a person whose name no other customer shares (a namesake keeps their own data)
    owners = pd.concat(
        [
            records[["customer_name", "customer_id"]],
            records[["contact_name", "customer_id"]].rename(
                columns={"contact_name": "customer_name"}
            ),
        ]
    ).dropna()
    unique_names = owners.groupby("customer_name")["customer_id"].nunique().loc[lambda s: s == 1]
    person = golden[
        (golden["customer_type"] == "individual")
        & golden["phone"].notna()
        & golden["email"].notna()
        & golden["customer_name"].isin(unique_names.index)
        # with a sales record: the sales CSV is re-delivered and read in batches below
        & golden["customer_id"].isin(
            records.loc[records["source_system"] == "sales", "customer_id"]
        )
    ].iloc[0]
    cid, name, phone, email = (
        person["customer_id"],
        person["customer_name"],
        person["phone"],
        person["email"],
    )
    assert (
        main(["erase", "--config", str(ran), "--customer", cid, "--reason", "PIPL request 1"]) == 0
    )

    def assert_gone(where: str, frames: dict[str, pd.DataFrame]) -> None:
        values = _text_values(frames)
        blob = "\n".join(values)
        assert _national(phone) not in blob, where
        assert email not in blob, where
        assert name not in values, where

    with open_warehouse(cfg, read_only=True) as con:
        assert_gone("warehouse", _all_tables(con))
    for snap in list_snapshots(cfg.resolve(cfg.archive_dir)):
        tables = load_snapshot(snap.path, reader=snapshot_reader(cfg))
        assert_gone(snap.snapshot_id, {k: v.to_pandas() for k, v in tables.items()})
    with open_for_role(cfg, "analyst") as mart:
        assert_gone("mart", _all_tables(mart))
    exports = cfg.resolve(cfg.exports_dir)
    assert_gone("exports", {str(p): pd.read_parquet(p) for p in exports.rglob("*.parquet")})

    # the same departmental exports delivered again the next day must not re-create them, also
    # when a file is read in batches (each batch is checked). A byte-identical copy would be
    # skipped unread, so the text exports gain a trailing blank line (the workbook stays
    # identical and skipped).
    landing = cfg.resolve(cfg.landing_dir)
    for src in list(landing.rglob("*.*")):
        copy = src.parent.parent / "2026-11-25" / src.name
        copy.parent.mkdir(exist_ok=True)
        blank = b"\n" if src.suffix in (".csv", ".jsonl") else b""
        copy.write_bytes(src.read_bytes() + blank)
    sources = ran.parent / "sources.yml"
    sources.write_text(
        "ingest_batch_rows: 40\n" + Path(cfg.sources_file).read_text("utf-8"), "utf-8"
    )
    ran.write_text(
        ran.read_text("utf-8").replace(
            f"sources_file: {cfg.sources_file}", f"sources_file: {sources}"
        ),
        "utf-8",
    )
    again = run_pipeline(ran, run_date="2026-11-25")
    assert again.success, again.errors
    with open_warehouse(cfg, read_only=True) as con:
        assert_gone("warehouse after re-run", _all_tables(con))
        tomb = read_table(con, "security.tombstones")
        erased_rows = con.execute(
            "SELECT source_file, count(*), count(raw_content) FROM quarantine.rows "
            "WHERE reason = 'erased' GROUP BY ALL"
        ).fetchall()
        largest = con.execute(
            "SELECT max(rows_read) FROM ops.deliveries WHERE path LIKE '%2026-11-25%'"
        ).fetchall()[0][0]
    assert cid in set(tomb["customer_id"])
    assert any("sales" in file for file, _, _ in erased_rows), erased_rows
    assert all(content == 0 for _, _, content in erased_rows)  # and keep no content
    assert largest > 3 * 40  # files read in several batches


def test_audit_log_records_actions_and_detects_tampering(ran: Path, capsys) -> None:
    cfg = load_config(ran)
    assert main(["sql", "--config", str(ran), "SELECT count(*) FROM golden.customers"]) == 0
    assert main(["audit-log", "--config", str(ran), "verify"]) == 0
    log_path = cfg.resolve(cfg.security.audit_log)
    entries = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    assert {"run", "query"} <= {e["action"] for e in entries}
    lines = log_path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["result"] = "tampered"
    lines[0] = json.dumps(first, ensure_ascii=False)
    log_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["audit-log", "--config", str(ran), "verify"]) == 1


def test_roles_see_only_their_tables(ran: Path) -> None:
    cfg = load_config(ran)
    with open_for_role(cfg, "ops") as con:
        names = {
            n
            for (n,) in con.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            ).fetchall()
        }
    assert names and all(n.startswith("ops.") for n in names)
    assert "ops.quarantine_counts" in names or not names & {"quarantine.rows"}
    with open_for_role(cfg, "analyst") as con, pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM golden.customers").fetchall()


def test_key_rotation_reencrypts_everything_and_old_key_stops_working(ran: Path) -> None:
    from pipelines.access import keyring
    from warehouse.archive import verify_snapshot
    from warehouse.security import KeyRing, open_encrypted_warehouse, read_parquet_any

    cfg = load_config(ran)
    old = keyring(cfg)
    assert main(["keys", "--config", str(ran), "rotate"]) == 0
    new = keyring(cfg)
    assert new.current_id != old.current_id and old.current_id in new.ids()
    with pytest.raises(Exception):  # noqa: B017 - DuckDB's error for a wrong key
        open_encrypted_warehouse(cfg.resolve(cfg.warehouse), KeyRing(old.current), read_only=True)
    with open_warehouse(cfg, read_only=True) as con:
        assert read_table(con, "golden.customers") is not None
    for snap in list_snapshots(cfg.resolve(cfg.archive_dir)):
        report = verify_snapshot(snap.path, reader=snapshot_reader(cfg))
        assert report.ok, report.summary()
        table_file = next(snap.path.glob("*.parquet"))
        with pytest.raises(Exception):  # noqa: B017 - the old key alone no longer decrypts
            read_parquet_any(table_file, KeyRing(old.current))
    # the next nightly run works under the new key
    assert run_pipeline(ran, run_date="2026-11-25").success


def test_retention_anonymizes_dormant_customers_and_keeps_counts(ran: Path, capsys) -> None:
    cfg = load_config(ran)
    with open_warehouse(cfg, read_only=True) as con:
        before = read_table(con, "golden.customers")
    base = ["retention", "--config", str(ran), "--years", "5", "--today", "2026-11-24"]
    assert main(base) == 0  # dry run: plan only
    assert "would apply to" in capsys.readouterr().out
    with open_warehouse(cfg, read_only=True) as con:
        assert read_table(con, "golden.customers").equals(before)
    assert main([*base, "--apply", "--limit", "2"]) == 0
    with open_warehouse(cfg, read_only=True) as con:
        after = read_table(con, "golden.customers")
        tomb = read_table(con, "security.tombstones")
    assert len(after) == len(before)  # anonymized, still counted
    erased = set(tomb["customer_id"])
    assert len(erased) == 2
    rows = after[after["customer_id"].isin(erased)]
    assert rows["phone"].isna().all() and rows["email"].isna().all()
    assert rows["province"].notna().any() or rows["tier"].notna().all()

"""Privacy with no gaps, on a real run of a small demo.

One module-scoped project: a run (with a re-sent, quarantined copy of two people's leads), the
HTML report, a steward decision, the audit worksheet, a lookup by phone and an alert; then
one individual is erased and one enterprise contact anonymized through the CLI. The residue
scanner decrypts and reads every file under the data folders and every warehouse table.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.access import keyring, open_warehouse
from pipelines.cli import main
from pipelines.cli.query import open_for_role
from pipelines.reporting import raise_alert
from pipelines.runner import run_pipeline
from pipelines.settings import ArchiveConfig, load_config
from sources.demo import write_demo
from warehouse import read_table
from warehouse.security import (
    KeyRing,
    analyst_mart_key,
    is_encrypted_parquet,
    read_parquet_any,
    sandboxed_query,
)
from warehouse.security.keys import parse_key

from .conftest import write_project

CANDIDATES = 6  # leads of each kind re-sent with an empty id (quarantined with content)


@dataclass
class Person:
    """What the scanner looks for: one person's values as the project stored them."""

    customer_id: str
    kind: str
    names: set[str]
    phones: set[str]  # national digits
    emails: set[str]
    source_ids: set[str]
    scan_customer_id: bool = True


@dataclass
class Erased:
    cfg: ArchiveConfig
    config_path: Path
    people: list[Person]
    erase_output: str
    landing: Path
    before: list[str] = field(default_factory=list)


def _national(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def _leads(landing: Path) -> tuple[Path, list[dict]]:
    path = next(landing.glob("marketing/*/leads.jsonl"))
    return path, [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _plant_quarantined_copies(landing: Path) -> list[dict]:
    """Re-send candidate leads with an empty id: quarantined before any suppression check."""
    path, leads = _leads(landing)
    full = [r for r in leads if r.get("contact") and r.get("mobile") and r.get("email")]
    people = [r for r in full if r.get("customer_type") == "individual"][:CANDIDATES]
    contacts = [r for r in full if r.get("company")][:CANDIDATES]
    resent = [{**r, "lead_id": ""} for r in people + contacts]
    (path.parent / "leads_resend.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in resent), encoding="utf-8"
    )
    return people + contacts


def _pick(cfg: ArchiveConfig, candidates: list[dict]) -> list[Person]:
    """One individual and one enterprise whose values belong to their customer only."""
    with open_warehouse(cfg, read_only=True) as con:
        records = read_table(con, "clean.records")
        crosswalk = read_table(con, "golden.crosswalk")[["record_key", "customer_id"]]
        golden = read_table(con, "golden.customers")
    records = records.merge(crosswalk, on="record_key")
    text = records.drop(columns=["customer_id"]).astype("string").fillna("")
    row_text = text.apply(lambda r: "\x1f".join(r), axis=1)
    kinds = dict(zip(golden["customer_id"], golden["customer_type"], strict=True))
    chosen: dict[str, Person] = {}
    for lead in candidates:
        key = f"marketing:{lead['lead_id']}"
        owner = records.loc[records["record_key"] == key, "customer_id"]
        if owner.empty:
            continue
        cid = str(owner.iloc[0])
        kind = kinds.get(cid)
        if kind in chosen or kind not in {"individual", "enterprise"}:
            continue
        mine = records[records["customer_id"] == cid]
        name = lead["contact"].strip()
        phones = {_national(p) for p in mine["phone"].dropna()} | {_national(lead["mobile"])}
        emails = {e.strip().lower() for e in mine["email"].dropna()} | {lead["email"].strip()}
        needles = [name, *phones, *emails]
        holders = records.loc[
            row_text.map(lambda t, n=needles: any(x in t for x in n)), "customer_id"
        ]
        if set(holders) != {cid}:
            continue  # a namesake or a shared phone/mailbox: another customer keeps them
        names = {name}
        if kind == "individual":
            names |= {n.strip() for n in mine["customer_name"].dropna()}
        names |= {n.strip() for n in mine["contact_name"].dropna()}
        chosen[kind] = Person(
            customer_id=cid,
            kind=kind,
            names={n for n in names if len(n) >= 2},
            phones={p for p in phones if len(p) >= 7},
            emails=emails,
            source_ids={str(s) for s in mine["source_record_id"].dropna()},
            scan_customer_id=kind == "individual",  # the enterprise's row is kept, anonymized
        )
        if len(chosen) == 2:
            break
    assert set(chosen) == {"individual", "enterprise"}, "no suitable people in the demo"
    return [chosen["individual"], chosen["enterprise"]]


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Erased:
    root = tmp_path_factory.mktemp("privacy")
    write_demo(root / "demo", entities=60, seed=7)
    landing = root / "landing"
    shutil.copytree(root / "demo" / "landing", landing)
    candidates = _plant_quarantined_copies(landing)
    config_path = write_project(root, landing)
    outcome = run_pipeline(config_path, run_date="2026-11-24")
    assert outcome.success, outcome.errors
    cfg = load_config(config_path)
    people = _pick(cfg, candidates)
    root = config_path.parent
    person, contact = people
    common = ["--config", str(config_path)]
    # everything that writes personal data somewhere, done before the erasure
    assert main(["report", *common]) == 0
    key, other = _record_key(cfg, person.customer_id), _record_key(cfg, contact.customer_id)
    note = f"{next(iter(person.names))} is not this one"
    review = ["review", "decide", key, other, "--decision", "no-match", "--note", note]
    assert main([*review, *common]) == 0
    assert main(["audit", "--fraction", "1", "--seed", "2026Q4", *common]) == 0
    phone, email = next(iter(person.phones)), next(iter(person.emails))
    lookup = (
        f"SELECT customer_id FROM golden.customers WHERE phone LIKE '%{phone}' OR email = '{email}'"
    )
    assert main(["sql", lookup, *common]) == 0
    raise_alert(cfg, outcome.run_id, "test", f"row rejected: {next(iter(person.names))} {phone}")
    before, _ = residue_scan(cfg, root, landing, people)
    erase_out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(erase_out):
        assert main(["erase", "--customer", person.customer_id, "--reason", "PIPL-1", *common]) == 0
        assert main(["erase", "--customer", contact.customer_id, "--reason", "PIPL-2",
                     "--mode", "anonymize", *common]) == 0  # fmt: skip
    return Erased(cfg, config_path, people, erase_out.getvalue(), landing, before)


def _record_key(cfg: ArchiveConfig, customer_id: str) -> str:
    with open_warehouse(cfg, read_only=True) as con:
        rows = con.execute(
            "SELECT min(record_key) FROM golden.crosswalk WHERE customer_id = ?", [customer_id]
        ).fetchall()
    return str(rows[0][0])


# ---------------------------------------------------------------- the residue scanner


def _phone_regex(digits: str) -> str:
    return r"[\s\-.()/]*".join(digits)


class Scanner:
    """Finds one person's values in text, in any of the forms the project writes."""

    def __init__(self, person: Person) -> None:
        self.person = person
        parts = [_phone_regex(p) for p in person.phones]
        parts += [re.escape(e) for e in person.emails]
        parts += [re.escape(n) for n in person.names]
        ids = set(person.source_ids) | ({person.customer_id} if person.scan_customer_id else set())
        parts += [rf"(?<![0-9A-Za-z]){re.escape(i)}(?![0-9A-Za-z])" for i in ids if len(i) >= 4]
        self.pattern = re.compile("|".join(parts), re.IGNORECASE)
        self.encoded = {
            (v.encode(enc), v == person.customer_id)
            for v in [*person.phones, *person.emails, *person.names, *ids]
            for enc in ("utf-8", "gbk", "utf-16-le")
            if len(v) >= 4 or not v.isascii()
        }

    def text(self, where: str, text: str, hits: list[str]) -> None:
        found = self.pattern.search(text)
        if found:
            start = max(found.start() - 30, 0)
            hits.append(f"{where}: …{text[start : found.end() + 30]!r}…")

    def raw(self, where: str, data: bytes, hits: list[str], id_exempt: bool = False) -> None:
        """Undecoded bytes; ``id_exempt``: the customer id may stay (audit log, erasure note,
        checked by the decoded text scan with those fields removed)."""
        for needle, is_id in self.encoded:
            if is_id and id_exempt:
                continue
            if needle in data:
                hits.append(f"{where}: raw bytes hold {needle!r}")
                return


def _cells(table: pa.Table) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in table.to_pylist())


EXEMPT_TABLES = {"security.tombstones", "security.suppression", "security.audit_head"}


def _warehouse_text(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    names = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database()"
    ).fetchall()
    out = {}
    for schema, table in names:
        if f"{schema}.{table}" in EXEMPT_TABLES:
            continue
        out[f"{schema}.{table}"] = _cells(
            con.sql(f'SELECT * FROM "{schema}"."{table}"').to_arrow_table()
        )
    return out


def _file_text(path: Path, cfg: ArchiveConfig, ring: KeyRing) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        mart_dir = cfg.resolve(cfg.security.analyst_mart_parquet).resolve()
        key = analyst_mart_key(ring) if mart_dir in path.resolve().parents else ring
        return _cells(read_parquet_any(path, key))
    if suffix == ".xlsx":
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="calamine")
        with zipfile.ZipFile(path) as z:  # the sheet XML too (shared strings, inline strings)
            xml = "\n".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
        return "\n".join(f.to_csv(index=False) for f in sheets.values()) + xml
    data = path.read_bytes()
    for encoding in ("utf-16", "utf-8-sig", "gb18030"):
        if encoding == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return ""
    if path.name == "manifest.json":  # the erasure note names the customer id, by design
        manifest = json.loads(text)
        manifest.pop("erasures", None)
        return json.dumps(manifest, ensure_ascii=False)
    if suffix in {".json", ".jsonl"}:
        decoded = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                decoded.append(line)
                continue
            if isinstance(entry, dict) and "prev_hash" in entry:  # audit log: ids of who was
                entry["customers"] = []  # erased stay, like the tombstone; no values
            decoded.append(json.dumps(entry, ensure_ascii=False))  # \\uXXXX decoded
        return "\n".join(decoded) if suffix == ".jsonl" else text + "\n".join(decoded)
    return text


def residue_scan(
    cfg: ArchiveConfig, root: Path, landing: Path, people: list[Person]
) -> tuple[list[str], dict[str, int]]:
    """Every warehouse and mart table, every file under the project's data folders
    (decrypted, decoded, and as raw bytes): where do the people's values still appear?"""
    ring = keyring(cfg)
    assert ring is not None
    skip_dirs = {root / "demo", landing}  # generator output; departments' originals
    scanners = [Scanner(p) for p in people]
    hits: list[str] = []
    scanned = {"files": 0, "tables": 0}
    with open_warehouse(cfg, read_only=True) as con:
        for name, text in _warehouse_text(con).items():
            scanned["tables"] += 1
            for s in scanners:
                s.text(f"warehouse {name}", text, hits)
    mart_text = duckdb.connect()
    key = analyst_mart_key(ring).current.hex()
    mart = cfg.resolve(cfg.security.analyst_mart)
    mart_text.execute(f"ATTACH '{mart}' AS m (ENCRYPTION_KEY '{key}', READ_ONLY)")
    mart_text.execute("USE m")
    for name, text in _warehouse_text(mart_text).items():
        for s in scanners:
            s.text(f"mart {name}", text, hits)
    mart_text.close()
    encrypted_databases = (
        {cfg.resolve(cfg.warehouse), mart} if cfg.security.encrypt_warehouse else set()
    )
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(d in path.parents for d in skip_dirs):
            continue
        if path.suffix in {".key", ".lock"} or path.name.endswith(".lock"):
            continue
        scanned["files"] += 1
        data = path.read_bytes()
        text = "" if path.suffix == ".duckdb" else _file_text(path, cfg, ring)
        # ciphertext is scanned decrypted (the tables above, _file_text): its raw bytes are
        # random, and a 4-byte needle (a two-character name in GBK) turns up in a few MB of
        # random bytes by chance (~5 % of runs failed so)
        ciphertext = (path in encrypted_databases) or (
            path.suffix == ".parquet" and is_encrypted_parquet(path)
        )
        for s in scanners:
            exempt = path.name == "manifest.json" or path == cfg.resolve(cfg.security.audit_log)
            if not ciphertext:
                s.raw(str(path.relative_to(root)), data, hits, id_exempt=exempt)
            s.text(str(path.relative_to(root)), text, hits)
    return hits, scanned


def test_residue_scanner_finds_nothing_after_erasure(erased: Erased) -> None:
    root = erased.config_path.parent
    hits, scanned = residue_scan(erased.cfg, root, erased.landing, erased.people)
    # the scan really read decrypted content: other people are still there
    assert scanned["tables"] > 20 and scanned["files"] > 20, scanned
    assert not hits, "\n".join(hits[:20])


def test_the_scanner_found_them_everywhere_before_the_erasure(erased: Erased) -> None:
    """Its silence afterwards means something: before, it found them in every kind of place."""
    where = {h.split(":", 1)[0] for h in erased.before}
    expected = [
        "warehouse quarantine.rows",  # the re-sent leads, quarantined with content
        "warehouse golden.customers",
        "warehouse match.decisions",  # the steward's note names the person
        "state/reports/audits/audit_2026Q4.xlsx",
        "state/reports/alerts.jsonl",
        "state/exports/golden/customers.parquet",
    ]
    for place in expected:
        assert any(w.startswith(place) for w in where), (place, sorted(where)[:40])
    assert any(w.startswith("state/archive/") for w in where)  # decrypted snapshot files
    # the audit log never held them, so it never needs rewriting
    assert not any(w.startswith("data/audit/") for w in where), sorted(where)
    # the landing files (the departments' originals, not erased) still hold them
    for scanner in (Scanner(p) for p in erased.people):
        hits: list[str] = []
        for path in erased.landing.rglob("*.jsonl"):
            scanner.text(str(path), path.read_text("utf-8"), hits)
        assert hits, scanner.person.kind


def test_erasure_lists_landing_files_that_still_hold_the_person(erased: Erased) -> None:
    out = erased.erase_output
    assert "landing file(s)" in out
    assert "leads.jsonl" in out and "leads_resend.jsonl" in out
    summaries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert all(s["landing_files_holding_person"] >= 2 for s in summaries)
    assert all(s["report_files_rewritten"] >= 1 for s in summaries)  # worksheet at least


# ---------------------------------------------------------------- roles and the mart key


ROLE_ATTACKS = [  # the full list runs in tests/warehouse/security/test_sandbox.py
    "SELECT * FROM read_json_auto('{landing}/marketing/2026-11-23/leads.jsonl')",
    "SELECT * FROM read_parquet('{exports}/golden/customers.parquet')",
    "COPY (SELECT 1) TO '{root}/leak.csv'",
    "ATTACH '{root}/attached_{role}.duckdb' AS other",
    "PRAGMA database_list",
]


@pytest.mark.parametrize("role", ["analyst", "steward", "ops", "admin"])
def test_cli_attack_list(erased: Erased, role: str, capsys) -> None:
    cfg = erased.cfg
    paths = {
        "landing": erased.landing,
        "exports": cfg.resolve(cfg.exports_dir),
        "root": erased.config_path.parent,
        "warehouse": cfg.resolve(cfg.warehouse),
    }
    for template in ROLE_ATTACKS:
        sql = template.format(role=role, **paths)
        code = main(["sql", "--config", str(erased.config_path), "--role", role, sql])
        assert code == (0 if role == "admin" else 6), (role, sql)
    if role != "admin":
        assert not (paths["root"] / f"attached_{role}.duckdb").exists()
    log = cfg.resolve(cfg.security.audit_log).read_text("utf-8")
    assert "crm_customers.csv" not in log  # query literals are redacted in the log


def test_plain_duckdb_opens_the_mart_with_the_analyst_key_only(erased: Erased, capsys) -> None:
    cfg = erased.cfg
    capsys.readouterr()
    assert main(["keys", "--config", str(erased.config_path), "mart-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    mart, wh = cfg.resolve(cfg.security.analyst_mart), cfg.resolve(cfg.warehouse)
    con = duckdb.connect()  # the plain client, nothing from the project
    con.execute(f"ATTACH '{mart}' AS mart_db (ENCRYPTION_KEY '{key}', READ_ONLY)")
    rows = con.execute(
        "SELECT count(*), count(DISTINCT customer_id) FROM mart_db.mart.customers"
    ).fetchall()
    assert rows[0][0] > 0
    with pytest.raises(duckdb.Error):
        con.execute(f"ATTACH '{wh}' AS wh (ENCRYPTION_KEY '{key}', READ_ONLY)")
    con.close()
    # the same key decrypts the mart's Parquet files (pyarrow), not the snapshots
    mart_ring = KeyRing(parse_key(key))
    part = next(cfg.resolve(cfg.security.analyst_mart_parquet).glob("*.parquet"))
    assert read_parquet_any(part, mart_ring).num_rows > 0
    snap = next(cfg.resolve(cfg.archive_dir).rglob("golden.customers.parquet"))
    with pytest.raises(Exception):  # noqa: B017 - pyarrow raises its own error kinds
        read_parquet_any(snap, mart_ring)
    with pytest.raises(Exception):  # noqa: B017 - plain pyarrow cannot: the file is encrypted
        pq.read_table(part)


def test_steward_point_in_time_and_ops_quarantine_counts(erased: Erased) -> None:
    cfg = erased.cfg
    with open_warehouse(cfg, read_only=True) as con:
        cid = str(con.execute("SELECT customer_id FROM golden.customers LIMIT 1").fetchall()[0][0])
    with open_for_role(cfg, "steward") as con:
        rows = sandboxed_query(
            con, f"SELECT customer_id FROM analytics.customer_as_of('{cid}', DATE '2026-11-30')"
        ).fetchall()
    assert rows == [(cid,)]
    with open_for_role(cfg, "ops") as con:
        counts = sandboxed_query(con, "SELECT * FROM ops.quarantine_counts").df()
        with pytest.raises(duckdb.Error):
            sandboxed_query(con, "SELECT raw_content FROM ops.quarantine_counts").fetchall()
    assert set(counts.columns) == {"source_system", "source_file", "reason", "rows"}
    assert counts["rows"].sum() >= 2 * 2  # the re-sent leads at least


# ---------------------------------------------------------------- audit log anchoring


def _rechain(lines: list[str]) -> list[str]:
    from warehouse.security.audit import GENESIS, entry_hash

    prev, out = GENESIS, []
    for seq, line in enumerate(lines, start=1):
        entry = {**json.loads(line), "seq": seq, "prev_hash": prev}
        entry["hash"] = entry_hash(entry)
        out.append(json.dumps(entry, ensure_ascii=False) + "\n")
        prev = entry["hash"]
    return out


TAMPER = {
    "truncate": lambda ls: ls[:-1],
    "edit": lambda ls: _rechain([ls[0].replace('"ok"', '"denied"', 1), *ls[1:]]),
    "reorder": lambda ls: _rechain([ls[1], ls[0], *ls[2:]]),
    "delete": lambda ls: _rechain([*ls[:2], *ls[3:]]),
}


def test_audit_log_tampering_is_detected_against_anchors(erased: Erased, capsys) -> None:
    cfg = erased.cfg
    common = ["--config", str(erased.config_path)]
    path = cfg.resolve(cfg.security.audit_log)
    assert main(["audit-log", "verify", *common]) == 0
    assert "anchors" in capsys.readouterr().out
    original = path.read_bytes()
    lines = path.read_text("utf-8").splitlines(keepends=True)
    try:
        for name, change in TAMPER.items():
            path.write_text("".join(change(lines)), encoding="utf-8")
            assert main(["audit-log", "verify", *common]) == 1, name
    finally:
        path.write_bytes(original)
    assert main(["audit-log", "verify", *common]) == 0


# ---------------------------------------------------------------- landing retention (last:
# it deletes the landing files the tests above read)


def test_landing_retention_deletes_processed_files_after_n_days(erased: Erased) -> None:
    from datetime import date

    from pipelines.landing import apply_landing_retention
    from pipelines.settings import ConfigError

    bad = erased.config_path.with_name("bad.yml")
    bad.write_text(
        erased.config_path.read_text("utf-8") + "security:\n  landing_retention_days: 0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="landing_retention_days"):
        load_config(bad)
    security = erased.cfg.security.model_copy(update={"landing_retention_days": 30})
    cfg = erased.cfg.model_copy(update={"security": security})
    unprocessed = erased.landing / "sales" / "2026-11-23" / "not_yet_ingested.csv"
    unprocessed.write_text("客户编号\n", encoding="utf-8")
    assert apply_landing_retention(cfg, date(2026, 12, 20)) == []  # 27 days: kept
    deleted = apply_landing_retention(cfg, date(2026, 12, 31))  # 38 days after delivery
    assert {p.name for p in deleted} == {
        "leads.jsonl", "leads_resend.jsonl", "crm_customers.csv", "tickets.xlsx"
    }  # fmt: skip
    assert unprocessed.exists()  # never ingested: not the archive's to delete
    assert not (erased.landing / "marketing").exists()  # emptied folders go too
    log = cfg.resolve(cfg.security.audit_log).read_text("utf-8").splitlines()
    assert json.loads(log[-1])["action"] == "landing_retention"

"""Erasure over files of every kind, quarantined content of erased people, landing retention."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from sources.deliveries import file_sha256
from warehouse.security._erase_sql import PersonMatch
from warehouse.security.files import erase_in_file, erase_in_tree, files_holding
from warehouse.security.retention import expired_landing_files
from warehouse.security.suppression import scrub_quarantined, suppression_entries

NAME, PHONE, EMAIL, SRC_ID = "汪慧", "18162190831", "hui.wang@example.cn", "L1000003"
OTHER = {"customer_id": "C2", "record_key": "marketing:L1000009", "name": "刘杰",
         "phone": "15820042518", "email": "liuj@zhixin.cn"}  # fmt: skip


def _match() -> PersonMatch:
    return PersonMatch(
        customer_ids={"C1"},
        record_keys={f"marketing:{SRC_ID}"},
        source_ids={("marketing", SRC_ID)},
        phones={f"+86{PHONE}"},
        emails={EMAIL},
        names={NAME},
    )


def _rows() -> pd.DataFrame:
    person = {"customer_id": "C1", "record_key": f"marketing:{SRC_ID}", "name": NAME,
              "phone": "+86 181-6219-0831", "email": EMAIL}  # fmt: skip
    mention = {"customer_id": "C3", "record_key": "sales:KH1", "name": "note",
               "phone": f"call {PHONE} back", "email": ""}  # fmt: skip
    return pd.DataFrame([person, OTHER, mention])


def _holds_person(text: str) -> bool:
    return any(v in text for v in (NAME, PHONE, "181-6219-0831", EMAIL, SRC_ID))


FORMATS = ["csv", "tsv", "xlsx", "jsonl", "json", "html", "utf16.txt", "gbk.csv"]


def _write(path: Path, kind: str) -> None:
    rows = _rows()
    if kind == "csv":
        rows.to_csv(path, index=False, encoding="utf-8-sig")
    elif kind == "gbk.csv":
        rows.to_csv(path, index=False, encoding="gbk")
    elif kind == "tsv":
        rows.to_csv(path, index=False, sep="\t")
    elif kind == "xlsx":
        with pd.ExcelWriter(path, engine="xlsxwriter") as xl:
            rows.to_excel(xl, sheet_name="audit", index=False)
            pd.DataFrame({"stratum": ["individual"], "note": [f"e.g. {NAME}"]}).to_excel(
                xl, sheet_name="strata", index=False
            )
    elif kind == "jsonl":
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows.to_dict("records")),
            encoding="utf-8",
        )
    elif kind == "json":  # an alert-like document, names \\u-escaped
        path.write_text(json.dumps({"message": f"bad phone {PHONE} for {NAME}"}), "utf-8")
    elif kind == "html":
        path.write_text(f"<td>{NAME}</td><td>{EMAIL}</td><td>{SRC_ID}</td>", encoding="utf-8")
    elif kind == "utf16.txt":
        path.write_bytes(f"{NAME} {PHONE}\n".encode("utf-16"))


def _read_back(path: Path, kind: str) -> str:
    if kind == "xlsx":
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="calamine")
        return "\n".join(f.to_csv(index=False) for f in sheets.values())
    data = path.read_bytes()
    if kind == "utf16.txt":
        return data.decode("utf-16")
    if kind == "gbk.csv":
        return data.decode("gbk")
    return data.decode("utf-8-sig")


@pytest.mark.parametrize("kind", FORMATS)
def test_erase_in_file_every_format(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"file.{kind}"
    _write(path, kind)
    assert _holds_person(_read_back(path, kind)) or kind == "json"
    assert erase_in_file(path, _match()) is not None
    text = _read_back(path, kind)
    assert not _holds_person(text), text
    assert "\\u6c6a" not in text.lower()  # the escaped form of 汪 is gone too
    if kind in {"csv", "tsv", "xlsx", "jsonl", "gbk.csv"}:  # other people's rows stay
        assert OTHER["name"] in text and OTHER["phone"] in text
    assert erase_in_file(path, _match()) is None  # nothing left to erase


def test_erase_in_tree_skips_listed_files_and_reports_changes(tmp_path: Path) -> None:
    (tmp_path / "delta").mkdir()
    _write(tmp_path / "delta" / "changes.jsonl", "jsonl")
    _rows().to_parquet(tmp_path / "delta" / "part.parquet")
    _write(tmp_path / "kept.csv", "csv")
    done = erase_in_tree(tmp_path, _match(), skip=[tmp_path / "kept.csv"])
    assert set(done) == {str(tmp_path / "delta" / "changes.jsonl"),
                         str(tmp_path / "delta" / "part.parquet")}  # fmt: skip
    assert done[str(tmp_path / "delta" / "part.parquet")] == 1
    assert _holds_person(_read_back(tmp_path / "kept.csv", "csv"))


def test_files_holding_reads_landing_encodings(tmp_path: Path) -> None:
    _write(tmp_path / "crm.csv", "gbk.csv")
    _write(tmp_path / "tickets.xlsx", "xlsx")
    pd.DataFrame([OTHER]).to_csv(tmp_path / "other.csv", index=False)
    found = files_holding(tmp_path, _match())
    assert found == [tmp_path / "crm.csv", tmp_path / "tickets.xlsx"]


def test_quarantined_rows_of_erased_people_lose_their_content() -> None:
    secret = b"s" * 32
    entries = suppression_entries(
        "C1", [f"marketing:{SRC_ID}"], [NAME], [PHONE], [EMAIL], secret, "2026-01-01"
    )
    raw = [
        {"lead_id": "", "contact": f"{NAME} ", "mobile": PHONE},  # empty key, name+phone
        {"lead_id": SRC_ID, "contact": "", "mobile": "bad"},  # the erased record id
        {"lead_id": "", "contact": OTHER["name"], "mobile": OTHER["phone"]},  # someone else
        {"lead_id": "", "contact": NAME, "mobile": OTHER["phone"]},  # a namesake
    ]
    quarantined = pd.DataFrame(
        {
            "source_system": "marketing",
            "source_file": "marketing/2026-11-23/leads.jsonl",
            "source_row": range(4),
            "raw_content": [json.dumps(r, ensure_ascii=False) for r in raw],
            "reason": "empty key: source_record_id",
        }
    )
    out, scrubbed = scrub_quarantined(quarantined, entries, [secret])
    assert scrubbed == 2
    assert out["raw_content"].isna().tolist() == [True, True, False, False]
    assert len(out) == 4 and (out["reason"] == quarantined["reason"]).all()  # counts reconcile


def test_expired_landing_files(tmp_path: Path) -> None:
    old = tmp_path / "sales" / "2026-01-02" / "crm.csv"
    new = tmp_path / "sales" / "2026-11-20" / "crm.csv"
    changed = tmp_path / "service" / "2026-01-02" / "tickets.csv"
    unknown = tmp_path / "marketing" / "2026-01-02" / "leads.jsonl"
    for path in (old, new, changed, unknown):
        path.parent.mkdir(parents=True)
        path.write_text("x\n", encoding="utf-8")
    processed = {
        str(p.relative_to(tmp_path)): (file_sha256(p), date.fromisoformat(p.parent.name))
        for p in (old, new, changed)
    }
    changed.write_text("y\n", encoding="utf-8")  # re-delivered since ingest: keep for the run
    expired = expired_landing_files(tmp_path, processed, date(2026, 11, 24), 90, file_sha256)
    assert expired == [old]


def test_check_samples_lose_the_persons_values_and_keys() -> None:
    """Unlinked tables: a row naming their phone/email is deleted (tested elsewhere); names
    and record keys as JSON values in the rest are redacted, the other people's stay."""
    import duckdb

    from warehouse.security._erase_sql import erase_in_table

    con = duckdb.connect()
    observed = json.dumps(
        {"unexpected_count": 2, "unexpected_examples": [NAME, OTHER["name"]],
         "unexpected_keys": [f"marketing:{SRC_ID}", OTHER["record_key"]]},
        ensure_ascii=False,
    )  # fmt: skip
    con.execute("CREATE TABLE checks AS SELECT 'r1' AS run_id, ? AS observed", [observed])
    deleted, redacted = erase_in_table(
        con, "checks", {"run_id": "VARCHAR", "observed": "VARCHAR"}, _match()
    )
    after = json.loads(con.execute("SELECT observed FROM checks").fetchall()[0][0])
    assert (deleted, redacted) == (0, 1)  # the row stays, its one cell is rewritten
    assert after["unexpected_examples"] == ["[erased]", OTHER["name"]]
    assert after["unexpected_keys"] == ["[erased]", OTHER["record_key"]]

"""Hash-chained audit log: appends, verification, and tamper detection."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from warehouse.security import AuditLog


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit" / "audit.jsonl")
    audit.append("etl", "run", "run-1", [], "ok", {"records": 10})
    audit.append("alice", "sql", "SELECT count(*) FROM mart.customers", [], "ok")
    audit.append("bob", "review_decision", "crm:1|erp:9", ["C20240315001"], "ok", {"d": "match"})
    audit.append("carol", "erase", "customer", ["C20240315002"], "ok", {"reason": "request 7"})
    return audit


def _lines(audit: AuditLog) -> list[str]:
    return audit.path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_chain_verifies_and_links(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.entries == 4
    entries = [json.loads(line) for line in _lines(log)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert log.head() == (4, entries[-1]["hash"])


def _edit(lines: list[str]) -> list[str]:
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    return [lines[0], json.dumps(entry, ensure_ascii=False) + "\n", *lines[2:]]


def _edit_and_rehash_one(lines: list[str]) -> list[str]:
    from warehouse.security.audit import entry_hash

    entry = json.loads(lines[1])
    entry["result"] = "denied"
    entry["hash"] = entry_hash(entry)  # a forger recomputes this entry's hash, not the chain
    return [lines[0], json.dumps(entry, ensure_ascii=False) + "\n", *lines[2:]]


TAMPERING = [
    {"name": "edit", "change": _edit, "bad_line": 2},
    {"name": "edit_and_rehash", "change": _edit_and_rehash_one, "bad_line": 3},
    {"name": "delete", "change": lambda ls: [ls[0], *ls[2:]], "bad_line": 2},
    {"name": "reorder", "change": lambda ls: [ls[0], ls[2], ls[1], ls[3]], "bad_line": 2},
    {"name": "garbage", "change": lambda ls: [ls[0], "{not json\n", *ls[2:]], "bad_line": 2},
]


@pytest.mark.parametrize("case", TAMPERING, ids=lambda c: c["name"])
def test_tampering_is_detected(log: AuditLog, case: dict) -> None:
    log.path.write_text("".join(case["change"](_lines(log))), encoding="utf-8")
    result = log.verify()
    assert not result.ok
    assert result.first_bad_line == case["bad_line"]
    assert result.reason


def test_truncation_detected_against_recorded_head(log: AuditLog) -> None:
    head = log.head()
    log.path.write_text("".join(_lines(log)[:-1]), encoding="utf-8")
    assert log.verify().ok  # a shorter chain is still a chain …
    assert not log.verify(expected_head=head).ok  # … but the recorded head is gone


def test_append_continues_chain_and_frame(log: AuditLog) -> None:
    entry = log.append("dave", "export", "exports/customers.csv", [], "ok")
    assert entry["seq"] == 5 and log.verify().ok
    frame = log.to_frame()
    assert len(frame) == 5 and frame.loc[2, "customers"] == "C20240315001"


def test_empty_log_is_valid(tmp_path: Path) -> None:
    assert AuditLog(tmp_path / "none.jsonl").verify().ok


def _rewrite_chain(entries: list[dict]) -> list[str]:
    """What a forger does after tampering: recompute every seq, prev_hash and hash."""
    from warehouse.security.audit import GENESIS, entry_hash

    prev, out = GENESIS, []
    for seq, entry in enumerate(entries, start=1):
        entry = {**entry, "seq": seq, "prev_hash": prev}
        entry["hash"] = entry_hash(entry)
        out.append(json.dumps(entry, ensure_ascii=False) + "\n")
        prev = entry["hash"]
    return out


def _forged(lines: list[str], kind: str) -> list[str]:
    entries = [json.loads(line) for line in lines]
    if kind == "truncate":
        return lines[:-1]
    if kind == "edit":
        entries[1]["actor"] = "mallory"
    elif kind == "reorder":
        entries[1], entries[2] = entries[2], entries[1]
    elif kind == "delete":
        del entries[2]
    return _rewrite_chain(entries)


@pytest.mark.parametrize("kind", ["truncate", "edit", "reorder", "delete"])
def test_forged_chain_is_detected_against_anchors(log: AuditLog, kind: str) -> None:
    # the head as the warehouse and the last snapshot manifest recorded it
    anchors = [log.head(), (2, json.loads(_lines(log)[1])["hash"])]
    assert log.verify(anchors=anchors).ok
    log.path.write_text("".join(_forged(_lines(log), kind)), encoding="utf-8")
    assert log.verify().ok  # the forged chain is internally consistent …
    result = log.verify(anchors=anchors)
    assert not result.ok, kind  # … but an anchored head no longer appears in it
    assert "anchored entry" in result.reason


REDACTION = [
    {
        "sql": "SELECT * FROM golden.customers WHERE phone = '+86 139-1234-5678' LIMIT 5",
        "gone": ["139", "5678"],
        "kept": "WHERE phone = ? LIMIT 5",
    },
    {"sql": "select * from t where phone=13912345678", "gone": ["13912345678"], "kept": "phone=?"},
    {
        "sql": "select 1 from t where email = zhang.san@example.com -- 张三 asked",
        "gone": ["zhang", "example", "张三"],
        "kept": "where email = ?",
    },
    {"sql": "select 1 from t where n = $$李四$$", "gone": ["李四"], "kept": "n = ?"},
    {"sql": 'select "13912345678" from t', "gone": ["13912345678"], "kept": 'select "?"'},
    {"sql": "select * from t where name = 王五", "gone": ["王五"], "kept": "name = ?"},
    {"sql": "select * from t where x = 'it''s 赵六'", "gone": ["赵六", "it"], "kept": "x = ?"},
]


@pytest.mark.parametrize("case", REDACTION, ids=lambda c: c["sql"][:40])
def test_query_text_is_stored_without_literals(tmp_path: Path, case: dict) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.append("alice", "query", case["sql"])
    text = audit.path.read_text(encoding="utf-8")
    for value in case["gone"]:
        assert value not in text
    assert case["kept"] in json.loads(text)["target"]
    assert audit.verify().ok


def test_rechain_redacts_old_entries_and_old_anchors_still_verify(tmp_path: Path) -> None:
    from warehouse.security.audit import GENESIS, entry_hash

    path = tmp_path / "audit.jsonl"
    # a log written before redaction: the query text holds a phone and an e-mail
    prev, lines = GENESIS, []
    for seq, target in enumerate(
        ["run-1", "SELECT * FROM golden.customers WHERE phone = '13912345678'", "run-2"], 1
    ):
        action = "query" if target.startswith("SELECT") else "run"
        entry = {"seq": seq, "at": "2026-01-01T00:00:00+00:00", "actor": "a", "action": action,
                 "target": target, "customers": [], "result": "ok", "details": {},
                 "prev_hash": prev}  # fmt: skip
        entry["hash"] = entry_hash(entry)
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
        prev = entry["hash"]
    path.write_text("".join(lines), encoding="utf-8")
    audit = AuditLog(path)
    old_anchor = audit.head()  # e.g. kept in a snapshot manifest before the re-chaining
    out = audit.rechain(actor="admin", anchors=[old_anchor])
    assert out["changed"] == 1 and out["entries"] == 3
    assert "13912345678" not in path.read_text(encoding="utf-8")
    assert audit.verify(anchors=[old_anchor, audit.head()]).ok  # old anchor found via the map
    assert audit.verify(anchors=[(3, "f" * 64)]).ok is False
    # the map is itself pinned by the chained rechain entry
    last = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    body = out["map"].read_bytes()
    import hashlib

    assert last["action"] == "rechain" and last["details"]["map_sha256"] == (
        hashlib.sha256(body).hexdigest()
    )


def test_rechain_refuses_a_tampered_log(log: AuditLog) -> None:
    lines = _lines(log)
    log.path.write_text("".join(_edit(lines)), encoding="utf-8")
    with pytest.raises(ValueError, match="refusing"):
        log.rechain()

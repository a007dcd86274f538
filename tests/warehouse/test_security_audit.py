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

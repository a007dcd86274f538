"""Append-only, hash-chained audit log (JSON Lines) of runs, queries, exports and erasures.

The log never holds personal values: the SQL text of ``query``/``sql`` entries is stored
with its literals redacted (:func:`redact_sql`), so an erasure never has to rewrite it. Its
head ``(seq, hash)`` is anchored outside the log (``security.audit_head`` in the warehouse and
each snapshot manifest), so cutting off, editing, reordering or deleting entries is detected
(:meth:`AuditLog.verify` with ``anchors``). Logs written before redaction existed are
converted once by :meth:`AuditLog.rechain`, which leaves a verifiable map old hash → new hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "action", "target", "customers", "result", "details")
SQL_ACTIONS = frozenset({"query", "sql"})
REDACTED_LITERAL = "?"
# one alternation scanned left to right, so a quote inside a comment (or the reverse) is
# never mistaken for the start of a literal
_SQL_TOKENS = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?(?:\*/|$))"""
    r"""|(?P<ident>"(?:[^"]|"")*"?)"""
    r"""|(?P<string>[eEbBxX]?'(?:[^'\\]|''|\\.)*'?)"""
    r"""|(?P<dollar>\$(?P<tag>\w*)\$.*?(?:\$(?P=tag)\$|$))"""
    r"""|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)*)"""
    r"""|(?P<number>(?<![\w$])\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)"""
    r"""|(?P<word>[^\x00-\x7f]+)""",
    re.DOTALL,
)
_LONG_DIGITS = re.compile(r"\d{5,}")


def redact_sql(sql: str) -> str:
    """SQL text without any value a person could be found by: literals become ``?``.

    String literals (``'…'``, ``E'…'``, ``$$…$$``), comments, e-mail-like words, numbers of
    five digits or more, non-ASCII words outside identifiers, and quoted identifiers holding
    such values are replaced; keywords, table and column names, operators and short numbers
    (``LIMIT 50``) stay, so the entry still says what was looked up and how.

    >>> redact_sql("SELECT * FROM golden.customers WHERE phone = '+8613912345678' LIMIT 5")
    'SELECT * FROM golden.customers WHERE phone = ? LIMIT 5'
    """

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        text = match.group(0)
        if kind == "comment":
            return ""
        if kind == "ident":
            inner = text[1:-1]
            risky = _LONG_DIGITS.search(inner) or "@" in inner or not inner.isascii()
            return '"?"' if risky else text
        if kind == "number":
            return REDACTED_LITERAL if len(re.sub(r"\D", "", text)) >= 5 else text
        return REDACTED_LITERAL

    return _SQL_TOKENS.sub(replace, sql).strip()


def redact_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with its SQL text redacted (``query``/``sql`` actions); other fields as given."""
    out = dict(entry)
    if out.get("action") in SQL_ACTIONS and isinstance(out.get("target"), str):
        out["target"] = redact_sql(out["target"])
    return out


def _canonical(entry: dict[str, Any]) -> bytes:
    body = {k: entry[k] for k in (*_FIELDS, "prev_hash")}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """``sha256(prev_hash + canonical JSON of the entry without its hash)``."""
    return hashlib.sha256(entry["prev_hash"].encode("ascii") + _canonical(entry)).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`AuditLog.verify`; ``first_bad_line`` is 1-based, None when ok."""

    ok: bool
    entries: int
    first_bad_line: int | None = None
    reason: str = ""


class AuditLog:
    """A JSON Lines audit log where each entry carries the hash of the one before it.

    Editing, deleting, inserting or reordering any entry breaks the chain and
    :meth:`verify` names the first bad line. Truncating the newest entries is only
    detectable against a recorded head (:meth:`head`), e.g. kept in snapshot manifests.
    """

    def __init__(self, path: Path | str) -> None:
        """Use (and create on first append) the log at ``path``."""
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock")

    def _last(self) -> dict[str, Any] | None:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            block = 4096
            data = b""
            while end > 0:
                start = max(0, end - block)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
                lines = data.rstrip(b"\n").split(b"\n")
                if len(lines) > 1 or start == 0:
                    return json.loads(lines[-1])
                block *= 2
        return None

    def append(
        self,
        actor: str,
        action: str,
        target: str,
        customers: list[str] | None = None,
        result: str = "ok",
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Append one entry (under a file lock, fsynced) and return it.

        Args:
            actor: who (OS user, role, service).
            action: what (``run``, ``sql``, ``review_decision``, ``export``, ``restore``,
                ``erase``, ``retention`` …).
            target: on what (table, file, snapshot id, query text — redacted here for the
                ``query``/``sql`` actions, :func:`redact_sql`).
            customers: the customer ids concerned (never names, phones or emails).
            result: ``ok``, ``denied``, ``failed`` …
            details: more JSON-ready facts (counts, ids) — no personal data.
            at: the time (default now, UTC).

        Returns:
            The stored entry including ``seq``, ``prev_hash`` and ``hash``.
        """
        if action in SQL_ACTIONS:
            target = redact_sql(target)
        with self._lock:
            last = self._last()
            entry: dict[str, Any] = {
                "seq": 1 if last is None else int(last["seq"]) + 1,
                "at": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
                "actor": actor,
                "action": action,
                "target": target,
                "customers": sorted(set(customers or [])),
                "result": result,
                "details": json.loads(json.dumps(details or {}, ensure_ascii=False, default=str)),
                "prev_hash": GENESIS if last is None else last["hash"],
            }
            entry["hash"] = entry_hash(entry)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return entry

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest entry (``(0, GENESIS)`` for an empty log)."""
        last = self._last()
        return (0, GENESIS) if last is None else (int(last["seq"]), str(last["hash"]))

    def verify(
        self,
        expected_head: tuple[int, str] | None = None,
        anchors: Iterable[tuple[int, str]] = (),
    ) -> VerifyResult:
        """Recompute the chain; report the first entry that was edited, removed or moved.

        Args:
            expected_head: a ``(seq, hash)`` recorded earlier; the log must still contain it
                (detects truncation of the newest entries).
            anchors: more recorded ``(seq, hash)`` heads (warehouse, snapshot manifests);
                each must still be in the log, directly or through a re-chaining map
                (:meth:`rechain`). A forger who rewrites the chain after an edit cannot
                make an anchored hash reappear.

        Returns:
            A :class:`VerifyResult`.
        """
        wanted = {(int(s), str(h)) for s, h in anchors if int(s) > 0}
        if expected_head is not None and expected_head[0] != 0:
            wanted.add((int(expected_head[0]), str(expected_head[1])))
        wanted = {self._translate(a) for a in wanted}
        prev, count = GENESIS, 0
        found: set[tuple[int, str]] = set()
        if not self.path.is_file():
            if wanted:
                return VerifyResult(False, 0, 1, "the audit log is missing")
            return VerifyResult(True, 0)
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    entry = json.loads(line)
                    stored = entry["hash"]
                    claimed_prev = entry["prev_hash"]
                    seq = int(entry["seq"])
                    recomputed = entry_hash(entry)
                except (ValueError, KeyError, TypeError) as exc:
                    return VerifyResult(False, count, number, f"unreadable entry: {exc}")
                if seq != count + 1:
                    return VerifyResult(
                        False, count, number, f"sequence {seq}, expected {count + 1}"
                    )
                if claimed_prev != prev:
                    return VerifyResult(
                        False, count, number, "prev_hash does not match the entry before"
                    )
                if recomputed != stored:
                    return VerifyResult(
                        False, count, number, "entry content does not match its hash"
                    )
                if (seq, stored) in wanted:
                    found.add((seq, stored))
                prev, count = stored, count + 1
        missing = sorted(wanted - found)
        if missing:
            seq, _ = missing[0]
            kind = "truncated" if seq > count else "rewritten"
            return VerifyResult(
                False,
                count,
                min(seq, count + 1),
                f"anchored entry {seq} is missing ({kind}: the log no longer holds the head "
                "recorded in the warehouse or a snapshot manifest)",
            )
        return VerifyResult(True, count)

    def rechain_maps(self) -> list[Path]:
        """The re-chaining maps written by :meth:`rechain` beside the log, oldest first."""
        return sorted(self.path.parent.glob(f"{self.path.name}.rechain-*.json"))

    def _translate(self, anchor: tuple[int, str]) -> tuple[int, str]:
        """An anchor recorded before a re-chaining, moved along the maps to today's hash."""
        seq, digest = anchor
        for path in self.rechain_maps():
            mapping = json.loads(path.read_text(encoding="utf-8"))
            for old_seq, old_hash, new_hash in mapping["entries"]:
                if old_seq == seq and old_hash == digest:
                    digest = new_hash
                    break
        return seq, digest

    def rechain(
        self,
        redact: Callable[[dict[str, Any]], dict[str, Any]] = redact_entry,
        actor: str = "admin",
        anchors: Iterable[tuple[int, str]] = (),
    ) -> dict[str, Any]:
        """Rewrite a log made before redaction: redact entries, rebuild the chain, keep a map.

        The old chain (and its ``anchors``) must verify first; every entry keeps its ``seq``,
        time, actor, action and result; ``redact`` replaces personal values (by default the
        SQL text of queries). The map ``<log>.rechain-<time>.json`` lists ``(seq, old hash,
        new hash)`` for every entry, so heads anchored before (warehouse, snapshot manifests)
        still verify; a final ``rechain`` entry records the old head and the map's sha256.

        Returns:
            ``{"entries", "changed", "old_head", "new_head", "map"}``.

        Raises:
            ValueError: the old log does not verify (re-chaining would launder tampering).
        """
        with self._lock:
            before = self.verify(anchors=anchors)
            if not before.ok:
                raise ValueError(
                    f"the audit log does not verify (line {before.first_bad_line}: "
                    f"{before.reason}); refusing to re-chain"
                )
            old = [json.loads(line) for line in self.path.read_text("utf-8").splitlines()]
            prev, mapping, changed, lines = GENESIS, [], 0, []
            for entry in old:
                new = redact({k: entry[k] for k in _FIELDS})
                changed += any(new[k] != entry[k] for k in _FIELDS)
                new["prev_hash"] = prev
                new["hash"] = entry_hash(new)
                mapping.append([int(entry["seq"]), entry["hash"], new["hash"]])
                lines.append(json.dumps(new, ensure_ascii=False, sort_keys=True) + "\n")
                prev = new["hash"]
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            map_path = self.path.with_name(f"{self.path.name}.rechain-{stamp}.json")
            old_head = [int(old[-1]["seq"]), old[-1]["hash"]] if old else [0, GENESIS]
            body = json.dumps({"old_head": old_head, "entries": mapping}, indent=0)
            map_path.write_text(body, encoding="utf-8")
            temp = self.path.with_name(f".{self.path.name}.rechain-{secrets.token_hex(4)}")
            temp.write_text("".join(lines), encoding="utf-8")
            os.replace(temp, self.path)
        summary = {
            "entries": len(old),
            "changed": changed,
            "old_head": old_head,
            "map": map_path.name,
            "map_sha256": hashlib.sha256(body.encode()).hexdigest(),
        }
        entry = self.append(actor, "rechain", self.path.name, [], "ok", summary)
        return {**summary, "new_head": [entry["seq"], entry["hash"]], "map": map_path}

    def to_frame(self) -> pd.DataFrame:
        """The entries as a table (for an audit worksheet; neutralize formulas before Excel)."""
        import pandas as pd

        if not self.path.is_file():
            return pd.DataFrame(columns=[*_FIELDS, "prev_hash", "hash"])
        frame = pd.read_json(self.path, lines=True, dtype=False)
        frame["customers"] = frame["customers"].map(lambda v: ",".join(v))
        frame["details"] = frame["details"].map(lambda v: json.dumps(v, ensure_ascii=False))
        return frame

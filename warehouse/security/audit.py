"""Append-only, hash-chained audit log (JSON Lines) of runs, queries, exports and erasures."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "action", "target", "customers", "result", "details")


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
            target: on what (table, file, snapshot id, query text).
            customers: the customer ids concerned (never names, phones or emails).
            result: ``ok``, ``denied``, ``failed`` …
            details: more JSON-ready facts (counts, ids) — no personal data.
            at: the time (default now, UTC).

        Returns:
            The stored entry including ``seq``, ``prev_hash`` and ``hash``.
        """
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

    def verify(self, expected_head: tuple[int, str] | None = None) -> VerifyResult:
        """Recompute the chain; report the first entry that was edited, removed or moved.

        Args:
            expected_head: a ``(seq, hash)`` recorded earlier; the log must still contain it
                (detects truncation of the newest entries).

        Returns:
            A :class:`VerifyResult`.
        """
        prev, count = GENESIS, 0
        seen_head = expected_head is None or expected_head[0] == 0
        if not self.path.is_file():
            return VerifyResult(
                seen_head,
                0,
                None if seen_head else 1,
                "" if seen_head else "the audit log is missing",
            )
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
                if expected_head is not None and (seq, stored) == tuple(expected_head):
                    seen_head = True
                prev, count = stored, count + 1
        if not seen_head:
            return VerifyResult(
                False, count, count + 1, "recorded head entry is missing (truncated)"
            )
        return VerifyResult(True, count)

    def to_frame(self) -> pd.DataFrame:
        """The entries as a table (for an audit worksheet; neutralize formulas before Excel)."""
        import pandas as pd

        if not self.path.is_file():
            return pd.DataFrame(columns=[*_FIELDS, "prev_hash", "hash"])
        frame = pd.read_json(self.path, lines=True, dtype=False)
        frame["customers"] = frame["customers"].map(lambda v: ",".join(v))
        frame["details"] = frame["details"].map(lambda v: json.dumps(v, ensure_ascii=False))
        return frame

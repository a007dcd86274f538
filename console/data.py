"""The steward console's reads: DuckDB queries over the steward's copy of the warehouse.

:class:`StewardData` wraps the in-memory database that ``warehouse.security.role_database``
builds for the ``steward`` role (golden tables, review queue, decisions, scored pairs, clean
records) and answers each page with typed rows (:mod:`console.rows`). It never writes to the
warehouse: decisions are recorded by the caller (``pipelines/cli/stewardship.py``) and handed
back with :meth:`StewardData.set_decisions`.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import duckdb
import pandas as pd

from dedupe.ids import resolve_customer_id

from .rows import (
    CustomerView,
    DecisionRow,
    Evidence,
    FieldPair,
    GoldenValue,
    Link,
    MemberRecord,
    QueuePair,
    QueueView,
    RecordContext,
    SearchHit,
    SearchResult,
    Table,
)
from .search import name_key_frame, parse_query

__all__ = ["QueueFilters", "StewardData"]

# fields of the review queue shown side by side (label, column stem)
_PAIR_FIELDS = (
    ("客户名称 name", "customer_name"),
    ("分支 branch", "branch"),
    ("类型 type", "customer_type"),
    ("联系人 contact", "contact_name"),
    ("电话 phone", "phone"),
    ("邮箱 e-mail", "email"),
    ("省 province", "province"),
    ("市 city", "city"),
    ("区 district", "district"),
    ("地址 address", "address"),
    ("信用代码 credit code", "credit_code"),
)
# console.members: each crosswalk record with the clean values the pages show (built once)
_MEMBERS_SQL = """
    CREATE OR REPLACE TABLE console.members AS
    SELECT cw.record_key, cw.source_system, cw.source_record_id, cw.customer_id,
           r.customer_name, r.contact_name, r.phone, r.email, r.city, r.address, r.credit_code,
           cw.match_score, CAST(r.deleted_at_source AS VARCHAR) AS deleted_at_source
    FROM golden.crosswalk cw LEFT JOIN {records} r USING (record_key)
"""
_NO_RECORDS = (
    "(SELECT NULL::VARCHAR AS record_key, NULL AS customer_name, NULL AS contact_name, "
    "NULL AS phone, NULL AS email, NULL AS city, NULL AS address, NULL AS credit_code, "
    "NULL AS deleted_at_source WHERE false)"
)
_SHOWN_ROWS = 50
_LINKS = 5  # scored links shown per record in the queue's clustering context


class QueueFilters:
    """Review-queue filters: a probability band ``lo-hi``, a source system, a reason."""

    def __init__(self, band: str = "", source: str = "", reason: str = "") -> None:
        self.band, self.source, self.reason = band or "", source or "", reason or ""

    def bounds(self) -> tuple[float, float] | None:
        """The band as ``(lo, hi)`` probabilities, None for all (a malformed band is ignored)."""
        try:
            lo, hi = (float(x) for x in self.band.split("-", 1))
        except ValueError:
            return None
        return lo, (hi if hi < 1.0 else 1.0 + 1e-9)  # the top band holds p = 1

    def as_query(self) -> dict[str, str]:
        """The filters as URL parameters (empty ones left out)."""
        items = {"band": self.band, "source": self.source, "reason": self.reason}
        return {k: v for k, v in items.items() if v}


def _text(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _member(row: tuple[Any, ...]) -> MemberRecord:
    """A ``console.members`` row as a record."""
    t = [_text(v) for v in row]
    return MemberRecord(
        record_key=t[0],
        source_system=t[1],
        source_record_id=t[2],
        customer_id=t[3],
        customer_name=t[4],
        contact_name=t[5],
        phone=t[6],
        email=t[7],
        city=t[8],
        address=t[9],
        credit_code=t[10],
        match_score=None if row[11] is None else float(row[11]),
        deleted_at_source=t[12],
    )


class StewardData:
    """The console's read model over the steward's database (see the module docstring).

    Args:
        con: a DuckDB connection holding the steward's tables (``role_database(.., "steward")``).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._lock = threading.RLock()
        self._tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        if "golden.crosswalk" not in self._tables:
            raise RuntimeError("nothing published yet: run the pipeline first")
        self._prepare()

    # ---- setup -----------------------------------------------------------------------------

    def has(self, table: str) -> bool:
        """Whether the steward's database holds ``table``."""
        return table in self._tables

    def _prepare(self) -> None:
        """Precompute the search keys and an empty decisions table when none exists yet."""
        con = self._con
        if not self.has("match.decisions"):
            con.execute("CREATE SCHEMA IF NOT EXISTS match")
            con.execute(
                "CREATE TABLE match.decisions (left_key VARCHAR, right_key VARCHAR, "
                "decision VARCHAR, decided_by VARCHAR, decided_at VARCHAR, note VARCHAR)"
            )
            self._tables.add("match.decisions")
        if not self.has("match.review_queue"):
            con.execute(
                "CREATE TABLE match.review_queue (left_key VARCHAR, right_key VARCHAR, "
                "probability DOUBLE, score DOUBLE, reason VARCHAR)"
            )
            self._tables.add("match.review_queue")
        self._queue_summary()
        records = self.has("clean.records")
        con.execute("CREATE SCHEMA IF NOT EXISTS console")
        con.execute(_MEMBERS_SQL.format(records="clean.records" if records else _NO_RECORDS))
        name_sql = "SELECT customer_id, customer_name AS name FROM golden.customers"
        if records:
            name_sql += (
                " UNION SELECT cw.customer_id, r.customer_name FROM golden.crosswalk cw"
                " JOIN clean.records r USING (record_key) WHERE r.customer_name IS NOT NULL"
            )
        names = con.execute(name_sql).df()
        keys = name_key_frame(names["name"])
        con.register("_keys", keys)
        con.register("_names", names)
        con.execute(
            "CREATE OR REPLACE TABLE console.name_keys AS SELECT n.customer_id, k.* "
            "FROM _names n JOIN _keys k ON n.name = k.name"
        )
        con.unregister("_keys")
        con.unregister("_names")
        contact_sql = (
            "SELECT customer_id, regexp_replace(phone, '\\D', '', 'g') AS phone_digits, "
            "lower(email) AS email, NULL AS credit_code FROM golden.contacts"
            if self.has("golden.contacts")
            else "SELECT NULL AS customer_id, NULL AS phone_digits, NULL AS email, "
            "NULL AS credit_code WHERE false"
        )
        parts = [
            "SELECT customer_id, regexp_replace(phone, '\\D', '', 'g') AS phone_digits, "
            "lower(email) AS email, upper(credit_code) AS credit_code FROM golden.customers",
            contact_sql,
        ]
        if records:
            parts.append(
                "SELECT cw.customer_id, regexp_replace(r.phone, '\\D', '', 'g'), lower(r.email), "
                "upper(r.credit_code) FROM golden.crosswalk cw JOIN clean.records r "
                "USING (record_key)"
            )
        self._top_links: dict[str, list[tuple[str, float, str]]] = {}
        if self.has("match.pairs"):  # each record's strongest pairs, from both ends, in memory
            rows = con.execute(
                "WITH l AS (SELECT left_key AS k, right_key AS o, probability AS p, decision AS d "
                "FROM match.pairs UNION ALL SELECT right_key, left_key, probability, decision "
                "FROM match.pairs) SELECT k, list(o ORDER BY p DESC, o)[:?], "
                "list(p ORDER BY p DESC, o)[:?], list(d ORDER BY p DESC, o)[:?] FROM l GROUP BY k",
                [_LINKS + 1] * 3,
            ).fetchall()
            self._top_links = {
                k: list(zip(others, probs, decisions, strict=True))
                for k, others, probs, decisions in rows
            }
        con.execute(
            "CREATE OR REPLACE TABLE console.contact_keys AS SELECT DISTINCT * FROM ("
            + " UNION ALL ".join(parts)
            + ")"
        )

    def _queue_summary(self) -> None:
        """What the queue filters offer (sources, reasons, 0.1-wide score bands) and its size."""
        con = self._con
        ((total, lo),) = con.execute(
            "SELECT count(*), min(probability) FROM match.review_queue"
        ).fetchall()
        keys = con.execute(
            "SELECT DISTINCT split_part(k, ':', 1) FROM (SELECT left_key AS k FROM "
            "match.review_queue UNION ALL SELECT right_key FROM match.review_queue) ORDER BY 1"
        ).fetchall()
        reasons = con.execute(
            "SELECT DISTINCT reason FROM match.review_queue ORDER BY 1"
        ).fetchall()
        bands = []
        if lo is not None:
            start = math.floor(float(lo) * 10) / 10
            while start < 1.0 - 1e-9:
                bands.append(f"{start:.1f}-{min(start + 0.1, 1.0):.1f}")
                start += 0.1
        self._queue_total = int(total)
        self._queue_sources = [str(k[0]) for k in keys]
        self._queue_reasons = [str(r[0]) for r in reasons if r[0] is not None]
        self._queue_bands = bands

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.cursor().execute(sql, params or []).fetchall()

    def _frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self._lock:
            return self._con.cursor().execute(sql, params or []).df()

    def set_decisions(self, decisions: pd.DataFrame) -> None:
        """Replace the console's copy of ``match.decisions`` after the caller recorded some."""
        with self._lock:
            self._con.register("_decisions", decisions)
            self._con.execute(
                "CREATE OR REPLACE TABLE match.decisions AS SELECT left_key, right_key, "
                "decision, decided_by, CAST(decided_at AS VARCHAR) AS decided_at, "
                "CAST(note AS VARCHAR) AS note FROM _decisions"
            )
            self._con.unregister("_decisions")

    # ---- review queue ----------------------------------------------------------------------

    _OPEN = """
        SELECT q.* FROM match.review_queue q ANTI JOIN match.decisions d
        ON least(q.left_key, q.right_key) = least(d.left_key, d.right_key)
        AND greatest(q.left_key, q.right_key) = greatest(d.left_key, d.right_key)
    """

    def queue(self, filters: QueueFilters, position: int = 0) -> QueueView:
        """The queue page: the open pair at ``position`` among those matching ``filters``."""
        where: list[str] = ["true"]
        params: list[Any] = []
        bounds = filters.bounds()
        if bounds:
            where.append("probability >= ? AND probability < ?")
            params += [bounds[0], bounds[1]]
        if filters.source:
            where.append("(split_part(left_key, ':', 1) = ? OR split_part(right_key, ':', 1) = ?)")
            params += [filters.source, filters.source]
        if filters.reason:
            where.append("reason = ?")
            params.append(filters.reason)
        cond = " AND ".join(where)
        ((count, open_total),) = self._query(
            f"SELECT count(*) FILTER (WHERE {cond}), count(*) FROM ({self._OPEN})", params
        )
        count, open_total = int(count), int(open_total)
        position = max(0, min(position, count - 1)) if count else 0
        frame = self._frame(
            f"SELECT * FROM ({self._OPEN}) WHERE {cond} "
            "ORDER BY probability DESC, left_key, right_key LIMIT 1 OFFSET ?",
            [*params, position],
        )
        pair = self._pair(frame.iloc[0]) if len(frame) else None
        return QueueView(
            pair=pair,
            position=position,
            open_filtered=count,
            open_total=open_total,
            decided=self._queue_total - open_total,
            queue_total=self._queue_total,
            sources=self._queue_sources,
            reasons=self._queue_reasons,
            bands=self._queue_bands,
        )

    def _pair(self, row: pd.Series) -> QueuePair:
        fields = [
            FieldPair(label, _text(row.get(f"left_{stem}")), _text(row.get(f"right_{stem}")))
            for label, stem in _PAIR_FIELDS
            if f"left_{stem}" in row.index
        ]
        evidence = [
            Evidence(col[: -len("_level")], _text(row[col]), float(row[f"{col[:-6]}_weight"]))
            for col in row.index
            if col.endswith("_level") and f"{col[:-6]}_weight" in row.index
        ]
        return QueuePair(
            left_key=str(row["left_key"]),
            right_key=str(row["right_key"]),
            probability=float(row["probability"]),
            score=float(row["score"]) if "score" in row.index else float("nan"),
            reason=_text(row.get("reason")),
            fields=fields,
            evidence=evidence,
            left=self._context(str(row["left_key"]), str(row["right_key"])),
            right=self._context(str(row["right_key"]), str(row["left_key"])),
        )

    def _context(self, record_key: str, partner: str) -> RecordContext:
        """The record's customer today, that customer's other records, its strongest links."""
        hit = self._query(
            "SELECT customer_id FROM console.members WHERE record_key = ?", [record_key]
        )
        links = self._links(record_key, partner)
        if not hit:
            return RecordContext(record_key, None, [], links)
        customer = str(hit[0][0])
        others = [m for m in self._members(customer) if m.record_key != record_key]
        return RecordContext(record_key, customer, others, links)

    def _links(self, record_key: str, partner: str) -> list[Link]:
        """The record's strongest scored pairs besides the one under review."""
        top = [t for t in self._top_links.get(record_key, []) if t[0] != partner][:_LINKS]
        if not top:
            return []
        rows = self._query(
            "SELECT record_key, customer_id, customer_name FROM console.members "
            "WHERE list_contains(?, record_key)",
            [[t[0] for t in top]],
        )
        owner = {str(r[0]): (_text(r[1]), _text(r[2])) for r in rows}
        return [
            Link(other, *owner.get(other, ("", "")), float(probability or 0.0), _text(decision))
            for other, probability, decision in top
        ]

    def _members(self, customer_id: str) -> list[MemberRecord]:
        sql = "SELECT * FROM console.members WHERE customer_id = ? ORDER BY record_key"
        return [_member(r) for r in self._query(sql, [customer_id])]

    # ---- decisions -------------------------------------------------------------------------

    def last_run_at(self) -> str:
        """When the last match run was made (ISO), '' when unknown."""
        if not self.has("match.params"):
            return ""
        ((at,),) = self._query("SELECT max(created_at) FROM match.params")
        return _text(at)

    def decisions(self, record_keys: list[str] | None = None) -> list[DecisionRow]:
        """Steward decisions (newest first), optionally only those touching ``record_keys``."""
        sql = (
            "SELECT d.left_key, d.right_key, d.decision, d.decided_by, "
            "CAST(d.decided_at AS VARCHAR), CAST(d.note AS VARCHAR), a.customer_id, b.customer_id "
            "FROM match.decisions d "
            "LEFT JOIN golden.crosswalk a ON a.record_key = d.left_key "
            "LEFT JOIN golden.crosswalk b ON b.record_key = d.right_key"
        )
        params: list[Any] = []
        if record_keys is not None:
            sql += " WHERE list_contains(?, d.left_key) OR list_contains(?, d.right_key)"
            params = [record_keys, record_keys]
        sql += " ORDER BY d.decided_at DESC, d.left_key, d.right_key"
        last = self.last_run_at()
        return [
            DecisionRow(
                left_key=r[0],
                right_key=r[1],
                decision=r[2],
                decided_by=_text(r[3]),
                decided_at=_text(r[4]),
                note=_text(r[5]),
                pending=not last or _text(r[4]) > last,
                left_customer=r[6],
                right_customer=r[7],
            )
            for r in self._query(sql, params)
        ]

    # ---- customers -------------------------------------------------------------------------

    def resolve(self, customer_id: str) -> str:
        """The current id of ``customer_id`` (old merged ids follow their ``merged_into``)."""
        if not self.has("golden.customer_ids"):
            return customer_id
        events = self._frame(
            "SELECT customer_id, event, other_customer_id FROM golden.customer_ids "
            "WHERE event = 'merged_into'"
        )
        return resolve_customer_id(customer_id, events)

    def customer(self, customer_id: str) -> CustomerView | None:
        """The page of ``customer_id`` (or of the id it was merged into); None if unknown."""
        current = self.resolve(customer_id)
        head = self._frame("SELECT * FROM golden.customers WHERE customer_id = ?", [current])
        if head.empty:
            return None
        summary = {c: _text(v) for c, v in head.iloc[0].items()}
        golden = (
            [
                GoldenValue(
                    attribute=_text(r[0]),
                    value=_text(r[1]),
                    source_system=_text(r[2]),
                    record_key=_text(r[3]),
                    rule=_text(r[4]),
                    record_date=_text(r[5])[:10],
                    candidates=None if r[6] is None else int(r[6]),
                )
                for r in self._query(
                    "SELECT attribute, value, source_system, record_key, rule, "
                    "CAST(record_date AS VARCHAR), candidates FROM golden.attribute_lineage "
                    "WHERE customer_id = ? ORDER BY attribute",
                    [current],
                )
            ]
            if self.has("golden.attribute_lineage")
            else []
        )
        records = self._members(current)
        return CustomerView(
            customer_id=current,
            requested_id=customer_id,
            summary=summary,
            golden=golden,
            records=records,
            contacts=self._table(
                "golden.contacts",
                "contact_name, contact_title, phone, email, role, is_primary, is_current, "
                "source_systems, record_count",
                current,
                "is_current DESC, is_primary DESC, contact_name",
            ),
            addresses=self._table(
                "golden.addresses",
                "address, province, city, district, is_primary, first_seen, last_seen, "
                "source_systems, record_count",
                current,
                "is_primary DESC, last_seen DESC",
            ),
            transactions=self._table(
                "golden.transactions",
                "txn_date, txn_id, txn_type, txn_amount, source_system, record_key",
                current,
                "txn_date DESC, txn_id",
            ),
            interactions=self._table(
                "golden.interactions",
                "interaction_date, channel, subject, outcome, satisfaction, source_system",
                current,
                "interaction_date DESC, interaction_id",
            ),
            history=self._table(
                "golden.customers_history",
                "valid_from, valid_to, is_current, change_type, change_reason, "
                "changed_attributes, customer_name, phone, address, tier, lifecycle",
                current,
                "valid_from DESC, is_current DESC",
            ),
            id_events=self._id_events(current),
            decisions=self.decisions([m.record_key for m in records]),
        )

    def _table(self, table: str, columns: str, customer_id: str, order: str) -> Table:
        if not self.has(table):
            return Table([], [], 0)
        cur_sql = f"SELECT {columns} FROM {table} WHERE customer_id = ? ORDER BY {order} LIMIT ?"
        with self._lock:
            cur = self._con.cursor().execute(cur_sql, [customer_id, _SHOWN_ROWS])
            names = [d[0] for d in cur.description]
            rows = [tuple(_text(v) for v in r) for r in cur.fetchall()]
        total = len(rows)
        if total == _SHOWN_ROWS:
            ((total,),) = self._query(
                f"SELECT count(*) FROM {table} WHERE customer_id = ?", [customer_id]
            )
        return Table(names, rows, int(total))

    def _id_events(self, customer_id: str) -> Table:
        if not self.has("golden.customer_ids"):
            return Table([], [], 0)
        rows = self._query(
            "SELECT run_date, customer_id, event, other_customer_id FROM golden.customer_ids "
            "WHERE customer_id = ? OR other_customer_id = ? ORDER BY run_date, customer_id, event",
            [customer_id, customer_id],
        )
        shown = [tuple(_text(v) for v in r) for r in rows]
        return Table(["run_date", "customer_id", "event", "other_customer_id"], shown, len(shown))

    def customer_of_record(self, record_key: str) -> str | None:
        """The customer a source record belongs to today."""
        hit = self._query(
            "SELECT customer_id FROM golden.crosswalk WHERE record_key = ?", [record_key]
        )
        return str(hit[0][0]) if hit else None

    # ---- search ----------------------------------------------------------------------------

    def search(self, text: str, limit: int = 50) -> SearchResult:
        """Customers by name (pinyin, simplified/traditional), phone, e-mail, credit code or id."""
        query = parse_query(text)
        kind, key = query.kind, query.key
        found: list[tuple[Any, ...]] = []
        if kind == "customer_id":
            current = self.resolve(key)
            found = [(current, "id", key)]
        elif kind == "record_key":
            found = self._query(
                "SELECT customer_id, 'id', record_key FROM golden.crosswalk "
                "WHERE record_key = ? OR source_record_id = ? LIMIT ?",
                [key, key.split(":", 1)[-1], limit + 1],
            )
        elif kind == "email":
            found = self._query(
                "SELECT customer_id, 'email', min(email) FROM console.contact_keys "
                "WHERE contains(email, ?) GROUP BY 1 ORDER BY 3, 1 LIMIT ?",
                [key, limit + 1],
            )
        elif kind == "credit_code":
            found = self._query(
                "SELECT customer_id, 'credit_code', min(credit_code) FROM console.contact_keys "
                "WHERE starts_with(credit_code, ?) GROUP BY 1 ORDER BY 3, 1 LIMIT ?",
                [key, limit + 1],
            )
        elif kind == "phone":
            found = self._query(
                "SELECT customer_id, 'phone', min(phone_digits) FROM console.contact_keys "
                "WHERE contains(phone_digits, ?) GROUP BY 1 ORDER BY 3, 1 LIMIT ?",
                [key, limit + 1],
            )
        elif kind == "pinyin":
            found = self._query(
                "SELECT customer_id, 'pinyin', min(name) FROM console.name_keys "
                "WHERE starts_with(pinyin, ?) OR starts_with(initials, ?) OR contains(pinyin, ?) "
                "GROUP BY 1 ORDER BY min(CASE WHEN starts_with(pinyin, ?) THEN 0 "
                "WHEN starts_with(initials, ?) THEN 1 ELSE 2 END), min(length(name)), 1 LIMIT ?",
                [key, key, key, key, key, limit + 1],
            )
        elif kind == "name":
            found = self._query(
                "SELECT customer_id, 'name', min(name) FROM console.name_keys "
                "WHERE contains(simple, ?) GROUP BY 1 "
                "ORDER BY min(CASE WHEN simple = ? THEN 0 WHEN starts_with(simple, ?) THEN 1 "
                "ELSE 2 END), min(length(name)), 1 LIMIT ?",
                [key, key, key, limit + 1],
            )
        more = len(found) > limit
        found = found[:limit]
        hits: list[SearchHit] = []
        if found:
            ids = [str(f[0]) for f in found]
            info = {
                r[0]: r[1:]
                for r in self._query(
                    "SELECT customer_id, customer_name, city, phone, record_count "
                    "FROM golden.customers WHERE list_contains(?, customer_id)",
                    [ids],
                )
            }
            for cid, on, value in found:
                if cid not in info:
                    continue
                name, city, phone, count = info[cid]
                hits.append(
                    SearchHit(
                        str(cid),
                        _text(name),
                        _text(city),
                        _text(phone),
                        int(count or 0),
                        str(on),
                        _text(value),
                    )
                )
        return SearchResult(text, kind, key, hits, more)

"""Typed rows the steward console's pages are rendered from (no SQL, no web code here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CustomerView",
    "DecisionRow",
    "Evidence",
    "FieldPair",
    "GoldenValue",
    "Link",
    "MemberRecord",
    "QueuePair",
    "QueueView",
    "RecordContext",
    "SearchHit",
    "SearchResult",
    "Table",
]


@dataclass(frozen=True)
class Table:
    """A listing shown as it is (contacts, addresses, transactions …): columns and rows."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    total: int  # rows in the warehouse; ``rows`` may hold fewer (the newest first)

    @property
    def shown(self) -> int:
        """How many rows the page shows."""
        return len(self.rows)


@dataclass(frozen=True)
class FieldPair:
    """One field of the two records side by side."""

    label: str
    left: str
    right: str

    @property
    def same(self) -> bool:
        """Both present and equal."""
        return bool(self.left) and self.left == self.right


@dataclass(frozen=True)
class Evidence:
    """One comparison of the model: the level the pair reached and its weight (bits)."""

    comparison: str
    level: str
    weight: float


@dataclass(frozen=True)
class MemberRecord:
    """A source record of a customer (golden.crosswalk joined to clean.records)."""

    record_key: str
    source_system: str
    source_record_id: str
    customer_id: str
    customer_name: str
    contact_name: str
    phone: str
    email: str
    city: str
    address: str
    credit_code: str
    match_score: float | None
    deleted_at_source: str


@dataclass(frozen=True)
class Link:
    """A scored pair (``match.pairs``) from one record to another, and where the other one is."""

    record_key: str
    customer_id: str
    customer_name: str
    probability: float
    decision: str  # match (same cluster), review, no_match


@dataclass(frozen=True)
class RecordContext:
    """Where a record of a pair stands today: its customer, that customer's other records, and
    its strongest scored links to other records."""

    record_key: str
    customer_id: str | None
    others: list[MemberRecord]
    links: list[Link] = field(default_factory=list)


@dataclass(frozen=True)
class QueuePair:
    """One review-queue pair with everything a steward needs to decide it."""

    left_key: str
    right_key: str
    probability: float
    score: float
    reason: str
    fields: list[FieldPair]
    evidence: list[Evidence]
    left: RecordContext
    right: RecordContext


@dataclass(frozen=True)
class QueueView:
    """The queue page: the current pair (None when nothing is left) and the progress."""

    pair: QueuePair | None
    position: int  # index of ``pair`` among the filtered open pairs
    open_filtered: int  # open pairs matching the filters
    open_total: int  # open pairs in the whole queue
    decided: int  # queue pairs decided already
    queue_total: int
    sources: list[str]
    reasons: list[str]
    bands: list[str]


@dataclass(frozen=True)
class DecisionRow:
    """A steward decision and whether the published customers reflect it yet."""

    left_key: str
    right_key: str
    decision: str
    decided_by: str
    decided_at: str
    note: str
    pending: bool  # decided after the last match run: the next run applies it
    left_customer: str | None
    right_customer: str | None

    @property
    def reflected(self) -> bool:
        """The published crosswalk agrees with the decision."""
        if self.left_customer is None or self.right_customer is None:
            return False
        same = self.left_customer == self.right_customer
        return same if self.decision == "match" else not same


@dataclass(frozen=True)
class GoldenValue:
    """One attribute of the golden record and where its value came from (attribute lineage)."""

    attribute: str
    value: str
    source_system: str
    record_key: str
    rule: str
    record_date: str
    candidates: int | None


@dataclass(frozen=True)
class CustomerView:
    """Everything the customer page shows about one golden customer."""

    customer_id: str
    requested_id: str  # the id asked for (an old merged id resolves to ``customer_id``)
    summary: dict[str, str]
    golden: list[GoldenValue]
    records: list[MemberRecord]
    contacts: Table
    addresses: Table
    transactions: Table
    interactions: Table
    history: Table
    id_events: Table
    decisions: list[DecisionRow] = field(default_factory=list)


@dataclass(frozen=True)
class SearchHit:
    """A customer found by a search, and what matched."""

    customer_id: str
    customer_name: str
    city: str
    phone: str
    record_count: int
    matched_on: str  # name, pinyin, phone, email, credit_code, id
    matched_value: str


@dataclass(frozen=True)
class SearchResult:
    """A search: how the query was read and the customers found."""

    query: str
    kind: str
    normalized: str
    hits: list[SearchHit]
    more: bool  # more customers matched than shown

"""SQL that removes one person's rows and redacts their phone numbers and emails anywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from warehouse.security.suppression import normalize_email, normalize_phone

REDACTED = "[erased]"
_SEP = r"[\s\-.()/]*"
# column → which link values identify the person's rows
LINK_COLUMNS = {
    "customer_id": "customer_ids",
    "record_key": "record_keys",
    "left_key": "record_keys",
    "right_key": "record_keys",
    "cluster_key": "record_keys",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class PersonMatch:
    """How to recognise one person's data: link keys and phone/email text patterns."""

    customer_ids: set[str] = field(default_factory=set)
    record_keys: set[str] = field(default_factory=set)
    source_ids: set[tuple[str, str]] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # people's names only (never a company's)

    def identifiers(self) -> set[str]:
        """Every id of the person as text: customer ids, record keys, source record ids."""
        ids = set(self.customer_ids) | set(self.record_keys) | {b for _, b in self.source_ids}
        return {i for i in ids if len(i) >= 4}

    def quoted_values_pattern(self) -> str | None:
        """RE2 pattern for the person's names and ids as whole quoted values (``"张三"``).

        Used on quarantined ``raw_content`` (a JSON object of header → text) and JSON or
        Python-list text in other unlinked cells (``['KH1', '张三']`` in a reason), where a
        name or id counts only as a whole value, not inside a longer text.
        """
        values = sorted(self.names | self.identifiers(), key=lambda v: (-len(v), v))
        if not values:
            return None
        inner = "|".join(re.escape(v.strip()) for v in values if v.strip())
        return f"[\"']\\s*(?:{inner})\\s*[\"']" if inner else None

    def pattern(self) -> str | None:
        """RE2 pattern matching the phones (any separators) and emails, or None."""
        parts = []
        for phone in sorted({normalize_phone(p) for p in self.phones}):
            if len(phone) >= 7:
                parts.append(_SEP.join(phone))
        parts += [re.escape(normalize_email(e)) for e in sorted(self.emails) if "@" in e]
        return "|".join(parts) if parts else None

    def linked_sql(self, columns: list[str]) -> str | None:
        """A predicate true for the person's rows in a table with these columns, or None."""
        terms = []
        for column, kind in LINK_COLUMNS.items():
            values = getattr(self, kind)
            if column in columns and values:
                listed = ", ".join(_literal(v) for v in sorted(values))
                terms.append(f"CAST({_quote(column)} AS VARCHAR) IN ({listed})")
        if {"source_system", "source_record_id"} <= set(columns) and self.source_ids:
            listed = ", ".join(
                f"({_literal(a)}, {_literal(b)})" for a, b in sorted(self.source_ids)
            )
            terms.append(
                f"(CAST(source_system AS VARCHAR), CAST(source_record_id AS VARCHAR)) IN ({listed})"
            )
        return " OR ".join(terms) if terms else None


def has_link_columns(columns: list[str]) -> bool:
    """Whether a table can be tied to a customer by its columns."""
    return bool(set(LINK_COLUMNS) & set(columns)) or {"source_system", "source_record_id"} <= set(
        columns
    )


def erase_in_table(
    con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], match: PersonMatch
) -> tuple[int, int]:
    """Delete the person's rows from a DuckDB table and redact their phones/emails in the rest.

    Tables without link columns (quarantine) lose every row mentioning the phone or email.

    Returns:
        ``(rows deleted, cells redacted)``.
    """
    names = list(columns)
    text_columns = [c for c, t in columns.items() if t.upper().startswith("VARCHAR")]
    pattern = match.pattern()
    deleted = redacted = 0
    linked = match.linked_sql(names)
    if linked is None and "raw_content" in columns and not has_link_columns(names):
        # quarantined rows: keep the row (counts reconcile), drop the content that holds them
        redacted += _drop_raw_content(con, table, match)
    if linked is None and not has_link_columns(names) and pattern and text_columns:
        linked = " OR ".join(
            f"regexp_matches({_quote(c)}, {_literal(pattern)}, 'i')" for c in text_columns
        )
    if linked:
        deleted = int(con.execute(f"DELETE FROM {table} WHERE {linked}").fetchall()[0][0])
    if pattern:
        for column in text_columns:
            q = _quote(column)
            done = con.execute(
                f"UPDATE {table} SET {q} = regexp_replace({q}, {_literal(pattern)}, "
                f"{_literal(REDACTED)}, 'gi') WHERE regexp_matches({q}, {_literal(pattern)}, 'i')"
            ).fetchall()
            redacted += int(done[0][0])
    quoted = match.quoted_values_pattern()
    if quoted and not has_link_columns(names):
        # JSON text in unlinked tables (check samples: unexpected examples and keys)
        replacement = _literal(f'"{REDACTED}"')
        for column in text_columns:
            q = _quote(column)
            done = con.execute(
                f"UPDATE {table} SET {q} = regexp_replace({q}, {_literal(quoted)}, "
                f"{replacement}, 'g') WHERE regexp_matches({q}, {_literal(quoted)})"
            ).fetchall()
            redacted += int(done[0][0])
    return deleted, redacted


def _drop_raw_content(con: duckdb.DuckDBPyConnection, table: str, match: PersonMatch) -> int:
    """Null ``raw_content`` where it holds the person's phone, e-mail, name or id."""
    parts = [p for p in (match.pattern(), match.quoted_values_pattern()) if p]
    if not parts:
        return 0
    pattern = _literal("|".join(f"(?:{p})" for p in parts))
    done = con.execute(
        f"UPDATE {table} SET raw_content = NULL "
        f"WHERE raw_content IS NOT NULL AND regexp_matches(raw_content, {pattern}, 'i')"
    ).fetchall()
    return int(done[0][0])


def erase_in_arrow(table: pa.Table, match: PersonMatch) -> tuple[pa.Table, int, int]:
    """The same erasure on an Arrow table (snapshot, export or mart file).

    Returns:
        ``(new table, rows deleted, cells redacted)``.
    """
    con = duckdb.connect()
    try:
        con.register("src", table)
        con.execute("CREATE TABLE t AS SELECT * FROM src")
        con.unregister("src")
        columns = {
            str(r[0]): str(r[1])
            for r in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 't'"
            ).fetchall()
        }
        deleted, redacted = erase_in_table(con, "t", columns, match)
        if not deleted and not redacted:
            return table, 0, 0
        out = con.sql("SELECT * FROM t").to_arrow_table()
    finally:
        con.close()
    return out.cast(table.schema) if out.schema != table.schema else out, deleted, redacted

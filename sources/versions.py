"""Record versions across deliveries: which version of each source record is current (SQL).

A delivery is a version of its source (docs/configuration.md, "Delivery semantics"). Every
raw row is one *sighting* of a record (``record_key``) in one delivered file; sightings are
ordered by the delivery date in the landing path (``<department>/<YYYY-MM-DD>/<file>``), then
by the record's ``updated_at`` when mapped, then by arrival (``ingested_at``, file, row). A
sighting whose content differs from the previous one starts a new **version**; a re-delivery
of the same content is the same version seen again (so an unchanged record keeps the lineage
of the delivery that introduced its values, and nothing downstream sees it as changed).

A record is **deleted at source** when its newest sighting is a deletion marker (``delta``
sources with ``deleted_flag``) or, for a ``full`` source, when a later delivery date of the
source does not contain it (deleted as of that date; a later sighting restores it). A late
delivery (older date arriving after a newer one) sorts by its date, so it never overwrites
newer values. Rows of withdrawn deliveries (``ops.withdrawn_deliveries``) are left out, which
makes the earlier versions current again.

Only SQL text is built here; ``warehouse``/``pipelines`` execute it over ``raw.<source>``.
"""

from __future__ import annotations

import re
from datetime import date

from sources.config import SourceConfig
from sources.model import CANONICAL_FIELDS

__all__ = [
    "VERSION_COLUMNS",
    "WITHDRAWN_COLUMNS",
    "current_records_sql",
    "delivery_date",
    "delivery_date_sql",
    "record_versions_sql",
]

WITHDRAWN_COLUMNS: tuple[str, ...] = (
    "source_system",
    "path",
    "sha256",
    "withdrawn_at",
    "reason",
    "withdrawn_by",
)
"""Columns of ``ops.withdrawn_deliveries`` (one row per withdrawn delivered file)."""

VERSION_COLUMNS: tuple[str, ...] = (
    "record_key",
    "source_system",
    "source_record_id",
    "version_no",
    "valid_from",
    "valid_to",
    "is_current",
    "change",
    "changed_fields",
    "delivery",
    "delivery_sha256",
    "run_id",
    *[f for f in CANONICAL_FIELDS if f != "source_record_id"],
)
"""Columns of ``history.record_versions``: every version of every record, with its reason."""

_DATE_IN_PATH = re.compile(r"(?:^|/)(\d{4}-\d{2}-\d{2})(?:/|$)")
_HASHED = (*[f for f in CANONICAL_FIELDS if f != "source_record_id"], "extra")
_TIMESTAMP_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d")


def delivery_date(path: str) -> date | None:
    """Return the delivery date a landing path names (its ``YYYY-MM-DD`` folder), if any.

    Args:
        path: A path relative to the landing folder.

    Returns:
        The date of the last ``YYYY-MM-DD`` folder in the path, or None.

    Example:
        >>> delivery_date("sales/2026-11-24/crm_customers.csv")
        datetime.date(2026, 11, 24)
    """
    found = _DATE_IN_PATH.findall(path.replace("\\", "/"))
    for text in reversed(found):
        try:
            return date.fromisoformat(text)
        except ValueError:
            continue
    return None


def delivery_date_sql(path: str = "source_file", fallback: str = "ingested_at") -> str:
    """SQL for a row's delivery date: the path's ``YYYY-MM-DD`` folder, else the ingest date.

    Args:
        path: The column holding the landing-relative path.
        fallback: The column holding the ISO ingest timestamp.

    Returns:
        A DuckDB ``DATE`` expression.
    """
    folder = rf"regexp_extract({path}, '(^|/)(\d{{4}}-\d{{2}}-\d{{2}})(/|$)', 2)"
    return f"coalesce(try_cast({folder} AS DATE), try_cast(substr({fallback}, 1, 10) AS DATE))"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _deletion_sql(source: SourceConfig) -> str:
    flag = source.deleted_flag
    if flag is None:
        return "false"
    cells = ", ".join(f"extra ->> {_literal(h)}" for h in flag.headers)
    values = ", ".join(_literal(v.strip().lower()) for v in flag.values)
    return f"coalesce(lower(trim(coalesce({cells}))) IN ({values}), false)"


def _updated_sql() -> str:
    formats = "[" + ", ".join(_literal(f) for f in _TIMESTAMP_FORMATS) + "]"
    return f"coalesce(try_cast(updated_at AS TIMESTAMP), try_strptime(updated_at, {formats}))"


def _withdrawn_filter(withdrawn_table: str | None) -> str:
    if withdrawn_table is None:
        return ""
    return (
        f" AND NOT EXISTS (SELECT 1 FROM {withdrawn_table} AS w"
        " WHERE w.source_system = r.source_system AND w.path = r.source_file"
        " AND w.sha256 = r.source_sha256)"
    )


def _sightings_sql(raw_table: str, source: SourceConfig, withdrawn_table: str | None) -> str:
    """CTEs ending in ``numbered``: every live sighting with its version number and gaps."""
    content = ", ".join(_quoted(c) for c in _HASHED)
    full = "true" if source.delivery == "full" else "false"
    order = "delivery_date, updated_ts NULLS FIRST, ingested_at, source_file, source_row"
    return f"""
    live AS (
        SELECT r.* EXCLUDE (active),
               {delivery_date_sql("r.source_file", "r.ingested_at")} AS delivery_date,
               {_deletion_sql(source)} AS is_deletion,
               hash({content}) AS content_hash
        FROM {raw_table} AS r
        WHERE r.active{_withdrawn_filter(withdrawn_table)}
    ),
    source_dates AS (
        SELECT delivery_date AS d, min(source_file) AS first_file,
               lead(delivery_date) OVER (ORDER BY delivery_date) AS next_d
        FROM live GROUP BY delivery_date
    ),
    ordered AS (
        SELECT l.*, {_updated_sql()} AS updated_ts,
               CASE WHEN {full} THEN s.next_d END AS next_source_date
        FROM live AS l JOIN source_dates AS s ON s.d = l.delivery_date
    ),
    sequenced AS (
        SELECT *,
               row_number() OVER w AS seq,
               count(*) OVER (PARTITION BY record_key) AS sightings,
               lag(content_hash) OVER w AS prev_hash,
               lag(is_deletion) OVER w AS prev_deletion,
               lead(delivery_date) OVER w AS next_sighting
        FROM ordered
        WINDOW w AS (PARTITION BY record_key ORDER BY {order})
    ),
    gapped AS (
        SELECT *,
               coalesce(NOT is_deletion AND next_source_date IS NOT NULL
                        AND (next_sighting IS NULL OR next_sighting > next_source_date),
                        false) AS gap_after
        FROM sequenced
    ),
    numbered AS (
        SELECT *,
               sum(CASE WHEN seq = 1 OR prev_hash <> content_hash
                         OR prev_deletion <> is_deletion OR prev_gap THEN 1 ELSE 0 END)
                   OVER (PARTITION BY record_key ORDER BY seq ROWS UNBOUNDED PRECEDING)
                   AS version_no
        FROM (SELECT *, coalesce(lag(gap_after) OVER (PARTITION BY record_key ORDER BY seq),
                                 false) AS prev_gap
              FROM gapped)
    )"""


_HELPERS = (
    "delivery_date, is_deletion, content_hash, updated_ts, next_source_date, seq, sightings, "
    "prev_hash, prev_deletion, next_sighting, gap_after, prev_gap, version_no"
)


def current_records_sql(
    raw_table: str, source: SourceConfig, withdrawn_table: str | None = None
) -> str:
    """SQL selecting the current version of every record of one source (one row a key).

    The row carries the raw columns of the sighting that *introduced* the current values
    (its file, row, sha256 and ingest time: an unchanged re-delivery changes nothing), plus
    ``delivery_date`` (that sighting's date), ``version_no``, ``last_delivery_date`` (the
    newest sighting) and ``deleted_at_source`` (a ``DATE`` when the record is deleted at
    source, else null). A record whose only versions are deletion markers is left out.

    Args:
        raw_table: The source's raw table (``raw.<source>``; columns of the raw layer plus
            ``run_id`` and ``active``).
        source: The source's mapping (``delivery``, ``deleted_flag``).
        withdrawn_table: ``ops.withdrawn_deliveries`` (None: nothing withdrawn).

    Returns:
        A ``SELECT`` statement.
    """
    return f"""
    WITH {_sightings_sql(raw_table, source, withdrawn_table)},
    state AS (
        SELECT record_key,
               arg_max(is_deletion, seq) AS ends_deleted,
               arg_max(delivery_date, seq) AS newest_date,
               arg_max(gap_after, seq) AS ends_in_gap,
               arg_max(next_source_date, seq) AS gap_date,
               max(delivery_date) AS last_delivery_date
        FROM numbered GROUP BY record_key
    ),
    valued AS (
        SELECT * FROM numbered
        WHERE NOT is_deletion
        QUALIFY row_number() OVER (PARTITION BY record_key ORDER BY seq DESC) = 1
    ),
    introduced AS (
        SELECT n.* FROM numbered AS n JOIN valued AS v
          ON n.record_key = v.record_key AND n.version_no = v.version_no
        QUALIFY row_number() OVER (PARTITION BY n.record_key ORDER BY n.seq) = 1
    )
    SELECT i.* EXCLUDE ({_HELPERS}),
           i.delivery_date, i.version_no, s.last_delivery_date,
           CASE WHEN s.ends_deleted THEN s.newest_date
                WHEN s.ends_in_gap THEN s.gap_date END AS deleted_at_source
    FROM introduced AS i JOIN state AS s USING (record_key)
    """


def record_versions_sql(
    raw_table: str, source: SourceConfig, withdrawn_table: str | None = None
) -> str:
    """SQL listing every version of every record of one source, with date and reason.

    One row per version (``VERSION_COLUMNS``): ``change`` is ``created``, ``changed`` (with
    ``changed_fields``), ``deleted_at_source`` or ``restored``; ``delivery`` is the file that
    brought the version (for a record missing from a full delivery, the first file of that
    delivery date); ``valid_from``/``valid_to`` are delivery dates (``valid_to`` null on the
    current version).

    Args:
        raw_table: The source's raw table.
        source: The source's mapping.
        withdrawn_table: ``ops.withdrawn_deliveries`` (None: nothing withdrawn).

    Returns:
        A ``SELECT`` statement.
    """
    fields = [f for f in CANONICAL_FIELDS if f != "source_record_id"]
    changed = ", ".join(
        f"CASE WHEN {_quoted(f)} IS DISTINCT FROM lag({_quoted(f)}) OVER v THEN {_literal(f)} END"
        for f in fields
    )
    values = ", ".join(_quoted(f) for f in fields)
    nulls = ", ".join(f"NULL AS {_quoted(f)}" for f in fields)
    return f"""
    WITH {_sightings_sql(raw_table, source, withdrawn_table)},
    starts AS (
        SELECT record_key, source_system, source_record_id, version_no,
               delivery_date AS valid_from, source_file AS delivery,
               source_sha256 AS delivery_sha256, run_id, is_deletion, seq, {values}
        FROM numbered
        QUALIFY row_number() OVER (PARTITION BY record_key, version_no ORDER BY seq) = 1
    ),
    explicit AS (
        SELECT *,
               CASE WHEN version_no = 1 THEN 'created'
                    WHEN is_deletion THEN 'deleted_at_source'
                    WHEN lag(is_deletion) OVER v THEN 'restored'
                    ELSE 'changed' END AS change,
               CASE WHEN version_no = 1 OR is_deletion OR lag(is_deletion) OVER v
                    THEN NULL
                    ELSE array_to_string(list_filter([{changed}], lambda x: x IS NOT NULL), ', ')
               END AS changed_fields
        FROM starts
        WINDOW v AS (PARTITION BY record_key ORDER BY version_no)
    ),
    implicit AS (
        SELECT n.record_key, n.source_system, n.source_record_id,
               n.version_no + 0.5 AS version_no, n.next_source_date AS valid_from,
               d.first_file AS delivery, NULL AS delivery_sha256, n.run_id, true AS is_deletion,
               n.seq, {nulls}, 'deleted_at_source' AS change, NULL AS changed_fields
        FROM numbered AS n JOIN source_dates AS d ON d.d = n.next_source_date
        WHERE n.gap_after
    ),
    events AS (
        SELECT * FROM explicit
        UNION ALL BY NAME
        SELECT * FROM implicit
    ),
    renumbered AS (
        SELECT * EXCLUDE (version_no, is_deletion, seq),
               row_number() OVER v AS version_no,
               lead(valid_from) OVER v AS valid_to
        FROM events
        WINDOW v AS (PARTITION BY record_key ORDER BY version_no)
    )
    SELECT record_key, source_system, source_record_id, version_no, valid_from, valid_to,
           valid_to IS NULL AS is_current,
           CASE WHEN change = 'changed' AND version_no > 1
                 AND lag(change) OVER (PARTITION BY record_key ORDER BY version_no)
                     = 'deleted_at_source'
                THEN 'restored' ELSE change END AS change,
           changed_fields, delivery, delivery_sha256, run_id, {values}
    FROM renumbered
    """

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
    "TAIL_COLUMNS",
    "VERSION_COLUMNS",
    "WITHDRAWN_COLUMNS",
    "arrival_order_sql",
    "current_from_numbered_sql",
    "current_records_sql",
    "delivery_date",
    "delivery_date_sql",
    "fold_sql",
    "later_sql",
    "new_sightings_sql",
    "numbered_sightings_sql",
    "record_versions_sql",
    "version_tails_sql",
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


def _live_columns_sql(source: SourceConfig) -> str:
    """The per-sighting columns every resolution adds to a raw row (``r``)."""
    content = ", ".join(_quoted(c) for c in _HASHED)
    return (
        f"{delivery_date_sql('r.source_file', 'r.ingested_at')} AS delivery_date,"
        f" {_deletion_sql(source)} AS is_deletion, hash({content}) AS content_hash"
    )


def _sightings_sql(
    raw_table: str,
    source: SourceConfig,
    withdrawn_table: str | None,
    where: str = "",
    dates_table: str | None = None,
) -> str:
    """CTEs ending in ``numbered``: every live sighting with its version number and gaps.

    ``where`` narrows the sightings (e.g. to some record keys: ``r.record_key IN (…)``); the
    source's delivery dates then come from ``dates_table`` (``d, next_d``: every live date of
    the source), since the gaps of a ``full`` source depend on all of them.
    """
    full = "true" if source.delivery == "full" else "false"
    order = "delivery_date, updated_ts NULLS FIRST, ingested_at, source_file, source_row"
    if dates_table is None:
        dates = """SELECT delivery_date AS d, min(source_file) AS first_file,
               lead(delivery_date) OVER (ORDER BY delivery_date) AS next_d
        FROM live GROUP BY delivery_date"""
    else:
        dates = f"SELECT d, NULL AS first_file, next_d FROM {dates_table}"
    return f"""
    live AS (
        SELECT r.* EXCLUDE (active), {_live_columns_sql(source)}
        FROM {raw_table} AS r
        WHERE r.active{_withdrawn_filter(withdrawn_table)}{f" AND ({where})" if where else ""}
    ),
    source_dates AS (
        {dates}
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


def arrival_order_sql(alias: str) -> str:
    """The order sightings arrived in (columns of the table aliased ``alias``).

    The current version's lineage is its first sighting in this order: the delivery that
    first brought the current values, whatever date a later delivery of them names.
    """
    return f"{alias}.ingested_at, {alias}.source_file, {alias}.source_row"


def _current_select(numbered: str) -> str:
    """The current version per record from the sightings in ``numbered`` (see below)."""
    return f"""
    state AS (
        SELECT record_key,
               arg_max(is_deletion, seq) AS ends_deleted,
               arg_max(delivery_date, seq) AS newest_date,
               arg_max(gap_after, seq) AS ends_in_gap,
               arg_max(next_source_date, seq) AS gap_date,
               max(delivery_date) AS last_delivery_date
        FROM {numbered} GROUP BY record_key
    ),
    valued AS (
        SELECT * FROM {numbered}
        WHERE NOT is_deletion
        QUALIFY row_number() OVER (PARTITION BY record_key ORDER BY seq DESC) = 1
    ),
    introduced AS (
        SELECT n.* FROM {numbered} AS n JOIN valued AS v
          ON n.record_key = v.record_key AND n.version_no = v.version_no
        QUALIFY row_number() OVER (PARTITION BY n.record_key ORDER BY {arrival_order_sql("n")}) = 1
    )
    SELECT i.* EXCLUDE ({_HELPERS}),
           i.delivery_date, i.version_no, s.last_delivery_date,
           CASE WHEN s.ends_deleted THEN s.newest_date
                WHEN s.ends_in_gap THEN s.gap_date END AS deleted_at_source
    FROM introduced AS i JOIN state AS s USING (record_key)
    """


def current_records_sql(
    raw_table: str,
    source: SourceConfig,
    withdrawn_table: str | None = None,
    where: str = "",
    dates_table: str | None = None,
) -> str:
    """SQL selecting the current version of every record of one source (one row a key).

    The row carries the raw columns of the sighting that *introduced* the current values: of
    the current version's sightings, the one that arrived first (``arrival_order_sql``: its file,
    row, sha256 and ingest time). So an unchanged re-delivery changes nothing, and neither
    does a late delivery (an older date arriving later) with the same values: it dates the
    version earlier in ``record_versions_sql``, but the values came with the earlier arrival.
    Plus ``delivery_date`` (that sighting's date), ``version_no``, ``last_delivery_date`` (the
    newest sighting) and ``deleted_at_source`` (a ``DATE`` when the record is deleted at
    source, else null). A record whose only versions are deletion markers is left out.

    Args:
        raw_table: The source's raw table (``raw.<source>``; columns of the raw layer plus
            ``run_id`` and ``active``).
        source: The source's mapping (``delivery``, ``deleted_flag``).
        withdrawn_table: ``ops.withdrawn_deliveries`` (None: nothing withdrawn).
        where: Only the records this condition on the raw row (``r``) selects; every one of
            their sightings must pass it (a condition on ``record_key``).
        dates_table: Every live delivery date of the source (``d, next_d``); required with
            ``where``, which would otherwise hide the dates of other records.

    Returns:
        A ``SELECT`` statement.
    """
    sightings = _sightings_sql(raw_table, source, withdrawn_table, where, dates_table)
    return f"WITH {sightings}, {_current_select('numbered')}"


def numbered_sightings_sql(
    raw_table: str,
    source: SourceConfig,
    withdrawn_table: str | None = None,
    where: str = "",
    dates_table: str | None = None,
) -> str:
    """SQL of every live sighting with its order (``seq``), ``version_no`` and gap flags.

    What ``current_from_numbered_sql`` and ``version_tails_sql`` read once materialized
    (arguments as ``current_records_sql``).
    """
    sightings = _sightings_sql(raw_table, source, withdrawn_table, where, dates_table)
    return f"WITH {sightings} SELECT * FROM numbered"


def current_from_numbered_sql(numbered: str) -> str:
    """``current_records_sql`` over a materialized ``numbered_sightings_sql`` table."""
    return f"WITH {_current_select(numbered)}"


TAIL_COLUMNS: tuple[str, ...] = (
    "record_key",
    "t_hash",
    "t_deletion",
    "t_date",
    "t_updated",
    "t_ingested",
    "t_file",
    "t_row",
    "t_version",
)
"""Columns of a record's stored *tail*: its newest sighting (content hash, deletion marker,
order: date, updated_at, arrival, file, row; version number). What a new sighting is
folded onto."""


def version_tails_sql(numbered: str) -> str:
    """SQL of each record's tail (``TAIL_COLUMNS``) from a materialized ``numbered`` table."""
    return f"""
    SELECT record_key, content_hash AS t_hash, is_deletion AS t_deletion,
           delivery_date AS t_date, updated_ts AS t_updated, ingested_at AS t_ingested,
           source_file AS t_file, source_row AS t_row, version_no AS t_version
    FROM {numbered} WHERE seq = sightings
    """


def new_sightings_sql(
    raw_table: str, source: SourceConfig, files_table: str, dates_table: str
) -> str:
    """SQL of the sightings in some delivered files, with the columns the fold needs.

    Args:
        raw_table: The source's raw table.
        source: The source's mapping.
        files_table: ``source_file, source_sha256`` of the (live) files to read.
        dates_table: Every live delivery date of the source (``d, next_d``).
    """
    full = "true" if source.delivery == "full" else "false"
    return f"""
    SELECT l.*, {_updated_sql()} AS updated_ts,
           CASE WHEN {full} THEN s.next_d END AS next_source_date
    FROM (SELECT r.* EXCLUDE (active), {_live_columns_sql(source)}
          FROM {raw_table} AS r
          SEMI JOIN {files_table} AS f
            ON f.source_file = r.source_file AND f.source_sha256 = r.source_sha256
          WHERE r.active) AS l
    JOIN {dates_table} AS s ON s.d = l.delivery_date
    """


def later_sql(new: str, tail: str) -> str:
    """SQL: the sighting ``new`` sorts after the tail ``tail`` (the resolution's order)."""
    n, t = new, tail
    updated_eq = f"{n}.updated_ts IS NOT DISTINCT FROM {t}.t_updated"
    updated_gt = (
        f"({n}.updated_ts IS NOT NULL AND ({t}.t_updated IS NULL"
        f" OR {n}.updated_ts > {t}.t_updated))"
    )
    return (
        f"({n}.delivery_date > {t}.t_date OR ({n}.delivery_date = {t}.t_date AND ({updated_gt}"
        f" OR ({updated_eq} AND ({n}.ingested_at > {t}.t_ingested"
        f" OR ({n}.ingested_at = {t}.t_ingested AND ({n}.source_file > {t}.t_file"
        f" OR ({n}.source_file = {t}.t_file AND {n}.source_row > {t}.t_row))))))))"
    )


def fold_sql(new: str, tails: str, dates_table: str, source: SourceConfig) -> str:
    """SQL folding new sightings onto each record's stored tail (the resolution, continued).

    For records whose every new sighting sorts after their tail (no late delivery among
    them), numbering the new sightings from the tail gives the versions a resolution over
    all sightings would give. One row per new sighting: its raw columns, ``seq`` /
    ``sightings`` among the new ones, ``version_no``, and ``starts`` (it begins a version).

    Args:
        new: ``new_sightings_sql`` rows of the records to fold.
        tails: Stored tails (``TAIL_COLUMNS``); a record without one is new.
        dates_table: Every live delivery date of the source (``d, next_d``).
        source: The source's mapping (a ``full`` source has gaps).
    """
    order = "delivery_date, updated_ts NULLS FIRST, ingested_at, source_file, source_row"
    tail_next = "d.next_d" if source.delivery == "full" else "NULL::DATE"
    return f"""
    WITH seqd AS (
        SELECT *,
               row_number() OVER w AS seq,
               count(*) OVER (PARTITION BY record_key) AS sightings,
               lag(content_hash) OVER w AS lag_hash,
               lag(is_deletion) OVER w AS lag_deletion,
               lag(next_source_date) OVER w AS lag_next
        FROM {new}
        WINDOW w AS (PARTITION BY record_key ORDER BY {order})
    ),
    prior AS (
        SELECT s.*, t.t_version, t.record_key IS NOT NULL AS has_tail,
               CASE WHEN s.seq = 1 THEN t.t_hash ELSE s.lag_hash END AS prev_hash,
               CASE WHEN s.seq = 1 THEN t.t_deletion ELSE s.lag_deletion END AS prev_deletion,
               CASE WHEN s.seq = 1 THEN {tail_next} ELSE s.lag_next END AS prev_next
        FROM seqd AS s
        LEFT JOIN {tails} AS t ON t.record_key = s.record_key
        LEFT JOIN {dates_table} AS d ON d.d = t.t_date
    ),
    flagged AS (
        SELECT *,
               (seq = 1 AND NOT has_tail) OR prev_hash <> content_hash
               OR prev_deletion <> is_deletion
               OR coalesce(NOT prev_deletion AND prev_next IS NOT NULL
                           AND delivery_date > prev_next, false) AS starts
        FROM prior
    )
    SELECT * EXCLUDE (lag_hash, lag_deletion, lag_next, prev_hash, prev_deletion, prev_next),
           coalesce(t_version, 0)
             + sum(starts::INTEGER) OVER (PARTITION BY record_key ORDER BY seq
                                          ROWS UNBOUNDED PRECEDING) AS version_no
    FROM flagged
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

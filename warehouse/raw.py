"""The raw layer (``raw.<source>``): table DDL, appending a delivery, and reading active rows."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.db import create_empty_table, table_exists, to_duckdb_arrow

RAW_LINEAGE = (
    "record_key",
    "source_system",
    "source_file",
    "source_row",
    "source_sha256",
    "ingested_at",
    "extra",
    "attributes",  # declared identifiers (sources.yml `attributes:`), JSON text
)

RAW_FILES_TABLE = "ops.raw_files"
"""Per-file index of the raw layer: one row per (source, file, sha256, ingest day, run) with the
number of its active rows, kept in step with ``raw.<source>`` by :func:`persist_delivery`. The
version step reads its live files here (a few rows per delivery) instead of grouping every raw
row (which grows by a whole source with each full re-export)."""

__all__ = [
    "RAW_FILES_TABLE",
    "RAW_LINEAGE",
    "RawStaging",
    "active_raw_rows",
    "ensure_raw_table",
    "index_raw_rows",
    "insert_frame",
    "persist_delivery",
    "raw_table",
    "reindex_raw_files",
    "rejected_files",
]


def raw_table(source: str) -> str:
    """The raw table of one source (``raw.<source>``)."""
    return f"raw.{source}"


def ensure_raw_table(
    con: duckdb.DuckDBPyConnection, source: str, canonical_fields: Sequence[str]
) -> None:
    """Create ``raw.<source>`` (all text, lineage, ``run_id`` and ``active``) if absent."""
    cols = [f'"{c}" VARCHAR' for c in canonical_fields]
    cols += [f'"{c}" VARCHAR' for c in RAW_LINEAGE if c != "source_row"]
    cols += ['"source_row" BIGINT', '"run_id" VARCHAR', '"active" BOOLEAN']
    con.execute(f"CREATE TABLE IF NOT EXISTS {raw_table(source)} ({', '.join(cols)})")
    # columns added since the table was created (identity fields, attributes) arrive empty
    for c in [*canonical_fields, *RAW_LINEAGE]:
        con.execute(f'ALTER TABLE {raw_table(source)} ADD COLUMN IF NOT EXISTS "{c}" VARCHAR')


def _ensure_raw_files(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {RAW_FILES_TABLE} (source VARCHAR, source_system VARCHAR,"
        " source_file VARCHAR, source_sha256 VARCHAR, ingest_day VARCHAR, run_id VARCHAR,"
        " n BIGINT)"
    )


def index_raw_rows(con: duckdb.DuckDBPyConnection, source: str, relation: str) -> None:
    """Add the active rows of ``relation`` (rows just appended to ``raw.<source>``) to the index.

    Call it with exactly the rows appended, in the transaction that appends them.
    """
    _ensure_raw_files(con)
    con.execute(
        f"""INSERT INTO {RAW_FILES_TABLE}
        SELECT ? AS source, source_system, source_file, source_sha256,
               substr(ingested_at, 1, 10) AS ingest_day, run_id, count(*) AS n
        FROM {relation} WHERE active GROUP BY ALL""",
        [source],
    )


def reindex_raw_files(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Rebuild the index rows of one source from ``raw.<source>`` (reads every raw row).

    For a warehouse written before the index existed, and after raw rows were deleted in place
    (an erasure): the version step does it when it resolves a source whole.
    """
    _ensure_raw_files(con)
    con.execute(f"DELETE FROM {RAW_FILES_TABLE} WHERE source = ?", [source])
    index_raw_rows(con, source, raw_table(source))


def insert_frame(
    con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame | pa.Table
) -> None:
    """Append a frame inside the caller's transaction, creating the table from it if absent."""
    con.register("_frame", frame)
    try:
        create_empty_table(con, table, "SELECT * FROM _frame", if_not_exists=True)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame")
    finally:
        con.unregister("_frame")


class RawStaging:
    """The batches of one source's ingest, spilled to Parquet files until published.

    A file read in batches (``sources.ingest_source``'s ``sink``) lands here batch by batch,
    so its rows are never all in memory; :func:`persist_delivery` inserts them into
    ``raw.<source>`` and ``quarantine.rows`` in its one transaction (nothing is in the
    warehouse before: a run that stops leaves no partial delivery). ``close`` removes the
    files.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._folder: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="ingest-batches-"
        )
        self.folder = Path(self._folder.name)
        self.row_files: list[Path] = []
        self.quarantine_files: list[Path] = []
        self.rows = 0
        self.quarantined = 0
        self.ingested_at: str | None = None
        """When set, the staged rows' ``ingested_at`` as published (see :meth:`relation`)."""

    def __getstate__(self) -> dict[str, object]:
        """A copy for another process writes into the same folder but never removes it."""
        state = dict(self.__dict__)
        state["_folder"] = None
        return state

    def adopt(self, other: RawStaging) -> None:
        """Take what ``other`` (a copy of this staging filled in another process) spilled."""
        if other.folder != self.folder:
            raise ValueError(f"staged files in {other.folder}, not in {self.folder}")
        self.row_files, self.quarantine_files = list(other.row_files), list(other.quarantine_files)
        self.rows, self.quarantined = other.rows, other.quarantined

    def _write(self, frame: pd.DataFrame, kind: str) -> Path:
        files = self.row_files if kind == "rows" else self.quarantine_files
        path = self.folder / f"{kind}-{len(files):06d}.parquet"
        pq.write_table(to_duckdb_arrow(frame), path)
        files.append(path)
        return path

    def append(self, rows: pd.DataFrame, quarantined_rows: pd.DataFrame) -> None:
        """Spill one batch of kept and quarantined rows."""
        if len(rows):
            self._write(rows.assign(run_id=self.run_id, active=True), "rows")
            self.rows += len(rows)
        if len(quarantined_rows):
            self._write(quarantined_rows.assign(run_id=self.run_id), "quarantine")
            self.quarantined += len(quarantined_rows)

    def discard(self, source_file: str) -> None:
        """Forget the rows spilled for one file (it broke after some batches)."""
        for files, counter in ((self.row_files, "rows"), (self.quarantine_files, "quarantined")):
            for path in files:
                table = pq.read_table(path)
                keep = pc.not_equal(table.column("source_file"), source_file)
                kept = table.filter(keep)
                if kept.num_rows != table.num_rows:
                    pq.write_table(kept, path)
                    setattr(self, counter, getattr(self, counter) - table.num_rows + kept.num_rows)

    def relation(self, kind: str) -> str | None:
        """The spilled rows (``rows`` or ``quarantine``) as a DuckDB relation, in order.

        With ``ingested_at`` set, the kept rows carry it instead of the stamp they were read
        with (rows read ahead of their stage, `pipelines.ingest_ahead`, take the stage's).
        """
        files = self.row_files if kind == "rows" else self.quarantine_files
        if not files:
            return None
        listed = ", ".join(_quoted(str(p)) for p in files)
        scan = f"read_parquet([{listed}], union_by_name = true)"
        if kind == "rows" and self.ingested_at is not None:
            return f"(SELECT * REPLACE ({_quoted(self.ingested_at)} AS ingested_at) FROM {scan})"
        return scan

    def close(self) -> None:
        """Remove the spilled files (a copy made for another process removes nothing)."""
        if self._folder is not None:
            self._folder.cleanup()


def _quoted(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def persist_delivery(
    con: duckdb.DuckDBPyConnection,
    source: str,
    canonical_fields: Sequence[str],
    rows: pd.DataFrame | pa.Table,
    superseded_files: Iterable[Path | str],
    side_tables: dict[str, pd.DataFrame],
    run_id: str,
    staged: RawStaging | None = None,
) -> None:
    """Write one source's ingest into the warehouse in one transaction.

    Args:
        con: the warehouse.
        source: the source name (``raw.<source>``).
        canonical_fields: the canonical text columns of every raw table.
        rows: the rows read, a frame or an Arrow table (``run_id`` and ``active`` are added
            here).
        superseded_files: earlier files this delivery replaces (their rows become inactive).
        side_tables: ``quarantine.rows``, ``quarantine.files`` and ``ops.deliveries`` frames.
        run_id: the run writing.
        staged: batches spilled while reading: published before ``rows`` (they come
            earlier in the file order).

    The per-file index ``ops.raw_files`` is kept in step (same transaction).
    """
    if isinstance(rows, pa.Table):
        count = rows.num_rows
        rows = rows.append_column("run_id", pa.array([run_id] * count, pa.string()))
        rows = rows.append_column("active", pa.array([True] * count, pa.bool_()))
    else:
        rows = rows.copy()
        rows["run_id"] = run_id
        rows["active"] = True
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_raw_table(con, source, canonical_fields)
        for old_path in superseded_files:
            con.execute(
                f"UPDATE {raw_table(source)} SET active = false "
                "WHERE source_file = ? AND run_id <> ?",
                [str(old_path), run_id],
            )
            _ensure_raw_files(con)
            con.execute(
                f"DELETE FROM {RAW_FILES_TABLE} WHERE source = ? AND source_file = ?"
                " AND run_id <> ?",
                [source, str(old_path), run_id],
            )
        if staged is not None:
            _publish_staged(con, source, staged)
        if len(rows):
            insert_frame(con, raw_table(source), rows)
            con.register("_indexed", rows)
            try:
                index_raw_rows(con, source, "_indexed")
            finally:
                con.unregister("_indexed")
        for name, frame in side_tables.items():
            if len(frame) or name.startswith("quarantine."):  # quarantine tables always exist
                _add_new_columns(con, name, frame)
                insert_frame(
                    con, name, frame.assign(run_id=run_id) if "run_id" not in frame else frame
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _add_new_columns(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Give an existing side table the text columns a later version writes (e.g.
    ``ops.deliveries.mapping_sha256``); earlier rows hold NULL there."""
    if not table_exists(con, table):
        return
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    for column in frame.columns:
        if column not in have:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" VARCHAR')


def rejected_files(con: duckdb.DuckDBPyConnection, source: str) -> set[tuple[str, str, str]]:
    """The files of a source earlier runs quarantined whole: (path, sha256, run_id)."""
    if not table_exists(con, "quarantine.files"):
        return set()
    rows = con.execute(
        "SELECT source_file, source_sha256, run_id FROM quarantine.files"
        " WHERE source_system = ? AND source_sha256 IS NOT NULL",
        [source],
    ).fetchall()
    return {(str(path), str(sha), str(run)) for path, sha, run in rows}


def _publish_staged(con: duckdb.DuckDBPyConnection, source: str, staged: RawStaging) -> None:
    """Insert spilled batches into ``raw.<source>`` and ``quarantine.rows`` (caller's
    transaction), in the order they were spilled."""
    rows = staged.relation("rows")
    if rows is not None:
        con.execute(f"INSERT INTO {raw_table(source)} BY NAME SELECT * FROM {rows}")
        index_raw_rows(con, source, rows)
    quarantined = staged.relation("quarantine")
    if quarantined is not None:
        create_empty_table(
            con, "quarantine.rows", f"SELECT * FROM {quarantined}", if_not_exists=True
        )
        con.execute(f"INSERT INTO quarantine.rows BY NAME SELECT * FROM {quarantined}")


def active_raw_rows(
    con: duckdb.DuckDBPyConnection, sources: list[str], canonical_fields: Sequence[str]
) -> pd.DataFrame:
    """All active raw rows of the given sources, as one all-text frame.

    Read through Arrow (far faster than ``.df()``); text columns stay Arrow-backed ``string``,
    the dtype cleaning works in.
    """
    frames = []
    text = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
    for s in sources:
        if table_exists(con, raw_table(s)):
            table = con.sql(
                f"SELECT * EXCLUDE (active, run_id) FROM {raw_table(s)} WHERE active"
            ).to_arrow_table()
            frames.append(table.to_pandas(types_mapper=text.get))
    if not frames:
        return pd.DataFrame(columns=[*canonical_fields, *RAW_LINEAGE])
    return pd.concat(frames, ignore_index=True)

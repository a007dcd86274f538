"""The part of the stored link a nightly change can reach, found and read in DuckDB.

A nightly link (`dedupe.link_subset_delta`) needs, of the previous link in ``match.*``, only
the records its change can reach; this module finds them in SQL over ``match.prepared`` and
``match.pairs`` and reads only those (docs/dedupe.md, "The nightly link from the reached
records only"):

1. `StoredSubset.rows`: stored prepared rows by key (the old versions of changed records);
   `StoredSubset.groups`: the stored rows sharing a value of a column (the whole-set flags
   are counted over such groups);
2. `StoredSubset.reach` (pass 1): for each blocking rule (a `Layout`), the new state's blocks
   of the changed records and of their old versions are ranked in the rule's window order
   (order column as text, ties by record_key) with their whole size before and after; a block
   small now is taken whole, one crossing the cap whole, an oversize one only around the
   changed places and the gaps old versions left (the block totals counted once a block).
   To those come the steward-decided records, those sharing a valid id number with a new
   version, and every record an old version shares a stored pair with. Their prepared rows,
   the stored pairs among them (positions, not keys) and each record's window place and block
   size per rule are read (a record of an untouched block within the cap: its block's size
   only, place 0);
3. `StoredSubset.grow` (pass 2): the matcher found the touched records on pass 1; the whole
   strong-pair components (and valid id number groups) of those are added (a fixed point in
   SQL, one frontier a round), nothing more: a weak partner of a component's member outside
   the reach keeps its pair's row (the pair joins two components: its decision and review
   row depend on the pair alone, which no change reached), so it is not read, and the delta
   is written only within the records read (`write_match_delta`'s ``within``). The places
   and stored pairs pass 1 read are kept, not read again: only the stored pairs with an end
   among the records pass 2 adds are (`_merged_pairs`). Pass 1's prepared rows are read
   again (only their keys are kept: the rows are not held through pass 1's link). Nothing
   else of ``match.*`` leaves DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dedupe.pairset import arrow_strings, concat_taken, positions_of
from warehouse.db import (
    MEMORY_LIMIT_SETTING,
    log,
    memory_limit_at_most,
    memory_limit_bytes,
    table_columns,
    to_duckdb_arrow,
)
from warehouse.match_state import (
    PREPARED_TABLE,
    PREPARED_VERSION,
    READ_ROW_HASH,
    READ_ROW_ID,
    ReadPairs,
    prepared_frame,
    storage_layout,
    stored_pair_labels,
    stored_pair_select,
    stored_row_hash,
)

__all__ = ["Layout", "ReadSubset", "StoredSubset"]


@dataclass(frozen=True)
class Layout:
    """One blocking rule's windowing: block key column, order column, cap and window."""

    key: str
    order: str
    cap: int
    window: int


@dataclass
class ReadSubset:
    """What `StoredSubset.reach` read.

    Attributes:
        prepared: the stored prepared rows of the reached records, sorted by record_key.
        pairs: the stored pairs between them: left, right (positions into `prepared`), rule
            and hard (codes into `rule_names` / `hard_names`, -1 none), score, probability,
            every ``<comparison>_level``, and each pair's ``rowid`` in ``match.pairs`` and
            hash of its stored values (`READ_ROW_ID`, `READ_ROW_HASH`: what the delta write
            compares and deletes by, `warehouse.match_state.ReadPairs`).
        rule_names, hard_names: the labels behind the codes.
        steward_pairs: every stored pair with a steward decision (left_key, right_key,
            steward_decision).
        places: per `Layout` (``key/order``), for the reached records and the new versions
            in the new state: record_key, place (in the block's window order) and size (the
            block's whole size); records without a key are absent. A record of a block no
            change touched that is within the rule's cap has place 0: every pair of such a
            block is generated whatever the order.
        gaps: per `Layout`, for the old versions of changed records: record_key and gap (the
            place in the new state of the first member ordered after the old version).
    """

    prepared: pd.DataFrame
    pairs: dict[str, np.ndarray]
    rule_names: list[str]
    hard_names: list[str]
    steward_pairs: pd.DataFrame
    places: dict[str, pd.DataFrame]
    gaps: dict[str, pd.DataFrame]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _keys(values: Sequence[str] | np.ndarray) -> pa.Table:
    return pa.table({"record_key": pa.array(np.asarray(values, dtype=object), type=pa.string())})


SUBSET_MEMORY_MIB = 1024
"""DuckDB's ``memory_limit`` while a nightly reads its reach (at most; a lower limit stays).

At 1 M records DuckDB fills this bound (cached blocks of ``match.prepared`` / ``match.pairs``
beside the rank tables, ≈ 0.26 GB) while Python builds the rows and pairs read. 640 MiB took
≈ 0.25 GB off the link's peak but cost the reads ≈ 4–7 CPU s at 1 M (DuckDB re-reads and
decrypts what it no longer caches); 384 MiB made the rank tables spill and doubled the reads'
CPU (BENCHMARKS.md, "Nightly match stage at 1 M: the link's peak …"). A nightly's time is
what its window limits; its peak stays below a full run's, which sizes the machine: 1 GiB."""


SCAN_MARGIN_MIB = 128
"""DuckDB's memory beyond what it holds besides cached blocks while a read's rows, and pass
2's stored pairs, are scanned (`StoredSubset._read`): room for the scan and pass 2's small
join, not for a cache of the table (a larger join spills to DuckDB's temporary directory)."""


def _held_mib(con: duckdb.DuckDBPyConnection) -> int:
    """What DuckDB holds besides cached blocks of stored tables (temporary tables, working
    memory), MiB, counting what it wrote out to its temporary directory
    (`spill_temporary_tables`: a bound set from this leaves a query the room it had with
    those tables in memory, which it may read back or write out again)."""
    ((other,),) = con.execute(
        "SELECT coalesce(sum(memory_usage_bytes + temporary_storage_bytes), 0)"
        " FROM duckdb_memory() WHERE tag <> 'BASE_TABLE'"
    ).fetchall()
    return int(other) // 2**20


def release_cached_blocks(con: duckdb.DuckDBPyConnection, margin_mib: int = 64) -> None:
    """Let DuckDB drop the blocks of stored tables it keeps cached (read again from the file
    when a later query needs them); temporary tables stay in memory.

    A read of the reach scans ``match.prepared`` and ``match.pairs``: their blocks then stay in
    DuckDB's buffer pool (up to its ``memory_limit``, ≈ 0.75 GB at 1 M records) under the
    Python link that follows, which sets the night's peak. The limit is lowered to what
    DuckDB holds besides those blocks (plus `margin_mib`), which evicts them, and set back.
    """
    ((limit,),) = con.execute(MEMORY_LIMIT_SETTING).fetchall()
    try:
        con.execute(f"SET memory_limit = '{_held_mib(con) + margin_mib}MiB'")
    except duckdb.OutOfMemoryException as exc:  # (what it holds cannot go: nothing to let go)
        log.warning("DuckDB's cached blocks not let go (%s)", exc)
    finally:
        con.execute(f"SET memory_limit = '{limit}'")


LAST_MARGIN_MIB = 8
"""`release_cached_blocks`' margin after the last read of a change (64 MiB after the others):
pass 2's link and the delta write come next, not another read of the same blocks."""


SPILL_MIB = 16
"""DuckDB's ``memory_limit`` for an instant after pass 1's read (`spill_temporary_tables`):
below what its temporary tables hold, so that they are written out to its temporary
directory (and cached blocks of stored tables dropped) while pass 1's link runs."""


def spill_temporary_tables(con: duckdb.DuckDBPyConnection, mib: int = SPILL_MIB) -> None:
    """Let DuckDB write its temporary tables out to its temporary directory and drop the
    cached blocks of stored tables: the limit is lowered to `mib` for an instant and set back.
    A later query reads a spilled block back when it needs it.

    Pass 2's read needs the reach's rank tables (`StoredSubset._rank`: ≈ 0.26 GB at 1 M
    records, the sorted-neighbourhood rules rank nearly every record), but pass 1's link, a
    peak of the night, does not: on disk they are not beside it. When DuckDB cannot write
    them out (no temporary directory, pinned blocks), only the cached blocks are let go
    (`release_cached_blocks`; logged).
    """
    ((limit,),) = con.execute(MEMORY_LIMIT_SETTING).fetchall()
    try:
        con.execute(f"SET memory_limit = '{mib}MiB'")
    except duckdb.Error as exc:
        log.warning("DuckDB's temporary tables not spilled (%s): cached blocks let go only", exc)
        release_cached_blocks(con)
        return
    con.execute(f"SET memory_limit = '{limit}'")


class StoredSubset:
    """Reads of ``match.prepared`` / ``match.pairs`` for one nightly link (one connection).

    Args:
        con: the warehouse (``match.*`` written by an earlier link, stored state usable).
        strong_at: the match threshold (pairs at or above it join a clustering component).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        strong_at: float,
        memory_mib: int | None = SUBSET_MEMORY_MIB,
    ) -> None:
        self.con = con
        self.strong_at = strong_at
        self.memory_mib = memory_mib
        self._limit: str | None = None
        self.columns = [c for c in table_columns(con, PREPARED_TABLE) if c != PREPARED_VERSION]
        self.layouts: list[Layout] = []
        self._keys_done: pa.Array | None = None
        self._places_done: dict[str, pd.DataFrame] = {}
        self._pairs_done: dict[str, np.ndarray] | None = None
        self._labels: tuple[dict[str, list[str]], list[str]] | None = None
        self._steward: pa.Table | None = None
        self._layout: int | None = None
        """`storage_layout` of ``match.pairs`` before the first read of its rowids."""
        self.read_pairs: ReadPairs | None = None
        """After `grow`: every stored pair among the records read, with its rowid and hash
        (what `write_match_delta` compares and deletes by; kept after `close`)."""

    def _frame(self, sql: str, params: list[object] | None = None) -> pd.DataFrame:
        table = self.con.sql(sql, params=params).to_arrow_table()
        return prepared_frame(table)

    def _select(self) -> str:
        return ", ".join(_q(c) for c in self.columns)

    def rows(self, keys: np.ndarray) -> pd.DataFrame:
        """The stored prepared rows of `keys` (those stored), sorted by record_key."""
        self._bound_memory()
        self.con.register("_sub_wanted", _keys(keys))
        try:
            return self._frame(
                f"SELECT {self._select()} FROM {PREPARED_TABLE}"
                " WHERE record_key IN (SELECT record_key FROM _sub_wanted) ORDER BY record_key"
            )
        finally:
            self.con.unregister("_sub_wanted")

    def groups(self, column: str, values: np.ndarray, without: np.ndarray) -> pd.DataFrame:
        """The stored prepared rows whose `column` is one of `values`, less the keys `without`."""
        self._bound_memory()
        self.con.register("_sub_values", pa.table({"v": pa.array(
            np.asarray(values, dtype=object), type=pa.string())}))  # fmt: skip
        self.con.register("_sub_without", _keys(without))
        try:
            return self._frame(
                f"SELECT {self._select()} FROM {PREPARED_TABLE}"
                f" WHERE {_q(column)}::VARCHAR IN (SELECT v FROM _sub_values)"
                " AND record_key NOT IN (SELECT record_key FROM _sub_without)"
                " ORDER BY record_key"
            )
        finally:
            self.con.unregister("_sub_values")
            self.con.unregister("_sub_without")

    def reach(
        self,
        fresh: pd.DataFrame,
        changed: np.ndarray,
        flipped: np.ndarray,
        decided: np.ndarray,
        layouts: Sequence[Layout | tuple[str, str, int, int]],
    ) -> ReadSubset:
        """The stored link around a change (see the module's docstring).

        Args:
            fresh: the new versions (prepared rows: record_key, every layout's key and order
                column, id_number, id_number_valid).
            changed: record keys whose stored row is an old version (replaced by `fresh`).
            flipped: stored record keys whose whole-set flags flipped (linked again).
            decided: record keys named by a steward decision (re-clustered every night).
            layouts: the blocking rules' windowing.
        """
        con = self.con
        self._bound_memory()
        layouts = [Layout(*lay) for lay in layouts]
        needed = sorted(
            {"record_key", "id_number", "id_number_valid"}
            | {lay.key for lay in layouts}
            | {lay.order for lay in layouts}
        )
        text = ", ".join(
            f"{_q(c)}::VARCHAR AS {_q(c)}" if c != "id_number_valid" else
            f"coalesce({_q(c)}, false) AS {_q(c)}" for c in needed
        )  # fmt: skip
        views = {
            "_sub_fresh": to_duckdb_arrow(
                pa.Table.from_pandas(
                    fresh[needed].astype({c: object for c in needed if c != "id_number_valid"}),
                    preserve_index=False,
                )
            ),
            "_sub_changed": _keys(changed),
            "_sub_flipped": _keys(flipped),
            "_sub_decided": _keys(decided),
        }
        for name, table in views.items():
            con.register(name, table)
        self.layouts = layouts
        try:
            # the new state, as a view: a copy of every stored row's block and order columns
            # would be the largest thing this link holds in memory (≈ 0.2 KB a record)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_chg AS SELECT record_key FROM _sub_changed"
            )
            con.execute(f"CREATE OR REPLACE TEMP TABLE _sub_new AS SELECT {text} FROM _sub_fresh")
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW _sub_now AS SELECT {text} FROM {PREPARED_TABLE}"
                " WHERE record_key NOT IN (SELECT record_key FROM _sub_chg)"
                " UNION ALL BY NAME SELECT * FROM _sub_new"
            )
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _sub_old AS SELECT {text} FROM {PREPARED_TABLE}"
                " WHERE record_key IN (SELECT record_key FROM _sub_changed)"
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_fresh_keys AS SELECT record_key, id_number,"
                " id_number_valid FROM _sub_fresh"
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_focus AS SELECT record_key FROM _sub_fresh"
                " UNION SELECT record_key FROM _sub_flipped"
            )
            # the records the change reaches in the blocks, per rule, and the decided ones
            reached = ["SELECT record_key FROM _sub_focus", "SELECT record_key FROM _sub_decided",
                       "SELECT record_key FROM _sub_mates"]  # fmt: skip
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_mates AS SELECT n.record_key FROM _sub_now"
                " AS n JOIN _sub_fresh AS f ON n.id_number = f.id_number"
                " WHERE n.id_number_valid AND f.id_number_valid"
            )
            # the re-flagged records' rows in the new state, once (not a scan of `_sub_now`
            # for them in every rule's rank)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_flip AS SELECT * FROM _sub_now"
                " WHERE record_key IN (SELECT record_key FROM _sub_flipped)"
            )
            for i, lay in enumerate(layouts):
                self._rank(i, lay)
                reached.append(self._near_sql(i, lay))
            # with both records of every stored steward decision and every record the old
            # versions (and re-flagged rows) share a stored pair with: one scan of match.pairs
            # (four scans before, one a column set: ≈ 25 % less CPU at 200 k, same records)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_x AS SELECT record_key FROM _sub_old"
                " UNION SELECT record_key FROM _sub_flipped"
            )
            paired = (
                "SELECT unnest([CASE WHEN s OR r THEN left_key END,"
                " CASE WHEN s OR l THEN right_key END]) AS record_key FROM"
                " (SELECT left_key, right_key, steward_decision IS NOT NULL AS s,"
                " left_key IN (SELECT record_key FROM _sub_x) AS l,"
                " right_key IN (SELECT record_key FROM _sub_x) AS r FROM match.pairs)"
                " WHERE s OR l OR r"
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_full AS SELECT DISTINCT record_key FROM ("
                + " UNION ALL ".join([*reached, paired])
                + ") WHERE record_key IS NOT NULL"
            )
            con.execute("DROP TABLE IF EXISTS _sub_x")
            return self._read()
        finally:
            for name in views:
                con.unregister(name)

    def grow(self, touched: np.ndarray) -> ReadSubset:
        """The records of `reach` with the whole components of the `touched` ones: a fixed
        point over the strong stored pairs and the valid id number groups (from the new
        versions' id number mates too). A weak partner of a component's member is not read:
        their pair's row does not change (docs/dedupe.md, "The nightly link from the reached
        records only"), and the delta is written only within the records read."""
        con = self.con
        con.register("_sub_touched", _keys(touched))
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_c AS SELECT record_key FROM _sub_touched"
                " UNION SELECT record_key FROM _sub_mates"
            )
            con.execute("CREATE OR REPLACE TEMP TABLE _sub_f AS SELECT record_key FROM _sub_c")
            # the stored records with a valid id number, read once (not twice a round)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_ids AS SELECT record_key, id_number"
                f" FROM {PREPARED_TABLE} WHERE id_number_valid"
            )
            # and the strong pairs' keys (≈ a tenth of the pairs): each round looks up only
            # the frontier's edges (components are small) in them, not in every stored pair
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_strong AS SELECT left_key, right_key"
                " FROM match.pairs WHERE probability >= ?",
                [self.strong_at],
            )
            while True:
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE _sub_n AS SELECT DISTINCT b AS record_key"
                    " FROM (SELECT CASE WHEN left_key IN (SELECT record_key FROM _sub_f)"
                    "  THEN right_key ELSE left_key END AS b FROM _sub_strong"
                    "  WHERE left_key IN (SELECT record_key FROM _sub_f)"
                    "   OR right_key IN (SELECT record_key FROM _sub_f)"
                    " UNION ALL SELECT q.record_key FROM _sub_ids AS q WHERE q.id_number IN"
                    "  (SELECT p.id_number FROM _sub_ids AS p"
                    "   WHERE p.record_key IN (SELECT record_key FROM _sub_f)))"
                    " WHERE b NOT IN (SELECT record_key FROM _sub_c)"
                )
                con.execute("CREATE OR REPLACE TEMP TABLE _sub_f AS SELECT * FROM _sub_n")
                (grew,) = con.execute(
                    "INSERT INTO _sub_c SELECT record_key FROM _sub_f"
                ).fetchone() or (0,)
                if not grew:
                    break
            for temp in ("_sub_strong", "_sub_ids"):
                con.execute(f"DROP TABLE IF EXISTS {temp}")
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _sub_full AS SELECT record_key FROM _sub_full"
                " UNION SELECT record_key FROM _sub_c"
            )
            read = self._read()
            # the last read: its stored pairs' rowids and hashes are kept for the delta write
            # (taken out of the pairs the link gets)
            self.read_pairs = ReadPairs.take(
                read.prepared["record_key"].to_numpy(dtype=object), read.pairs, self._layout
            )
            return read
        finally:
            con.unregister("_sub_touched")

    def _bound_memory(self) -> None:
        """Lower DuckDB's ``memory_limit`` to `memory_mib` until `close` (never raise it).

        The reach scans ``match.prepared`` and ``match.pairs`` whole; under the warehouse's
        limit (2 GiB by default) their blocks stay cached in DuckDB's buffer pool on top of the
        records the link holds in Python — the night's peak. Under a small limit DuckDB keeps
        only what a query needs (a block scanned is let go, a large sort would spill).
        """
        if self.memory_mib is None or self._limit is not None:
            return
        ((limit,),) = self.con.execute(MEMORY_LIMIT_SETTING).fetchall()
        now = memory_limit_bytes(str(limit))
        if now is not None and now <= self.memory_mib * 2**20:
            return
        self._limit = str(limit)
        self.con.execute(f"SET memory_limit = '{self.memory_mib}MiB'")

    def close(self) -> None:
        """Drop the temporary tables of `reach` / `grow`; DuckDB's memory limit is restored."""
        if self._limit is not None:
            self.con.execute(f"SET memory_limit = '{self._limit}'")
            self._limit = None
        self.con.execute("DROP VIEW IF EXISTS _sub_now")
        for name in ("_sub_chg", "_sub_new", "_sub_old", "_sub_flip", "_sub_fresh_keys",
                     "_sub_focus",
                     "_sub_mates", "_sub_full", "_sub_c", "_sub_f", "_sub_n",
                     "_sub_ids", "_sub_strong",
                     "_sub_done"):  # fmt: skip
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._keys_done, self._places_done, self._pairs_done = None, {}, None
        self._labels, self._steward, self._layout = None, None, None
        self._drop_ranks()

    def _drop_ranks(self) -> None:
        """Drop the reach's rank tables (`_rank`)."""
        for i in range(len(self.layouts)):
            self.con.execute(f"DROP TABLE IF EXISTS _sub_rank{i}")
            self.con.execute(f"DROP TABLE IF EXISTS _sub_bk{i}")

    def _read(self) -> ReadSubset:
        """The rows of ``_sub_full``, the pairs among them, places and gaps. Places and pairs
        an earlier `_read` of this change read (``_sub_done``) are not read again; its rows
        are (they are not held through the link between the two reads)."""
        con = self.con
        con.execute("CREATE TEMP TABLE IF NOT EXISTS _sub_done (record_key VARCHAR)")
        # every row of `_sub_full`, an earlier read's too: pass 1's rows were held through
        # pass 1's link only to be merged here (≈ 0.23 GB at 1 M records, at pass 1's peak);
        # reading them again costs ≈ 1 CPU s at 1 M
        wanted = f"FROM {PREPARED_TABLE} WHERE record_key IN (SELECT record_key FROM _sub_full)"
        # their keys first (sorted: the rows' order), and the stored pairs among them: the
        # join over match.pairs fills DuckDB's memory to its bound, so it runs before the
        # rows are built in Python, not beside them
        keys = arrow_strings(con.sql(f"SELECT record_key {wanted}").to_arrow_table().column(0))
        keys = keys.take(pc.sort_indices(keys))
        # each row an earlier read read: its position now (both sorted by key: increasing)
        moved = np.empty(0, dtype=np.int64)
        bound: AbstractContextManager[None] = nullcontext()
        earlier = self._keys_done is not None
        if earlier:
            moved = positions_of(self._keys_done, keys)
            if (moved < 0).any() or (np.diff(moved) <= 0).any():
                raise ValueError("a row an earlier read of this change read is not read again")
            # pass 2's scan of match.pairs is the link's last: its blocks are let go as
            # scanned, not cached up to the bound beside the pairs pass 1 read (grow's
            # join filled DuckDB to ≈ 0.95 GB at 1 M records); its join and sort hold only
            # the pairs of the records this read adds
            bound = memory_limit_at_most(con, _held_mib(con) + SCAN_MARGIN_MIB)
        with bound:
            pairs, rule_names, hard_names, steward = self._pairs(keys, moved)
        self._pairs_done = pairs
        # (the cached blocks stay for the unranked blocks: their scans of match.prepared's
        # key and order columns find them cached; then they go: the places' windows read
        # temporary tables only, and the rows' scan below would let them go anyway)
        places, gaps = {}, {}
        firsts = self._unranked_blocks()
        release_cached_blocks(con)
        for i in firsts:
            lay = self.layouts[i]
            name = f"{lay.key}/{lay.order}"
            places[name], gaps[name] = self._places(i, lay)
            if name in self._places_done:
                places[name] = pd.concat([self._places_done[name], places[name]],
                                         ignore_index=True)  # fmt: skip
        for temp in (
            "_sub_want",
            "_sub_wrows",
            "_sub_brows",
            *(f"_sub_{t}{i}" for i in firsts for t in ("blk", "bsz")),
        ):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
        if earlier:
            # the last read's places are read: its rank tables (read back from disk by its
            # places' scans, ≈ 0.26 GB at 1 M records) are not kept beside its rows
            self._drop_ranks()
        # the rows last, each block of match.prepared let go once scanned (a scan of every
        # block of every column: cached, they stacked on the rows built in Python)
        with memory_limit_at_most(con, _held_mib(con) + SCAN_MARGIN_MIB):
            rows = self._frame(f"SELECT {self._select()} {wanted}")
        # sorted by key (unique: Arrow's code point order is a Python sort's) a column at a
        # time, the read's frame emptied as it is taken
        order = pc.sort_indices(arrow_strings(rows["record_key"])).to_numpy()
        prepared = _taken([rows], order)
        del rows, order
        if (
            len(prepared) != len(keys)
            or not pc.all(
                pc.equal(arrow_strings(prepared["record_key"]), keys), min_count=0
            ).as_py()
        ):
            raise ValueError("the rows read are not the records whose pairs were read")
        # what later reads of this change reuse: the rows' keys, their places and their pairs
        self._keys_done, self._places_done = keys, places
        con.execute(
            "INSERT INTO _sub_done SELECT record_key FROM _sub_full"
            " WHERE record_key NOT IN (SELECT record_key FROM _sub_done)"
        )
        if earlier:  # the last read of this change (`close` drops the temporary tables next)
            # (nearly) every cached block: none is kept under pass 2's link (a peak at 1 M)
            release_cached_blocks(con, LAST_MARGIN_MIB)
        else:
            # pass 1's: the rank tables wait on disk for pass 2, not beside pass 1's link
            spill_temporary_tables(con)
        return ReadSubset(prepared, pairs, rule_names, hard_names, steward, places, gaps)

    def _rank(self, i: int, lay: Layout) -> None:
        """``_sub_rank<i>``: the new state's members of the changed blocks, each with its place
        in the window order, and the old versions as gaps (``real`` 0); ``_sub_bk<i>``: each
        of those blocks' size now, new versions inserted and old versions removed (counted
        once a block, not carried on each of its members: the sorted-neighbourhood rules'
        blocks hold nearly every record)."""
        k, o = _q(lay.key), _q(lay.order)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE _sub_rank{i} AS"
            f" WITH blocks AS (SELECT {k} AS k FROM _sub_fresh WHERE {k} IS NOT NULL"
            f"  UNION SELECT {k} FROM _sub_old WHERE {k} IS NOT NULL"
            f"  UNION SELECT {k} FROM _sub_flip WHERE {k} IS NOT NULL),"
            f" pts AS (SELECT record_key, {k} AS k, coalesce({o}, '') AS o, 1 AS real"
            f"  FROM _sub_now WHERE {k} IN (SELECT k FROM blocks)"
            f"  UNION ALL SELECT record_key, {k}, coalesce({o}, ''), 0 FROM _sub_old"
            f"  WHERE {k} IN (SELECT k FROM blocks))"
            " SELECT record_key, k, real::TINYINT AS real,"
            "  sum(real) OVER (PARTITION BY k ORDER BY o, record_key, real"
            "   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)::BIGINT - real AS place"
            " FROM pts"
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE _sub_bk{i} AS SELECT r.k,"
            " r.size, coalesce(f.inserted, 0)::BIGINT AS inserted, r.removed"
            " FROM (SELECT k, count(*) FILTER (WHERE real = 1)::BIGINT AS size,"
            f"  count(*) FILTER (WHERE real = 0)::BIGINT AS removed FROM _sub_rank{i}"
            "  GROUP BY k) AS r"
            f" LEFT JOIN (SELECT {k} AS k, count(*) AS inserted FROM _sub_new"
            f"  WHERE {k} IS NOT NULL GROUP BY {k}) AS f ON r.k = f.k"
        )

    def _near_sql(self, i: int, lay: Layout) -> str:
        """The members of ``_sub_rank<i>`` a change reaches: whole blocks small now or crossing
        the cap, else those within reach of a new/changed record's place or of a gap."""
        cap, w = lay.cap, lay.window
        over_now = f"b.size > {cap}"
        over_before = f"b.size - b.inserted + b.removed > {cap}"
        ranked = f"_sub_rank{i} AS p JOIN _sub_bk{i} AS b ON p.k = b.k"
        return (
            f"SELECT r.record_key FROM _sub_rank{i} AS r WHERE r.real = 1 AND r.k IN"
            f" (SELECT b.k FROM _sub_bk{i} AS b WHERE ({over_now}) <> ({over_before})"
            f"  UNION SELECT p.k FROM {ranked} WHERE NOT ({over_now}) AND p.real = 1"
            "   AND p.record_key IN (SELECT record_key FROM _sub_focus))"
            f" UNION ALL SELECT r.record_key FROM _sub_rank{i} AS r JOIN ("
            f"  SELECT p.k, unnest(range(p.place - {2 * w + 1}, p.place + {2 * w + 1})) AS at"
            f"   FROM {ranked} WHERE p.real = 0 AND ({over_now}) AND ({over_before})"
            f"  UNION ALL SELECT p.k, unnest(range(p.place - {w}, p.place + {w + 1})) AS at"
            f"   FROM {ranked} WHERE p.real = 1 AND {over_now}"
            "    AND p.record_key IN (SELECT record_key FROM _sub_focus)"
            ") AS a ON r.k = a.k AND r.place = a.at WHERE r.real = 1"
        )

    def _unranked_blocks(self) -> list[int]:
        """The records to place (``_sub_want``: reached or new, not placed by an earlier read)
        and, per layout, the blocks of theirs not ranked already (``_sub_blk<i>``) with their
        size in the new state (``_sub_bsz<i>``), from every member of those blocks
        (``_sub_brows``: one scan of the new state for every layout, not one or two a layout).
        Returns the first layout index of each ``key/order``."""
        con = self.con
        firsts = list(
            {
                f"{lay.key}/{lay.order}": i for i, lay in reversed(list(enumerate(self.layouts)))
            }.values()
        )[::-1]
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _sub_want AS SELECT record_key FROM ("
            " SELECT record_key FROM _sub_full UNION SELECT record_key FROM _sub_fresh_keys)"
            " WHERE record_key NOT IN (SELECT record_key FROM _sub_done)"
        )
        keyed = ", ".join(f"n.{_q(self.layouts[i].key)} AS k{i}" for i in firsts)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _sub_wrows AS SELECT n.record_key, {keyed}"
            " FROM _sub_now AS n WHERE n.record_key IN (SELECT record_key FROM _sub_want)"
        )
        for i in firsts:
            # (against the ranked blocks, one row a block: not every member of the
            # sorted-neighbourhood rules' ranks, ≈ every record)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _sub_blk{i} AS SELECT DISTINCT k{i} AS k"
                f" FROM _sub_wrows WHERE k{i} IS NOT NULL"
                f" AND k{i} NOT IN (SELECT k FROM _sub_bk{i})"
            )
        inside = " OR ".join(
            f"{_q(self.layouts[i].key)} IN (SELECT k FROM _sub_blk{i})" for i in firsts
        )
        # only what the blocks' sizes and places read: key and order columns
        columns = dict.fromkeys(
            [
                "record_key",
                *(c for i in firsts for c in (self.layouts[i].key, self.layouts[i].order)),
            ]
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _sub_brows AS SELECT {', '.join(map(_q, columns))}"
            f" FROM _sub_now WHERE {inside or 'false'}"
        )
        for i in firsts:
            k = _q(self.layouts[i].key)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _sub_bsz{i} AS SELECT {k} AS k,"
                f" count(*)::BIGINT AS size FROM _sub_brows"
                f" WHERE {k} IN (SELECT k FROM _sub_blk{i}) GROUP BY {k}"
            )
        return firsts

    def _places(self, i: int, lay: Layout) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Place and block size of the reached records and new versions, gaps of old versions
        (after `_unranked_blocks`). A record of an unranked block within the rule's cap gets
        place 0: every pair of such a block is generated whatever the order (its size is what
        the link reads), so its true place is not computed."""
        k, o = _q(lay.key), _q(lay.order)
        table = self.con.sql(
            f"WITH ranked AS (SELECT record_key, {k} AS k,"
            f"  row_number() OVER (PARTITION BY {k} ORDER BY coalesce({o}, ''), record_key) - 1"
            f"   AS place, count(*) OVER (PARTITION BY {k}) AS size"
            f"  FROM _sub_brows WHERE {k} IN"
            f"   (SELECT k FROM _sub_bsz{i} WHERE size > {lay.cap})"
            f"  UNION ALL SELECT w.record_key, w.k{i}, 0, b.size FROM _sub_wrows AS w"
            f"   JOIN _sub_bsz{i} AS b ON w.k{i} = b.k WHERE b.size <= {lay.cap}"
            f"  UNION ALL SELECT r.record_key, r.k, r.place, b.size FROM _sub_rank{i} AS r"
            f"   JOIN _sub_bk{i} AS b ON r.k = b.k WHERE r.real = 1)"
            " SELECT record_key, place::BIGINT AS place, size::BIGINT AS size FROM ranked"
            " WHERE record_key IN (SELECT record_key FROM _sub_want)"
        ).to_arrow_table()
        gaps = self.con.sql(
            f"SELECT record_key, place::BIGINT AS gap FROM _sub_rank{i} WHERE real = 0"
        ).to_arrow_table()
        return _numbered_frame(table), _numbered_frame(gaps)

    def _pairs(
        self, keys: pa.Array, moved: np.ndarray
    ) -> tuple[dict[str, np.ndarray], list[str], list[str], pd.DataFrame]:
        """The stored pairs between the records read (`keys`, sorted), by position into them.

        The pairs an earlier read of this change read (among its records, at their positions
        then; `moved`: each of those records' position now) are not read again: only the
        stored pairs with an end among the records added since are (a scan of
        ``match.pairs`` all the same, but a join and a sort of those few pairs, not of every
        pair among the records read), and merged into the earlier ones in (left, right) order.
        """
        con = self.con
        earlier = self._pairs_done if len(moved) else None
        added = np.ones(len(keys), dtype=bool)
        added[moved] = False
        con.register("_sub_spos", pa.table({
            "record_key": keys,
            "pos": pa.array(np.arange(len(keys), dtype=np.int64)),
            "added": pa.array(added)}))  # fmt: skip
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE _sub_pos AS SELECT * FROM _sub_spos")
            if self._labels is None:  # (two scans of match.pairs: once for both reads)
                self._labels = stored_pair_labels(con)
            if self._layout is None:  # (before the first rowids read: the write compares)
                self._layout = storage_layout(con, "match.pairs")
            names, levels = self._labels
            # with each pair's rowid and the hash of its stored values (as the delta write
            # compares a stored row: `stored_row_hash`), so that the write finds the stored
            # pairs of its scope among these instead of in a scan of every stored pair
            select = (
                stored_pair_select(levels, "l.pos AS left", "r.pos AS right")
                + f", p._pair_rowid AS {READ_ROW_ID},"
                f" {stored_row_hash(con, 'p')} AS {READ_ROW_HASH}"
            )
            # (pass 2: the pairs with an added end found first, against the few added keys,
            # then joined: cheaper than probing every pair with every record read)
            added_sql = "SELECT record_key FROM _sub_pos WHERE added"
            stored = "SELECT *, rowid AS _pair_rowid FROM match.pairs"
            pairs_sql = f"({stored})" if earlier is None else (
                f"({stored} WHERE left_key IN ({added_sql}) OR right_key IN ({added_sql}))"
            )  # fmt: skip
            table = con.sql(
                f"SELECT {select} FROM {pairs_sql} AS p"
                " JOIN _sub_pos AS l ON p.left_key = l.record_key"
                " JOIN _sub_pos AS r ON p.right_key = r.record_key"
                " ORDER BY l.pos, r.pos",
                params=[names["rule"], names["hard_rule"]],
            ).to_arrow_table()
            pairs = {c: table.column(c).to_numpy() for c in table.column_names}
            del table
            if self._steward is None:  # (a scan of match.pairs: once for both reads)
                self._steward = con.sql(
                    "SELECT left_key, right_key, steward_decision FROM match.pairs"
                    " WHERE steward_decision IS NOT NULL"
                ).to_arrow_table()
            steward = prepared_frame(self._steward)  # (a frame of its own for each read)
        finally:
            con.unregister("_sub_spos")
            con.execute("DROP TABLE IF EXISTS _sub_pos")
        if earlier is not None:
            pairs = _merged_pairs(earlier, moved, pairs, len(keys))
        return pairs, names["rule"], names["hard_rule"], steward


def _numbered_frame(table: pa.Table) -> pd.DataFrame:
    """A places or gaps read (record_key and integer columns) as a frame: the key as the
    prepared rows hold it (`prepared_frame`), each integer column as int32 numbers (int64 if a
    value does not fit: places and sizes are below the record count).

    Not `prepared_frame` whole: it gives a column of numbers as Python objects (≈ 40 bytes a
    value, not 4; at 1 M records a nightly holds ≈ 4.7 M places, two numbers each, through
    both passes: int32 rather than int64 is ≈ 38 MB less there).

    Raises:
        ValueError: an integer column holds a null (a place, size or gap always has a value).
    """
    frame = prepared_frame(table.select(["record_key"]))
    for name in table.column_names:
        if name == "record_key":
            continue
        column = table.column(name)
        if column.null_count:
            raise ValueError(f"{name} has {column.null_count} nulls")
        values = column.to_numpy()
        narrow = np.iinfo(np.int32)
        fits = not len(values) or (values.min() >= narrow.min and values.max() <= narrow.max)
        frame[name] = values.astype(np.int32 if fits else np.int64, copy=False)
    return frame


def _taken(frames: list[pd.DataFrame], order: np.ndarray) -> pd.DataFrame:
    """The rows of `frames` (same columns) concatenated, then taken in `order`; each frame
    is emptied as the result is built, a column at a time (each column concatenated as
    ``pd.concat`` concatenates frames, the frames' copy of it let go of once taken)."""
    columns: dict[str, pd.Series] = {}
    for column in list(frames[0].columns):
        columns[column] = concat_taken([frame.pop(column) for frame in frames], order)
    return pd.DataFrame(columns, copy=False)


def _merged_pairs(
    earlier: dict[str, np.ndarray], moved: np.ndarray, added: dict[str, np.ndarray], n: int
) -> dict[str, np.ndarray]:
    """The pairs of an earlier read (positions then; `moved`: each position's now) and
    `added` (positions now; no pair of both) as one set sorted by (left, right).

    `moved` increases (both reads are sorted by record key), so the earlier pairs stay
    sorted; each added pair is inserted at its place, a column at a time, and each earlier
    column is taken out of `earlier` once merged (one column more than the pairs at a time,
    not a second copy of every pair).

    Raises:
        ValueError: the two sets' columns differ, or a pair is in both.
    """
    if set(earlier) != set(added):
        raise ValueError("the earlier and the added pairs have different columns")
    ids = moved[earlier["left"]] * np.int64(n) + moved[earlier["right"]]
    new_ids = added["left"] * np.int64(n) + added["right"]
    at = np.searchsorted(ids, new_ids)
    if len(ids) and (ids[np.minimum(at, len(ids) - 1)] == new_ids).any():
        raise ValueError("an added pair was read before")
    del ids, new_ids
    out: dict[str, np.ndarray] = {}
    for column in list(earlier):
        values = earlier.pop(column)
        if column in ("left", "right"):
            values = moved[values]
        out[column] = np.insert(values, at, added[column].astype(values.dtype, copy=False))
        del values
    return out

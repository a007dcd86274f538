"""The stored previous link (match.prepared, pairs by position) gives a full rebuild's result."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from dedupe import (
    LinkResult,
    MatchSettings,
    ModelParams,
    PairSet,
    StoredLink,
    link_records,
    link_stored,
    link_stored_delta,
    stored_pair_set,
)
from tests.dedupe.synth import make_records
from warehouse import read_table, replace_tables, table_columns
from warehouse.match_state import (
    DELTA_TABLES,
    LINKED_LAYOUT,
    PREPARED_TABLE,
    RematchPlan,
    StoredMatch,
    linked_layout,
    match_state,
    rematch_plan,
    write_match_delta,
    write_match_tables,
)
from warehouse.ops import match_changes_since

VERSION = "v1"
STATE = match_state("{}", None)


def _write(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    result: LinkResult,
    rows: str,
    relinked: pd.Series | None = None,
) -> None:
    replace_tables(con, {"clean.records": records})
    prepared = result.prepared
    assert prepared is not None
    if rows == "changed":
        assert result.refreshed is not None
        prepared = prepared[result.refreshed]
    write_match_tables(
        con,
        {"match.pairs": result.pairs, "match.clusters": result.clusters},
        {"run_id": rows, "created_at": pd.Timestamp.now(), "params": result.params.to_json(),
         **STATE},
        prepared, VERSION, rows, relinked,
    )  # fmt: skip


def _linked_vs_clean(con: duckdb.DuckDBPyConnection, clean: str = "clean.records") -> tuple:
    """(rows of match.linked_records, rows of `clean` whose fingerprint it does not hold): the
    fingerprint hashed here from the stored layout's columns, as DuckDB's ``hash``."""
    (layout,) = con.execute(f"SELECT columns FROM {LINKED_LAYOUT}").fetchone()  # type: ignore[misc]
    listed = ", ".join(f'"{name}"' for name, _ in json.loads(layout))
    assert table_columns(con, "match.linked_records") == ["record_key", "fingerprint"]
    return con.execute(
        "SELECT (SELECT count(*) FROM match.linked_records),"
        f" (SELECT count(*) FROM (SELECT record_key, hash({listed}) FROM {clean}"
        "  EXCEPT SELECT * FROM match.linked_records))"
    ).fetchall()[0]


def _link(plan: RematchPlan, settings: MatchSettings | None) -> LinkResult:
    stored = plan.stored
    assert stored is not None
    return link_stored(
        plan.changed,
        StoredLink(stored.prepared, stored_pair_set(stored.pairs, stored.rule_names,
                                                    stored.hard_names),
                   stored.labels, stored.steward_pairs),
        settings, None, ModelParams.from_json(plan.params_json),
    )  # fmt: skip


def _same(inc: LinkResult, full: LinkResult) -> None:
    pd.testing.assert_frame_equal(inc.pairs, full.pairs)
    pd.testing.assert_frame_equal(inc.clusters, full.clusters)
    pd.testing.assert_frame_equal(inc.review_queue, full.review_queue)


@pytest.mark.parametrize("settings", [None, MatchSettings(max_block_size=3, block_window=1)])
def test_two_nights_from_the_stored_link_equal_full_rebuilds(
    settings: MatchSettings | None,
) -> None:
    records, _ = make_records(400, seed=41)
    con = duckdb.connect()
    base = link_records(records, settings)
    _write(con, records, base, "all")
    current = records
    for night in (1, 2):
        dupes = current.sample(6, random_state=night).assign(
            record_key=lambda f, n=night: f"n{n}:" + f["record_key"]
        )
        changed = current.sample(6, random_state=10 + night).assign(email=None, phone=None)
        current = pd.concat(
            [current[~current["record_key"].isin(changed["record_key"])], dupes, changed],
            ignore_index=True,
        )
        replace_tables(con, {"clean.records": current})
        plan = rematch_plan(con, STATE, VERSION)
        assert plan is not None and plan.stored is not None
        assert (
            set(dupes["record_key"])
            <= set(plan.changed["record_key"])
            <= set(dupes["record_key"]) | set(changed["record_key"])
        )
        inc = _link(plan, settings)
        _same(inc, link_records(current, settings, params=base.params))
        _write(con, current, inc, "changed", plan.changed["record_key"])
        # only the relinked rows of match.linked_records were refreshed: it equals the records
        assert _linked_vs_clean(con) == (len(current), 0)
        # the stored preparation is what a preparation of every current record gives
        stored = read_table(con, PREPARED_TABLE).drop(columns="prepared_version")
        stored = stored.sort_values("record_key", ignore_index=True)
        assert inc.prepared is not None
        assert stored.shape == inc.prepared.shape
        assert (stored["record_key"].to_numpy() == inc.prepared["record_key"].to_numpy()).all()
        assert (stored["email_shared"].to_numpy() == inc.prepared["email_shared"].to_numpy()).all()


def test_a_new_record_flipping_a_whole_set_flag_relinks_the_unchanged_ones() -> None:
    records, _ = make_records(200, seed=5)
    # two firms giving one mailbox: a third makes it shared (a bookkeeping agent's, 代账公司)
    mailbox = "caiwu@daizhang.cn"
    firms = records.index[[0, 100]]
    records.loc[firms, "email"] = mailbox
    records.loc[firms, "customer_name"] = ["青松建材有限公司", "白云物流有限公司"]
    records.loc[firms, "name_key"] = ["青松建材", "白云物流"]
    con = duckdb.connect()
    base = link_records(records)
    assert base.prepared is not None
    assert not base.prepared.loc[base.prepared["email"] == mailbox, "email_shared"].any()
    _write(con, records, base, "all")
    third = records.iloc[[50]].assign(
        record_key="new:third", customer_name="远山贸易有限公司", name_key="远山贸易", email=mailbox
    )
    current = pd.concat([records, third], ignore_index=True)
    replace_tables(con, {"clean.records": current})
    plan = rematch_plan(con, STATE, VERSION)
    assert plan is not None and plan.stored is not None
    inc = _link(plan, None)
    _same(inc, link_records(current, params=base.params))
    assert inc.prepared is not None and inc.refreshed is not None
    flipped = inc.prepared["email"] == mailbox
    assert inc.prepared.loc[flipped, "email_shared"].all()
    assert inc.refreshed[flipped.to_numpy()].all()


def test_another_preparation_version_or_no_stored_table_is_a_full_link() -> None:
    """Without a usable ``match.prepared`` every record is linked again (a full link):
    ``match.linked_records`` holds fingerprints, not the records, so the previous versions
    of the changed records an incremental link from the records would need are not kept."""
    records, _ = make_records(120, seed=9)
    con = duckdb.connect()
    base = link_records(records)
    _write(con, records, base, "all")
    new = records.head(2).assign(record_key=lambda f: "n:" + f["record_key"])
    replace_tables(con, {"clean.records": pd.concat([records, new], ignore_index=True)})
    assert rematch_plan(con, STATE, "v2") is None
    assert rematch_plan(con, STATE) is None
    # a stored link that does not fit (a pair naming an unknown record) is not used either
    con.execute(
        "INSERT INTO match.pairs BY NAME SELECT 'ghost' AS left_key, right_key, rule, score,"
        " probability FROM match.pairs LIMIT 1"
    )
    assert rematch_plan(con, STATE, VERSION) is None
    con.execute("DELETE FROM match.pairs WHERE left_key = 'ghost'")
    assert rematch_plan(con, STATE, VERSION).stored is not None  # type: ignore[union-attr]
    # a link written without its preparation (None) drops the stored table
    write_match_tables(
        con, {"match.pairs": base.pairs, "match.clusters": base.clusters},
        {"run_id": "x", "created_at": pd.Timestamp.now(), "params": base.params.to_json(),
         **STATE},
    )  # fmt: skip
    assert read_table(con, PREPARED_TABLE) is None
    assert rematch_plan(con, STATE, VERSION) is None


def _stored(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """A frame as the warehouse stores and reads it back, in `keys` order."""
    con = duckdb.connect()
    replace_tables(con, {"t.frame": frame})
    return con.sql(f"SELECT * FROM t.frame ORDER BY {', '.join(keys)}").df()


def _counting(stored: StoredMatch, read: list[int]) -> Callable[[np.ndarray], PairSet]:
    """`stored.more` as the matcher takes it, counting the pairs each call reads."""
    reader = stored.more
    assert reader is not None

    def more(mask: np.ndarray) -> PairSet:
        got = reader(mask)
        read.append(len(got["left"]))
        return stored_pair_set(got, stored.rule_names, stored.hard_names)

    return more


def _link_plan(plan: Any, more: Any, settings: MatchSettings | None = None) -> Any:
    """The nightly link of a plan's changed records against its stored link."""
    s = plan.stored
    return link_stored_delta(
        plan.changed,
        StoredLink(s.prepared, stored_pair_set(s.pairs, s.rule_names, s.hard_names), s.labels,
                   s.steward_pairs, more),
        settings, None, ModelParams.from_json(plan.params_json),
    )  # fmt: skip


def _write_plan_delta(con: Any, plan: Any, delta: Any, run_id: str, **kwargs: Any) -> Any:
    """`write_match_delta` of a plan's link (`_link_plan`) as run `run_id`."""
    return write_match_delta(
        con, delta.records,
        {"match.pairs": delta.pairs, "match.clusters": delta.clusters,
         "match.review_queue": delta.review_queue},
        {"run_id": run_id, "created_at": pd.Timestamp.now(), "params": delta.params.to_json(),
         **STATE},
        delta.prepared[delta.refreshed], VERSION, plan.changed["record_key"], delta.dropped,
        **kwargs,
    )  # fmt: skip


def write_full_link(
    con: duckdb.DuckDBPyConnection, records: pd.DataFrame, base: LinkResult
) -> None:
    """Store `records` and a full link of them as a run writes them (``clean.*``, ``match.*``)."""
    replace_tables(con, {"clean.records": records})
    write_match_tables(
        con,
        {"match.pairs": base.pairs, "match.clusters": base.clusters,
         "match.review_queue": base.review_queue},
        {"run_id": "all", "created_at": pd.Timestamp.now(), "params": base.params.to_json(),
         **STATE},
        base.prepared, VERSION,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "partial"),
    [
        (None, False),
        (None, True),
        (MatchSettings(max_block_size=3, block_window=1), True),
    ],
)
def test_a_nightly_delta_rewrites_only_the_affected_clusters_and_equals_a_full_rebuild(
    settings: MatchSettings | None, partial: bool
) -> None:
    """A delta over the stored tables equals a full rebuild; untouched rows stay in place.

    `partial`: only the strong pairs are read up front, the others of the records re-checked
    or re-clustered on demand (as the match stage reads them), and not one more.
    """
    records, _ = make_records(400, seed=43)
    con = duckdb.connect()
    base = link_records(records, settings)
    write_full_link(con, records, base)
    current = records
    for night in (1, 2):
        dupes = current.sample(3, random_state=night).assign(
            record_key=lambda f, n=night: f"n{n}:" + f["record_key"]
        )
        changed = current.sample(3, random_state=20 + night).assign(email=None, phone=None)
        current = pd.concat(
            [current[~current["record_key"].isin(changed["record_key"])], dupes, changed],
            ignore_index=True,
        )
        replace_tables(con, {"clean.records": current})
        before = {name: con.sql(f"SELECT rowid, * FROM {name}").df() for name in DELTA_TABLES}
        threshold = (settings or MatchSettings()).match_threshold
        plan = rematch_plan(con, STATE, VERSION, threshold if partial else None)
        assert plan is not None and plan.stored is not None and plan.delta
        s = plan.stored
        assert (s.more is not None) == partial
        read: list[int] = [len(s.pairs["left"])]
        more = None if s.more is None else _counting(s, read)
        delta = _link_plan(plan, more, settings)
        if partial:  # the weak pairs are read on demand, none twice
            stored_pairs = len(before["match.pairs"])
            assert read[0] < stored_pairs and len(read) > 1 and sum(read) <= stored_pairs
        assert set(plan.changed["record_key"]) <= set(delta.records)
        # a small change touches a small part of the warehouse
        assert len(delta.records) < len(current) / 4
        written = _write_plan_delta(con, plan, delta, f"night{night}")
        assert written.inserted["match.clusters"] <= len(delta.records) < len(current)
        assert written.inserted["match.pairs"] < len(before["match.pairs"]) / 2
        full = link_records(current, settings, params=base.params)
        for name, frame, keys in (
            ("match.pairs", full.pairs, ["left_key", "right_key"]),
            ("match.clusters", full.clusters, ["record_key"]),
            ("match.review_queue", full.review_queue, ["left_key", "right_key"]),
        ):
            after = con.sql(f"SELECT rowid, * FROM {name}").df()
            pd.testing.assert_frame_equal(
                con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(keys)}").df(),
                _stored(frame, keys),
            )
            # untouched rows were neither deleted nor rewritten: same rowid, same content
            ends = ["record_key"] if name == "match.clusters" else ["left_key", "right_key"]
            untouched = ~before[name][ends].isin(set(delta.records)).any(axis=1)
            if name != "match.clusters":  # nor a pair deleted as dropped
                gone = before[name].merge(delta.dropped, how="left", indicator=True)
                untouched &= (gone["_merge"] == "left_only").to_numpy()
            kept = before[name][untouched]
            assert len(kept) > 0 or name == "match.review_queue"
            same = kept.merge(after, on=list(kept.columns), how="left", indicator=True)
            assert (same["_merge"] == "both").all(), name
        assert _linked_vs_clean(con) == (len(current), 0)
        # the match change log names every record of a pairs or clusters row that changed
        # (what the golden build hashes again), beside at most the dropped pairs' ends
        differ: set[str] = set()
        for name, ends in (("match.pairs", ["left_key", "right_key"]),
                           ("match.clusters", ["record_key"])):  # fmt: skip
            old_rows = before[name].drop(columns="rowid")
            new_rows = con.sql(f"SELECT * FROM {name}").df()
            both = old_rows.astype(str).merge(new_rows.astype(str), how="outer", indicator=True)
            changed_rows = both[both["_merge"] != "both"]
            differ |= {str(k) for e in ends for k in changed_rows[e]}
        logged = {
            str(r[0])
            for r in con.execute(
                "SELECT record_key FROM ops.match_changes WHERE run_id = ?", [f"night{night}"]
            ).fetchall()
        }
        dropped_ends = set(delta.dropped["left_key"]) | set(delta.dropped["right_key"])
        assert differ and differ <= logged <= differ | {str(k) for k in dropped_ends}
        since = match_changes_since(con, "all" if night == 1 else "night1")
        assert since is not None
        assert {str(r[0]) for r in con.execute(f"SELECT record_key FROM {since}").fetchall()} >= (
            logged
        )


def test_a_nightly_delta_relinks_records_whose_whole_set_flag_flipped() -> None:
    records, _ = make_records(200, seed=5)
    mailbox = "caiwu@daizhang.cn"
    firms = records.index[[0, 100]]
    records.loc[firms, "email"] = mailbox
    records.loc[firms, "customer_name"] = ["青松建材有限公司", "白云物流有限公司"]
    records.loc[firms, "name_key"] = ["青松建材", "白云物流"]
    con = duckdb.connect()
    base = link_records(records)
    write_full_link(con, records, base)
    third = records.iloc[[50]].assign(
        record_key="new:third", customer_name="远山贸易有限公司", name_key="远山贸易", email=mailbox
    )
    current = pd.concat([records, third], ignore_index=True)
    replace_tables(con, {"clean.records": current})
    plan = rematch_plan(con, STATE, VERSION, MatchSettings().match_threshold)
    assert plan is not None and plan.stored is not None and plan.delta
    delta = _link_plan(plan, _counting(plan.stored, []))
    # the two firms whose mailbox became shared are relinked with the new record
    flipped = set(records.loc[firms, "record_key"])
    assert flipped <= set(delta.records)
    _write_plan_delta(con, plan, delta, "n1")
    full = link_records(current, params=base.params)
    for name, frame, keys in (
        ("match.pairs", full.pairs, ["left_key", "right_key"]),
        ("match.clusters", full.clusters, ["record_key"]),
        ("match.review_queue", full.review_queue, ["left_key", "right_key"]),
    ):
        pd.testing.assert_frame_equal(
            con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(keys)}").df(),
            _stored(frame, keys),
        )
    shared = con.sql(
        f"SELECT bool_and(email_shared) FROM {PREPARED_TABLE} WHERE email = '{mailbox}'"
    ).fetchall()
    assert shared == [(True,)]


def test_the_delta_write_refreshes_linked_records_from_the_rows_the_plan_kept() -> None:
    """The plan keeps the changed records' clean rows in DuckDB (`RematchPlan.changed_rows`:
    every column, as ``clean.records`` stores them); the delta write copies them into
    ``match.linked_records`` from there (their fingerprints), not from a scan of
    ``clean.records`` (every column of every record: 2.3 CPU s of a 1 M nightly for its 10 k
    rows)."""
    records, _ = make_records(200, seed=9)
    con = duckdb.connect()
    base = link_records(records)
    write_full_link(con, records, base)
    changed = records.sample(4, random_state=3).assign(email=None)
    new = records.sample(2, random_state=4).assign(record_key=lambda f: "new:" + f["record_key"])
    current = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed, new],
        ignore_index=True,
    )
    replace_tables(con, {"clean.records": current})
    plan = rematch_plan(con, STATE, VERSION, MatchSettings().match_threshold)
    assert plan is not None and plan.stored is not None and plan.delta
    assert plan.changed_rows is not None
    relinked = set(plan.changed["record_key"])
    assert set(new["record_key"]) < relinked <= set(changed["record_key"]) | set(new["record_key"])
    assert con.execute(
        f"SELECT (SELECT count(*) FROM {plan.changed_rows}), (SELECT count(*) FROM"
        f" (SELECT * FROM {plan.changed_rows} EXCEPT SELECT * FROM clean.records))"
    ).fetchall() == [(len(relinked), 0)]
    delta = _link_plan(plan, _counting(plan.stored, []))
    # the write must not need clean.records: it is out of its reach
    con.execute("ALTER TABLE clean.records RENAME TO records_now")
    _write_plan_delta(con, plan, delta, "n1", relinked_rows=plan.changed_rows)
    con.execute("ALTER TABLE clean.records_now RENAME TO records")
    assert _linked_vs_clean(con) == (len(current), 0)


def test_a_delta_larger_than_a_row_group_is_written_whole() -> None:
    """A delta of more pair rows than DuckDB's row group (122,880) holds is written whole.

    DuckDB 2.0.0 scans rows a transaction wrote itself as none once they fill a row group and
    are scanned in parallel: a delta compared inside its write transaction came out empty, so
    every stored pair of its scope was deleted and none inserted (a 1 M-record nightly).
    """
    records, _ = make_records(60, seed=5)
    con = duckdb.connect(config={"threads": 4})
    base = link_records(records)
    write_full_link(con, records, base)
    keys = base.clusters["record_key"]
    # every record affected: the stored pairs, each also paired with 2,200 new keys
    extra = base.pairs.iloc[np.zeros(len(keys) * 2_200, dtype=np.int64)].reset_index(drop=True)
    extra["left_key"] = np.repeat(keys.to_numpy(dtype=object), 2_200)
    extra["right_key"] = [f"zz:{i:07d}" for i in range(len(extra))]
    pairs = pd.concat([base.pairs, extra], ignore_index=True)
    assert len(pairs) > 122_880
    written = write_match_delta(
        con, keys,
        {"match.pairs": pairs, "match.clusters": base.clusters,
         "match.review_queue": base.review_queue},
        {"run_id": "night1", "created_at": pd.Timestamp.now(),
         "params": base.params.to_json(), **STATE},
        base.prepared.iloc[:0], VERSION, keys.iloc[:0],
    )  # fmt: skip
    assert written.inserted["match.pairs"] == len(extra)
    assert written.deleted["match.pairs"] == 0
    pd.testing.assert_frame_equal(
        con.sql("SELECT * FROM match.pairs ORDER BY left_key, right_key").df(),
        _stored(pairs, ["left_key", "right_key"]),
    )


@pytest.mark.parametrize(("limit", "during"), [("2GiB", "512.0 MiB"), ("256MiB", "256.0 MiB")])
def test_the_delta_write_runs_under_a_bounded_duckdb_memory_limit_restored_after(
    monkeypatch: pytest.MonkeyPatch, limit: str, during: str
) -> None:
    """While the delta's rows are compared and written DuckDB's ``memory_limit`` is at most
    `DELTA_WRITE_MEMORY_MIB` (a lower one stays); it is set back after the write, and after a
    write that fails; the delta frames are handed over: each is let go of once compared."""
    import weakref

    import warehouse.match_state as match_state_module

    records, _ = make_records(80, seed=7)
    con = duckdb.connect(config={"memory_limit": limit})
    base = link_records(records)
    write_full_link(con, records, base)
    seen: list[tuple[str, str, list[bool]]] = []
    changed_rows = match_state_module._changed_rows
    frames = {n: base.pairs.copy() if n == "match.pairs" else
              (base.clusters.copy() if n == "match.clusters" else base.review_queue.copy())
              for n in DELTA_TABLES}  # fmt: skip
    alive = {n: weakref.ref(f) for n, f in frames.items()}

    def spy(con_: duckdb.DuckDBPyConnection, name: str, *args: object, **kwargs: object) -> object:
        setting = con_.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        seen.append((name, str(setting), [alive[n]() is not None for n in DELTA_TABLES]))
        return changed_rows(con_, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(match_state_module, "_changed_rows", spy)
    tables: dict[str, pd.DataFrame] = {**frames}
    del frames
    keys = base.clusters["record_key"]
    row = {"run_id": "night1", "created_at": pd.Timestamp.now(),
           "params": base.params.to_json(), **STATE}  # fmt: skip
    written = write_match_delta(con, keys, tables, row, base.prepared.iloc[:0], VERSION,
                                keys.iloc[:0])  # fmt: skip
    assert [s[:2] for s in seen] == [(n, during) for n in DELTA_TABLES]
    # each frame is let go of once in Arrow, before its rows are compared (handed over)
    assert [s[2] for s in seen] == [[False, True, True], [False, False, True],
                                    [False, False, False]]  # fmt: skip
    assert not tables.keys() & set(DELTA_TABLES)
    assert written.deleted["match.pairs"] == written.inserted["match.pairs"] == 0
    restored = "2.0 GiB" if limit == "2GiB" else "256.0 MiB"
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == restored

    def failing(*args: object, **kwargs: object) -> object:
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(match_state_module, "_write_changed_rows", failing)
    again = {"match.pairs": base.pairs, "match.clusters": base.clusters,
             "match.review_queue": base.review_queue}  # fmt: skip
    with pytest.raises(duckdb.IOException):
        write_match_delta(con, keys, again, row, base.prepared.iloc[:0], VERSION, keys.iloc[:0])
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == restored


def _as_before_linkhash(con: duckdb.DuckDBPyConnection) -> None:
    """Store ``match.linked_records`` as main wrote it before branch ``linkhash``: a full copy
    of ``clean.records`` (every column), no layout table."""
    con.execute("CREATE OR REPLACE TABLE match.linked_records AS SELECT * FROM clean.records")
    con.execute(f"DROP TABLE {LINKED_LAYOUT}")


def _night(records: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, set[str]]:
    """`records` after a night: two changed, two new; and the keys of those four."""
    changed = records.sample(2, random_state=seed).assign(email=None, phone=None)
    new = records.sample(2, random_state=seed + 1).assign(
        record_key=lambda f: f"new{seed}:" + f["record_key"]
    )
    current = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed, new],
        ignore_index=True,
    )
    return current, set(changed["record_key"]) | set(new["record_key"])


@pytest.mark.parametrize("write", ["delta", "whole", "failed"])
def test_a_warehouse_with_the_old_full_copy_upgrades_on_its_next_link(
    write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse whose ``match.linked_records`` is the old full copy of ``clean.records`` is
    planned from that copy (the same changed records), and its next link's write replaces it
    with the fingerprints (delta or whole write); a failed write leaves the copy, and the
    next night plans from it again."""
    import warehouse.match_state as match_state_module

    records, _ = make_records(200, seed=13)
    con = duckdb.connect()
    base = link_records(records)
    write_full_link(con, records, base)
    fingerprinted = con.sql("SELECT * FROM match.linked_records ORDER BY record_key").df()
    _as_before_linkhash(con)
    current, touched = _night(records, 7)
    replace_tables(con, {"clean.records": current})
    threshold = MatchSettings().match_threshold
    plan = rematch_plan(con, STATE, VERSION, threshold)
    assert plan is not None and plan.stored is not None and plan.delta
    assert set(plan.changed["record_key"]) == touched
    delta = _link_plan(plan, _counting(plan.stored, []))
    if write == "failed":

        def failing(*args: object, **kwargs: object) -> object:
            raise duckdb.IOException("disk full")

        monkeypatch.setattr(match_state_module, "_write_changed_rows", failing)
        with pytest.raises(duckdb.IOException):
            _write_plan_delta(con, plan, delta, "n1", relinked_rows=plan.changed_rows)
        assert len(table_columns(con, "match.linked_records")) == len(current.columns)
        assert read_table(con, LINKED_LAYOUT) is None
        monkeypatch.undo()
        again = rematch_plan(con, STATE, VERSION, threshold)
        assert again is not None and set(again.changed["record_key"]) == touched
        return
    if write == "delta":
        _write_plan_delta(con, plan, delta, "n1", relinked_rows=plan.changed_rows)
    else:
        whole = _link(plan, None)
        _write(con, current, whole, "changed", plan.changed["record_key"])
    assert _linked_vs_clean(con) == (len(current), 0)
    pd.testing.assert_frame_equal(read_table(con, LINKED_LAYOUT), linked_layout(con))
    # the unchanged records' fingerprints are those a full write stores
    kept = fingerprinted[~fingerprinted["record_key"].isin(touched)]
    now = con.sql("SELECT * FROM match.linked_records ORDER BY record_key").df()
    same = kept.merge(now, how="left", indicator=True)
    assert len(kept) > 150 and (same["_merge"] == "both").all()
    # the next night compares fingerprints: only its own changes
    later, touched_later = _night(current, 11)
    replace_tables(con, {"clean.records": later})
    plan = rematch_plan(con, STATE, VERSION, threshold)
    assert plan is not None and set(plan.changed["record_key"]) == touched_later


def test_fingerprints_of_other_columns_or_another_hash_are_not_compared() -> None:
    """A column added to ``clean.records`` (or a DuckDB whose ``hash`` differs: another
    probe) makes the stored fingerprints incomparable: a full link, as when the old copy's
    columns differed; the full write stores the fingerprints the new way."""
    records, _ = make_records(120, seed=17)
    con = duckdb.connect()
    base = link_records(records)
    write_full_link(con, records, base)
    assert rematch_plan(con, STATE, VERSION) is not None
    con.execute("UPDATE match.linked_layout SET hash_probe = '0'")
    assert rematch_plan(con, STATE, VERSION) is None
    write_full_link(con, records, base)
    assert rematch_plan(con, STATE, VERSION) is not None
    replace_tables(con, {"clean.records": records.assign(extra="x")})
    assert rematch_plan(con, STATE, VERSION) is None
    write_full_link(con, records.assign(extra="x"), base)
    assert _linked_vs_clean(con) == (len(records), 0)
    assert rematch_plan(con, STATE, VERSION) is not None


def test_the_delta_write_finds_the_changed_rows_by_key_and_hash_as_a_full_comparison() -> None:
    """`_changed_rows` compares a row by its key and one hash of its other columns: the rows
    deleted and inserted are those a comparison of every column finds (a changed value, a
    null set or cleared, a row gone, a row new; the rows left as they are kept), and the
    stored tables end equal to the delta's rows (a NaN of the delta's frame reaches DuckDB as
    a null, before and after: not tested here)."""
    records, _ = make_records(80, seed=11)
    con = duckdb.connect()
    base = link_records(records)
    write_full_link(con, records, base)
    stored = read_table(con, "match.pairs")
    pairs = stored.copy()
    assert len(pairs) >= 8
    pairs.loc[0, "probability"] = float(pairs.loc[0, "probability"]) / 2  # changed value
    pairs.loc[1, "steward_decision"] = "match"  # a null set
    pairs.loc[2, "score"] = float(pairs.loc[2, "score"])  # the same value: unchanged
    pairs.loc[3, "decision"] = None  # a value cleared
    gone_row = pairs.iloc[[4]]
    pairs = pairs.drop(index=4)
    new_row = pairs.iloc[[5]].assign(left_key="new-left", right_key="new-right")
    pairs = pd.concat([pairs, new_row], ignore_index=True)
    clusters = base.clusters.copy()
    clusters.loc[0, "cluster_key"] = "another"
    tables: dict[str, pd.DataFrame] = {
        "match.pairs": pairs, "match.clusters": clusters,
        "match.review_queue": base.review_queue.copy(),
    }  # fmt: skip
    keys = pd.concat([base.clusters["record_key"], pd.Series(["new-left"])], ignore_index=True)
    row = {"run_id": "night1", "created_at": pd.Timestamp.now(),
           "params": base.params.to_json(), **STATE}  # fmt: skip
    written = write_match_delta(con, keys, tables, row, base.prepared.iloc[:0], VERSION,
                                keys.iloc[:0])  # fmt: skip
    # rows 0, 1, 3 changed (deleted and inserted again), 4 gone, one new; the rest as stored
    assert written.deleted["match.pairs"] == 4
    assert written.inserted["match.pairs"] == 4
    assert written.deleted["match.clusters"] == written.inserted["match.clusters"] == 1
    assert written.deleted["match.review_queue"] == written.inserted["match.review_queue"] == 0
    got = read_table(con, "match.pairs")
    assert not got.merge(gone_row[["left_key", "right_key"]]).shape[0]

    def rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
        return sorted(
            tuple("nan" if isinstance(v, float) and v != v else v for v in r)
            for r in frame[list(stored.columns)]
            .astype(object)
            .where(frame[list(stored.columns)].notna(), None)
            .itertuples(index=False)
        )

    assert rows(got) == rows(pairs)


def _night_tables(base: Any) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """A delta over `base`'s stored tables: a pair changed, one gone, one new, a cluster
    changed (`test_the_delta_write_finds_the_changed_rows_by_key_and_hash_…`'s night)."""
    pairs = base.pairs.copy()
    pairs.loc[0, "probability"] = float(pairs.loc[0, "probability"]) / 2
    pairs = pairs.drop(index=4)
    new_row = pairs.iloc[[5]].assign(left_key="new-left", right_key="new-right")
    pairs = pd.concat([pairs, new_row], ignore_index=True)
    clusters = base.clusters.copy()
    clusters.loc[0, "cluster_key"] = "another"
    keys = pd.concat([base.clusters["record_key"], pd.Series(["new-left"])], ignore_index=True)
    return {"match.pairs": pairs, "match.clusters": clusters,
            "match.review_queue": base.review_queue.copy()}, keys  # fmt: skip


def _stored_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    return {
        name: sorted(map(str, con.sql(f"SELECT * FROM {name}").fetchall()))
        for name in (*DELTA_TABLES, "ops.match_changes")
    }


@pytest.mark.parametrize("moved", [False, True])
def test_the_delta_write_deletes_by_the_rowids_its_comparison_found(
    moved: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`write_match_delta` deletes the gone rows by the ``rowid`` its comparison's scan found
    them at (no second scan of the stored keys) and ends with the same tables and change log
    as a delete by key; when a stored row is no longer at its rowid (`moved`: the rowids
    found are shifted, as a checkpoint between the comparison and the write shifts them) it
    rolls back and writes by key: the same tables again."""
    import warehouse.match_state as match_state_module

    records, _ = make_records(80, seed=11)
    results = []
    write_rows = match_state_module._write_changed_rows
    changed_rows = match_state_module._changed_rows
    for mode in ("key", "rowid"):
        con = duckdb.connect()
        base = link_records(records)
        write_full_link(con, records, base)
        tables, keys = _night_tables(base)
        calls: list[bool] = []

        def writing(con_: duckdb.DuckDBPyConnection, name: str, by_rowid: bool = True,
                    layout: int | None = None, mode: str = mode,
                    calls: list[bool] = calls, moved: bool = moved) -> tuple[int, int]:  # fmt: skip
            calls.append(by_rowid)
            # (rowids shifted in place leave the storage layout as it was, which no checkpoint
            # does: the keys at the rowids are checked, as after a changed layout)
            return write_rows(con_, name, by_rowid and mode == "rowid",
                              layout=None if moved else layout)  # fmt: skip

        def shifted(con_: duckdb.DuckDBPyConnection, name: str, *args: Any, **kw: Any) -> Any:
            made = changed_rows(con_, name, *args, **kw)
            if name == "match.pairs":
                con_.execute(f"UPDATE {made[-1]} SET row_id = row_id + 1")
            return made

        monkeypatch.setattr(match_state_module, "_write_changed_rows", writing)
        if moved and mode == "rowid":
            monkeypatch.setattr(match_state_module, "_changed_rows", shifted)
        row = {"run_id": "night1", "created_at": pd.Timestamp.now(),
               "params": base.params.to_json(), **STATE}  # fmt: skip
        with caplog.at_level("WARNING", logger="customer_archive"):
            written = write_match_delta(con, keys, tables, row, base.prepared.iloc[:0],
                                        VERSION, keys.iloc[:0])  # fmt: skip
        monkeypatch.undo()
        if mode == "rowid":
            # by rowid first; after a moved row, everything again by key (one rollback)
            assert calls == ([True, False, False, False] if moved else [True, True, True])
            assert ("rows moved since the delta's comparison" in caplog.text) == moved
        assert written.deleted["match.pairs"] == written.inserted["match.pairs"] == 2
        assert written.deleted["match.clusters"] == 1
        results.append(_stored_rows(con))
    assert results[0] == results[1]


def test_a_checkpoint_moves_rowids_and_the_delta_write_still_deletes_the_right_rows(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A real checkpoint between the comparison and the write (earlier deletes not yet
    vacuumed: the checkpoint renumbers the rows after them) leaves the stored tables as a
    delete by key does."""
    import warehouse.match_state as match_state_module

    records, _ = make_records(80, seed=11)
    results = []
    lasts: list[int] = []
    changed_rows = match_state_module._changed_rows
    for checkpoint in (False, True):
        con = duckdb.connect(str(tmp_path / f"w{checkpoint}.duckdb"))
        con.execute("SET checkpoint_threshold = '1GB'")  # no automatic checkpoint
        base = link_records(records)
        write_full_link(con, records, base)
        con.execute("CHECKPOINT")
        tables, keys = _night_tables(base)
        # rows stored before the pairs and deleted (committed, not checkpointed): a
        # checkpoint vacuums them and renumbers the pairs after them
        con.execute(
            "CREATE OR REPLACE TABLE match.pairs AS SELECT * FROM (SELECT p.* REPLACE"
            " ('filler-l' || i AS left_key, 'filler-r' || i AS right_key)"
            " FROM (SELECT * FROM match.pairs LIMIT 1) AS p, range(200000) AS r(i))"
            " UNION ALL SELECT * FROM match.pairs UNION ALL SELECT p.* REPLACE"
            " ('tail-l' || i AS left_key, 'tail-r' || i AS right_key)"
            " FROM (SELECT * FROM match.pairs LIMIT 1) AS p, range(200000) AS r(i)"
        )
        con.execute("CHECKPOINT")
        con.execute("DELETE FROM match.pairs WHERE left_key LIKE 'filler-l%'")

        def then_checkpoint(con_: duckdb.DuckDBPyConnection, name: str, *args: Any,
                            checkpoint: bool = checkpoint, **kw: Any) -> Any:  # fmt: skip
            made = changed_rows(con_, name, *args, **kw)
            if name == "match.review_queue":
                if checkpoint:
                    con_.execute("CHECKPOINT").fetchall()
                ((last,),) = con_.execute(
                    "SELECT max(rowid) FROM match.pairs WHERE left_key NOT LIKE 'tail-l%'"
                ).fetchall()
                lasts.append(int(last))
            return made

        monkeypatch.setattr(match_state_module, "_changed_rows", then_checkpoint)
        row = {"run_id": "night1", "created_at": pd.Timestamp.now(),
               "params": base.params.to_json(), **STATE}  # fmt: skip
        caplog.clear()
        with caplog.at_level("WARNING", logger="customer_archive"):
            write_match_delta(con, keys, tables, row, base.prepared.iloc[:0], VERSION,
                              keys.iloc[:0])  # fmt: skip
        # (the rowids found before the checkpoint are refused: written by key)
        assert ("rows moved since the delta's comparison" in caplog.text) == checkpoint
        monkeypatch.undo()
        results.append(_stored_rows(con))
        con.close()
    assert results[0] == results[1]
    # the checkpoint renumbered the stored pairs (what the comparison found by rowid had
    # moved); the run without it did not
    assert lasts[1] < lasts[0] - 50_000


def test_the_storage_layout_changes_when_a_checkpoint_renumbers_the_rows(tmp_path: Any) -> None:
    """`storage_layout` is equal while a table's rows keep their rowids (another table
    written and checkpointed, deletes committed but not vacuumed) and differs once a
    checkpoint vacuums deleted rows (the rows after them renumbered) or the table is
    replaced by one of the same rows."""
    from warehouse.match_state import storage_layout

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET checkpoint_threshold = '1GB'")  # no automatic checkpoint
    con.execute("CREATE SCHEMA m")
    con.execute(
        "CREATE TABLE m.t AS SELECT 'filler' AS kind, range AS i FROM range(200000)"
        " UNION ALL SELECT 'data', range FROM range(1000)"
        " UNION ALL SELECT 'tail', range FROM range(200000)"
    )
    con.execute("CREATE TABLE m.other (i BIGINT)")
    con.execute("CHECKPOINT")
    first = storage_layout(con, "m.t")
    assert storage_layout(con, "m.t") == first
    con.execute("INSERT INTO m.other SELECT range FROM range(1000)")
    con.execute("CHECKPOINT")
    assert storage_layout(con, "m.t") == first
    last = "SELECT max(rowid) FROM m.t WHERE kind = 'data'"
    ((before,),) = con.execute(last).fetchall()
    con.execute("DELETE FROM m.t WHERE kind = 'filler'")
    assert storage_layout(con, "m.t") == first  # (deleted, not vacuumed: rowids kept)
    assert con.execute(last).fetchall() == [(before,)]
    con.execute("CHECKPOINT")
    ((after,),) = con.execute(last).fetchall()
    assert after < before - 50_000  # (the checkpoint renumbered the rows after the deleted)
    assert storage_layout(con, "m.t") != first
    second = storage_layout(con, "m.t")
    con.execute("CREATE OR REPLACE TABLE m.t AS SELECT * FROM m.t ORDER BY rowid")
    assert storage_layout(con, "m.t") != second
    con.close()

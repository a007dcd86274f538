"""A nightly link from only the reached part of the stored link equals a full rebuild."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from dedupe import MatchSettings, ModelParams, link_records
from dedupe.incremental import LinkDelta, _layouts, link_subset_delta
from dedupe.levels import rules_for
from tests.dedupe.synth import make_records
from tests.warehouse.test_match_state import STATE, VERSION, write_full_link
from warehouse import replace_tables
from warehouse.match_state import (
    DELTA_TABLES,
    PREPARED_TABLE,
    DeltaWrite,
    rematch_plan,
    write_match_delta,
)
from warehouse.match_subset import StoredSubset


def _write_all(
    con: duckdb.DuckDBPyConnection,
    records: pd.DataFrame,
    settings: MatchSettings | None,
    decisions: pd.DataFrame | None = None,
) -> ModelParams:
    base = link_records(records, settings, decisions=decisions)
    write_full_link(con, records, base)
    return base.params


def _tonight(
    records: pd.DataFrame, new: int, seed: int, changed: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The current records of a night: `records` with `changed` as their new versions and
    `new` copies of sampled records under new keys (``n:<key>``)."""
    dupes = records.sample(new, random_state=seed)
    dupes = dupes.assign(record_key="n:" + dupes["record_key"])
    if changed is None:
        return pd.concat([records, dupes], ignore_index=True)
    kept = records[~records["record_key"].isin(changed["record_key"])]
    return pd.concat([kept, changed, dupes], ignore_index=True)


def _night(
    con: duckdb.DuckDBPyConnection,
    current: pd.DataFrame,
    settings: MatchSettings | None,
    night: int,
    params: ModelParams,
    decisions: pd.DataFrame | None = None,
    read_pairs: bool = True,
) -> tuple[LinkDelta, DeltaWrite]:
    """Link `current` (already in clean.records) from the reached subset; check equality.
    The write finds the stored pairs of its scope among those the link read (`read_pairs`,
    as the match stage writes) or, without, in a scan of ``match.pairs``.

    Returns:
        The delta (its `prepared`: the records read, and the new versions) and what the
        write deleted and inserted.
    """
    threshold = (settings or MatchSettings()).match_threshold
    plan = rematch_plan(con, STATE, VERSION, threshold)
    assert plan is not None and plan.stored is not None and plan.delta
    source = StoredSubset(con, threshold)
    delta = link_subset_delta(plan.changed, source, settings, decisions, params)
    assert set(plan.changed["record_key"]) <= set(delta.records)
    written = write_match_delta(
        con, delta.records,
        {"match.pairs": delta.pairs, "match.clusters": delta.clusters,
         "match.review_queue": delta.review_queue},
        {"run_id": f"night{night}", "created_at": pd.Timestamp.now(),
         "params": delta.params.to_json(), **STATE},
        delta.prepared[delta.refreshed], VERSION, plan.changed["record_key"], delta.dropped,
        delta.prepared["record_key"], None, source.read_pairs if read_pairs else None,
    )  # fmt: skip
    assert delta.partial and source.read_pairs is not None
    full = link_records(current, settings, decisions=decisions, params=params)
    for name, frame, keys in (
        ("match.pairs", full.pairs, ["left_key", "right_key"]),
        ("match.clusters", full.clusters, ["record_key"]),
        ("match.review_queue", full.review_queue, ["left_key", "right_key"]),
    ):
        assert name in DELTA_TABLES
        stored = duckdb.connect()
        replace_tables(stored, {"t.frame": frame})
        pd.testing.assert_frame_equal(
            con.sql(f"SELECT * FROM {name} ORDER BY {', '.join(keys)}").df(),
            stored.sql(f"SELECT * FROM t.frame ORDER BY {', '.join(keys)}").df(),
        )
    # match.prepared holds what preparing every current record gives
    prepared = con.sql(
        f"SELECT * EXCLUDE (prepared_version) FROM {PREPARED_TABLE} ORDER BY record_key"
    ).df()
    assert full.prepared is not None
    for column in ("email_shared", "name_in_places", "name_one_holder"):
        assert (prepared[column].to_numpy() == full.prepared[column].to_numpy()).all(), column
    return delta, written


def _decisions(records: pd.DataFrame) -> pd.DataFrame:
    """A steward 'match' across two customers and a 'no-match' inside one."""
    keys = records["record_key"].tolist()
    return pd.DataFrame(
        {
            "left_key": [keys[3], keys[10]],
            "right_key": [keys[200], keys[11]],
            "decision": ["match", "no-match"],
            "decided_by": ["steward", "steward"],
            "decided_at": [pd.Timestamp("2026-11-01")] * 2,
        }
    )


@pytest.mark.parametrize(
    ("settings", "steward"),
    [
        (None, False),
        (MatchSettings(max_block_size=3, block_window=1), False),
        (MatchSettings(max_block_size=2, block_window=2), True),
    ],
)
def test_nights_linked_from_the_reached_subset_equal_full_rebuilds(
    settings: MatchSettings | None, steward: bool
) -> None:
    records, _ = make_records(400, seed=43)
    decisions = _decisions(records) if steward else None
    con = duckdb.connect()
    params = _write_all(con, records, settings, decisions)
    current = records
    for night in (1, 2, 3):
        dupes = current.sample(4, random_state=night).assign(
            record_key=lambda f, n=night: f"n{n}:" + f["record_key"]
        )
        changed = current.sample(4, random_state=20 + night).assign(email=None, phone=None)
        renamed = current.sample(2, random_state=40 + night)
        renamed = renamed.assign(name_key=renamed["name_key"].str[::-1])
        gone = pd.concat([changed, renamed])["record_key"]
        current = pd.concat(
            [current[~current["record_key"].isin(gone)], dupes, changed, renamed],
            ignore_index=True,
        )
        replace_tables(con, {"clean.records": current})
        delta, _ = _night(con, current, settings, night, params, decisions)
        # only part of the warehouse was read
        assert len(delta.prepared) < len(current)


def test_a_flag_flip_from_the_subset_relinks_the_unchanged_records() -> None:
    records, _ = make_records(200, seed=5)
    mailbox = "caiwu@daizhang.cn"
    firms = records.index[[0, 100]]
    records.loc[firms, "email"] = mailbox
    records.loc[firms, "customer_name"] = ["青松建材有限公司", "白云物流有限公司"]
    records.loc[firms, "name_key"] = ["青松建材", "白云物流"]
    con = duckdb.connect()
    params = _write_all(con, records, None)
    third = records.iloc[[50]].assign(
        record_key="new:third", customer_name="远山贸易有限公司", name_key="远山贸易", email=mailbox
    )
    current = pd.concat([records, third], ignore_index=True)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    shared = con.sql(
        f"SELECT bool_and(email_shared) FROM {PREPARED_TABLE} WHERE email = '{mailbox}'"
    ).fetchall()
    assert shared == [(True,)]


def test_a_night_without_changes_reads_no_stored_record() -> None:
    records, _ = make_records(150, seed=3)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    delta, written = _night(con, records, None, 1, params)
    assert len(delta.prepared) == 0
    assert sum(written.deleted.values()) == sum(written.inserted.values()) == 0


def _fan_out(con: duckdb.DuckDBPyConnection, threshold: float) -> tuple[str, str, str]:
    """A stored record X, a strong partner D of it and a weak partner W of D that shares no
    stored pair and no block key with X: a change of X reaches W only through D's pairs."""
    keys = sorted({lay[0] for lay in _layouts(rules_for(MatchSettings()), MatchSettings())})
    blocks = " AND ".join(
        f'(x."{k}" IS NULL OR w."{k}" IS NULL OR x."{k}" <> w."{k}")' for k in keys
    )
    found = con.execute(
        "WITH e AS (SELECT left_key AS a, right_key AS b, probability FROM match.pairs"
        " UNION ALL SELECT right_key, left_key, probability FROM match.pairs)"
        " SELECT s.a, s.b, t.b FROM e AS s JOIN e AS t ON t.a = s.b"
        f" JOIN {PREPARED_TABLE} AS x ON x.record_key = s.a"
        f" JOIN {PREPARED_TABLE} AS w ON w.record_key = t.b"
        " WHERE s.probability >= ? AND t.probability < ? AND t.b <> s.a"
        " AND t.b NOT IN (SELECT b FROM e WHERE a = s.a)"
        f" AND {blocks} ORDER BY s.a, s.b, t.b LIMIT 1",
        [threshold, threshold],
    ).fetchall()
    assert found, "the synthetic records hold no strong pair with a far weak partner"
    return found[0]


def test_a_change_reads_the_strong_component_not_its_weak_partners() -> None:
    records, _ = make_records(400, seed=43)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    threshold = MatchSettings().match_threshold
    x, d, w = _fan_out(con, threshold)
    # what the read used to take: every record sharing a stored pair with X's component
    partners = {
        k for (k,) in con.execute(
            "SELECT right_key FROM match.pairs WHERE left_key IN (?, ?)"
            " UNION SELECT left_key FROM match.pairs WHERE right_key IN (?, ?)", [x, d, x, d],
        ).fetchall()
    }  # fmt: skip
    stored_pairs = con.sql("SELECT count(*) FROM match.pairs").fetchall()[0][0]
    current = records.copy()
    current.loc[current["record_key"] == x, "email"] = None
    replace_tables(con, {"clean.records": current})
    delta, written = _night(con, current, None, 1, params)
    read = set(delta.prepared["record_key"])
    # X's component is re-clustered (D read in full), W (D's weak partner only) is not read
    assert {x, d} <= read and d in set(delta.records)
    assert w in partners and w not in read
    # the change reads its blocks and the component, a small part of the warehouse
    assert len(read) < len(records) / 4
    # and writes only the rows that changed, not every pair of the affected records
    assert written.inserted["match.pairs"] + written.deleted["match.pairs"] < stored_pairs / 20
    assert written.inserted["match.clusters"] <= len(delta.records)


def test_rows_equal_to_the_stored_ones_are_not_written_again() -> None:
    records, _ = make_records(300, seed=9)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    before = con.sql("SELECT rowid AS id, * FROM match.pairs").df()
    # a new version of a clustered record that prepares as the stored one (a trailing space)
    key = con.sql("SELECT min(left_key) FROM match.pairs WHERE decision = 'match'").fetchall()
    key = key[0][0]
    current = records.assign(
        customer_name=lambda f: f["customer_name"].where(f["record_key"] != key,
                                                         f["customer_name"] + " ")
    )  # fmt: skip
    replace_tables(con, {"clean.records": current})
    delta, written = _night(con, current, None, 1, params)
    # its component is linked again, every row comes out as stored: none is rewritten
    assert key in set(delta.records) and len(delta.pairs) > 0 and len(delta.clusters) > 1
    assert sum(written.deleted.values()) == sum(written.inserted.values()) == 0
    after = con.sql("SELECT rowid AS id, * FROM match.pairs").df()
    pd.testing.assert_frame_equal(after.sort_values("id", ignore_index=True),
                                  before.sort_values("id", ignore_index=True))  # fmt: skip


def _spy_on_scoring(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """The (left key, right key, rule) of every candidate the night scores from now on."""
    import dedupe.incremental as incremental

    scored: list[tuple[str, str, str]] = []
    score = incremental.score_candidates

    def spy(prepared, left, right, rule, *args, **kwargs):  # type: ignore[no-untyped-def]
        keys = prepared["record_key"].to_numpy(dtype=object)
        scored.extend(zip(keys[left], keys[right], rule, strict=True))
        return score(prepared, left, right, rule, *args, **kwargs)

    monkeypatch.setattr(incremental, "score_candidates", spy)
    return scored


def test_stored_pairs_generated_again_are_taken_as_stored_not_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Around a change, pairs of unchanged records come out of blocking again; those stored
    with the same rule keep their stored rows (not compared and scored again), and the night
    still equals a full rebuild. The records read are held as Arrow text (memory)."""
    settings = MatchSettings(max_block_size=2, block_window=2)
    records, _ = make_records(400, seed=43)
    con = duckdb.connect()
    params = _write_all(con, records, settings)
    stored = {
        (left, right): rule
        for left, right, rule in con.sql(
            "SELECT left_key, right_key, rule FROM match.pairs"
        ).fetchall()
    }
    changed = records.sample(6, random_state=7).assign(email=None, phone=None)
    current = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed],
        ignore_index=True,
    )
    replace_tables(con, {"clean.records": current})
    scored = _spy_on_scoring(monkeypatch)
    delta, _ = _night(con, current, settings, 1, params)
    focus = set(delta.prepared["record_key"][delta.refreshed])
    assert scored and any(left in focus or right in focus for left, right, _ in scored)
    again = [
        (left, right) for left, right, rule in scored
        if left not in focus and right not in focus and stored.get((left, right)) == rule
    ]  # fmt: skip
    assert again == []
    assert isinstance(delta.prepared["customer_name"].dtype, pd.StringDtype)
    assert delta.prepared["record_key"].dtype == object


def test_records_of_untouched_blocks_within_the_cap_are_placed_by_size_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reached record whose block (of a rule) no change touched and which is within the
    rule's cap is given place 0 and the block's true size: every pair of such a block is
    generated whatever the order, so the block is not ranked. The night still equals a full
    rebuild (`_night`)."""
    records, _ = make_records(400, seed=43)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    before = con.sql(f"SELECT * FROM {PREPARED_TABLE}").df()
    changed = records.sample(6, random_state=7).assign(email=None, phone=None)
    current = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed],
        ignore_index=True,
    )
    replace_tables(con, {"clean.records": current})
    reads: list[object] = []
    read = StoredSubset._read

    def spy(self: StoredSubset) -> object:
        reads.append(result := read(self))
        return result

    monkeypatch.setattr(StoredSubset, "_read", spy)
    _night(con, current, None, 1, params)
    full = link_records(current, None, params=params)
    assert full.prepared is not None and reads
    settings = MatchSettings()
    checked = 0
    for key, order, cap, _ in _layouts(rules_for(settings), settings):
        now = full.prepared[key].astype(object)
        sizes = now.value_counts()
        # blocks a change touched (ranked in the window order): new and old versions' keys
        touched = set(now[full.prepared["record_key"].isin(changed["record_key"])].dropna())
        touched |= set(before.loc[before["record_key"].isin(changed["record_key"]), key].dropna())
        block = dict(zip(full.prepared["record_key"], now, strict=True))
        places = reads[-1].places[f"{key}/{order}"]  # type: ignore[attr-defined]
        for record, place, size in places[["record_key", "place", "size"]].itertuples(index=False):
            assert size == sizes[block[record]]
            if size <= cap and block[record] not in touched:
                assert place == 0
                checked += 1
    assert checked > 0


def test_placed_lines_up_sorted_keys_and_rejects_a_missing_or_extra_record() -> None:
    import numpy as np
    import pyarrow as pa

    from dedupe.incremental import _placed

    keys = pa.array(["a", "b", "c", "d"])
    key = np.array([0, -1, 1, 0])  # "b" has no block key
    at = _placed(pd.Series(["d", "a", "c"], dtype="str"), keys, key)
    assert at is not None and at.tolist() == [3, 0, 2]
    assert _placed(pd.Series(["d", "a"], dtype="str"), keys, key) is None
    assert _placed(pd.Series(["d", "a", "b"], dtype="str"), keys, key) is None
    assert _placed(pd.Series(["d", "a", "a"], dtype="str"), keys, key) is None
    assert _placed(pd.Series([], dtype=object), pa.array([], pa.string()), key[:0]) is not None


def test_pass_two_takes_the_pairs_pass_one_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pass 2 links over pass 1's records and the touched records' components: the candidate
    pairs pass 1 scored come out again and are taken as scored (no pair is scored twice), and
    the night still equals a full rebuild."""
    records, _ = make_records(400, seed=43)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    changed = records.sample(6, random_state=7).assign(email=None, phone=None)
    current = _tonight(records, 4, 8, changed)
    replace_tables(con, {"clean.records": current})
    scored = _spy_on_scoring(monkeypatch)
    _night(con, current, None, 1, params)
    assert scored
    assert len(set(scored)) == len(scored)


@pytest.mark.parametrize(("limit", "during"), [("2GiB", "1.0 GiB"), ("256MiB", "256.0 MiB")])
def test_the_reach_is_read_under_a_bounded_duckdb_memory_limit_restored_after(
    monkeypatch: pytest.MonkeyPatch, limit: str, during: str
) -> None:
    """While the reach is read DuckDB's ``memory_limit`` is at most `SUBSET_MEMORY_MIB` (a lower
    one stays), and the link's cached blocks are let go; the limit is set back after the
    link and the night still equals a full rebuild."""
    records, _ = make_records(300, seed=21)
    con = duckdb.connect(config={"memory_limit": limit})
    params = _write_all(con, records, None)
    seen: list[str] = []
    pairs = StoredSubset._pairs

    def spy(self: StoredSubset, *args: object) -> object:
        seen.append(str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]))
        return pairs(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(StoredSubset, "_pairs", spy)
    current = _tonight(records, 4, 1)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    # pass 1 under the bound; pass 2's pairs (the link's last scan of match.pairs) under
    # a lower limit still, without a cache (`test_the_rows_are_read_after_the_pairs_…`)
    assert len(seen) == 2 and seen[0] == during
    from warehouse.db import memory_limit_bytes

    assert (memory_limit_bytes(seen[1]) or 0) <= (memory_limit_bytes(during) or 0)
    after = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert after == ("2.0 GiB" if limit == "2GiB" else "256.0 MiB")


def test_pass_two_reads_only_the_stored_pairs_of_the_records_it_adds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pass 2 does not read again the stored pairs pass 1 read: DuckDB gives it only the
    stored pairs with an end among the records it adds (pairs between two added records
    too), merged into pass 1's at their new positions; the link gets every stored pair among
    the records read, each with its stored columns, and the night equals a full rebuild."""
    import warehouse.match_subset as match_subset

    records, _ = make_records(1000, seed=3)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    stored = con.sql("SELECT left_key, right_key, score FROM match.pairs").df()
    merges: list[tuple[np.ndarray, dict[str, np.ndarray], int]] = []
    merged = match_subset._merged_pairs

    def spy(earlier, moved, added, n):  # type: ignore[no-untyped-def]
        merges.append((moved.copy(), {k: v.copy() for k, v in added.items()}, n))
        return merged(earlier, moved, added, n)

    monkeypatch.setattr(match_subset, "_merged_pairs", spy)
    reads: list[object] = []
    read_keys: list[np.ndarray] = []
    read = StoredSubset._read

    def spy_read(self: StoredSubset) -> object:
        reads.append(read(self))
        # (the link lets go of pass 2's rows as it merges them: the keys are kept here)
        read_keys.append(reads[-1].prepared["record_key"].to_numpy(dtype=object))  # type: ignore[attr-defined]
        return reads[-1]

    monkeypatch.setattr(StoredSubset, "_read", spy_read)
    # (a change whose touched records' strong components reach past pass 1's records)
    changed = records.sample(4, random_state=3).assign(email=None, phone=None)
    changed = changed.assign(name_key=changed["name_key"].str[::-1])
    current = _tonight(records, 4, 8, changed)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    assert len(reads) == 2 and len(merges) == 1
    moved, added, n = merges[0]
    last = reads[1]
    assert isinstance(last, match_subset.ReadSubset)
    keys = read_keys[1]
    assert n == len(keys) > len(moved)  # pass 2 added records
    new = np.ones(n, dtype=bool)
    new[moved] = False
    # DuckDB gave only pairs with an added end, some of them between two added records
    assert len(added["left"]) and (new[added["left"]] | new[added["right"]]).all()
    assert (new[added["left"]] & new[added["right"]]).any()
    # the link got every stored pair among the records read, in (left, right) order
    among = stored[stored["left_key"].isin(keys) & stored["right_key"].isin(keys)]
    got = pd.DataFrame(
        {
            "left_key": keys[last.pairs["left"]],
            "right_key": keys[last.pairs["right"]],
            "score": last.pairs["score"],
        }
    )
    assert len(added["left"]) < len(got)
    ids = last.pairs["left"] * n + last.pairs["right"]
    assert (np.diff(ids) > 0).all()
    pd.testing.assert_frame_equal(
        got.sort_values(["left_key", "right_key"]).reset_index(drop=True),
        among.sort_values(["left_key", "right_key"]).reset_index(drop=True),
    )


def test_merged_pairs_insert_the_added_pairs_at_their_places() -> None:
    from warehouse.match_subset import _merged_pairs

    # earlier: records 0..3 then, at 1, 2, 4, 6 now (records 0, 3, 5 added)
    moved = np.array([1, 2, 4, 6])

    def earlier() -> dict[str, np.ndarray]:
        return {"left": np.array([0, 0, 1, 2]), "right": np.array([1, 3, 2, 3]),
                "score": np.array([1.0, 2.0, 3.0, 4.0])}  # fmt: skip

    added = {"left": np.array([0, 1, 2, 5]), "right": np.array([3, 5, 5, 6]),
             "score": np.array([9.0, 8.0, 7.0, 6.0])}  # fmt: skip
    taken = earlier()
    out = _merged_pairs(taken, moved, added, 7)
    assert not taken  # (its columns were taken out as they were merged)
    assert list(zip(out["left"].tolist(), out["right"].tolist(), strict=True)) == [
        (0, 3),
        (1, 2),
        (1, 5),
        (1, 6),
        (2, 4),
        (2, 5),
        (4, 6),
        (5, 6),
    ]
    assert out["score"].tolist() == [9.0, 1.0, 8.0, 2.0, 3.0, 7.0, 4.0, 6.0]
    again = {"left": np.array([0, 1, 1]), "right": np.array([3, 2, 5]),
             "score": np.array([9.0, 0.5, 8.0])}  # fmt: skip
    with pytest.raises(ValueError, match="read before"):  # (1, 2) is earlier's (0, 1)
        _merged_pairs(earlier(), moved, again, 7)
    none = {k: v[:0] for k, v in earlier().items()}
    out = _merged_pairs(none, moved, added, 7)
    assert out["left"].tolist() == [0, 1, 2, 5] and out["score"].tolist() == [9.0, 8.0, 7.0, 6.0]


def test_the_stored_pair_labels_are_read_once_for_both_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule labels of ``match.pairs`` (two scans of the whole table) are read once a night,
    not again by pass 2's read; the night still equals a full rebuild."""
    import warehouse.match_subset as match_subset

    records, _ = make_records(300, seed=21)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    calls: list[int] = []
    labels = match_subset.stored_pair_labels
    reads = StoredSubset._pairs

    def spy(con_: duckdb.DuckDBPyConnection) -> object:
        calls.append(1)
        return labels(con_)

    def counted(self: StoredSubset, *args: object) -> object:
        calls.append(0)
        return reads(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(match_subset, "stored_pair_labels", spy)
    monkeypatch.setattr(StoredSubset, "_pairs", counted)
    current = _tonight(records, 4, 1)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    assert calls == [0, 1, 0]  # pass 1 reads them, pass 2 reuses them


def test_pass_two_merges_the_rows_a_column_at_a_time_as_a_concatenation_would() -> None:
    """`_taken` gives what concatenating the frames then taking `order` gives (dtypes too:
    a column of nulls only in one read, text in the other), and empties each frame as it
    goes: pass 1's rows are not held beside a concatenation and its sorted copy."""
    from warehouse.match_subset import _taken

    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    earlier = pd.DataFrame({
        "record_key": pd.Series(["a", "c", "e"], dtype=text),
        "email_shared": [True, False, True],
        "phone": pd.Series([None, None, None], dtype=object),
        "score": [1.0, 2.0, 3.0],
    })  # fmt: skip
    added = pd.DataFrame({
        "record_key": pd.Series(["d", "b"], dtype=text),
        "email_shared": [False, True],
        "phone": pd.Series(["138", None], dtype=text),
        "score": [4.0, 5.0],
    })  # fmt: skip
    keys = np.concatenate([f["record_key"].to_numpy(dtype=object) for f in (earlier, added)])
    order = np.argsort(keys, kind="stable")
    expected = pd.concat([earlier, added], ignore_index=True).take(order).reset_index(drop=True)
    got = _taken([earlier, added], order)
    pd.testing.assert_frame_equal(got, expected)
    assert got["record_key"].tolist() == ["a", "b", "c", "d", "e"]
    assert earlier.columns.empty and added.columns.empty


def test_places_and_gaps_are_read_as_int32_numbers() -> None:
    """Every layout's places (place, size) and gaps come as int32 arrays, not Python objects
    (≈ 40 bytes a value: at 1 M records a nightly holds ≈ 4.7 M places through its link) nor
    int64 (4 bytes more a value)."""
    records, _ = make_records(300, seed=5)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    reads: list[object] = []
    read = StoredSubset._read

    def spy_read(self: StoredSubset) -> object:
        reads.append(read(self))
        return reads[-1]

    changed = records.sample(3, random_state=4).assign(phone=None)
    current = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed], ignore_index=True
    )
    replace_tables(con, {"clean.records": current})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StoredSubset, "_read", spy_read)
        _night(con, current, None, 1, params)
    assert reads
    for done in reads:
        assert any(len(p) for p in done.places.values())  # type: ignore[attr-defined]
        assert any(len(g) for g in done.gaps.values())  # type: ignore[attr-defined]
        for frame in [*done.places.values(), *done.gaps.values()]:  # type: ignore[attr-defined]
            numbers = [c for c in frame.columns if c != "record_key"]
            assert numbers and all(frame[c].dtype == np.int32 for c in numbers), frame.dtypes


def test_pass_two_lets_go_of_the_rows_it_read_as_it_merges_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pass 2's read rows are emptied a column at a time as they are merged with the new
    versions (not held whole beside the merged frame: the read and its merged copy were
    pass 2's two largest frames), and the night equals a full rebuild."""
    records, _ = make_records(400, seed=9)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    reads: list[tuple[object, int]] = []
    reach, grow = StoredSubset.reach, StoredSubset.grow

    def spy_reach(self: StoredSubset, *args: object) -> object:
        out = reach(self, *args)  # type: ignore[arg-type]
        reads.append((out, len(out.prepared.columns)))
        return out

    def spy_grow(self: StoredSubset, touched: np.ndarray) -> object:
        out = grow(self, touched)
        reads.append((out, len(out.prepared.columns)))
        return out

    monkeypatch.setattr(StoredSubset, "reach", spy_reach)
    monkeypatch.setattr(StoredSubset, "grow", spy_grow)
    current = _tonight(records, 5, 2)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    (_, columns), (second, read_columns) = reads
    assert columns == read_columns > 0
    assert second.prepared.columns.empty  # type: ignore[attr-defined]


def test_pass_one_lets_go_of_its_rows_before_its_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pass 1's read rows are emptied as they are merged and nothing holds them through
    pass 1's link (the source keeps their keys only: pass 2 reads the rows again); pass 2
    reads every record pass 1 read, and the night equals a full rebuild."""
    from dedupe import incremental

    records, _ = make_records(400, seed=17)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    reads: list[tuple[StoredSubset, object]] = []
    keys: list[set[str]] = []
    held: list[tuple[int, list[str]]] = []
    reach, grow, link = StoredSubset.reach, StoredSubset.grow, incremental._link

    def spy_reach(self: StoredSubset, *args: object) -> object:
        reads.append((self, reach(self, *args)))  # type: ignore[arg-type]
        keys.append(set(self._keys_done.to_pylist()))  # type: ignore[union-attr]
        return reads[-1][1]

    def spy_grow(self: StoredSubset, touched: np.ndarray) -> object:
        reads.append((self, grow(self, touched)))
        keys.append(set(self._keys_done.to_pylist()))  # type: ignore[union-attr]
        return reads[-1][1]

    def spy_link(*args: object, **kwargs: object) -> object:
        if kwargs.get("touched_only"):  # pass 1's link: what the source and its read hold
            source, first = reads[0]
            frames = [name for name, value in vars(source).items()
                      if isinstance(value, pd.DataFrame) and len(value.columns) > 1]  # fmt: skip
            held.append((len(first.prepared.columns), frames))  # type: ignore[attr-defined]
        return link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StoredSubset, "reach", spy_reach)
    monkeypatch.setattr(StoredSubset, "grow", spy_grow)
    monkeypatch.setattr(incremental, "_link", spy_link)
    current = _tonight(records, 5, 4)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    assert held == [(0, [])]
    assert len(keys) == 2 and keys[0] and keys[0] <= keys[1]


def test_the_rows_are_read_after_the_pairs_without_a_cache_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each read reads the stored pairs among its records (DuckDB's largest working memory)
    before it builds the rows in Python, and scans the rows (and pass 2 its stored pairs, the
    link's last scan of ``match.pairs``) under a ``memory_limit`` of what DuckDB holds besides
    cached blocks (plus `SCAN_MARGIN_MIB`): the scanned blocks are let go as it goes, not
    cached beside what Python holds; the limit is set back after, and the night equals a
    full rebuild."""
    from warehouse.db import memory_limit_bytes

    records, _ = make_records(300, seed=19)
    con = duckdb.connect(config={"memory_limit": "4GiB"})
    params = _write_all(con, records, None)
    steps: list[tuple[str, int | None]] = []
    frame, pairs = StoredSubset._frame, StoredSubset._pairs

    def limit() -> int | None:
        ((value,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
        return memory_limit_bytes(str(value))

    def spy_frame(self: StoredSubset, sql: str, params: list[object] | None = None) -> object:
        if "_sub_full" in sql:
            steps.append(("rows", limit()))
        return frame(self, sql, params)

    def spy_pairs(self: StoredSubset, *args: object) -> object:
        steps.append(("pairs", limit()))
        return pairs(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(StoredSubset, "_frame", spy_frame)
    monkeypatch.setattr(StoredSubset, "_pairs", spy_pairs)
    current = _tonight(records, 4, 6)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    assert [step for step, _ in steps] == ["pairs", "rows", "pairs", "rows"]
    from warehouse.match_subset import SCAN_MARGIN_MIB, SUBSET_MEMORY_MIB

    bound = SUBSET_MEMORY_MIB * 2**20
    # pass 1's pairs under the reach's bound (grow and pass 2 scan match.pairs again);
    # pass 2's (the link's last scan of match.pairs) and both reads' rows without a cache
    # (a small warehouse: DuckDB holds a few MiB besides cached blocks)
    assert steps[0][1] == bound
    for _, value in steps[1:]:
        assert value is not None and value < bound and value <= (SCAN_MARGIN_MIB + 64) * 2**20
    assert limit() == 4 * 2**30


def test_the_old_versions_and_flag_groups_are_read_under_the_bound_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The link's first reads (the old versions, the whole-set flags' groups: scans of
    ``match.prepared``) run under the reach's bounded ``memory_limit`` too, not the
    warehouse's, and the limit is set back after the link."""
    from warehouse.match_subset import SUBSET_MEMORY_MIB

    records, _ = make_records(300, seed=13)
    con = duckdb.connect(config={"memory_limit": "4GiB"})
    params = _write_all(con, records, None)
    seen: dict[str, list[str]] = {"rows": [], "groups": []}
    frame = StoredSubset._frame

    def spy(self: StoredSubset, sql: str, params: list[object] | None = None) -> object:
        name = "rows" if "_sub_wanted" in sql else "groups" if "_sub_values" in sql else None
        if name is not None:
            ((limit,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
            seen[name].append(str(limit))
        return frame(self, sql, params)

    monkeypatch.setattr(StoredSubset, "_frame", spy)
    changed = records.sample(3, random_state=7).assign(email=None)
    current = pd.concat(
        [records[~records["record_key"].isin(changed["record_key"])], changed], ignore_index=True
    )
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    bound = f"{SUBSET_MEMORY_MIB / 1024:.1f} GiB" if SUBSET_MEMORY_MIB >= 1024 else (
        f"{SUBSET_MEMORY_MIB:.1f} MiB")  # fmt: skip
    assert seen["rows"] == [bound] and seen["groups"] and set(seen["groups"]) == {bound}
    ((after,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
    assert after == "4.0 GiB"


def test_the_unranked_blocks_are_sized_from_their_key_and_order_columns_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The members of the reached records' unranked blocks (``_sub_brows``, ≈ 0.7 of the
    records at 200 k) are copied with record_key and each layout's key and order column
    only (what their sizes and places read), not every column the reach reads, in both
    passes; the night equals a full rebuild."""
    records, _ = make_records(300, seed=21)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    seen: list[list[str]] = []
    places = StoredSubset._places

    def spy(self: StoredSubset, i: int, lay: object) -> object:
        if i == 0:  # (once a read: the first layout's places)
            seen.append([d[0] for d in self.con.sql("SELECT * FROM _sub_brows").description])
        return places(self, i, lay)  # type: ignore[arg-type]

    monkeypatch.setattr(StoredSubset, "_places", spy)
    current = _tonight(records, 4, 3)
    replace_tables(con, {"clean.records": current})
    rules = rules_for(MatchSettings())
    wanted = {"record_key"} | {r.key for r in rules} | {r.order for r in rules}
    _night(con, current, None, 1, params)
    assert len(seen) == 2 and all(set(columns) <= wanted for columns in seen), seen


def test_the_write_finds_its_stored_pairs_among_those_the_link_read() -> None:
    """A night written with the stored pairs the link read (their rowids and hashes, kept by
    `StoredSubset.grow`) leaves the same ``match.*`` tables, deletes and inserts as many rows
    and logs the same records as one whose write scans ``match.pairs`` for its scope; with
    them, the write's comparison reads no stored pair (`_changed_rows` from the read pairs).
    The hashes read with the pairs are the write's hashes of the stored rows: a stored pair
    the night left as it was is not rewritten."""
    import warehouse.match_state as match_state_module

    records, _ = make_records(400, seed=43)
    decisions = _decisions(records)
    outcomes = []
    changed_rows = match_state_module._changed_rows
    for read_pairs in (False, True):
        con = duckdb.connect()
        params = _write_all(con, records, None, decisions)
        changed = records.sample(4, random_state=21).assign(email=None, phone=None)
        current = _tonight(records, 4, 1, changed)
        replace_tables(con, {"clean.records": current})
        sources: list[str | None] = []

        def spy(con_: duckdb.DuckDBPyConnection, name: str, *args: object,
                sources: list[str | None] = sources, **kw: object) -> list[str]:  # fmt: skip
            if name == "match.pairs":
                sources.append(kw.get("stored"))  # type: ignore[arg-type]
            return changed_rows(con_, name, *args, **kw)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(match_state_module, "_changed_rows", spy)
            delta, written = _night(con, current, None, 1, params, decisions, read_pairs)
        assert sources == (["_delta_stored_pairs"] if read_pairs else [None])
        assert 0 < written.deleted["match.pairs"] < len(delta.pairs)
        outcomes.append((
            written,
            {name: sorted(map(str, con.sql(f"SELECT * FROM {name}").fetchall()))
             for name in (*DELTA_TABLES, "ops.match_changes")},
        ))  # fmt: skip
    assert outcomes[0] == outcomes[1]


class _Recorder:
    """A connection whose ``execute`` statements are recorded (everything else delegated)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seen: list[str]) -> None:
        self._con, self._seen = con, seen

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        self._seen.append(sql)
        return self._con.execute(sql, *args)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


@pytest.mark.parametrize("spoiled", [False, True])
def test_the_write_deletes_by_the_read_rowids_without_reading_their_keys_while_the_layout_holds(
    spoiled: bool,
) -> None:
    """The stored pairs' rowids the link read are deleted without reading the keys at them
    when ``match.pairs`` is stored as it was before the link's first read (`storage_layout`
    taken by `StoredSubset`, compared by `_write_changed_rows`); with another layout recorded
    (`spoiled`: as after a checkpoint that rewrote row groups) the keys at those rowids are
    checked first. Both nights equal a full rebuild (`_night`) and each other."""
    import warehouse.match_state as match_state_module

    records, _ = make_records(400, seed=43)
    decisions = _decisions(records)
    write_rows = match_state_module._write_changed_rows
    take = match_state_module.ReadPairs.take
    outcomes = []
    for spoil in (False, spoiled):
        con = duckdb.connect()
        params = _write_all(con, records, None, decisions)
        changed = records.sample(4, random_state=21).assign(email=None, phone=None)
        current = _tonight(records, 4, 1, changed)
        replace_tables(con, {"clean.records": current})
        seen: dict[str, list[str]] = {}
        layouts: dict[str, int | None] = {}

        def recorded(con_: duckdb.DuckDBPyConnection, name: str, by_rowid: bool = True,
                     layout: int | None = None, seen: dict[str, list[str]] = seen,
                     layouts: dict[str, int | None] = layouts) -> tuple[int, int]:  # fmt: skip
            layouts[name] = layout
            return write_rows(_Recorder(con_, seen.setdefault(name, [])),  # type: ignore[arg-type]
                              name, by_rowid, layout=layout)  # fmt: skip

        def taken(keys: np.ndarray, pairs: dict[str, np.ndarray], layout: int | None = None,
                  spoil: bool = spoil) -> match_state_module.ReadPairs:  # fmt: skip
            assert layout is not None
            return take(keys, pairs, layout + 1 if spoil else layout)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(match_state_module, "_write_changed_rows", recorded)
            patch.setattr(match_state_module.ReadPairs, "take", staticmethod(taken))
            delta, written = _night(con, current, None, 1, params, decisions)
        checked = [s for s in seen["match.pairs"] if "EXCEPT ALL" in s]
        assert layouts["match.pairs"] is not None
        assert len(checked) == (1 if spoil else 0)
        deletes = [s for s in seen["match.pairs"] if s.startswith("DELETE FROM match.pairs")]
        assert deletes and all("WHERE rowid IN" in s for s in deletes)
        # (the other tables' rowids come from the write's own scan: same layout, no check)
        assert not any("EXCEPT ALL" in s for s in seen["match.clusters"])
        assert 0 < written.deleted["match.pairs"] < len(delta.pairs)
        outcomes.append((
            written,
            {name: sorted(map(str, con.sql(f"SELECT * FROM {name}").fetchall()))
             for name in (*DELTA_TABLES, "ops.match_changes")},
        ))  # fmt: skip
    assert outcomes[0] == outcomes[1]


def test_spill_temporary_tables_writes_them_out_and_sets_the_limit_back(tmp_path: Path) -> None:
    """`spill_temporary_tables` lowers DuckDB's limit for an instant: a temporary table is
    written to the temporary directory (read back by a later query, same rows) and the limit
    is as before."""
    from warehouse.match_subset import spill_temporary_tables

    con = duckdb.connect(str(tmp_path / "w.duckdb"), config={"memory_limit": "1GiB"})
    con.execute(f"SET temp_directory = '{tmp_path / 'spill'}'")
    con.execute(
        "CREATE TEMP TABLE _t AS SELECT 'key:' || i::VARCHAR AS k, i FROM range(600000) t(i)"
    )
    expected = con.execute("SELECT count(*), sum(i), max(k) FROM _t").fetchall()

    def spilled() -> int:
        ((value,),) = con.execute(
            "SELECT coalesce(sum(temporary_storage_bytes), 0) FROM duckdb_memory()"
        ).fetchall()
        return int(value)

    assert spilled() == 0
    spill_temporary_tables(con, mib=1)
    assert spilled() > 0
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "1.0 GiB"
    assert con.execute("SELECT count(*), sum(i), max(k) FROM _t").fetchall() == expected


def test_pass_one_spills_its_rank_tables_and_pass_two_drops_them_before_its_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The temporary tables are spilled once, at the end of pass 1's read (before pass 1's
    link); pass 2's read drops the rank tables once its places are read, before its rows;
    the night equals a full rebuild."""
    from dedupe import incremental
    from warehouse import match_subset

    records, _ = make_records(300, seed=23)
    con = duckdb.connect()
    params = _write_all(con, records, None)
    steps: list[str] = []
    spill, frame, link = match_subset.spill_temporary_tables, StoredSubset._frame, incremental._link

    def ranks() -> int:
        ((count,),) = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_sub_rank%'"
        ).fetchall()
        return int(count)

    def spy_spill(con_: duckdb.DuckDBPyConnection, mib: int = match_subset.SPILL_MIB) -> None:
        steps.append("spill")
        spill(con_, mib)

    def spy_frame(self: StoredSubset, sql: str, params: list[object] | None = None) -> object:
        if "_sub_full" in sql:
            steps.append(f"rows (ranks {ranks()})")
        return frame(self, sql, params)

    def spy_link(*args: object, **kwargs: object) -> object:
        steps.append("link 1" if kwargs.get("touched_only") else "link 2")
        return link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(match_subset, "spill_temporary_tables", spy_spill)
    monkeypatch.setattr(StoredSubset, "_frame", spy_frame)
    monkeypatch.setattr(incremental, "_link", spy_link)
    current = _tonight(records, 4, 9)
    replace_tables(con, {"clean.records": current})
    _night(con, current, None, 1, params)
    rules = len(_layouts(rules_for(MatchSettings()), MatchSettings()))
    assert steps == [f"rows (ranks {rules})", "spill", "link 1", "rows (ranks 0)", "link 2"]

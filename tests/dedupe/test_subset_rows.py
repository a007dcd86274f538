"""The nightly subset's rows are merged a column at a time, as a concatenation would be."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedupe import incremental
from dedupe.incremental import FLAG_GROUPS, _sorted_rows, _text_column
from dedupe.pairset import PairSet, concat_pairs


def test_the_subset_rows_equal_the_sorted_concatenation_of_kept_new_and_reflagged_rows() -> None:
    """`_sorted_rows` gives ``pd.concat([stored[kept], *others]).take(order)`` with the flag
    columns as bool (the frame `_subset` built before), without the concatenation."""
    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    flag = next(iter(FLAG_GROUPS))
    stored = pd.DataFrame({
        "record_key": pd.Series(["a", "b", "c", "e"], dtype=text),
        flag: [True, False, True, False],
        "name_key": pd.Series(["x", None, "z", "w"], dtype=object),
        "place": [1, 2, 3, 4],
    })  # fmt: skip
    fresh = pd.DataFrame({
        "record_key": pd.Series(["d", "b"], dtype=text),
        flag: pd.Series([1, 0], dtype=object),
        "name_key": pd.Series(["y", "v"], dtype=object),
        "place": [5, 6],
    })  # fmt: skip
    again = stored.iloc[[2]].assign(**{flag: False})
    kept = np.array([0, 3])  # b (changed) and c (re-flagged) replaced
    parts = [stored.iloc[kept], fresh, again]
    keys = np.concatenate([p["record_key"].to_numpy(dtype=object) for p in parts])
    order = np.argsort(keys, kind="stable")
    merged = pd.concat(parts, ignore_index=True)
    for column in FLAG_GROUPS:
        if column in merged:
            merged[column] = merged[column].astype(bool)
    expected = merged.take(order).reset_index(drop=True)
    got = _sorted_rows(stored, kept, [fresh, again], order)
    pd.testing.assert_frame_equal(got, expected)
    assert got["record_key"].tolist() == ["a", "b", "c", "d", "e"]
    assert got[flag].tolist() == [True, False, False, True, False]


def test_a_read_column_is_converted_as_the_link_holds_it_without_a_frame_per_column(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_text_column` gives each column as ``_link_text`` of the whole frame holds it (index
    reset): a `keep` column of Arrow strings as objects with None, an object column of
    strings outside `keep` as Arrow strings, the others as they are; only that object
    column goes through `_link_text` (not a frame built for each of a read's columns)."""
    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    frame = pd.DataFrame({
        "record_key": pd.Series(["a", "b", "c"], dtype=text),
        "name_key": pd.Series(["x", None, "z"], dtype=text),
        "phone_masked": pd.Series([None, None, None], dtype=object),
        "city": pd.Series(["p", None, "q"], dtype=object),
        "given_name": pd.Series([None, None, None], dtype=object),
        "score": [1.0, 2.0, 3.0],
        "email_shared": [True, False, True],
    }).set_axis([7, 8, 9])  # fmt: skip
    keep = frozenset({"record_key", "name_key", "phone_masked"})
    whole = incremental._link_text(frame.reset_index(drop=True), keep)
    calls: list[str] = []
    link_text = incremental._link_text

    def spy(part: pd.DataFrame, keep: frozenset[str]) -> pd.DataFrame:
        calls.extend(part.columns)
        return link_text(part, keep)

    monkeypatch.setattr(incremental, "_link_text", spy)
    for column in frame.columns:
        pd.testing.assert_series_equal(_text_column(frame[column], keep), whole[column])
    assert whole["name_key"].tolist() == ["x", None, "z"]
    assert isinstance(whole["city"].dtype, pd.StringDtype)
    assert calls == ["city", "given_name"]


def test_columns_of_one_dtype_are_merged_as_series_without_a_frame_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the stored column and the others' share a dtype (the usual case: Arrow strings,
    objects with None, bools, numbers), `_sorted_rows` concatenates them as Series and takes
    the kept rows and `order` at once (`concat_taken`): the same frame as the concatenation
    of the frames, and no one-column frame built (on main: two frames a column)."""
    from dedupe.pairset import concat_taken

    text = pd.StringDtype("pyarrow", na_value=float("nan"))
    flag = next(iter(FLAG_GROUPS))

    def frame(keys: list[str], names: list[str | None], flags: list[bool]) -> pd.DataFrame:
        n = len(keys)
        return pd.DataFrame({
            "record_key": pd.Series(keys, dtype=text),
            flag: flags,
            "name_key": pd.Series(names, dtype=object),
            "city": pd.Series([None if i % 2 else f"c{i}" for i in range(n)], dtype=text),
            "score": np.arange(n, dtype=float),
            "size": np.arange(n, dtype=np.int64),
        })  # fmt: skip

    stored = frame(["a", "c", "e", "g"], ["x", None, "z", "w"], [True, False, True, False])
    fresh = frame(["d", "c"], ["y", None], [False, True])
    empty = stored.iloc[:0]
    kept = np.array([0, 2, 3])  # c replaced
    parts = [stored.iloc[kept], fresh, empty]
    keys = np.concatenate([p["record_key"].to_numpy(dtype=object) for p in parts])
    order = np.argsort(keys, kind="stable")
    expected = pd.concat(parts, ignore_index=True).take(order).reset_index(drop=True)

    def no_frame(self: pd.Series, *args: object, **kwargs: object) -> pd.DataFrame:
        raise AssertionError("a one-column frame was built")

    monkeypatch.setattr(pd.Series, "to_frame", no_frame)
    got = _sorted_rows(stored, kept, [fresh, empty], order)
    pd.testing.assert_frame_equal(got, expected)
    assert got["record_key"].tolist() == ["a", "c", "d", "e", "g"]
    # concat_taken alone: the values taken at the positions given, the dtype kept
    taken = concat_taken([stored["city"], fresh["city"]], np.array([5, 0, 2]))
    assert taken.dtype == text and taken.index.tolist() == [0, 1, 2]
    assert taken.isna().tolist() == [True, False, False]
    assert taken.iloc[1:].tolist() == ["c0", "c2"]


def _pair_set(rng: np.random.Generator, ids: np.ndarray, n: int, rules: list[str]) -> PairSet:
    size = len(ids)
    return PairSet(
        ids // n,
        ids % n,
        rng.integers(0, len(rules), size).astype(np.int16),
        rng.normal(size=size),
        rng.random(size),
        {"name": rng.integers(-1, 4, size).astype(np.int8),
         "phone": rng.integers(-1, 3, size).astype(np.int8)},
        rng.integers(-1, 2, size).astype(np.int16),
        rules,
        ["id_conflict"] if rules[0] == "a" else ["age_gap", "id_conflict"],
    )  # fmt: skip


@pytest.mark.parametrize("fresh_count", [0, 1, 37])
def test_interleave_places_each_column_as_the_concatenation_would(fresh_count: int) -> None:
    """`_interleave` gives ``concat_pairs([old, fresh sorted]).take(<merged order>)`` (what
    it built before: labels re-coded onto their union, same dtypes and order), built a
    column at a time; with ``consume`` the old pairs' columns are emptied, the result the
    same."""
    rng = np.random.default_rng(fresh_count)
    n = 50
    ids = rng.choice(n * n, 120 + fresh_count, replace=False)
    old = _pair_set(rng, np.sort(ids[:120]), n, ["a", "c"])
    fresh = _pair_set(rng, ids[120:], n, ["b", "c", "d"])
    keep = np.sort(rng.choice(120, 90, replace=False))
    old_ids, fresh_ids = old.ids(n)[keep], fresh.ids(n)
    # the merge as it was built before: the concatenation, then one take
    order = np.argsort(fresh_ids, kind="stable")
    slot = np.searchsorted(old_ids, fresh_ids[order]) + np.arange(fresh_count)
    index = np.empty(len(keep) + fresh_count, dtype=np.int64)
    is_fresh = np.zeros(len(index), dtype=bool)
    is_fresh[slot] = True
    index[slot] = len(old) + np.arange(fresh_count)
    index[~is_fresh] = keep
    expected = concat_pairs([old, fresh.take(order)]).take(index)
    for consume in (False, True):
        copy = old.take(slice(None))
        got = incremental._interleave(copy, keep, old_ids, fresh, fresh_ids, consume)
        assert got.rule_names == expected.rule_names
        assert got.hard_names == expected.hard_names
        for name in ("left", "right", "rule", "score", "probability", "hard"):
            assert getattr(got, name).dtype == getattr(expected, name).dtype, name
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
        assert list(got.levels) == list(expected.levels)
        for name, values in expected.levels.items():
            assert got.levels[name].dtype == values.dtype
            np.testing.assert_array_equal(got.levels[name], values)
        assert (len(copy.left) == 0 and not any(len(v) for v in copy.levels.values())) == consume
        assert len(old.left) == 120

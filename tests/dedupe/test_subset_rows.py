"""The nightly subset's rows are merged a column at a time, as a concatenation would be."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dedupe.incremental import FLAG_GROUPS, _sorted_rows


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

"""Pair labels (rule, hard rule) encode to the same codes from object arrays and Arrow text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedupe.pairset import _decode, _encode

CASES = [
    ["phone", "name_city", "phone", None, "steward", "name_city"],
    [None, None, "credit_code_conflict", None],
    [None, None],
    [],
    ["", "x", "", None],
]


@pytest.mark.parametrize("labels", CASES)
def test_object_labels_encode_like_arrow_text(labels: list[str | None]) -> None:
    from_objects = _encode(np.array(labels, dtype=object))
    from_arrow = _encode(pd.Series(labels, dtype="string"))
    assert from_objects[0].dtype == np.int16
    np.testing.assert_array_equal(from_objects[0], from_arrow[0])
    assert from_objects[1] == from_arrow[1]
    # and they decode back to the labels
    decoded = _decode(*from_objects)
    assert [None if pd.isna(v) else v for v in decoded] == labels

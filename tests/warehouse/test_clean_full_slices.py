"""``slice_bounds``: the slices a full clean reads, one process or several side by side."""

from __future__ import annotations

import pytest

from warehouse.clean_full import slice_bounds


@pytest.mark.parametrize(
    ("current", "size", "processes", "expected"),
    [
        (0, 100, 1, [(0, 100)]),
        (250, 100, 1, [(0, 100), (100, 200), (200, 300)]),
        (250, 100, 2, [(0, 63), (63, 126), (126, 189), (189, 250)]),
        (100, 1000, 2, [(0, 50), (50, 100)]),
        (1, 1000, 2, [(0, 1)]),
    ],
)
def test_slice_bounds(current: int, size: int, processes: int, expected: list) -> None:
    assert slice_bounds(current, size, processes) == expected

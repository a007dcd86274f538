"""What earlier batches of one file (or one run) saw: keys as 128-bit hashes, one value each.

A file read in batches needs, per batch, whether a row's (id, content) pair came earlier in
the file (and at which row) and how many kept rows an id already had. ``SeenKeys`` keeps
those keys sorted in NumPy arrays (16 bytes of hash and 8 of value per key): a batch is looked
up by binary search and merged in, never by rescanning earlier batches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_HASH_KEYS = ("customer.archive", "ingest.batches.2")
"""Two SipHash keys (16 chars each): two independent 64-bit hashes make a 128-bit key."""


def key_hashes(texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The 128-bit key of every text, as its high and low 64-bit halves."""
    halves = [
        pd.util.hash_pandas_object(texts, index=False, hash_key=key).to_numpy(np.uint64)
        for key in _HASH_KEYS
    ]
    return halves[0], halves[1]


class SeenKeys:
    """A growing set of distinct keys, each with an int64 value, sorted by the high half."""

    def __init__(self) -> None:
        self.hi = np.empty(0, np.uint64)
        self.lo = np.empty(0, np.uint64)
        self.value = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.hi)

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Position of every key in the state, -1 where it is not there."""
        left = np.searchsorted(self.hi, hi, side="left")
        right = np.searchsorted(self.hi, hi, side="right")
        found = np.full(len(hi), -1, dtype=np.int64)
        single = right - left == 1
        match = single.copy()
        match[single] = self.lo[left[single]] == lo[single]
        found[match] = left[match]
        for i in np.flatnonzero(right - left > 1):  # equal high halves: compare the low ones
            hits = np.flatnonzero(self.lo[left[i] : right[i]] == lo[i])
            if len(hits):
                found[i] = left[i] + hits[0]
        return found

    def values_at(self, at: np.ndarray) -> np.ndarray:
        """The values at positions from ``find`` (0 where a key was not found)."""
        values = np.zeros(len(at), dtype=np.int64)
        found = at >= 0
        values[found] = self.value[at[found]]
        return values

    def add(self, hi: np.ndarray, lo: np.ndarray, value: np.ndarray) -> None:
        """Insert keys that are not in the state yet (each once) with their values."""
        if not len(hi):
            return
        order = np.argsort(hi, kind="stable")
        hi, lo, value = hi[order], lo[order], value[order]
        at = np.searchsorted(self.hi, hi, side="left")
        self.hi = np.insert(self.hi, at, hi)
        self.lo = np.insert(self.lo, at, lo)
        self.value = np.insert(self.value, at, value)

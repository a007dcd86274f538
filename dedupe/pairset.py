"""Scored candidate pairs held as integer positions and compact arrays (no Python strings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def arrow_strings(values: pd.Series | np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """`values` as one Arrow string array (cheap for Arrow-backed pandas columns)."""
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks()
    elif isinstance(values, pa.Array):
        arr = values
    else:
        arr = pa.array(values, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    return arr


def positions_of(values: pd.Series | np.ndarray, keys: pa.Array) -> np.ndarray:
    """Position of each value in `keys` (-1 when absent), hashed in Arrow.

    Args:
        values: record keys to look up (e.g. a pairs frame's `left_key`).
        keys: the record keys of the prepared frame, in order.

    Returns:
        int64 positions.
    """
    found = pc.index_in(arrow_strings(values), value_set=keys)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _encode(values: pd.Series | np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Dictionary-encode strings: (int16 codes with -1 for null, the distinct values).

    Distinct values in order of first appearance, as Arrow's `dictionary_encode` gives them.
    """
    if isinstance(values, np.ndarray) and values.dtype == object:
        # a label per pair (rule, hard rule) drawn from a handful of strings: hashed in place,
        # without first copying millions of labels into an Arrow string array
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        return codes.astype(np.int16), [str(v) for v in uniques]
    encoded = pc.dictionary_encode(arrow_strings(values))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int16)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


def _decode(codes: np.ndarray, names: list[str]) -> pd.Series:
    """Inverse of `_encode` as a pandas `str` column (null where the code is -1)."""
    dictionary = pa.array(names, type=pa.string())
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pd.Series(dictionary.take(indices), dtype=_STR)


def _recode(codes: np.ndarray, names: list[str], target: list[str]) -> np.ndarray:
    """Map codes over `names` onto codes over `target` (which holds every name)."""
    lookup = np.array([target.index(n) for n in names] + [-1], dtype=np.int16)
    return lookup[codes]


@dataclass
class PairSet:
    """Scored pairs as columns of numbers: positions into the prepared frame, coded labels.

    Attributes:
        left, right: record positions (left < right) into the prepared frame.
        rule: code into `rule_names` of the blocking rule that produced the pair.
        score: match weight in bits (incl. term-frequency adjustment).
        probability: posterior match probability.
        levels: comparison name → level codes (int8).
        hard: code into `hard_names` of the hard rule forbidding a merge (-1 = none).
        rule_names, hard_names: the labels behind the codes.
    """

    left: np.ndarray
    right: np.ndarray
    rule: np.ndarray
    score: np.ndarray
    probability: np.ndarray
    levels: dict[str, np.ndarray]
    hard: np.ndarray
    rule_names: list[str] = field(default_factory=list)
    hard_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.left)

    def ids(self, n: int) -> np.ndarray:
        """One int64 id per pair (left·n + right): sorts like (left, right)."""
        return self.left.astype(np.int64) * np.int64(n) + self.right.astype(np.int64)

    def take(self, index: np.ndarray | slice) -> PairSet:
        """The pairs at `index` (positions or boolean mask)."""
        return PairSet(
            self.left[index],
            self.right[index],
            self.rule[index],
            self.score[index],
            self.probability[index],
            {k: v[index] for k, v in self.levels.items()},
            self.hard[index],
            list(self.rule_names),
            list(self.hard_names),
        )

    def hard_reasons(self) -> np.ndarray:
        """Hard-rule reason per pair as an object array (None when no rule applies)."""
        names = np.array([*self.hard_names, None], dtype=object)
        return names[self.hard]

    @classmethod
    def build(
        cls,
        left: np.ndarray,
        right: np.ndarray,
        rule: np.ndarray,
        levels: dict[str, np.ndarray],
        score: np.ndarray,
        probability: np.ndarray,
        hard: np.ndarray,
    ) -> PairSet:
        """Pairs from freshly scored arrays (`rule` and `hard` as object arrays of labels)."""
        rule_codes, rule_names = _encode(np.asarray(rule, dtype=object))
        hard_codes, hard_names = _encode(np.asarray(hard, dtype=object))
        return cls(
            np.asarray(left, np.int64),
            np.asarray(right, np.int64),
            rule_codes,
            np.asarray(score, np.float64),
            np.asarray(probability, np.float64),
            {k: np.asarray(v, np.int8) for k, v in levels.items()},
            hard_codes,
            rule_names,
            hard_names,
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, keys: pa.Array, comparisons: list[str]) -> PairSet:
        """Read a `LinkResult.pairs` frame back; keys not in `keys` get position -1.

        Args:
            frame: pairs with left_key, right_key, rule, score, probability, hard_rule and
                `<comparison>_level` columns.
            keys: record keys of the current prepared frame, in order.
            comparisons: comparison names whose levels to read.

        Returns:
            The pairs, in the frame's order.
        """
        rule, rule_names = _encode(frame["rule"])
        hard, hard_names = _encode(frame["hard_rule"])
        return cls(
            positions_of(frame["left_key"], keys),
            positions_of(frame["right_key"], keys),
            rule,
            frame["score"].to_numpy(dtype=np.float64),
            frame["probability"].to_numpy(dtype=np.float64),
            {c: frame[f"{c}_level"].to_numpy(dtype=np.int8) for c in comparisons},
            hard,
            rule_names,
            hard_names,
        )

    def to_frame(self, keys: pa.Array) -> pd.DataFrame:
        """The public pairs frame (left_key, right_key, rule, score, probability, levels, hard).

        Args:
            keys: record keys of the prepared frame, in order (positions index into it).
        """
        columns: dict[str, pd.Series | np.ndarray] = {
            "left_key": pd.Series(keys.take(pa.array(self.left)), dtype=_STR),
            "right_key": pd.Series(keys.take(pa.array(self.right)), dtype=_STR),
            "rule": _decode(self.rule, self.rule_names),
            "score": self.score,
            "probability": self.probability,
        }
        for name, codes in self.levels.items():
            columns[f"{name}_level"] = codes
        columns["hard_rule"] = _decode(self.hard, self.hard_names).astype("string")
        # the numbers are the pair set's own arrays, not copies (≈ 25 bytes a pair at the
        # match stage's peak); copy-on-write keeps the frame's later edits off them
        return pd.DataFrame(columns, copy=False)


def concat_pairs(parts: list[PairSet]) -> PairSet:
    """Concatenate pair sets (labels are re-coded onto their union)."""
    rule_names = sorted({n for p in parts for n in p.rule_names})
    hard_names = sorted({n for p in parts for n in p.hard_names})
    names = list(parts[0].levels) if parts else []
    return PairSet(
        np.concatenate([p.left for p in parts]) if parts else np.empty(0, np.int64),
        np.concatenate([p.right for p in parts]) if parts else np.empty(0, np.int64),
        np.concatenate([_recode(p.rule, p.rule_names, rule_names) for p in parts])
        if parts
        else np.empty(0, np.int16),
        np.concatenate([p.score for p in parts]) if parts else np.empty(0),
        np.concatenate([p.probability for p in parts]) if parts else np.empty(0),
        {c: np.concatenate([p.levels[c] for p in parts]) for c in names},
        np.concatenate([_recode(p.hard, p.hard_names, hard_names) for p in parts])
        if parts
        else np.empty(0, np.int16),
        rule_names,
        hard_names,
    )


def concat_taken(parts: list[pd.Series], at: np.ndarray) -> pd.Series:
    """``pd.concat`` of `parts` as one-column frames (ignore_index), taken at `at`, index
    reset: one column of a merge of frames (`dedupe.incremental._sorted_rows`,
    `warehouse.match_subset._taken`).

    When every part has the same dtype the parts are concatenated as Series (no dtype to
    resolve between them: the same values and dtype as the frames' concatenation) and taken
    once, without pandas' per-frame machinery (≈ 0.5 ms a column and frame: ≈ 55 columns,
    several frames, twice a nightly pass); otherwise as frames, pandas resolving the dtypes.
    """
    name = parts[0].name
    if all(part.dtype == parts[0].dtype for part in parts):
        joined = pd.concat([part.reset_index(drop=True) for part in parts], ignore_index=True)
    else:
        joined = pd.concat([part.to_frame() for part in parts], ignore_index=True)[name]
    return joined.take(at).reset_index(drop=True).rename(name)

"""Fellegi–Sunter model parameters, term-frequency adjustment and pair scoring."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from dedupe.comparisons import NULL_LEVEL, Comparison

_CLAMP = 1e-6
_TF_MIN_COUNT = 3  # values seen at least this often keep their own frequency in the params


class ModelError(ValueError):
    """The model parameters do not fit the configured comparisons or cannot be parsed."""


class TfTable(NamedTuple):
    """Term frequencies of one column: frequent values' shares, default share, Σ tf²."""

    values: dict[str, float]
    default: float
    reference: float


@dataclass
class ComparisonParams:
    """m and u probability per level (index 0 = null, unused)."""

    labels: list[str]
    m: list[float]
    u: list[float]

    def weights(self) -> np.ndarray:
        """log2(m/u) per level; 0 for the null level."""
        m = np.clip(np.asarray(self.m, dtype=np.float64), _CLAMP, 1.0)
        u = np.clip(np.asarray(self.u, dtype=np.float64), _CLAMP, 1.0)
        w = np.log2(m / u)
        w[NULL_LEVEL] = 0.0
        return w


@dataclass
class ModelParams:
    """Estimated Fellegi–Sunter parameters; JSON-serializable so runs can reuse them.

    Attributes:
        prior: λ, probability that a candidate pair is a match.
        comparisons: per comparison name, the level labels and m/u probabilities.
        tf: frequency of frequent `name_key` values (share of records).
        tf_default: frequency assumed for values absent from `tf`.
        tf_reference: average frequency of an exact agreement (Σ tf²), the neutral point.
        iterations: EM iterations run.
        tf_tables: term frequencies of the other tf-adjusted columns (e.g. `contact_name`),
            column → (frequent values, default, reference) like `tf`/`tf_default`/`tf_reference`.
    """

    prior: float
    comparisons: dict[str, ComparisonParams]
    tf: dict[str, float] = field(default_factory=dict)
    tf_default: float = 1.0
    tf_reference: float = 1.0
    iterations: int = 0
    tf_tables: dict[str, TfTable] = field(default_factory=dict)

    def tf_table(self, column: str) -> TfTable:
        """Term frequencies of `column` (`name_key` lives in the `tf*` fields)."""
        if column == "name_key":
            return TfTable(self.tf, self.tf_default, self.tf_reference)
        return self.tf_tables.get(column, TfTable({}, 1.0, 1.0))

    def set_tf_table(self, column: str, table: TfTable) -> None:
        """Store the term frequencies of `column`."""
        if column == "name_key":
            self.tf, self.tf_default, self.tf_reference = table
        else:
            self.tf_tables[column] = table

    def to_json(self) -> str:
        """Serialize to a JSON string."""
        return json.dumps(
            {
                "version": 1,
                "prior": self.prior,
                "comparisons": {
                    k: {"labels": v.labels, "m": v.m, "u": v.u} for k, v in self.comparisons.items()
                },
                "tf": self.tf,
                "tf_default": self.tf_default,
                "tf_reference": self.tf_reference,
                "iterations": self.iterations,
                "tf_tables": {k: list(v) for k, v in self.tf_tables.items()},
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelParams:
        """Parse parameters written by `to_json`.

        Raises:
            ModelError: when the text is not valid model JSON.
        """
        try:
            data = json.loads(text)
            comparisons = {
                k: ComparisonParams(list(v["labels"]), list(v["m"]), list(v["u"]))
                for k, v in data["comparisons"].items()
            }
            return cls(
                prior=float(data["prior"]),
                comparisons=comparisons,
                tf={str(k): float(v) for k, v in data.get("tf", {}).items()},
                tf_default=float(data.get("tf_default", 1.0)),
                tf_reference=float(data.get("tf_reference", 1.0)),
                iterations=int(data.get("iterations", 0)),
                tf_tables={
                    str(k): TfTable(
                        {str(a): float(b) for a, b in v[0].items()}, float(v[1]), float(v[2])
                    )
                    for k, v in data.get("tf_tables", {}).items()
                },
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot read model parameters: {exc}") from exc

    def check(self, comparisons: list[Comparison]) -> None:
        """Raise ModelError unless the params cover `comparisons` with the same levels."""
        for comp in comparisons:
            params = self.comparisons.get(comp.name)
            if params is None:
                raise ModelError(f"model params lack comparison {comp.name!r}; re-estimate them")
            if tuple(params.labels) != comp.labels:
                raise ModelError(
                    f"model params for {comp.name!r} have levels {params.labels}, "
                    f"expected {list(comp.labels)}; re-estimate them"
                )


def term_frequencies(prepared: pd.DataFrame, column: str) -> TfTable:
    """Frequencies of `column` values: (frequent values, default for the rest, Σ tf²).

    Counted over distinct (value, phone, e-mail) holders rather than records: the same
    customer exported by three departments is one holder of its name, so a rare name is not
    made common by its own duplicates, while 张伟 stays common (many phones and e-mails).
    """
    holders = [c for c in (column, "phone", "email") if c in prepared.columns]
    values = prepared[holders].drop_duplicates()[column].dropna()
    if values.empty:
        return TfTable({}, 1.0, 1.0)
    counts = values.value_counts()
    tf = counts / counts.sum()
    reference = float((tf**2).sum())
    frequent = tf[counts >= _TF_MIN_COUNT]
    rare = tf[counts < _TF_MIN_COUNT]
    default = float((rare**2).sum() / rare.sum()) if len(rare) else float(tf.min())
    return TfTable({str(k): float(v) for k, v in frequent.items()}, default, reference)


def tf_bonus(
    values: np.ndarray,
    exact: np.ndarray,
    params: ModelParams,
    max_bonus: float,
    column: str = "name_key",
) -> np.ndarray:
    """Term-frequency adjustment (bits) for exact agreements on `values` (0 elsewhere).

    Agreeing on a value shared by a share `tf` of the records is worth log2(Σtf² / tf) bits
    more than an average exact agreement: positive for rare names, negative for 张伟.
    """
    out = np.zeros(len(values), dtype=np.float64)
    if not exact.any():
        return out
    table = params.tf_table(column)
    codes, uniques = pd.factorize(pd.Series(values[exact], dtype=object))
    freq = np.array([table.values.get(str(u), table.default) for u in uniques], dtype=np.float64)
    bonus = np.clip(np.log2(table.reference / np.maximum(freq, _CLAMP)), -max_bonus, max_bonus)
    out[exact] = bonus[codes]
    return out


def posterior(score: np.ndarray, prior: float) -> np.ndarray:
    """Match probability of a match weight (bits) under the prior λ."""
    return _probability(score, prior)


def _probability(score: np.ndarray, prior: float) -> np.ndarray:
    logit = score + np.log2(prior / (1.0 - prior))
    return 1.0 / (1.0 + np.exp2(-np.clip(logit, -60, 60)))


def tf_adjustment(
    prepared: pd.DataFrame,
    left: np.ndarray,
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    params: ModelParams,
    max_bonus: float,
) -> np.ndarray:
    """Sum of term-frequency bonuses (bits) of the comparisons with a `tf_column`.

    Args:
        prepared: the prepared records.
        left: left position of each pair (on an exact agreement both values are equal).
        levels: level codes per comparison (level 1 = exact).
        comparisons: comparisons in use.
        params: model parameters holding the term-frequency tables.
        max_bonus: cap in bits per comparison.

    Returns:
        Bonus in bits per pair.
    """
    total = np.zeros(len(left), dtype=np.float64)
    for comp in comparisons:
        if comp.tf_column is None or comp.name not in levels:
            continue
        values = prepared[comp.tf_column].to_numpy(dtype=object)[left]
        total += tf_bonus(values, levels[comp.name] == 1, params, max_bonus, comp.tf_column)
    return total


def score_pairs(
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    params: ModelParams,
    tf_adjust: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Match weight (log2 Bayes factor) and posterior probability per pair.

    Args:
        levels: level codes per comparison.
        comparisons: comparisons to combine.
        params: estimated parameters.
        tf_adjust: term-frequency bonus in bits per pair (or None).

    Returns:
        (score, probability) arrays.
    """
    n_pairs = len(next(iter(levels.values()))) if levels else 0
    score = np.zeros(n_pairs, dtype=np.float64)
    for c in comparisons:
        score += params.comparisons[c.name].weights()[levels[c.name]]
    if tf_adjust is not None:
        score += tf_adjust
    return score, _probability(score, params.prior)

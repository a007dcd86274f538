"""Fellegi–Sunter model: m/u by EM over candidate pairs, term-frequency adjustment, scoring."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedupe.comparisons import NULL_LEVEL, Comparison, PairContext, compute_levels

_CLAMP = 1e-6
_SMOOTH = 0.5  # pseudo-count per level so EM cannot collapse a level to probability 0
_TF_MIN_COUNT = 3  # values seen at least this often keep their own frequency in the params


class ModelError(ValueError):
    """The model parameters do not fit the configured comparisons or cannot be parsed."""


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
    """

    prior: float
    comparisons: dict[str, ComparisonParams]
    tf: dict[str, float] = field(default_factory=dict)
    tf_default: float = 1.0
    tf_reference: float = 1.0
    iterations: int = 0

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


def term_frequencies(prepared: pd.DataFrame, column: str) -> tuple[dict[str, float], float, float]:
    """Frequencies of `column` values: (frequent values, default for the rest, Σ tf²)."""
    values = prepared[column].dropna()
    if values.empty:
        return {}, 1.0, 1.0
    counts = values.value_counts()
    tf = counts / counts.sum()
    reference = float((tf**2).sum())
    frequent = tf[counts >= _TF_MIN_COUNT]
    rare = tf[counts < _TF_MIN_COUNT]
    default = float((rare**2).sum() / rare.sum()) if len(rare) else float(tf.min())
    return {str(k): float(v) for k, v in frequent.items()}, default, reference


def tf_bonus(
    values: np.ndarray, exact: np.ndarray, params: ModelParams, max_bonus: float
) -> np.ndarray:
    """Term-frequency adjustment (bits) for exact agreements on `values` (0 elsewhere)."""
    out = np.zeros(len(values), dtype=np.float64)
    if not exact.any():
        return out
    codes, uniques = pd.factorize(pd.Series(values[exact], dtype=object))
    freq = np.array([params.tf.get(str(u), params.tf_default) for u in uniques], dtype=np.float64)
    bonus = np.clip(np.log2(params.tf_reference / np.maximum(freq, _CLAMP)), -max_bonus, max_bonus)
    out[exact] = bonus[codes]
    return out


def estimate_u(
    prepared: pd.DataFrame, comparisons: list[Comparison], n_pairs: int, seed: int
) -> dict[str, np.ndarray]:
    """u probabilities per level from random record pairs (used to initialize EM)."""
    n = len(prepared)
    rng = np.random.default_rng(seed)
    size = min(n_pairs, max(n * (n - 1) // 2, 1))
    left = rng.integers(0, max(n, 1), size=size)
    right = rng.integers(0, max(n, 1), size=size)
    keep = left != right
    ctx = PairContext(prepared, left[keep], right[keep])
    levels = compute_levels(ctx, comparisons)
    return {c.name: _level_shares(levels[c.name], None, len(c.labels)) for c in comparisons}


def _level_shares(levels: np.ndarray, weights: np.ndarray | None, n_levels: int) -> np.ndarray:
    counts = np.bincount(levels, weights=weights, minlength=n_levels).astype(np.float64)
    counts[NULL_LEVEL] = 0.0
    counts[1:] += _SMOOTH
    return counts / counts.sum()


def estimate_params(
    levels: dict[str, np.ndarray],
    comparisons: list[Comparison],
    u_init: dict[str, np.ndarray],
    prior: float | None,
    max_iterations: int,
    tolerance: float,
) -> ModelParams:
    """Estimate m, u and λ by expectation–maximization over the candidate pairs.

    Args:
        levels: level codes per comparison for the candidate pairs.
        comparisons: the comparisons (for labels and m starting values).
        u_init: starting u per comparison (from random pairs).
        prior: fixed λ, or None to estimate it.
        max_iterations: EM iteration cap.
        tolerance: stop when no probability moves more than this.

    Returns:
        The estimated parameters (without term frequencies).
    """
    m = {c.name: _initial_m(c) for c in comparisons}
    u = {c.name: np.asarray(u_init[c.name], dtype=np.float64) for c in comparisons}
    lam = prior if prior is not None else 0.3
    iterations = 0
    n_pairs = len(next(iter(levels.values()))) if levels else 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - iterations reported
        if n_pairs == 0:
            break
        score = np.zeros(n_pairs, dtype=np.float64)
        for c in comparisons:
            w = np.log2(np.clip(m[c.name], _CLAMP, 1) / np.clip(u[c.name], _CLAMP, 1))
            w[NULL_LEVEL] = 0.0
            score += w[levels[c.name]]
        p = _probability(score, lam)
        delta = 0.0
        for c in comparisons:
            new_m = _level_shares(levels[c.name], p, len(c.labels))
            new_u = _level_shares(levels[c.name], 1.0 - p, len(c.labels))
            delta = max(delta, float(np.abs(new_m - m[c.name]).max()))
            delta = max(delta, float(np.abs(new_u - u[c.name]).max()))
            m[c.name], u[c.name] = new_m, new_u
        if prior is None:
            new_lam = float(np.clip(p.mean(), 1e-4, 0.9999))
            delta = max(delta, abs(new_lam - lam))
            lam = new_lam
        if delta < tolerance:
            break
    return ModelParams(
        prior=lam,
        comparisons={
            c.name: ComparisonParams(list(c.labels), m[c.name].tolist(), u[c.name].tolist())
            for c in comparisons
        },
        iterations=iterations,
    )


def _initial_m(comp: Comparison) -> np.ndarray:
    values = np.array([0.0, *(lv.m_init for lv in comp.levels), comp.else_m], dtype=np.float64)
    return values / values.sum()


def _probability(score: np.ndarray, prior: float) -> np.ndarray:
    logit = score + np.log2(prior / (1.0 - prior))
    return 1.0 / (1.0 + np.exp2(-np.clip(logit, -60, 60)))


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

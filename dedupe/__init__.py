"""Entity resolution (客户去重): blocking, Fellegi–Sunter scoring, clustering and stable IDs."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it: the module is imported on first
# use (PEP 562), so importing one light submodule (e.g. a settings class) does not load
# pandas, SciPy or DuckDB for the whole package (the CLI must start fast).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "dedupe.assemble": ("LinkResult",),
    "dedupe.blocking": ("BLOCKING_RULES", "BlockingRule"),
    "dedupe.comparisons": ("COMPARISONS", "Comparison", "Level"),
    "dedupe.evaluate": ("AccuracyReport", "evaluate_decisions", "evaluate_links", "evaluate_run"),
    "dedupe.explain": ("Explanation", "FieldEvidence", "explain_pair"),
    "dedupe.ids": ("CustomerIdError", "IdAssignment", "assign_customer_ids", "resolve_customer_id"),
    "dedupe.incremental": (
        "StoredLink",
        "link_incremental",
        "LinkDelta",
        "link_stored",
        "link_stored_delta",
        "link_subset_delta",
        "prepared_version",
        "stored_pair_set",
    ),
    "dedupe.levels": (
        "comparisons_for",
        "compile_blocking_rule",
        "compile_comparison",
        "rules_for",
    ),
    "dedupe.link": ("link_records",),
    "dedupe.metrics": (
        "Scores",
        "accuracy_against_truth",
        "bcubed_scores",
        "blocking_recall",
        "pairwise_scores",
    ),
    "dedupe.model": ("ModelError", "ModelParams"),
    "dedupe.pairset": ("PairSet",),
    "dedupe.prepare": ("RecordsError", "record_columns"),
    "dedupe.rules": ("DecisionError",),
    "dedupe.settings": ("MatchSettings",),
    "dedupe.shard": (
        "ShardSetup",
        "finish_compact",
        "finish_sharded",
        "link_sharded",
        "prepare_sharded",
        "shard_pairs",
    ),
    "dedupe.similarity": ("scoring_workers",),
    "dedupe.specs": ("BlockingRuleSpec", "ComparisonSpec", "LevelSpec"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "BLOCKING_RULES",
    "COMPARISONS",
    "AccuracyReport",
    "BlockingRule",
    "BlockingRuleSpec",
    "Comparison",
    "ComparisonSpec",
    "CustomerIdError",
    "DecisionError",
    "Explanation",
    "FieldEvidence",
    "IdAssignment",
    "Level",
    "LevelSpec",
    "LinkDelta",
    "LinkResult",
    "MatchSettings",
    "ModelError",
    "ModelParams",
    "PairSet",
    "RecordsError",
    "Scores",
    "ShardSetup",
    "StoredLink",
    "accuracy_against_truth",
    "assign_customer_ids",
    "bcubed_scores",
    "blocking_recall",
    "comparisons_for",
    "compile_blocking_rule",
    "compile_comparison",
    "evaluate_decisions",
    "evaluate_links",
    "evaluate_run",
    "explain_pair",
    "finish_compact",
    "finish_sharded",
    "link_incremental",
    "link_records",
    "link_sharded",
    "link_stored",
    "link_stored_delta",
    "link_subset_delta",
    "pairwise_scores",
    "prepare_sharded",
    "prepared_version",
    "record_columns",
    "resolve_customer_id",
    "rules_for",
    "scoring_workers",
    "shard_pairs",
    "stored_pair_set",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))

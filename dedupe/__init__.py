"""Entity resolution (客户去重): blocking, Fellegi–Sunter scoring, clustering and stable IDs."""

from dedupe.assemble import LinkResult
from dedupe.blocking import BLOCKING_RULES, BlockingRule
from dedupe.comparisons import COMPARISONS, Comparison, Level
from dedupe.evaluate import AccuracyReport, evaluate_decisions, evaluate_links, evaluate_run
from dedupe.explain import Explanation, FieldEvidence, explain_pair
from dedupe.ids import CustomerIdError, IdAssignment, assign_customer_ids, resolve_customer_id
from dedupe.incremental import link_incremental
from dedupe.levels import comparisons_for, compile_blocking_rule, compile_comparison, rules_for
from dedupe.link import link_records
from dedupe.metrics import (
    Scores,
    accuracy_against_truth,
    bcubed_scores,
    blocking_recall,
    pairwise_scores,
)
from dedupe.model import ModelError, ModelParams
from dedupe.pairset import PairSet
from dedupe.prepare import RecordsError
from dedupe.rules import DecisionError
from dedupe.settings import MatchSettings
from dedupe.shard import ShardSetup, finish_sharded, link_sharded, prepare_sharded, shard_pairs
from dedupe.similarity import scoring_workers
from dedupe.specs import BlockingRuleSpec, ComparisonSpec, LevelSpec

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
    "LinkResult",
    "MatchSettings",
    "ModelError",
    "ModelParams",
    "PairSet",
    "RecordsError",
    "Scores",
    "ShardSetup",
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
    "finish_sharded",
    "link_incremental",
    "link_records",
    "link_sharded",
    "pairwise_scores",
    "prepare_sharded",
    "resolve_customer_id",
    "rules_for",
    "scoring_workers",
    "shard_pairs",
]

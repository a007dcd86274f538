"""The level library and the compiler from declared specs to the engine's comparisons and rules.

`compile_comparison(spec)` turns a `ComparisonSpec` (built-in or from `archive.yml`) into a
`Comparison` whose levels are bulk tests over candidate pairs; `compile_blocking_rule(spec)`
turns a `BlockingRuleSpec` into a `BlockingRule` keyed on a prepared column (`key_column`).
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from dedupe.blocking import BlockingRule
from dedupe.comparisons import (
    Comparison,
    Level,
    PairContext,
    Test,
    all_of,
    any_of,
    both_flags,
    either_flag,
    exact,
    negate,
    similar,
)
from dedupe.defaults import BUILTIN_BLOCKING_RULES, BUILTIN_COMPARISONS
from dedupe.prepare import PINYIN_COLUMNS, pinyin
from dedupe.specs import BlockingRuleSpec, ComparisonSpec, LevelSpec, level_m, parse_key

if TYPE_CHECKING:
    from dedupe.settings import MatchSettings

MASKED_SUFFIX = "_masked"
"""`<field>_masked` holds the masked values of a field (138****5678, 张*) in the prepared frame."""


def pinyin_column(field: str) -> str:
    """The prepared column holding the pinyin of `field`."""
    return PINYIN_COLUMNS.get(field, f"pinyin({field})")


def _pinyin(value: object) -> object:
    return pinyin(str(value)) if value is not None else None


def _exact_pinyin(field: str) -> Test:
    if field in PINYIN_COLUMNS:
        return exact(PINYIN_COLUMNS[field])

    def _test(ctx: PairContext) -> np.ndarray:
        lc, rc, _ = ctx.transformed_codes(field, "pinyin", _pinyin)
        return (lc == rc) & (lc >= 0)

    return _test


def _rotated_pinyin(field: str) -> Test:
    if field in PINYIN_COLUMNS:
        return similar(PINYIN_COLUMNS[field], 1.0, "rotation")
    raise ValueError(f"pinyin_reordered needs one of the fields {sorted(PINYIN_COLUMNS)}")


def _day_number(value: object) -> object:
    try:
        return date.fromisoformat(str(value)[:10]).toordinal()
    except ValueError:
        return None


def _number(value: object) -> object:
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _numeric_values(
    ctx: PairContext, field: str, name: str, func: object
) -> tuple[np.ndarray, ...]:
    """(left values, right values, both present) of a per-distinct-value numeric transform."""
    lc, rc, uniques = ctx.transformed_codes(field, name, func)  # type: ignore[arg-type]
    values = np.asarray([float(v) for v in uniques.tolist()] + [np.nan], dtype=np.float64)
    return values[lc], values[rc], (lc >= 0) & (rc >= 0)


def _date_distance(field: str, max_days: int) -> Test:
    def _test(ctx: PairContext) -> np.ndarray:
        left, right, both = _numeric_values(ctx, field, "days", _day_number)
        return both & (np.abs(np.nan_to_num(left - right, nan=np.inf)) <= max_days)

    return _test


def _numeric_distance(field: str, max_abs: float | None, max_rel: float | None) -> Test:
    def _test(ctx: PairContext) -> np.ndarray:
        left, right, both = _numeric_values(ctx, field, "number", _number)
        diff = np.nan_to_num(np.abs(left - right), nan=np.inf)
        ok = np.zeros(len(diff), dtype=bool)
        if max_abs is not None:
            ok |= diff <= max_abs
        if max_rel is not None:
            scale = np.nan_to_num(np.maximum(np.abs(left), np.abs(right)), nan=0.0)
            ok |= diff <= max_rel * scale
        return both & ok

    return _test


def _within_edits(field: str, scorer: str, max_distance: int) -> Test:
    threshold = 1.0 / (1.0 + max_distance) - 1e-6  # closeness = 1 / (1 + distance)
    return similar(field, threshold, scorer)


def _id_typo(field: str) -> Test:
    """Same length, one substituted or transposed character, and not both numbers valid."""
    close = _within_edits(field, "damerau_levenshtein", 1)
    valid = f"{field}_valid"

    def _test(ctx: PairContext) -> np.ndarray:
        lc, rc = ctx.pair_codes(field)
        _, uniques = ctx.codes(field)
        lengths = np.asarray([len(str(u)) for u in uniques.tolist()] + [-1], dtype=np.int64)
        hit = (lengths[lc] == lengths[rc]) & close(ctx)
        if valid in ctx.prepared:
            lv, rv = ctx.flag(valid)
            hit &= ~(lv & rv)
        return hit

    return _test


@cache
def _mask_pattern(mask: str) -> re.Pattern[str]:
    """A masked value as a pattern: a run of k stars is k characters in digit masks
    (138****5678), one or more characters in text masks (张* for 张伟 or 张伟伟)."""
    digits = all(c.isdigit() or c == "*" for c in mask)
    parts = re.split(r"(\*+)", mask)
    regex = "".join(
        (f".{{{len(p)}}}" if digits else ".+") if p.startswith("*") else re.escape(p) for p in parts
    )
    return re.compile(regex)


def masked_compatible(mask: str, other: str) -> bool:
    """Whether a masked value could be `other` (full or masked): ``138****5678`` vs
    ``+8613812345678``, ``张*`` vs ``张伟``; two masks are compatible when equal."""
    if "*" in other:
        return mask == other
    pattern = _mask_pattern(mask)
    if pattern.fullmatch(other):
        return True
    return other.startswith("+86") and pattern.fullmatch(other[3:]) is not None


def _masked(field: str) -> Test:
    masked = field + MASKED_SUFFIX

    def _test(ctx: PairContext) -> np.ndarray:
        out = np.zeros(len(ctx), dtype=bool)
        if masked not in ctx.prepared:
            return out
        ml, mr = ctx.pair_codes(masked)
        fl, fr = ctx.pair_codes(field)
        _, mu = ctx.codes(masked)
        _, fu = ctx.codes(field)
        # (mask code, other value) per side; full values and masks share one lookup
        for mask_codes, full_codes, other_masks in ((ml, fr, mr), (mr, fl, ml)):
            for other_codes, uniques in ((full_codes, fu), (other_masks, mu)):
                at = np.nonzero((mask_codes >= 0) & (other_codes >= 0) & ~out)[0]
                if not len(at):
                    continue
                key = mask_codes[at] * np.int64(len(uniques) + 1) + other_codes[at]
                distinct, inverse = np.unique(key, return_inverse=True)
                ok = np.array([
                    masked_compatible(str(mu[k // (len(uniques) + 1)]),
                                      str(uniques[k % (len(uniques) + 1)]))
                    for k in distinct.tolist()
                ], dtype=bool)  # fmt: skip
                out[at[ok[inverse]]] = True
        return out

    return _test


def level_test(spec: LevelSpec, field: str) -> Test:
    """The bulk test of one declared level (`field` is the comparison's field)."""
    column = spec.field or field
    kind = spec.type
    if kind == "exact":
        test = all_of(*(exact(c) for c in spec.fields)) if spec.fields else exact(column)
    elif kind in ("jaro_winkler", "jaro", "ratio", "contains"):
        test = similar(column, float(spec.threshold or 0.0), kind)
    elif kind in ("prefix", "rotation"):
        test = similar(column, 1.0, kind)
    elif kind in ("levenshtein", "damerau_levenshtein"):
        test = _within_edits(column, kind, int(spec.max_distance or 0))
    elif kind == "pinyin":
        test = _exact_pinyin(column)
    elif kind == "pinyin_reordered":
        test = _rotated_pinyin(column)
    elif kind == "date_distance":
        test = _date_distance(column, int(spec.max_days or 0))
    elif kind == "numeric_distance":
        test = _numeric_distance(column, spec.max_abs, spec.max_rel)
    elif kind == "id_number":
        test = exact(column) if spec.mode == "exact" else _id_typo(column)
    elif kind == "masked":
        test = _masked(column)
    elif kind == "both_flags":
        test = both_flags(str(spec.flag))
    elif kind == "flags":  # the conditions alone decide
        test = _always
    else:  # any
        test = any_of(*(level_test(s, column) for s in spec.any or []))
    conditions = [test]
    if spec.unless_flag:
        conditions.append(negate(either_flag(spec.unless_flag)))
    conditions += [negate(both_flags(f)) for f in spec.unless_both]
    conditions += [both_flags(f) for f in spec.if_both]
    conditions += [either_flag(f) for f in spec.if_either]
    conditions += [_either_null(c) for c in spec.if_null]
    return conditions[0] if len(conditions) == 1 else all_of(*conditions)


def _always(ctx: PairContext) -> np.ndarray:
    return np.ones(len(ctx), dtype=bool)


def _either_null(column: str) -> Test:
    return lambda ctx: ctx.null(column)


def compile_comparison(spec: ComparisonSpec) -> Comparison:
    """The engine's `Comparison` for a declared spec.

    Raises:
        ValueError: a level the field cannot support (pinyin_reordered without pinyin).
    """
    levels = tuple(
        Level(
            lv.default_label(),
            level_test(lv, spec.field),
            level_m(lv, i),
            alone=not lv.needs_corroboration,
            sufficient=lv.stands_alone,
        )
        for i, lv in enumerate(spec.levels)
    )
    labels = [lv.label for lv in levels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"comparison {spec.name!r}: level labels repeat ({labels}); set label:")
    masked = any(lv.type == "masked" for lv in spec.levels)
    null_fields = tuple(spec.null_fields or [spec.field])
    return Comparison(
        spec.name,
        tuple(sorted(spec.referenced_fields(), key=lambda f: f != spec.field)),
        levels,
        null_columns=null_fields,
        else_m=spec.else_m,
        tf_column=spec.field if spec.tf_adjustment else None,
        tf_without=spec.tf_without,
        identity=spec.corroborates,
        masked_columns={spec.field: spec.field + MASKED_SUFFIX} if masked else {},
        partial_levels=tuple(i + 1 for i, lv in enumerate(spec.levels) if lv.type == "masked"),
    )


def compile_blocking_rule(
    spec: BlockingRuleSpec, comparisons: list[ComparisonSpec] | None = None
) -> BlockingRule:
    """The engine's `BlockingRule` for a declared spec.

    Without `determines`, a rule determines the comparisons on fields it uses as plain keys.
    """
    if spec.determines is not None:
        determines = tuple(spec.determines)
    else:
        plain = {k.strip() for k in spec.keys if parse_key(k)[0] is None}
        determines = tuple(c.name for c in comparisons or [] if c.field in plain)
    similarity = None
    if spec.min_similarity is not None:
        f = spec.min_similarity
        similarity = (f.field, f.scorer, f.threshold)
    return BlockingRule(
        spec.name,
        spec.key_column(),
        spec.max_block_size,
        determines,
        window=spec.window,
        order=spec.order,
        trains=spec.trains,
        min_similarity=similarity,
    )


@cache
def builtin_comparisons() -> dict[str, Comparison]:
    """The built-in comparisons, compiled (`dedupe.comparisons.COMPARISONS`)."""
    return {name: compile_comparison(spec) for name, spec in BUILTIN_COMPARISONS.items()}


@cache
def builtin_blocking_rules() -> dict[str, BlockingRule]:
    """The built-in blocking rules, compiled (`dedupe.blocking.BLOCKING_RULES`)."""
    return {name: compile_blocking_rule(spec) for name, spec in BUILTIN_BLOCKING_RULES.items()}


def comparisons_for(settings: MatchSettings) -> list[Comparison]:
    """The compiled comparisons `settings` use, in order (built-ins from the cache)."""
    builtins = builtin_comparisons()
    return [
        builtins[c] if isinstance(c, str) else compile_comparison(c) for c in settings.comparisons
    ]


def rules_for(settings: MatchSettings) -> list[BlockingRule]:
    """The compiled blocking rules `settings` use, in priority order."""
    comparisons = settings.comparison_specs()
    builtins = builtin_blocking_rules()
    return [
        builtins[r] if isinstance(r, str) else compile_blocking_rule(r, comparisons)
        for r in settings.blocking_rules
    ]


def unknown_fields(settings: MatchSettings, available: set[str]) -> list[str]:
    """Where the declared comparisons and keys read a field nobody provides.

    Args:
        settings: the matching settings.
        available: the clean-record columns and the attribute names the sources declare.

    Returns:
        One message per unknown field, naming its key (`matching.comparisons.2 (wechat).field:
        'wechat_id' …`); empty when every field is known.
    """
    from dedupe.prepare import BOOL_FIELDS, DERIVED_FIELDS, DERIVED_FLAGS, TEXT_FIELDS

    known = available | {"record_key", *TEXT_FIELDS, *BOOL_FIELDS, *DERIVED_FIELDS}
    known |= set(DERIVED_FLAGS)
    known |= {f"{f}{MASKED_SUFFIX}" for f in TEXT_FIELDS}
    problems = []
    for i, spec in enumerate(settings.comparisons):
        if isinstance(spec, str):
            continue
        for field in sorted(spec.referenced_fields() - known):
            problems.append(
                f"matching.comparisons.{i} ({spec.name}): field {field!r} is neither a clean "
                "column nor an attribute any source declares (sources.yml `attributes:`)"
            )
    for i, rule in enumerate(settings.blocking_rules):
        if isinstance(rule, str):
            continue
        for key in rule.keys:
            for field in parse_key(key)[1]:
                if field not in known:
                    problems.append(
                        f"matching.blocking_rules.{i} ({rule.name}): key {key!r} reads "
                        f"{field!r}, neither a clean column nor a declared attribute"
                    )
        extra = [("order", rule.order)]
        if rule.min_similarity is not None:
            extra.append(("min_similarity.field", rule.min_similarity.field))
        for where, field in extra:
            if field not in known:
                problems.append(
                    f"matching.blocking_rules.{i} ({rule.name}).{where}: {field!r} is neither "
                    "a clean column nor a declared attribute"
                )
    return problems

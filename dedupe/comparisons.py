"""Field comparisons (字段比对): declarative levels evaluated in bulk over candidate pairs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dedupe.similarity import PRUNABLE, score_pairs_of_values

NULL_LEVEL = 0


def column_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Factorized codes of a column (int64, -1 = null) and its distinct values (object)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


class PairContext:
    """Candidate pairs over a prepared frame, with per-column caches of distinct-value work."""

    def __init__(
        self,
        prepared: pd.DataFrame,
        left: np.ndarray,
        right: np.ndarray,
        codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.prepared = prepared
        self.left = left
        self.right = right
        # Few records involved (incremental runs): factorize only their values.
        self._rows: np.ndarray | None = None
        self._pos: tuple[np.ndarray, np.ndarray] = (left, right)
        if codes is None and 0 < len(left) < len(prepared):
            rows = np.unique(np.concatenate([left, right]))
            if 2 * len(rows) < len(prepared):
                self._rows = rows
                self._pos = (np.searchsorted(rows, left), np.searchsorted(rows, right))
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {} if codes is None else codes
        self._sims: dict[tuple[str, str, float], tuple[np.ndarray, np.ndarray]] = {}
        self._focus: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.left)

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Factorized codes of `column` (-1 = null) and its distinct values."""
        if column not in self._codes:
            values = self.prepared[column]
            if self._rows is not None:
                values = values.iloc[self._rows]
            self._codes[column] = column_codes(values)
        return self._codes[column]

    def pair_codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        codes, _ = self.codes(column)
        return codes[self._pos[0]], codes[self._pos[1]]

    def null(self, column: str) -> np.ndarray:
        lc, rc = self.pair_codes(column)
        return (lc < 0) | (rc < 0)

    def exact(self, column: str) -> np.ndarray:
        lc, rc = self.pair_codes(column)
        return (lc == rc) & (lc >= 0)

    def flag(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        values = self.prepared[column].to_numpy(dtype=bool)
        return values[self.left], values[self.right]

    @contextmanager
    def focused(self, mask: np.ndarray) -> Iterator[None]:
        """Within the block, tests need to be right only where `mask` holds (lazy similarity).

        `Comparison.evaluate` focuses each level on the pairs no earlier level decided, so a
        costly similarity is computed only for pairs whose level it can still change.
        """
        before, self._focus = self._focus, mask
        try:
            yield
        finally:
            self._focus = before

    def similarity(self, column: str, scorer: str, at_least: float = 0.0) -> np.ndarray:
        """Similarity in [0, 1], computed once per distinct pair of values (0 when null).

        Inside `focused(mask)` only the pairs under `mask` are guaranteed to be scored (the
        rest may read 0 until a later call needs them); each pair is scored at most once.
        With `at_least`, a `PRUNABLE` scorer may report similarities below it as 0.
        """
        bound = at_least if scorer in PRUNABLE else 0.0
        key = (column, scorer, bound)
        lc, rc = self.pair_codes(column)
        if key not in self._sims:
            self._sims[key] = (np.zeros(len(lc), dtype=np.float64), (lc < 0) | (rc < 0))
        out, done = self._sims[key]
        todo = ~done if self._focus is None else self._focus & ~done
        if todo.any():
            _, uniques = self.codes(column)
            width = np.int64(len(uniques) + 1)
            pair = lc[todo] * width + rc[todo]
            distinct, inverse = np.unique(pair, return_inverse=True)
            a = uniques[distinct // width].tolist()
            b = uniques[distinct % width].tolist()
            out[todo] = score_pairs_of_values(scorer, a, b, bound)[inverse]
            done |= todo
        return out


Test = Callable[[PairContext], np.ndarray]


def exact(column: str) -> Test:
    """Both values present and equal."""
    return lambda ctx: ctx.exact(column)


def similar(column: str, threshold: float, scorer: str = "jaro_winkler") -> Test:
    """Both values present and rapidfuzz similarity ≥ threshold."""
    return lambda ctx: ctx.similarity(column, scorer, threshold) >= threshold


def either_flag(column: str) -> Test:
    """The boolean flag is set on either side."""

    def _test(ctx: PairContext) -> np.ndarray:
        lf, rf = ctx.flag(column)
        return lf | rf

    return _test


def both_flags(column: str) -> Test:
    """The boolean flag is set on both sides."""

    def _test(ctx: PairContext) -> np.ndarray:
        lf, rf = ctx.flag(column)
        return lf & rf

    return _test


def either_null(column: str) -> Test:
    """The value is missing on either side (e.g. a place known only to province level)."""
    return lambda ctx: ctx.null(column)


def negate(test: Test) -> Test:
    """Logical not of a test."""
    return lambda ctx: ~test(ctx)


def all_of(*tests: Test) -> Test:
    """Logical and of tests."""

    def _test(ctx: PairContext) -> np.ndarray:
        result = tests[0](ctx)
        for t in tests[1:]:
            result = result & t(ctx)
        return result

    return _test


def any_of(*tests: Test) -> Test:
    """Logical or of tests."""

    def _test(ctx: PairContext) -> np.ndarray:
        result = tests[0](ctx)
        for t in tests[1:]:
            result = result | t(ctx)
        return result

    return _test


@dataclass(frozen=True)
class Level:
    """One comparison level: the first level (in order) whose test holds wins."""

    label: str
    test: Test
    m_init: float
    alone: bool = True
    """False: the level cannot make a match by itself — the pair also needs a level of an
    `identity` comparison (a look-alike name may be another firm one character away)."""
    sufficient: bool = False
    """True: the level identifies the customer on its own (one person's mobile, one mailbox, one
    credit code): the pair is a match unless a hard rule or another comparison's disagreement
    (`else`) of an `identity` comparison speaks against it."""


@dataclass(frozen=True)
class Comparison:
    """A field comparison: null when any `null_columns` value is missing, else levels, else `else`.

    Level codes: 0 = null (no evidence), 1..k = `levels` in order, k+1 = else.
    """

    name: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    null_columns: tuple[str, ...] = ()
    else_m: float = 0.05
    tf_column: str | None = None
    tf_without: str | None = None
    """Flag column of records left out of the term frequencies (the tf-adjusted level 1 does
    not apply to them: organisations have their own exact level)."""
    identity: bool = False
    """Its agreeing levels identify a customer (phone, e-mail, contact, address, credit code),
    corroborating a level that cannot stand alone."""
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "labels", ("null", *(lv.label for lv in self.levels), "else")
        )

    def evaluate(self, ctx: PairContext) -> np.ndarray:
        """Level code per candidate pair (int8)."""
        out = np.full(len(ctx), len(self.levels) + 1, dtype=np.int8)
        undecided = np.ones(len(ctx), dtype=bool)
        null = np.zeros(len(ctx), dtype=bool)
        for column in self.null_columns or self.columns[:1]:
            null |= ctx.null(column)
        out[null] = NULL_LEVEL
        undecided &= ~null
        for code, level in enumerate(self.levels, start=1):
            if not undecided.any():
                break
            with ctx.focused(undecided):
                hit = level.test(ctx) & undecided
            out[hit] = code
            undecided &= ~hit
        return out


COMPARISONS: dict[str, Comparison] = {
    c.name: c
    for c in (
        Comparison(
            "name_key",
            ("name_key",),
            (
                # a person's name (张伟) is shared by strangers far more often than an
                # organisation's: its own level (and the term-frequency bonus of level 1)
                Level("exact", all_of(exact("name_key"), negate(both_flags("is_org"))), 0.4),
                # the name of firms in several cities (city twins), one record's city unknown:
                # which of them it is needs more than the name
                Level(
                    "exact_org_elsewhere_too",
                    all_of(exact("name_key"), both_flags("is_org"),
                           either_flag("name_in_places"), either_null("place_city")),
                    0.1,
                    alone=False,
                ),
                Level("exact_org", exact("name_key"), 0.35),
                Level("same_pinyin", exact("name_pinyin"), 0.05, alone=False),
                # the trade name (字号) sounds the same: 成星投资 / 诚星, 汇化贸易 / 汇华
                Level("brand_sound", exact("brand_pinyin"), 0.02, alone=False),
                Level("jw>=0.92", similar("name_key", 0.92), 0.05, alone=False),
                Level("jw>=0.80", similar("name_key", 0.80), 0.03, alone=False),
                Level(
                    "pinyin_reordered", similar("name_pinyin", 1.0, "rotation"), 0.01, alone=False
                ),
                # a short form keeps the trade name: 金飞 (青岛金飞) vs 金飞电子
                Level("prefix", similar("name_key", 1.0, "prefix"), 0.02, alone=False),
                # a person's record names the contact of a company's record (lead vs contract)
                Level(
                    "person_is_contact",
                    all_of(exact("person_name"), negate(both_flags("is_org")),
                           negate(both_flags("is_person"))),
                    0.02,
                ),
            ),
            tf_column="name_key",
            tf_without="is_org",
        ),
        Comparison(
            "phone",
            ("phone", "phone_shared"),
            (
                # a mobile is one person's; a landline rings for a family, an office floor
                Level(
                    "exact_mobile",
                    all_of(exact("phone"), both_flags("phone_mobile"),
                           negate(either_flag("phone_shared"))),
                    0.5,
                    sufficient=True,
                ),
                Level("exact", all_of(exact("phone"), negate(either_flag("phone_shared"))), 0.2),
                Level("exact_shared", exact("phone"), 0.05),
                # a mobile against a landline: one person's mobile and home phone, a contact's
                # mobile and the office line — different numbers, but not a contradiction
                Level("mobile_vs_landline",
                      all_of(either_flag("phone_mobile"), negate(both_flags("phone_mobile"))),
                      0.1),
                # one digit mistyped (a 14-character +86 number: ratio 1 − 2/28)
                Level("one_digit_off", all_of(similar("phone", 0.92, "ratio"),
                                              negate(either_flag("phone_shared"))), 0.02),
            ),
            identity=True,
        ),
        Comparison(
            "email",
            ("email", "email_domain", "email_is_free"),
            (
                Level("exact", all_of(exact("email"), negate(either_flag("email_shared"))), 0.65,
                      sufficient=True),
                Level("exact_shared", exact("email"), 0.05),
                Level(
                    "same_company_domain",
                    all_of(exact("email_domain"), negate(either_flag("email_is_free"))),
                    0.1,
                ),
            ),
            identity=True,
        ),
        Comparison(
            "credit_code",
            ("credit_code", "credit_code_valid"),
            (
                Level("exact", exact("credit_code"), 0.9, sufficient=True),
                Level("both_valid_differ", both_flags("credit_code_valid"), 0.001),
                Level("ratio>=0.88", similar("credit_code", 0.88, "ratio"), 0.05),
            ),
            identity=True,
        ),
        Comparison(
            "contact_name",
            ("contact_name",),
            (
                Level("exact", exact("contact_name"), 0.7),
                Level(
                    "close",
                    any_of(exact("contact_pinyin"), similar("contact_name", 0.9)),
                    0.1,
                ),
                Level("surname_only", similar("contact_name", 1.0, "prefix"), 0.1),
            ),
            tf_column="contact_name",
            identity=True,
        ),
        Comparison(
            "location",
            ("city", "district", "province"),
            (
                Level("city_district", all_of(exact("city"), exact("district")), 0.6),
                Level("city", exact("city"), 0.25),
                Level("province", exact("province"), 0.05),
            ),
            null_columns=("city",),
        ),
        Comparison(
            # where the customer is, from address, name region or landline area code
            # (`dedupe.prepare`): a province-only place is compatible with its cities
            "place",
            ("place_city", "place_province", "district"),
            (
                Level("city_district", all_of(exact("place_city"), exact("district")), 0.4),
                Level("city", exact("place_city"), 0.4),
                Level(
                    "province_city_unknown",
                    all_of(exact("place_province"), either_null("place_city")),
                    0.15,
                ),
                Level("province", exact("place_province"), 0.02),
            ),
            null_columns=("place_province",),
        ),
        Comparison(
            "address",
            ("address",),
            (
                Level("ratio>=0.90", similar("address", 0.90, "ratio"), 0.6),
                Level("ratio>=0.70", similar("address", 0.70, "ratio"), 0.2),
                Level("contained", similar("address", 0.95, "contains"), 0.1),
            ),
            identity=True,
        ),
        Comparison(
            "customer_type",
            ("customer_type",),
            (Level("exact", exact("customer_type"), 0.95),),
        ),
    )
}


def uncorroborated(levels: dict[str, np.ndarray], comparisons: list[Comparison]) -> np.ndarray:
    """Pairs resting on a level that cannot stand alone, with no `identity` level agreeing.

    Args:
        levels: level codes per comparison.
        comparisons: the comparisons the codes belong to.

    Returns:
        Boolean mask per pair (such pairs may go to review, never merge on their own).
    """
    n = len(next(iter(levels.values()))) if levels else 0
    weak = np.zeros(n, dtype=bool)
    backed = np.zeros(n, dtype=bool)
    for comp in comparisons:
        codes = levels[comp.name]
        for code, level in enumerate(comp.levels, start=1):
            if not level.alone:
                weak |= codes == code
        if comp.identity:
            backed |= (codes > NULL_LEVEL) & (codes <= len(comp.levels))
    return weak & ~backed


def sufficient(levels: dict[str, np.ndarray], comparisons: list[Comparison]) -> np.ndarray:
    """Pairs at a `sufficient` level with no `identity` comparison disagreeing (its else level).

    Args:
        levels: level codes per comparison.
        comparisons: the comparisons the codes belong to.

    Returns:
        Boolean mask per pair (such pairs match unless a hard rule forbids it).
    """
    n = len(next(iter(levels.values()))) if levels else 0
    strong = np.zeros(n, dtype=bool)
    against = np.zeros(n, dtype=bool)
    for comp in comparisons:
        codes = levels[comp.name]
        for code, level in enumerate(comp.levels, start=1):
            if level.sufficient:
                strong |= codes == code
        if comp.identity:
            against |= codes == len(comp.levels) + 1
    return strong & ~against


def compute_levels(ctx: PairContext, comparisons: list[Comparison]) -> dict[str, np.ndarray]:
    """Evaluate every comparison over the candidate pairs.

    Args:
        ctx: the candidate pairs and their prepared frame.
        comparisons: comparisons to evaluate.

    Returns:
        Comparison name → level codes (int8, one per pair).
    """
    return {c.name: c.evaluate(ctx) for c in comparisons}

"""Runs named checks as Great Expectations 1.x suites on an ephemeral, process-wide context."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from expectations._gx_import import import_gx

if TYPE_CHECKING:  # GX takes ~8 s to import: load it only when a suite first runs.
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations import Expectation

MAX_EXAMPLES = 5
PARTIAL_EXAMPLES = 20
"""Unexpected rows per expectation whose values and keys are looked at for examples."""
_DATA_SOURCE = "customer_archive"
_DOCS_SITE = "customer_archive_docs"
_lock = threading.RLock()
_state: dict[str, Any] = {}


@dataclass(frozen=True)
class GxCheck:
    """One named check: one or more GX expectations evaluated on the same frame.

    Attributes:
        name: Catalog check name.
        expectations: GX expectations; the check succeeds when all of them do.
        key_column: Column whose values at unexpected rows are reported as ``unexpected_keys``.
        thresholds: Bounds used, copied into ``observed``.
        extra: Figures computed outside GX (e.g. duplicate examples), copied into ``observed``.
        compact: Leave the per-expectation details out of ``observed`` (``extra`` says enough).
        counts: Keys of ``extra`` that count rows: added up when the parts of a check run over
            chunks of rows are merged (``merge_parts``); the other ``extra`` values must agree.
    """

    name: str
    expectations: Sequence[Expectation]
    key_column: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    compact: bool = False
    counts: tuple[str, ...] = ()


@dataclass
class ExpectationPart:
    """One expectation's result over some rows, in a form that adds up over chunks of rows.

    Attributes:
        detail: ``expectation``, ``column`` (when it has one), ``success`` and GX's figures
            (``element_count``, ``unexpected_count``, ``missing_count``, ``observed_value``).
        examples: The first (at most ``PARTIAL_EXAMPLES``) unexpected values, in row order.
        keys: The key column's values at those rows (empty without a key column).
        errors: Messages of exceptions GX caught while evaluating it.
    """

    detail: dict[str, Any]
    examples: list[Any] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class CheckPart:
    """A check's result over some rows, to summarise (``finish``) or merge (``merge_parts``).

    Attributes:
        check: The check (its thresholds, extra figures and layout of ``observed``).
        parts: One per expectation, in the check's order.
        failing: Every failing key (``all_failing``), else None.
    """

    check: GxCheck
    parts: list[ExpectationPart]
    failing: set[Any] | None = None


_ADDED = ("element_count", "unexpected_count", "missing_count")
"""The figures of a map expectation that count rows (summed over chunks)."""


def merge_parts(first: CheckPart, second: CheckPart) -> CheckPart:
    """One check's parts over two consecutive runs of rows as the part over both.

    Counts are added; the examples and their keys are the first ``PARTIAL_EXAMPLES`` of the
    rows in order (``first``'s before ``second``'s), so ``finish`` of the merged part equals
    the result over the rows of both at once, for expectations that succeed exactly when no
    row is unexpected (map expectations without ``mostly``).

    Raises:
        ValueError: the parts are not of the same check, or a figure cannot be added
            (``mostly``, ``observed_value``, extra figures that differ and are not ``counts``).
    """
    check = first.check
    if second.check.name != check.name or len(first.parts) != len(second.parts):
        raise ValueError(f"cannot merge parts of {check.name!r} and {second.check.name!r}")
    for expectation in check.expectations:
        if expectation.configuration.kwargs.get("mostly") not in (None, 1, 1.0):
            raise ValueError(f"{check.name}: a check with 'mostly' cannot be run in chunks")
    parts = []
    for a, b in zip(first.parts, second.parts, strict=True):
        if "observed_value" in a.detail or "observed_value" in b.detail:
            raise ValueError(f"{check.name}: an aggregate expectation cannot be run in chunks")
        detail = dict(a.detail)
        detail["success"] = bool(a.detail.get("success")) and bool(b.detail.get("success"))
        for key in _ADDED:
            if key in a.detail or key in b.detail:
                detail[key] = a.detail.get(key, 0) + b.detail.get(key, 0)
        parts.append(
            ExpectationPart(
                detail,
                (a.examples + b.examples)[:PARTIAL_EXAMPLES],
                (a.keys + b.keys)[:PARTIAL_EXAMPLES],
                a.errors + b.errors,
            )
        )
    extra = dict(check.extra)
    for key, value in second.check.extra.items():
        if key in check.counts:
            extra[key] = extra.get(key, 0) + value
        elif extra.get(key) != value:
            raise ValueError(f"{check.name}: extra figure {key!r} differs between chunks")
    failing = None
    if first.failing is not None or second.failing is not None:
        failing = (first.failing or set()) | (second.failing or set())
    return CheckPart(replace(check, extra=extra), parts, failing)


def finish(part: CheckPart) -> tuple[bool, dict[str, Any]]:
    """``(success, observed)`` of a check from its part (``observed`` as ``run_checks`` gives)."""
    check = part.check
    observed: dict[str, Any] = {}
    examples: list[Any] = []
    keys: list[Any] = []
    errors: list[str] = []
    details: list[dict[str, Any]] = []
    success = bool(part.parts) and all(bool(p.detail["success"]) for p in part.parts)
    for p in part.parts:
        errors.extend(p.errors)
        details.append(p.detail)
        examples.extend(p.examples)
        keys.extend(p.keys)
    if check.compact:
        pass
    elif len(details) == 1:
        observed.update({k: v for k, v in details[0].items() if k not in ("success",)})
    else:
        observed["expectations"] = details
        counts = [d["unexpected_count"] for d in details if "unexpected_count" in d]
        if counts:
            observed["unexpected_count"] = sum(counts)
    if any(e is not None for e in examples) or (examples and not keys):
        observed["unexpected_examples"] = _first_distinct(examples)
    if keys:
        observed["unexpected_keys"] = _first_distinct(keys)
    if check.thresholds:
        observed["thresholds"] = {k: _jsonable(v) for k, v in check.thresholds.items()}
    observed.update({k: _jsonable(v) for k, v in check.extra.items()})
    if errors:
        observed["error"] = "; ".join(dict.fromkeys(errors))
        success = False
    if not part.parts:
        observed["error"] = "no expectation result was produced"
    if part.failing is not None:
        observed["failing_keys"] = sorted(part.failing, key=str)
    return success, observed


def run_in_chunks(
    rows: pd.DataFrame | Iterable[pd.DataFrame],
    parts_of: Callable[[pd.DataFrame], Mapping[str, CheckPart | tuple[bool, dict[str, Any]]]],
) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Each check's result over ``rows``, given as one frame or as consecutive chunks.

    ``parts_of(chunk)`` gives each check's part over a chunk (or a result decided without the
    rows, e.g. a skipped check, which every chunk must give alike); the parts are merged in
    row order (``merge_parts``) and finished. Empty chunks are left out unless all are empty
    (then the first is validated, as an empty frame would be).

    Raises:
        ValueError: no chunk at all, or chunks that disagree on a result decided without rows.
    """
    merged: dict[str, CheckPart | tuple[bool, dict[str, Any]]] = {}
    for chunk in _nonempty([rows] if isinstance(rows, pd.DataFrame) else rows):
        for name, part in parts_of(chunk).items():
            if name not in merged:
                merged[name] = part
                continue
            done = merged[name]
            if isinstance(done, CheckPart) and isinstance(part, CheckPart):
                merged[name] = merge_parts(done, part)
            elif done != part:
                raise ValueError(f"check {name!r}: chunks disagree ({done} / {part})")
    return {name: finish(p) if isinstance(p, CheckPart) else p for name, p in merged.items()}


def _nonempty(chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The chunks that hold rows; the first (empty) one when none does."""
    empty: pd.DataFrame | None = None
    seen_rows = False
    for chunk in chunks:
        if len(chunk):
            seen_rows = True
            yield chunk
        elif empty is None:
            empty = chunk
    if not seen_rows:
        if empty is None:
            raise ValueError("no chunk of rows to validate (not even an empty one)")
        yield empty


def gx_context() -> AbstractDataContext:
    """Return the process-wide ephemeral GX context, creating it on first use.

    Returns:
        An ``EphemeralDataContext`` with progress bars off and one pandas data source.
    """
    with _lock:
        if "context" not in _state:
            gx = import_gx()
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(
                globally=False, metric_calculations=False
            )
            context.data_sources.add_pandas(_DATA_SOURCE)
            _state["context"] = context
        return _state["context"]


def run_checks(
    suite_name: str, frame: pd.DataFrame, checks: Sequence[GxCheck], all_failing: bool = False
) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Validate ``frame`` with a suite built from ``checks`` and summarise each check.

    The suite and its validation definition are (re)built under ``suite_name`` so that the
    latest parameters are used and Data Docs show one page per suite.

    Args:
        suite_name: Suite, data asset and validation definition name (e.g. ``golden.customers``).
        frame: The table to validate.
        checks: Checks to evaluate on ``frame``.
        all_failing: Also list, under ``observed["failing_keys"]``, the ``key_column`` value of
            every failing row (GX's COMPLETE result format), not only the first examples.

    Returns:
        ``{check name: (success, observed)}``.
    """
    parts = run_check_parts(suite_name, frame, checks, all_failing)
    return {name: finish(part) for name, part in parts.items()}


def run_check_parts(
    suite_name: str, frame: pd.DataFrame, checks: Sequence[GxCheck], all_failing: bool = False
) -> dict[str, CheckPart]:
    """``run_checks`` before summarising: each check's part, to ``finish`` or ``merge_parts``.

    A caller validating a table in chunks of rows runs this per chunk (a GX validation each)
    and merges the parts in row order.
    """
    gx = import_gx()

    frame = _checked_columns(frame, checks).reset_index(drop=True)
    with _lock:
        context = gx_context()
        batch_definition = _batch_definition(context, suite_name)
        expectations = []
        for check in checks:
            for expectation in check.expectations:
                expectation.meta = {**(expectation.meta or {}), "check": check.name}
                expectations.append(expectation)
        # passing all expectations at once avoids GX re-serialising the suite per addition
        suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
        if any(s.name == suite_name for s in context.suites.all()):
            context.validation_definitions.delete(suite_name)
            context.suites.delete(suite_name)
        suite = context.suites.add(suite)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
        )
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={
                "result_format": "COMPLETE" if all_failing else "SUMMARY",
                "partial_unexpected_count": PARTIAL_EXAMPLES,
            },
        )
    by_check: dict[str, list[Any]] = {check.name: [] for check in checks}
    for item in result.results:
        config = item.expectation_config
        name = (config.meta or {}).get("check") if config is not None else None
        if name not in by_check:
            raise RuntimeError(f"GX returned a result for an unknown expectation: {config}")
        by_check[name].append(item)
    return {
        check.name: CheckPart(
            check,
            [_expectation_part(check, r, frame) for r in by_check[check.name]],
            _failing_keys(check, by_check[check.name], frame) if all_failing else None,
        )
        for check in checks
    }


_COLUMN_KWARGS = ("column", "column_A", "column_B")


def _checked_columns(frame: pd.DataFrame, checks: Sequence[GxCheck]) -> pd.DataFrame:
    """The columns of ``frame`` the checks read: their expectations' columns and key columns.

    GX copies the whole batch frame for each expectation (its null filter and unexpected-row
    selection take every column) and fingerprints every column of it once per validation, so
    columns no expectation reads cost CPU and change nothing in the results (rows, their
    order and index stay the same). An expectation naming no column (a table expectation)
    keeps every column.
    """
    wanted: list[str] = []
    for check in checks:
        if check.key_column is not None:
            wanted.append(check.key_column)
        for expectation in check.expectations:
            kwargs = expectation.configuration.kwargs
            named = [kwargs[k] for k in _COLUMN_KWARGS if kwargs.get(k) is not None]
            named += list(kwargs.get("column_list") or [])
            if not named:
                return frame
            wanted.extend(named)
    keep = [c for c in dict.fromkeys(wanted) if c in frame.columns]
    return frame if len(keep) == len(frame.columns) else frame[keep]


def _failing_keys(check: GxCheck, results: Sequence[Any], frame: pd.DataFrame) -> set[Any]:
    """The ``key_column`` value of every row an expectation of ``check`` found unexpected."""
    if check.key_column is None or check.key_column not in frame.columns:
        return set()
    rows: set[int] = set()
    for r in results:
        found = (r.result or {}).get("unexpected_index_list") or []
        rows.update(i for i in found if isinstance(i, int))
    keys = frame[check.key_column].iloc[sorted(rows)].tolist()
    return {_jsonable(k) for k in keys if k is not None and k is not pd.NA}


def build_docs_site(folder: Path) -> Path:
    """Write GX Data Docs for every suite and validation run so far to ``folder``.

    Args:
        folder: Target folder (created).

    Returns:
        Path of the site's ``index.html``.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with _lock:
        context = gx_context()
        config: Any = {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        sites = {site["site_name"] for site in context.get_docs_sites_urls()}
        if _DOCS_SITE in sites:
            context.delete_data_docs_site(_DOCS_SITE)
        context.add_data_docs_site(site_name=_DOCS_SITE, site_config=config)
        context.build_data_docs(site_names=[_DOCS_SITE])
    index = folder / "index.html"
    if not index.is_file():
        raise RuntimeError(f"GX Data Docs build wrote no index.html under {folder}")
    return index


def _batch_definition(context: AbstractDataContext, asset_name: str) -> Any:
    source: Any = context.data_sources.get(_DATA_SOURCE)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
        return asset.add_batch_definition_whole_dataframe("whole_frame")
    return asset.get_batch_definition("whole_frame")


def _expectation_part(check: GxCheck, r: Any, frame: pd.DataFrame) -> ExpectationPart:
    """One GX expectation result as a part (its figures, first examples and their keys)."""
    res = dict(r.result or {})
    detail: dict[str, Any] = {"expectation": r.expectation_config.type}
    column = r.expectation_config.kwargs.get("column")
    if column is not None:
        detail["column"] = column
    detail["success"] = bool(r.success)
    for key in ("observed_value", *_ADDED):
        if key in res:
            detail[key] = _jsonable(res[key])
    examples = [_jsonable(v) for v in res.get("partial_unexpected_list") or []]
    keys: list[Any] = []
    if check.key_column is not None and check.key_column in frame.columns:
        idx = [i for i in res.get("partial_unexpected_index_list") or [] if isinstance(i, int)]
        keys = [_jsonable(v) for v in frame[check.key_column].iloc[idx].tolist()]
    return ExpectationPart(detail, examples, keys, _exception_messages(r.exception_info))


def _exception_messages(info: Any) -> list[str]:
    """Messages of raised exceptions in a GX ``exception_info`` (flat or keyed by metric)."""
    if not isinstance(info, dict):
        return []
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return [str(info.get("exception_message") or "expectation raised an error")]
        return []
    return [m for value in info.values() for m in _exception_messages(value)]


def _first_distinct(values: Sequence[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
        if len(seen) == MAX_EXAMPLES:
            break
    return seen


def _jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)

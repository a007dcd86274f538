"""Helpers shared by the layer suites: column checks, skipped checks and outcome assembly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from expectations._gx_import import import_gx
from expectations._gx_runner import GxCheck
from expectations.catalog import CHECKS, Layer
from expectations.outcome import CheckOutcome
from expectations.settings import QualitySettings

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

Results = dict[str, tuple[bool, dict[str, Any]]]


def columns_present(name: str, frame: pd.DataFrame, required: Sequence[str]) -> GxCheck:
    """Build a check that every column in ``required`` exists in ``frame``.

    Args:
        name: Catalog check name.
        frame: Frame that will be validated.
        required: Column names that must exist.

    Returns:
        A check with one ``ExpectColumnToExist`` per column and the missing ones listed.
    """
    gxe = import_gx("great_expectations.expectations")

    required = list(dict.fromkeys(required))
    missing = [c for c in required if c not in frame.columns]
    expectations: list[Expectation] = [gxe.ExpectColumnToExist(column=c) for c in required]
    if not expectations:
        expectations = [gxe.ExpectTableColumnCountToBeBetween(min_value=0, max_value=None)]
    return GxCheck(
        name,
        expectations,
        extra={"required_columns": required, "missing_columns": missing},
        compact=True,
    )


def skipped(reason: str) -> tuple[bool, dict[str, Any]]:
    """Result for a check that had nothing to evaluate (recorded, never silent).

    Args:
        reason: Why the check was not evaluated.

    Returns:
        ``(True, {"skipped": reason})``.
    """
    return True, {"skipped": reason}


def to_outcomes(
    layer: Layer,
    results: Mapping[str, tuple[bool, dict[str, Any]]],
    settings: QualitySettings,
    context: Mapping[str, Any] | None = None,
) -> list[CheckOutcome]:
    """Turn raw check results into catalog-ordered ``CheckOutcome`` objects.

    Args:
        layer: Layer whose catalog entries are expected.
        results: ``{check name: (success, observed)}``; every name must be in the catalog.
        settings: Severity overrides.
        context: Extra figures added to every outcome's ``observed`` (e.g. source_system).

    Returns:
        One outcome per result, in catalog order.

    Raises:
        KeyError: A result name is missing from the catalog or belongs to another layer.
    """
    outcomes = []
    for name in CHECKS:
        if name not in results:
            continue
        spec = CHECKS[name]
        if spec.layer != layer:
            raise KeyError(f"check {name!r} belongs to layer {spec.layer!r}, not {layer!r}")
        success, observed = results[name]
        outcomes.append(
            CheckOutcome(
                name=name,
                layer=layer,
                critical=settings.is_critical(name),
                success=success,
                observed={**(context or {}), **observed},
                description=spec.description,
            )
        )
    unknown = set(results) - set(CHECKS)
    if unknown:
        raise KeyError(f"checks missing from the catalog: {sorted(unknown)}")
    return outcomes


def optional_column(
    frame: pd.DataFrame, column: str, results: Results, name: str, check: GxCheck
) -> GxCheck | None:
    """Return ``check`` when ``column`` exists, else record ``name`` as skipped.

    Args:
        frame: Frame that will be validated.
        column: Optional column the check reads.
        results: Result map to record the skip in.
        name: Check name.
        check: The check to run when the column exists.

    Returns:
        ``check`` or None.
    """
    if column in frame.columns:
        return check
    results[name] = skipped(f"column {column!r} absent")
    return None

"""The outcome of one named quality check and the rule deciding which outcomes block publishing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckOutcome:
    """The outcome of one named quality check on one layer.

    Attributes:
        name: Check name from the catalog (e.g. ``golden_customer_id_unique``).
        layer: ``raw``, ``clean`` or ``golden``.
        critical: True when a failure blocks publishing the snapshot.
        success: True when the data met the expectation.
        observed: JSON-serialisable figures: counts, at most five unexpected examples,
            thresholds, and ``error`` when the check could not be evaluated.
        description: What the check guards, in one sentence.
    """

    name: str
    layer: str
    critical: bool
    success: bool
    observed: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def severity(self) -> str:
        """``critical`` or ``warning``."""
        return "critical" if self.critical else "warning"

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form for manifests, logs and Dagster metadata.

        Returns:
            The outcome's fields plus ``severity``.
        """
        return {
            "name": self.name,
            "layer": self.layer,
            "critical": self.critical,
            "severity": self.severity,
            "success": self.success,
            "observed": self.observed,
            "description": self.description,
        }


def blocking_failures(outcomes: Iterable[CheckOutcome]) -> list[CheckOutcome]:
    """Return the failed critical outcomes, the ones that must stop the snapshot.

    Args:
        outcomes: Outcomes of any layers.

    Returns:
        The outcomes with ``critical`` set and ``success`` false, in input order.

    Example:
        >>> ok = CheckOutcome("a", "golden", True, True, {}, "")
        >>> bad = CheckOutcome("b", "golden", True, False, {}, "")
        >>> warn = CheckOutcome("c", "golden", False, False, {}, "")
        >>> [o.name for o in blocking_failures([ok, bad, warn])]
        ['b']
    """
    return [o for o in outcomes if o.critical and not o.success]

"""Shapes of the data dictionary: a documented column and a documented table or view."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnDoc:
    """One column: DuckDB type, meaning and where its value comes from."""

    name: str
    type: str
    meaning: str
    lineage: str = ""


@dataclass(frozen=True)
class TableDoc:
    """One table or view of the analyst model."""

    name: str
    kind: str  # "table" | "view"
    description: str
    columns: tuple[ColumnDoc, ...]


def cols(*specs: str) -> tuple[ColumnDoc, ...]:
    """Columns from ``"name | TYPE | meaning | lineage"`` lines."""
    out = []
    for spec in specs:
        parts = [p.strip() for p in spec.split("|")]
        out.append(ColumnDoc(*parts))
    return tuple(out)

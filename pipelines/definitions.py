"""The single Dagster entry point: `dagster dev -m pipelines.definitions`.

The project configuration comes from ``$CUSTOMER_ARCHIVE_CONFIG`` (default ``archive.yml``). The
definitions are built lazily, when Dagster loads them, never at import.
"""

from __future__ import annotations

import dagster as dg

from .build import archive_job, build_definitions

__all__ = ["archive_job", "build_definitions", "defs"]


@dg.definitions
def defs() -> dg.Definitions:
    """The Definitions of the configuration ``$CUSTOMER_ARCHIVE_CONFIG`` names."""
    return build_definitions()

"""Shared shapes of the raw layer: canonical fields, lineage columns and ingest results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

CANONICAL_FIELDS: tuple[str, ...] = (
    "source_record_id",
    "customer_name",
    "customer_type",
    "contact_name",
    "phone",
    "email",
    "address",
    "province",
    "city",
    "district",
    "industry",
    "credit_code",
    "registered_date",
    "updated_at",
    "txn_id",
    "txn_date",
    "txn_amount",
    "txn_type",
    "interaction_id",
    "interaction_date",
    "interaction_channel",
    "interaction_subject",
    "interaction_outcome",
    "satisfaction",
    "id_number",
    "id_type",
    "birth_date",
    "gender",
    "given_name",
    "family_name",
)
"""Every canonical field a source mapping may map a header to (docs/contracts.md)."""

ATTRIBUTES_COLUMN = "attributes"
"""Column holding the JSON object of a source's declared further identifiers (微信号, 护照号 …):
attribute name → text, as mapped by ``attributes:`` / ``split:`` in sources.yml."""

LINEAGE_COLUMNS: tuple[str, ...] = (
    "source_system",
    "source_file",
    "source_row",
    "source_sha256",
    "ingested_at",
    "record_key",
)
"""Lineage columns carried by every raw row (``source_row`` is int64, the rest text)."""

REQUIRED_FIELDS_DEFAULT: tuple[str, ...] = ("customer_name",)
"""Canonical fields a delivered file must provide unless the source says otherwise."""

EXTRA_COLUMN = "extra"
"""Column holding the JSON object of unmapped columns of a row."""

QUARANTINED_ROW_COLUMNS: tuple[str, ...] = (
    "source_system",
    "source_file",
    "source_row",
    "raw_content",
    "reason",
)
QUARANTINED_FILE_COLUMNS: tuple[str, ...] = (
    "source_system",
    "source_file",
    "source_sha256",
    "reason",
)
MANIFEST_COLUMNS: tuple[str, ...] = (
    "source_system",
    "path",
    "size",
    "sha256",
    "status",
    "run_id",
    "rows_read",
    "mapping_sha256",
)
"""Columns of the delivered-files manifest the warehouse persists between runs."""

DeliveryStatus = Literal["new", "changed", "retried", "duplicate", "unchanged"]
READ_STATUSES: tuple[str, ...] = ("new", "changed", "retried")
"""The statuses of files a run reads (the others are skipped)."""


@dataclass
class FileDelivery:
    """One delivered file of a source and what the run decided to do with it.

    ``path`` is relative to the landing folder (POSIX separators). ``status`` is ``new``
    (never seen), ``changed`` (same path, new content: supersedes the older version),
    ``duplicate`` (content already delivered, possibly under another name: skipped),
    ``unchanged`` (same path and content as before: skipped) or ``retried`` (content an
    earlier run quarantined whole, read again because the source's mapping changed since).
    ``mapping_sha256`` is the fingerprint of the source mapping the run read it with
    (``SourceConfig.mapping_sha256``).
    """

    source_system: str
    path: str
    size: int
    sha256: str
    status: DeliveryStatus
    rows_read: int = 0
    note: str = ""
    mapping_sha256: str = ""

    @property
    def to_ingest(self) -> bool:
        """Whether the run reads this file."""
        return self.status in READ_STATUSES


@dataclass
class IngestResult:
    """Everything one source produced in one run (see docs/contracts.md, raw layer)."""

    rows: pd.DataFrame
    quarantined_rows: pd.DataFrame
    quarantined_files: pd.DataFrame
    files: list[FileDelivery] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    superseded_files: list[str] = field(default_factory=list)

    def manifest_rows(self, run_id: str) -> pd.DataFrame:
        """Return this run's deliveries as rows to append to the manifest.

        Args:
            run_id: The run that delivered the files.

        Returns:
            A frame with ``MANIFEST_COLUMNS`` (plus ``note``), one row per file.
        """
        return manifest_frame(self.files, run_id)


def manifest_frame(files: list[FileDelivery], run_id: str) -> pd.DataFrame:
    """Build manifest rows (``MANIFEST_COLUMNS`` plus ``note``) from deliveries.

    Args:
        files: Deliveries planned or ingested by a run.
        run_id: The run that saw them.

    Returns:
        One row per delivery, in the given order.
    """
    frame = pd.DataFrame(
        {
            "source_system": [f.source_system for f in files],
            "path": [f.path for f in files],
            "size": pd.array([f.size for f in files], dtype="int64"),
            "sha256": [f.sha256 for f in files],
            "status": [f.status for f in files],
            "run_id": [run_id] * len(files),
            "rows_read": pd.array([f.rows_read for f in files], dtype="int64"),
            "mapping_sha256": [f.mapping_sha256 for f in files],
            "note": [f.note for f in files],
        }
    )
    for column in ("source_system", "path", "sha256", "status", "run_id", "mapping_sha256", "note"):
        frame[column] = frame[column].astype("string")
    return frame


def empty_quarantined_rows() -> pd.DataFrame:
    """Return an empty quarantined-rows frame with the contract's columns and dtypes."""
    return quarantined_rows_frame([], [], [], [], [])


def quarantined_rows_frame(
    systems: list[str], files: list[str], rows: list[int], raw: list[str], reasons: list[str]
) -> pd.DataFrame:
    """Build a quarantined-rows frame from parallel lists.

    Args:
        systems: Source system per row.
        files: Source file per row.
        rows: 1-based row number per row.
        raw: Raw content per row, as read.
        reasons: Why each row was quarantined.

    Returns:
        A frame with ``QUARANTINED_ROW_COLUMNS``.
    """
    frame = pd.DataFrame(
        {
            "source_system": pd.array(systems, dtype="string"),
            "source_file": pd.array(files, dtype="string"),
            "source_row": pd.array(rows, dtype="int64"),
            "raw_content": pd.array(raw, dtype="string"),
            "reason": pd.array(reasons, dtype="string"),
        }
    )
    return frame


def quarantined_files_frame(
    systems: list[str], files: list[str], shas: list[str], reasons: list[str]
) -> pd.DataFrame:
    """Build a quarantined-files frame from parallel lists.

    Args:
        systems: Source system per file.
        files: Source file (relative path) per file.
        shas: sha256 per file.
        reasons: Why each file was quarantined.

    Returns:
        A frame with ``QUARANTINED_FILE_COLUMNS``.
    """
    return pd.DataFrame(
        {
            "source_system": pd.array(systems, dtype="string"),
            "source_file": pd.array(files, dtype="string"),
            "source_sha256": pd.array(shas, dtype="string"),
            "reason": pd.array(reasons, dtype="string"),
        }
    )

"""Sources: read departmental exports as text, map headers, keep lineage, quarantine the bad."""

from sources.config import (
    SourceConfig,
    SourceConfigError,
    SourcesConfig,
    find_source_files,
    load_sources_config,
)
from sources.deliveries import file_sha256, landing_fingerprint
from sources.encoding import detect_encoding
from sources.headers import normalize_header
from sources.ingest import ingest_source, plan_deliveries
from sources.model import (
    CANONICAL_FIELDS,
    EXTRA_COLUMN,
    LINEAGE_COLUMNS,
    MANIFEST_COLUMNS,
    QUARANTINED_FILE_COLUMNS,
    QUARANTINED_ROW_COLUMNS,
    REQUIRED_FIELDS_DEFAULT,
    FileDelivery,
    IngestResult,
    manifest_frame,
)
from sources.raw_table import FileRejected, RawTable
from sources.readers import read_delivery

__all__ = [
    "CANONICAL_FIELDS",
    "EXTRA_COLUMN",
    "LINEAGE_COLUMNS",
    "MANIFEST_COLUMNS",
    "QUARANTINED_FILE_COLUMNS",
    "QUARANTINED_ROW_COLUMNS",
    "REQUIRED_FIELDS_DEFAULT",
    "FileDelivery",
    "FileRejected",
    "IngestResult",
    "RawTable",
    "SourceConfig",
    "SourceConfigError",
    "SourcesConfig",
    "detect_encoding",
    "file_sha256",
    "find_source_files",
    "ingest_source",
    "landing_fingerprint",
    "load_sources_config",
    "manifest_frame",
    "normalize_header",
    "plan_deliveries",
    "read_delivery",
]

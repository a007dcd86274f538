"""Security and compliance: PII classes, masking, roles, encryption at rest, audit, erasure."""

from warehouse.security.audit import AuditLog, VerifyResult
from warehouse.security.columns import ColumnMasker
from warehouse.security.encryption import (
    DecryptionError,
    EncryptionUnavailableError,
    crypto_backend,
    encrypt_parquet,
    is_encrypted_parquet,
    open_encrypted_warehouse,
    read_encrypted_parquet,
    read_parquet_any,
    rotate_warehouse_key,
)
from warehouse.security.erasure import (
    SUPPRESSION,
    TOMBSTONES,
    ErasureReport,
    ErasureTargets,
    erase_customer,
    read_suppression,
)
from warehouse.security.excel import neutralize_formulas, write_audit_worksheet
from warehouse.security.keys import (
    KeyMaterialError,
    KeyRing,
    generate_key_file,
    load_keyring,
    read_key_file,
    write_key_file,
)
from warehouse.security.mart import (
    analyst_mart_key,
    build_analyst_mart,
    build_analyst_mart_arrow,
    mart_table_name,
    pseudonym_secret,
    write_analyst_mart,
)
from warehouse.security.masking import (
    mask_email,
    mask_person_name,
    mask_phone,
    mask_series,
    pseudonym,
    pseudonyms,
)
from warehouse.security.pii import PII_CLASSES, classify, direct_columns, treatment
from warehouse.security.retention import anonymize_dormant
from warehouse.security.roles import (
    ROLES,
    allowed_tables,
    is_table_allowed,
    quarantine_counts,
    resolve_role,
    role_database,
)
from warehouse.security.snapshots import (
    encrypt_snapshot,
    read_snapshot,
    rewrite_snapshot,
    rotate_snapshot_keys,
    verify_snapshot_with_key,
)
from warehouse.security.suppression import drop_suppressed, erased_quarantine_rows, is_suppressed

__all__ = [
    "PII_CLASSES",
    "ROLES",
    "SUPPRESSION",
    "TOMBSTONES",
    "AuditLog",
    "ColumnMasker",
    "DecryptionError",
    "EncryptionUnavailableError",
    "ErasureReport",
    "ErasureTargets",
    "KeyMaterialError",
    "KeyRing",
    "VerifyResult",
    "allowed_tables",
    "analyst_mart_key",
    "anonymize_dormant",
    "build_analyst_mart",
    "build_analyst_mart_arrow",
    "classify",
    "crypto_backend",
    "direct_columns",
    "drop_suppressed",
    "encrypt_parquet",
    "encrypt_snapshot",
    "erase_customer",
    "erased_quarantine_rows",
    "generate_key_file",
    "is_encrypted_parquet",
    "is_suppressed",
    "is_table_allowed",
    "load_keyring",
    "mart_table_name",
    "mask_email",
    "mask_person_name",
    "mask_phone",
    "mask_series",
    "neutralize_formulas",
    "open_encrypted_warehouse",
    "pseudonym",
    "pseudonym_secret",
    "pseudonyms",
    "quarantine_counts",
    "read_encrypted_parquet",
    "read_key_file",
    "read_parquet_any",
    "read_snapshot",
    "read_suppression",
    "resolve_role",
    "rewrite_snapshot",
    "role_database",
    "rotate_snapshot_keys",
    "rotate_warehouse_key",
    "treatment",
    "verify_snapshot_with_key",
    "write_analyst_mart",
    "write_audit_worksheet",
    "write_key_file",
]

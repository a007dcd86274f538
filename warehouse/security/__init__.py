"""Security and compliance: PII classes, masking, roles, encryption at rest, audit, erasure."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module that defines it: the module is imported on first
# use (PEP 562), so importing one light submodule (e.g. a settings class) does not load
# pandas, SciPy or DuckDB for the whole package (the CLI must start fast).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "warehouse.security.audit": ("AuditLog", "VerifyResult"),
    "warehouse.security.columns": ("ColumnMasker",),
    "warehouse.security.encryption": (
        "DecryptionError",
        "EncryptionUnavailableError",
        "compact_database",
        "crypto_backend",
        "encrypt_parquet",
        "is_encrypted_parquet",
        "open_encrypted_database",
        "open_encrypted_warehouse",
        "read_encrypted_parquet",
        "read_parquet_any",
        "rotate_warehouse_key",
    ),
    "warehouse.security.erasure": (
        "SUPPRESSION",
        "TOMBSTONES",
        "ErasureReport",
        "ErasureTargets",
        "erase_customer",
        "read_suppression",
    ),
    "warehouse.security.excel": ("neutralize_formulas", "write_audit_worksheet"),
    "warehouse.security.keys": (
        "KeyMaterialError",
        "KeyRing",
        "generate_key_file",
        "load_keyring",
        "read_key_file",
        "write_key_file",
    ),
    "warehouse.security.mart": (
        "analyst_mart_key",
        "build_analyst_mart",
        "build_analyst_mart_arrow",
        "mart_key_text",
        "mart_table_name",
        "open_analyst_mart",
        "pseudonym_secret",
        "write_analyst_mart",
    ),
    "warehouse.security.masking": (
        "mask_email",
        "mask_person_name",
        "mask_phone",
        "mask_series",
        "pseudonym",
        "pseudonyms",
    ),
    "warehouse.security.pii": ("PII_CLASSES", "classify", "direct_columns", "treatment"),
    "warehouse.security.retention": ("anonymize_dormant",),
    "warehouse.security.roles": (
        "ROLES",
        "allowed_tables",
        "is_table_allowed",
        "quarantine_counts",
        "resolve_role",
        "role_database",
    ),
    "warehouse.security.sandbox": (
        "SandboxError",
        "check_read_only",
        "lock_down",
        "sandboxed_query",
    ),
    "warehouse.security.snapshots": (
        "encrypt_snapshot",
        "read_snapshot",
        "rewrite_snapshot",
        "rotate_snapshot_keys",
        "verify_snapshot_with_key",
    ),
    "warehouse.security.suppression": (
        "drop_suppressed",
        "erased_quarantine_rows",
        "is_suppressed",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

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
    "SandboxError",
    "VerifyResult",
    "allowed_tables",
    "analyst_mart_key",
    "anonymize_dormant",
    "build_analyst_mart",
    "build_analyst_mart_arrow",
    "check_read_only",
    "classify",
    "compact_database",
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
    "lock_down",
    "mart_key_text",
    "mart_table_name",
    "mask_email",
    "mask_person_name",
    "mask_phone",
    "mask_series",
    "neutralize_formulas",
    "open_analyst_mart",
    "open_encrypted_database",
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
    "sandboxed_query",
    "treatment",
    "verify_snapshot_with_key",
    "write_analyst_mart",
    "write_audit_worksheet",
    "write_key_file",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))

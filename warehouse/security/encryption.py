"""Encryption at rest: DuckDB database encryption and Parquet modular encryption (AES-GCM)."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pqe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warehouse.parquet_batches import TableBatches, write_parquet
from warehouse.security.keys import KeyMaterialError, KeyRing

if TYPE_CHECKING:  # pandas loads only where a function needs it (fast CLI start)
    import pandas as pd

LOG = logging.getLogger(__name__)

ALLOW_UNSAFE_ENV = "CUSTOMER_ARCHIVE_ALLOW_MBEDTLS"
WAREHOUSE_ALIAS = "warehouse"
_PARQUET_PURPOSE = "parquet"
_WAREHOUSE_PURPOSE = "warehouse"


_WARNED: list[bool] = []  # the mbedtls warning is logged once per process


class EncryptionUnavailableError(RuntimeError):
    """DuckDB has no secure crypto module for writing (the httpfs extension is not loadable)."""


class DecryptionError(RuntimeError):
    """An encrypted file could not be opened with the keys given (wrong or missing key)."""


def _as_ring(key: KeyRing | bytes) -> KeyRing:
    return key if isinstance(key, KeyRing) else KeyRing(key)


def warehouse_key_text(ring: KeyRing, wanted_id: str | None = None) -> str:
    """The DuckDB ``ENCRYPTION_KEY`` string of a ring's (current) master key (hex, derived)."""
    return ring.derive(_WAREHOUSE_PURPOSE, wanted_id).hex()


def crypto_backend(con: duckdb.DuckDBPyConnection) -> str:
    """Which DuckDB crypto module can write encrypted files on this connection.

    Args:
        con: a connection.

    Returns:
        ``"openssl"`` when the httpfs extension loads (secure, preferred), else ``"mbedtls"``
        (DuckDB's built-in module: reads anything, writes only when forced; see docs/security.md).
    """
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        return "mbedtls"
    return "openssl"


def _allow_unsafe(allow_unsafe_crypto: bool | None) -> bool:
    if allow_unsafe_crypto is not None:
        return allow_unsafe_crypto
    return os.environ.get(ALLOW_UNSAFE_ENV, "").strip().lower() in {"1", "true", "yes"}


def _prepare_writer(
    con: duckdb.DuckDBPyConnection, allow_unsafe_crypto: bool | None, creating: bool = True
) -> str:
    """Choose the crypto module for writing; refuse mbedtls without consent.

    With consent, the mbedtls warning is logged when an encrypted database is *created* (the
    first run: the moment the setting decides how the archive is protected), once per
    process; later writers to the same file log it at debug level only, so everyday commands
    do not repeat a warning the user has already accepted. With OpenSSL nothing is logged.
    """
    backend = crypto_backend(con)
    if backend == "openssl":
        return backend
    if not _allow_unsafe(allow_unsafe_crypto):
        raise EncryptionUnavailableError(
            "DuckDB cannot write encrypted databases here: the httpfs extension (OpenSSL) is not "
            "installed. Install it (INSTALL httpfs) or accept DuckDB's built-in mbedtls module, "
            f"which DuckDB labels unsafe (weak nonce generation), by setting ${ALLOW_UNSAFE_ENV}=1"
        )
    message = (
        "writing encrypted DuckDB with the built-in mbedtls module (force_mbedtls_unsafe, "
        "accepted by security.allow_unsafe_duckdb_crypto); install the httpfs extension to "
        "use OpenSSL"
    )
    if creating and not _WARNED:
        _WARNED.append(True)
        LOG.warning(message)
    else:
        LOG.debug(message)
    con.execute("SET force_mbedtls_unsafe = true")
    return "mbedtls-unsafe"


def _attach(
    con: duckdb.DuckDBPyConnection, path: Path, alias: str, key_text: str | None, read_only: bool
) -> None:
    options = [f"ENCRYPTION_KEY '{key_text}'"] if key_text is not None else []
    options += ["READ_ONLY"] if read_only else []
    target = str(path).replace("'", "''")
    suffix = f" ({', '.join(options)})" if options else ""
    try:
        con.execute(f"ATTACH '{target}' AS {alias}{suffix}")
    except duckdb.Error as exc:
        message = str(exc)
        if "key" in message.lower() or "decrypt" in message.lower():
            raise DecryptionError(
                f"cannot open encrypted database {path}: wrong key or not encrypted with it "
                f"({type(exc).__name__})"
            ) from exc
        raise


def open_encrypted_database(
    path: Path | str,
    key_text: str,
    read_only: bool = False,
    allow_unsafe_crypto: bool | None = None,
    new_database: bool | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open (creating if absent) a DuckDB file encrypted with ``ENCRYPTION_KEY key_text``.

    The same as ``ATTACH 'path' AS warehouse (ENCRYPTION_KEY 'key_text'); USE warehouse`` in
    any DuckDB client: the file, its WAL and spilled temp files are encrypted (AES-GCM).

    Args:
        path: the database file.
        key_text: the DuckDB encryption key string.
        read_only: attach read-only (works with DuckDB's built-in crypto module).
        allow_unsafe_crypto: see :func:`open_encrypted_warehouse`.
        new_database: see :func:`open_encrypted_warehouse`.

    Returns:
        An in-memory connection with the database attached and selected (``USE``).

    Raises:
        DecryptionError: the file exists but the key does not open it.
        EncryptionUnavailableError: writing is requested but no crypto module may write.
    """
    path = Path(path)
    con = duckdb.connect()
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
            creating = not path.exists() if new_database is None else new_database
            _prepare_writer(con, allow_unsafe_crypto, creating)
            con.execute("SET temp_file_encryption = true")
        _attach(con, path, WAREHOUSE_ALIAS, key_text, read_only)
        con.execute(f"USE {WAREHOUSE_ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def open_encrypted_warehouse(
    path: Path | str,
    key: KeyRing | bytes,
    read_only: bool = False,
    allow_unsafe_crypto: bool | None = None,
    new_database: bool | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open (creating if absent) an encrypted DuckDB warehouse as the connection's default database.

    The database file, its WAL and spilled temp files are encrypted (AES-GCM) with a key
    derived from the ring's current master key. The returned connection behaves like
    ``warehouse.db.connect``: unqualified ``golden.customers`` refers to the encrypted file.

    Args:
        path: the database file.
        key: the key ring (or a raw 32-byte master key).
        read_only: attach read-only (works with DuckDB's built-in crypto module).
        allow_unsafe_crypto: permit writing with DuckDB's mbedtls module when httpfs is
            unavailable; default from ``$CUSTOMER_ARCHIVE_ALLOW_MBEDTLS``.
        new_database: whether this write creates the database (the mbedtls warning is logged
            then only); default: the file does not exist yet. A writer that rebuilds an
            existing database in a temporary file passes ``False``.

    Returns:
        An in-memory connection with the warehouse attached and selected (``USE``).

    Raises:
        DecryptionError: the file exists but the key does not open it.
        EncryptionUnavailableError: writing is requested but no crypto module may write.
    """
    return open_encrypted_database(
        path, warehouse_key_text(_as_ring(key)), read_only, allow_unsafe_crypto, new_database
    )


def rotate_warehouse_key(
    path: Path | str,
    old: KeyRing | bytes,
    new: KeyRing | bytes,
    allow_unsafe_crypto: bool | None = None,
) -> Path:
    """Re-encrypt a warehouse file under a new key (copy all, then atomic rename over the old).

    Args:
        path: the encrypted database file.
        old: a ring whose current key opens the file now.
        new: a ring whose current key will open it afterwards.
        allow_unsafe_crypto: see :func:`open_encrypted_warehouse`.

    Returns:
        The path; the old key no longer opens it.
    """
    return _copy_database(
        Path(path),
        warehouse_key_text(_as_ring(old)),
        warehouse_key_text(_as_ring(new)),
        allow_unsafe_crypto,
    )


def compact_database(
    path: Path | str, key_text: str | None, allow_unsafe_crypto: bool | None = None
) -> Path:
    """Rewrite a DuckDB file into a fresh one (same key), leaving no deleted rows behind.

    DuckDB reuses the blocks of deleted rows but does not wipe them: after an erasure the
    old rows stay readable in free blocks (by anyone holding the file and its key) until
    overwritten. Copying the live content into a new file and renaming it over the old one
    leaves only live rows.

    Args:
        path: the database file (closed: no connection may hold it).
        key_text: its DuckDB ``ENCRYPTION_KEY``, or None for a plain file.
        allow_unsafe_crypto: see :func:`open_encrypted_warehouse`.

    Returns:
        The path.
    """
    return _copy_database(Path(path), key_text, key_text, allow_unsafe_crypto)


def _copy_database(
    path: Path, old_text: str | None, new_text: str | None, allow_unsafe_crypto: bool | None
) -> Path:
    temp = path.with_name(f".{path.name}.rewrite-{secrets.token_hex(4)}")
    con = duckdb.connect()
    try:
        if new_text is not None:
            _prepare_writer(con, allow_unsafe_crypto, creating=False)  # same archive
        _attach(con, path, "old_db", old_text, True)
        _attach(con, temp, "new_db", new_text, False)
        con.execute("COPY FROM DATABASE old_db TO new_db")
        con.execute("DETACH new_db")
        con.execute("DETACH old_db")
    except BaseException:
        con.close()
        for leftover in (temp, temp.with_name(temp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(temp, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return path


class _RingKms(pqe.KmsClient):
    """An in-process KMS: wraps Parquet data keys with AES-GCM under a ring's derived keys."""

    def __init__(self, ring: KeyRing) -> None:
        pqe.KmsClient.__init__(self)
        self._ring = ring

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        kek = self._ring.derive(_PARQUET_PURPOSE, master_key_identifier)
        nonce = secrets.token_bytes(12)
        return base64.b64encode(nonce + AESGCM(kek).encrypt(nonce, key_bytes, None)).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        try:
            kek = self._ring.derive(_PARQUET_PURPOSE, master_key_identifier)
        except KeyMaterialError as exc:
            raise DecryptionError(str(exc)) from exc
        raw = base64.b64decode(wrapped_key)
        try:
            return AESGCM(kek).decrypt(raw[:12], raw[12:], None)
        except InvalidTag as exc:
            raise DecryptionError("Parquet data key does not unwrap with this key") from exc


def _factory(ring: KeyRing) -> pqe.CryptoFactory:
    return pqe.CryptoFactory(lambda _config: _RingKms(ring))


def is_encrypted_parquet(path: Path | str) -> bool:
    """Whether a Parquet file uses an encrypted footer (magic ``PARE``)."""
    with Path(path).open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return handle.read(4) == b"PARE"


def encrypt_parquet(
    table: pa.Table | pd.DataFrame | TableBatches, path: Path | str, key: KeyRing | bytes
) -> str:
    """Write a table as a Parquet file with every column and the footer encrypted (AES-GCM).

    Data keys are random per file and wrapped with a key derived from the ring's current
    master key; the master key id is stored in the file so rotation can find old files.

    Args:
        table: the rows (``TableBatches``: written batch by batch, each held only while
            written).
        path: the file to write.
        key: the key ring.

    Returns:
        The master key id used.
    """
    ring = _as_ring(key)
    arrow = (
        table
        if isinstance(table, pa.Table | TableBatches)
        else pa.Table.from_pandas(table, preserve_index=False)
    )
    write_parquet(arrow, path, **_encrypted_options(ring))
    return ring.current_id


def encrypted_parquet_writer(
    path: Path | str, schema: pa.Schema, key: KeyRing | bytes
) -> pq.ParquetWriter:
    """An open Parquet writer of ``schema`` writing the file :func:`encrypt_parquet` writes
    from the tables given to its ``write_table``, one after the other (close it to finish)."""
    return pq.ParquetWriter(str(path), schema, **_encrypted_options(_as_ring(key)))


def _encrypted_options(ring: KeyRing) -> dict[str, object]:
    """``ParquetWriter`` options of an encrypted file: zstd, every column and the footer
    encrypted with a random data key wrapped by the ring's current master key."""
    config = pqe.EncryptionConfiguration(
        footer_key=ring.current_id,
        uniform_encryption=True,
        plaintext_footer=False,
        double_wrapping=True,
        data_key_length_bits=256,
        internal_key_material=True,
    )
    properties = _factory(ring).file_encryption_properties(pqe.KmsConnectionConfig(), config)
    return {"compression": "zstd", "encryption_properties": properties}


def read_encrypted_parquet(path: Path | str, key: KeyRing | bytes) -> pa.Table:
    """Read a Parquet file encrypted by :func:`encrypt_parquet` (any key of the ring).

    Raises:
        DecryptionError: no key of the ring opens the file.
    """
    ring = _as_ring(key)
    properties = _factory(ring).file_decryption_properties(
        pqe.KmsConnectionConfig(), pqe.DecryptionConfiguration()
    )
    try:
        return pq.read_table(str(path), decryption_properties=properties)
    except DecryptionError:
        raise
    except (OSError, ValueError, InvalidTag, pa.ArrowException) as exc:
        raise DecryptionError(f"cannot decrypt {path} with key ring {ring.ids()}: {exc}") from exc


def read_parquet_any(path: Path | str, key: KeyRing | bytes | None) -> pa.Table:
    """Read a Parquet file, decrypting it when it is encrypted.

    Raises:
        DecryptionError: the file is encrypted and no key (or a wrong key) was given.
    """
    if is_encrypted_parquet(path):
        if key is None:
            raise DecryptionError(f"{path} is encrypted; a key is required")
        return read_encrypted_parquet(path, key)
    return pq.read_table(str(path))


def write_parquet_like(
    table: pa.Table, path: Path, key: KeyRing | bytes | None, encrypted: bool
) -> str | None:
    """Write encrypted (with ``key``) when ``encrypted``, else plain; returns the key id or None."""
    if encrypted:
        if key is None:
            raise KeyMaterialError(f"{path} must be written encrypted but no key was given")
        return encrypt_parquet(table, path, key)
    pq.write_table(table, str(path), compression="zstd")
    return None


def file_key_ids(paths: Mapping[str, Path], ring: KeyRing) -> dict[str, str | None]:
    """Which key of the ring opens each encrypted file (None for plaintext files).

    Raises:
        DecryptionError: a file opens with no key of the ring.
    """
    out: dict[str, str | None] = {}
    for name, path in paths.items():
        if not is_encrypted_parquet(path):
            out[name] = None
            continue
        for wanted in ring.ids():
            single = KeyRing(ring.master(wanted))
            properties = _factory(single).file_decryption_properties(
                pqe.KmsConnectionConfig(), pqe.DecryptionConfiguration()
            )
            try:
                pq.read_metadata(str(path), decryption_properties=properties)
            except (DecryptionError, OSError, ValueError, InvalidTag, pa.ArrowException):
                continue
            out[name] = wanted
            break
        else:
            raise DecryptionError(f"{path} opens with no key of the ring {ring.ids()}")
    return out

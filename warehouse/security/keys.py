"""Key material for encryption at rest: a master key from the environment or a 0600 key file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY_ENV = "CUSTOMER_ARCHIVE_KEY"
PREVIOUS_KEYS_ENV = "CUSTOMER_ARCHIVE_PREVIOUS_KEYS"
KEY_FILE_ENV = "CUSTOMER_ARCHIVE_KEY_FILE"
KEY_BYTES = 32


class KeyMaterialError(Exception):
    """Key material is missing, malformed, or stored insecurely."""


def parse_key(text: str) -> bytes:
    """Decode a 32-byte key written as 64 hex digits or as base64.

    Args:
        text: the encoded key (surrounding whitespace ignored).

    Returns:
        The 32 raw key bytes.

    Raises:
        KeyMaterialError: not hex or base64 of 32 bytes (the key itself is never shown).
    """
    value = text.strip()
    raw: bytes | None = None
    if len(value) == 2 * KEY_BYTES:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != KEY_BYTES:
        raise KeyMaterialError(
            f"key material is not {KEY_BYTES} bytes as 64 hex digits or base64 "
            f"(got {len(value)} characters; the value is not shown)"
        )
    return raw


def encode_key(raw: bytes) -> str:
    """Encode raw key bytes as base64 text (the key file and environment variable format)."""
    return base64.b64encode(raw).decode("ascii")


def key_id(raw: bytes) -> str:
    """A short public fingerprint naming a key (safe to log and to store in manifests).

    Args:
        raw: the master key.

    Returns:
        16 hex characters derived one-way from the key.
    """
    return hmac.new(raw, b"customer-archive/key-id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    """The current master key plus previous ones kept for reading data not yet re-encrypted.

    Sub-keys for each purpose (warehouse database, Parquet, analyst mart, pseudonyms,
    suppression list) are derived from the master key with HMAC-SHA256, so handing out a
    derived key (e.g. the analyst mart's) never reveals the master key.
    """

    current: bytes
    previous: tuple[bytes, ...] = field(default=())

    def __post_init__(self) -> None:
        for raw in (self.current, *self.previous):
            if len(raw) != KEY_BYTES:
                raise KeyMaterialError(f"every key must be {KEY_BYTES} bytes")

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(current={self.current_id}, previous={[key_id(k) for k in self.previous]})"

    @property
    def current_id(self) -> str:
        """Fingerprint of the current key."""
        return key_id(self.current)

    def ids(self) -> list[str]:
        """Fingerprints of every key, current first."""
        return [key_id(k) for k in (self.current, *self.previous)]

    def master(self, wanted_id: str) -> bytes:
        """The master key with fingerprint ``wanted_id``.

        Raises:
            KeyMaterialError: no key of the ring has that fingerprint.
        """
        for raw in (self.current, *self.previous):
            if key_id(raw) == wanted_id:
                return raw
        raise KeyMaterialError(f"no key with id {wanted_id} in the key ring (have {self.ids()})")

    def derive(self, purpose: str, wanted_id: str | None = None) -> bytes:
        """A 32-byte sub-key for one purpose (``"warehouse"``, ``"pseudonym"``, …).

        Args:
            purpose: what the key is for; different purposes give unrelated keys.
            wanted_id: derive from this master key instead of the current one.

        Returns:
            The derived key.
        """
        raw = self.current if wanted_id is None else self.master(wanted_id)
        return hmac.new(raw, f"customer-archive/{purpose}".encode(), hashlib.sha256).digest()

    def rotated(self, new_current: bytes) -> KeyRing:
        """A ring with ``new_current`` as current and the old current kept as previous."""
        return KeyRing(new_current, (self.current, *self.previous))


def _check_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyMaterialError(
            f"key file {path} has permissions {oct(mode)}: it must be readable by its owner only "
            f"(run: chmod 600 {path})"
        )


def read_key_file(path: Path) -> KeyRing:
    """Read a key file: the current key on the first key line, previous keys on later lines.

    Blank lines and lines starting with ``#`` are ignored.

    Args:
        path: the key file; it must not be readable by group or others (0600).

    Returns:
        The key ring.

    Raises:
        KeyMaterialError: the file is missing, too open, or holds no valid key.
    """
    path = Path(path)
    if not path.is_file():
        raise KeyMaterialError(f"key file {path} does not exist")
    _check_permissions(path)
    lines = [
        line.strip()
        for line in path.read_text(encoding="ascii").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    if not lines:
        raise KeyMaterialError(f"key file {path} holds no key")
    keys = [parse_key(line) for line in lines]
    return KeyRing(keys[0], tuple(keys[1:]))


def write_key_file(path: Path, ring: KeyRing) -> Path:
    """Write a key ring to ``path`` with mode 0600 (created with that mode, then renamed in).

    Args:
        path: the key file.
        ring: the keys; the current one is written first.

    Returns:
        The path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    lines = [
        "# customer-archive master keys: first = current, later = previous (for rotation).",
        "# Never commit or share this file; keep a copy in the company's secret store.",
        *(encode_key(k) for k in (ring.current, *ring.previous)),
    ]
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)
    return path


def generate_key_file(path: Path) -> KeyRing:
    """Create a new random master key in a 0600 key file (the demo's first run); never prints it.

    Args:
        path: where to write; an existing file is refused (it may be the only copy of a key).

    Returns:
        The new key ring.

    Raises:
        FileExistsError: the key file already exists.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"key file {path} already exists; refusing to overwrite a key")
    ring = KeyRing(secrets.token_bytes(KEY_BYTES))
    write_key_file(path, ring)
    return ring


def load_keyring(key_file: Path | None = None, env: Mapping[str, str] | None = None) -> KeyRing:
    """Load the master keys: ``$CUSTOMER_ARCHIVE_KEY`` first, else the key file.

    ``$CUSTOMER_ARCHIVE_PREVIOUS_KEYS`` (comma-separated) adds previous keys to an environment
    key. The key file is ``key_file`` or ``$CUSTOMER_ARCHIVE_KEY_FILE``.

    Args:
        key_file: the key file to use when the environment holds no key.
        env: the environment (default ``os.environ``).

    Returns:
        The key ring.

    Raises:
        KeyMaterialError: no key is configured, or it is malformed or stored insecurely.
    """
    env = os.environ if env is None else env
    if env.get(KEY_ENV):
        previous = tuple(
            parse_key(part) for part in env.get(PREVIOUS_KEYS_ENV, "").split(",") if part.strip()
        )
        return KeyRing(parse_key(env[KEY_ENV]), previous)
    chosen = key_file or (Path(env[KEY_FILE_ENV]) if env.get(KEY_FILE_ENV) else None)
    if chosen is None:
        raise KeyMaterialError(
            f"no encryption key: set ${KEY_ENV} (base64 or hex of {KEY_BYTES} bytes) "
            f"or ${KEY_FILE_ENV} to a 0600 key file"
        )
    return read_key_file(chosen)

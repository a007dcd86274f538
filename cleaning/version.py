"""The cleaner's version: a fingerprint of the code and reference data that decide its output."""

from __future__ import annotations

import hashlib
import importlib.metadata
from functools import lru_cache
from pathlib import Path

__all__ = ["CLEANING_LIBRARIES", "cleaner_version"]

CLEANING_LIBRARIES: tuple[str, ...] = ("phonenumbers", "opencc", "pypinyin", "rapidfuzz")
"""Distributions whose behaviour the cleaned values depend on (their versions are hashed)."""

_PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def cleaner_version() -> str:
    """Fingerprint of every module and reference table of `cleaning` and the libraries it uses.

    A warehouse's clean layer was made by one version; records cleaned by another would not be
    comparable (a changed rule for company names, phones or places). The clean stage stores
    the version with each clean and cleans every record again when it changed (an upgrade), so
    the layer is always one cleaner's output. Conservative by design: any edit of the package,
    even one that keeps results, costs one full clean after the upgrade.
    """
    digest = hashlib.sha256()
    files = sorted(
        p for p in _PACKAGE.rglob("*")
        if p.is_file() and p.suffix in {".py", ".csv"} and "__pycache__" not in p.parts
    )  # fmt: skip
    for path in files:
        digest.update(path.relative_to(_PACKAGE).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    for dist in CLEANING_LIBRARIES:
        digest.update(f"{dist}=={importlib.metadata.version(dist)}".encode())
    return digest.hexdigest()[:20]

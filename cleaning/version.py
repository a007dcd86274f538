"""Code fingerprints: which code and libraries made a stored layer (clean or prepared records)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

__all__ = [
    "CLEANING_LIBRARIES",
    "cleaner_version",
    "code_fingerprint",
    "module_files",
]

CLEANING_LIBRARIES: tuple[str, ...] = ("phonenumbers", "opencc", "pypinyin", "rapidfuzz")
"""Distributions whose behaviour the cleaned values depend on (their versions are hashed)."""

_PACKAGE = Path(__file__).resolve().parent


def code_fingerprint(files: Mapping[str, Path], distributions: Iterable[str]) -> str:
    """A 20-hex-digit fingerprint of some source files and the installed versions of libraries.

    `files` maps a label (a module name or a path relative to its package) to a file; each
    label and the file's bytes are hashed in label order, then each distribution's name and
    version (``name==version``). Any edit of a file, a renamed file or another library version
    gives another fingerprint; nothing else does.
    """
    digest = hashlib.sha256()
    for label in sorted(files):
        digest.update(label.encode())
        digest.update(b"\0")
        digest.update(files[label].read_bytes())
    for dist in distributions:
        digest.update(f"{dist}=={importlib.metadata.version(dist)}\0".encode())
    return digest.hexdigest()[:20]


def module_files(modules: Iterable[str]) -> dict[str, Path]:
    """Each importable module's source file, by module name (for `code_fingerprint`)."""
    files: dict[str, Path] = {}
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot locate module {module} to fingerprint it")
        files[module] = Path(spec.origin)
    return files


@lru_cache(maxsize=1)
def cleaner_version() -> str:
    """Fingerprint of every module and reference table of `cleaning` and the libraries it uses.

    A warehouse's clean layer was made by one version; records cleaned by another would not be
    comparable (a changed rule for company names, phones or places). The clean stage stores
    the version with each clean and cleans every record again when it changed (an upgrade), so
    the layer is always one cleaner's output. Conservative by design: any edit of the package,
    even one that keeps results, costs one full clean after the upgrade.
    """
    files = {
        p.relative_to(_PACKAGE).as_posix(): p
        for p in _PACKAGE.rglob("*")
        if p.is_file() and p.suffix in {".py", ".csv"} and "__pycache__" not in p.parts
    }
    return code_fingerprint(files, CLEANING_LIBRARIES)

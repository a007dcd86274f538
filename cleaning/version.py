"""Code fingerprints: which code and libraries made a stored layer (clean or prepared records)."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

__all__ = [
    "CLEANING_LIBRARIES",
    "cleaner_version",
    "code_fingerprint",
    "module_files",
    "source_content",
]

CLEANING_LIBRARIES: tuple[str, ...] = ("phonenumbers", "opencc", "pypinyin", "rapidfuzz")
"""Distributions whose behaviour the cleaned values depend on (their versions are hashed)."""

_PACKAGE = Path(__file__).resolve().parent


def code_fingerprint(files: Mapping[str, Path], distributions: Iterable[str]) -> str:
    """A 20-hex-digit fingerprint of some source files and the installed versions of libraries.

    `files` maps a label (a module name or a path relative to its package) to a file; each
    label and the file's content are hashed in label order, then each distribution's name and
    version (``name==version``). A Python file's content is its syntax tree (`source_content`):
    an edit of its code or docstrings, a renamed file or another library version gives another
    fingerprint; a change of layout or comments alone (a formatter's run) does not.
    """
    digest = hashlib.sha256()
    for label in sorted(files):
        digest.update(label.encode())
        digest.update(b"\0")
        digest.update(source_content(files[label]))
    for dist in distributions:
        digest.update(f"{dist}=={importlib.metadata.version(dist)}\0".encode())
    return digest.hexdigest()[:20]


def source_content(path: Path) -> bytes:
    """What `code_fingerprint` hashes of a file: a Python file's syntax tree (``ast.dump``
    without positions, under this interpreter's ``major.minor``: its tree's shape is the
    interpreter's), so layout and comments do not count; any other file's bytes. A Python
    file that does not parse is taken as its bytes (it cannot be imported either)."""
    raw = path.read_bytes()
    if path.suffix != ".py":
        return raw
    try:
        tree = ast.parse(raw, filename=str(path))
    except SyntaxError:
        return raw
    version = f"python{sys.version_info.major}.{sys.version_info.minor}\0"
    return (version + ast.dump(tree, include_attributes=False)).encode()


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
    the layer is always one cleaner's output. Conservative by design: any edit of the package's
    code or docstrings, even one that keeps results, costs one full clean after the upgrade
    (layout and comments do not count: `source_content`).
    """
    files = {
        p.relative_to(_PACKAGE).as_posix(): p
        for p in _PACKAGE.rglob("*")
        if p.is_file() and p.suffix in {".py", ".csv"} and "__pycache__" not in p.parts
    }
    return code_fingerprint(files, CLEANING_LIBRARIES)

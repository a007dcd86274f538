"""Great Expectations imported without loading SciPy's statistics, which no suite here uses.

Importing ``great_expectations`` registers every core expectation, and one of them
(``expect_column_kl_divergence_to_be_less_than``) imports ``scipy.stats`` at module level:
≈ 0.4–0.8 of the ≈ 2.2 CPU s the import costs every run (``benchmarks/bench_run_startup.py``),
for a statistics package none of this project's expectations calls (their classes are in
``expectations/``: column existence, sets, regexes, JSON, date formats, column counts).

:func:`import_gx` therefore registers ``scipy.stats`` as a lazily executed module
(``importlib.util.LazyLoader``, the standard library's) before the first GX import: the
module object exists, and its code runs the first time one of its attributes is read (by
GX or anyone else), with the same result as an eager import. Nothing is deferred when
``scipy.stats`` or Great Expectations is already imported, or SciPy is not installed.
Python 3.11's lazy module is not guarded against two threads reading its first attribute
at once; the suites run GX under one lock (``_gx_runner``), and nothing else here reads
``scipy.stats``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

__all__ = ["DEFERRED", "defer_module", "import_gx"]

DEFERRED = ("scipy.stats",)
"""Modules Great Expectations imports at module level that no suite of this project uses."""

_lock = threading.Lock()


def import_gx(module: str = "great_expectations") -> ModuleType:
    """Import ``module`` (``great_expectations`` or one of its submodules) with
    :data:`DEFERRED` registered as lazily executed modules on the first GX import.

    Args:
        module: the module to import, e.g. ``great_expectations.expectations``.

    Returns:
        The imported module.
    """
    if "great_expectations" not in sys.modules:
        with _lock:
            if "great_expectations" not in sys.modules:
                for name in DEFERRED:
                    defer_module(name)
    return importlib.import_module(module)


def defer_module(name: str) -> bool:
    """Register ``name`` in ``sys.modules`` as a module whose code runs on its first
    attribute read (and as its parent package's attribute).

    Returns:
        Whether it was deferred: False when it is imported already or cannot be found.
    """
    if name in sys.modules:
        return False
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name) if parent_name else None
    if name in sys.modules:  # the parent's own import loaded it
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return False
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    lazy = importlib.util.module_from_spec(spec)
    sys.modules[name] = lazy
    loader.exec_module(lazy)
    if parent is not None:
        setattr(parent, child, lazy)
    return True

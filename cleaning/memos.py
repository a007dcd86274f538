"""The cleaning parsers' per-value memos, and how to let them go when a stage is done.

Every parser that works on distinct values (addresses, names, dates, e-mails, codes, …) keeps
an ``functools.lru_cache`` of up to a few hundred thousand answers, so repeated values within a
run are parsed once. After the clean stage nothing reads them again in that process, yet a full
run at 1 M records keeps them alive through match, golden and publish. The loaders of reference
tables (``maxsize=1``: division tables, industry taxonomy, mail domains) are kept: they are read
again by later runs in the same process and are small.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import cleaning


def value_memos() -> Iterator[Any]:
    """Every per-value ``lru_cache`` of the cleaning package (``maxsize`` above 1)."""
    for info in pkgutil.iter_modules(cleaning.__path__):
        module = importlib.import_module(f"cleaning.{info.name}")
        for value in vars(module).values():
            cache_info = getattr(value, "cache_info", None)
            if cache_info is None or getattr(value, "__module__", None) != module.__name__:
                continue
            maxsize = cache_info().maxsize
            if maxsize is None or maxsize > 1:
                yield value


def clear_value_memos() -> int:
    """Empty the per-value memos; returns how many answers were dropped.

    Results never change: a value asked again is parsed again, to the same answer.
    """
    dropped = 0
    for memo in value_memos():
        dropped += memo.cache_info().currsize
        memo.cache_clear()
    return dropped

"""What every stage of one run shares: the run context, the sources config and typed results."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

from sources import SourcesConfig, load_sources_config

from ..settings import ArchiveConfig, ConfigError

__all__ = [
    "PublishBlocked",
    "RunContext",
    "StageResult",
    "check_matching_fields",
    "ensure_dir",
    "load_sources",
    "stage_timing",
]


class PublishBlocked(RuntimeError):
    """A critical expectation failed: the new golden state is not published."""


@dataclass
class RunContext:
    """What every stage of one run shares."""

    config: ArchiveConfig
    run_id: str
    run_date: date
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ingested_at(self) -> str:
        return self.started_at.isoformat(timespec="seconds")


@dataclass(kw_only=True)
class StageResult:
    """A stage's figures; ``as_dict`` is what ``ops.stage_stats`` stores and the report reads.

    Attributes:
        seconds: wall-clock time of the stage (set by the Dagster wrapper).
        peak_rss_mb: the process's peak resident memory when the stage ended.
    """

    seconds: float | None = None
    peak_rss_mb: float | None = None

    _OPTIONAL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The typed figures from their ``as_dict`` form (as stored in ``ops.stage_stats``).

        Figures the class does not know (written by another version) are ignored; a figure
        it knows but the row lacks takes its default.

        Raises:
            ValueError: a figure without a default is missing.
        """
        known = {f.name: f for f in fields(cls) if f.init}
        missing = [
            name
            for name, f in known.items()
            if name not in data and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ValueError(f"{cls.__name__}: stored figures lack {missing}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready mapping (timing last; unset optional figures left out)."""
        skip = {"seconds", "peak_rss_mb", *self._OPTIONAL}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        for name in self._OPTIONAL:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("seconds", "peak_rss_mb"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def stage_timing(
    started: float, clock: Callable[[], float] = time.perf_counter
) -> tuple[float, float]:
    """Seconds since ``started`` on ``clock`` and the process's peak RSS in MB.

    The one place stage timing is measured; ``clock=time.time`` when the stage started in
    another process (the sharded match stage).
    """
    return (
        round(clock() - started, 3),
        round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def load_sources(config: ArchiveConfig) -> SourcesConfig:
    """Load the source mappings named by the project configuration."""
    return load_sources_config(
        config.resolve(config.sources_file),
        landing_dir=config.resolve(config.landing_dir),
        check_files=False,
    )


def check_matching_fields(config: ArchiveConfig, sources: SourcesConfig, config_path: str) -> None:
    """Fail early when a declared comparison or blocking key reads a field nobody provides.

    Raises:
        ConfigError: naming the configuration file and each key at fault.
    """
    from cleaning.pipeline import RECORD_COLUMNS
    from dedupe.levels import unknown_fields

    attributes = {a for s in sources.sources for a in s.attribute_names()}
    problems = unknown_fields(config.matching, {*RECORD_COLUMNS, *attributes})
    if problems:
        raise ConfigError("\n  ".join([f"{config_path}: invalid configuration", *problems]))


def ensure_dir(path: Path) -> Path:
    """Create a folder (and parents) and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path

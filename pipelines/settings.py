"""The project configuration file (`archive.yml`): paths, schedule and every stage's settings."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError, field_validator

from dedupe import MatchSettings
from expectations import QualitySettings
from warehouse import GoldenSettings
from warehouse.archive import RetentionPolicy, SnapshotPolicy

CONFIG_ENV = "CUSTOMER_ARCHIVE_CONFIG"
DEFAULT_CONFIG = Path("archive.yml")


def default_config_path() -> Path:
    """The project YAML when none is given: ``$CUSTOMER_ARCHIVE_CONFIG``, else ``archive.yml``."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


class ConfigError(ValueError):
    """The project configuration file is missing or invalid; the message names the file and key."""


class ScheduleSettings(BaseModel):
    """When the nightly run starts, and whether the schedule and landing sensor start switched on.

    ``enabled`` / ``sensor_enabled`` set the Dagster default status (RUNNING when true): a
    deployment's ``dagster-daemon`` then runs the nightly job and reacts to landed files without
    anyone switching them on in the UI (a switch in the UI still overrides the default).
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    sensor_enabled: bool = True
    cron: str = "0 2 * * *"
    timezone: str = "Asia/Shanghai"
    sensor_interval_seconds: int = Field(default=300, ge=30)
    freshness_hours: int = Field(default=24, ge=1, le=24)
    freshness_deadline_cron: str = "0 6 * * *"


_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
AUTO_MEMORY_SHARE = 0.25
AUTO_MEMORY_CAP_MIB = 2048
AUTO_MEMORY_FLOOR_MIB = 256


def machine_memory_mib() -> int | None:
    """The memory this process may use, in MiB: the machine's RAM, or a smaller cgroup limit
    (a container's ``memory.max``); None when it cannot be read."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total // 2**20


class DuckDBSettings(BaseModel):
    """Larger-than-memory knobs handed to DuckDB.

    ``memory_limit``: ``auto`` (default) bounds DuckDB's buffer pool by the machine: a quarter
    of its memory (:func:`machine_memory_mib`, a container's limit counts), at most 2 GiB and
    at least 256 MiB (:meth:`resolved_memory_limit`); beyond it DuckDB spills to
    ``temp_directory``. A size (``"4GB"``, ``"1536MiB"``) sets it; null leaves DuckDB's own
    default (80 % of the machine's RAM, kept as cache by the buffer pool).
    """

    model_config = ConfigDict(extra="forbid")
    memory_limit: str | None = "auto"
    temp_directory: str | None = None
    threads: int | None = None
    # give the memory of finished DuckDB work back to the system (allocator background
    # threads) instead of keeping it for DuckDB's next query: the run's pandas work then does
    # not stack on DuckDB's retained peak (BENCHMARKS.md, issue #22)
    release_memory: bool = True
    # how much of DuckDB's buffer pool a nightly run (in-process, warehouse already there)
    # keeps warm from one stage to the next, so a table read (decrypted) by one stage is not
    # read again by the next; 0 = every stage opens the warehouse itself (pipelines.access)
    stage_cache: ByteSize = Field(default=ByteSize(256 * 2**20))
    # an in-process run holding the warehouse open (a nightly) lets its checkpoints vacuum
    # (merge row groups with deleted rows or few rows, rewriting them whole) only when no
    # compaction is recorded in this many days before its run date; 0 = every run compacts
    # (DuckDB's default). warehouse.compaction, docs/warehouse.md "Compaction"
    compact_every_days: int = Field(default=0, ge=0)

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() == "auto" or _SIZE.match(value):
            return None if value is None else value.strip()
        raise ValueError(f"memory_limit: auto, null or a size like 4GB or 1536MiB, not {value!r}")

    def resolved_memory_limit(self) -> str | None:
        """The ``memory_limit`` handed to DuckDB (``auto`` worked out for this machine)."""
        if self.memory_limit is None or self.memory_limit.lower() != "auto":
            return self.memory_limit
        total = machine_memory_mib()
        if total is None:
            return f"{AUTO_MEMORY_CAP_MIB}MiB"
        share = int(total * AUTO_MEMORY_SHARE)
        return f"{max(AUTO_MEMORY_FLOOR_MIB, min(AUTO_MEMORY_CAP_MIB, share))}MiB"


class SecuritySettings(BaseModel):
    """Keys, encryption at rest, the analyst mart and the audit log (docs/security.md)."""

    model_config = ConfigDict(extra="forbid")
    key_file: Path = Path("data/keys/archive.key")
    generate_key: bool = True
    encrypt_warehouse: bool = True
    allow_unsafe_duckdb_crypto: bool = True
    encrypt_snapshots: bool = True
    analyst_mart_enabled: bool = True
    analyst_mart: Path = Path("data/mart/analyst.duckdb")
    analyst_mart_parquet: Path = Path("data/mart/parquet")
    audit_log: Path = Path("data/audit/audit.jsonl")
    retention_years: int | None = Field(default=None, ge=1)
    retention_action: Literal["anonymize", "delete"] = "anonymize"
    # delete landing files a run ingested, N days after their delivery date (None: keep all)
    landing_retention_days: int | None = Field(default=None, ge=1)


class CalendarSettings(BaseModel):
    """Working days for the archive deadlines (法定节假日 and 调休 from ``chinesecalendar``)."""

    model_config = ConfigDict(extra="forbid")
    overrides: dict[date, Literal["workday", "holiday"]] = Field(
        default_factory=dict,
        description="date → workday | holiday; wins over the holiday package (company closing "
        "days, or a year the package does not know yet)",
    )
    unknown_years: Literal["weekdays", "error"] = Field(
        default="weekdays",
        description="a year without holiday data: Monday–Friday plus overrides (logged and "
        "noted in the package manifest), or an error",
    )


class FilingSettings(BaseModel):
    """Registers, dossiers and archive packages (docs/archive.md, seed 004 归档)."""

    model_config = ConfigDict(extra="forbid")
    dir: Path = Path("data/filing")
    handled_by: str | None = Field(default=None, description="经办人 (default: the acting user)")
    reviewed_by: str | None = Field(default=None, description="审核人 recorded in 表3")
    font: Path | None = Field(default=None, description="CJK font file for dossier PDFs")
    calendar: CalendarSettings = CalendarSettings()
    monthly_enabled: bool = Field(default=True, description="monthly package schedule running")
    yearly_enabled: bool = Field(default=True, description="yearly package schedule running")
    check_cron: str = Field(
        default="0 18 * * *", description="when the schedules check whether a package is due"
    )
    reverify_months: int = Field(default=12, ge=1, le=60)


class ScaleSettings(BaseModel):
    """Scale-out of the match stage (docs/scaling.md): blocking shards and the Dagster executor.

    Kept apart from ``matching``: these knobs change where the work runs, never the result, so
    they must not enter the settings hash that decides between a full and an incremental rematch.
    """

    model_config = ConfigDict(extra="forbid")
    match_shards: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="blocking shards of a full match rebuild; 1 = one process, as before",
    )
    executor: Literal["in_process", "multiprocess"] = Field(
        default="in_process",
        description="in_process: every step in the run's process; multiprocess: one process "
        "per step, so shards run in parallel",
    )
    max_concurrent: int = Field(
        default=2, ge=1, le=256, description="processes at once under the multiprocess executor"
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="processes/threads one step may use: the cleaning process pool, rapidfuzz "
        "bulk scoring, DuckDB threads (unless duckdb.threads is set) and, from 2 under the "
        "in-process executor, one helper reading later sources ahead (ingest_read_ahead); "
        "null = the machine's "
        "cores. Never changes a result (1 = everything single-threaded)",
    )
    ingest_read_ahead: bool = Field(
        default=True,
        description="with workers >= 2 under the in-process executor, the run's first ingest "
        "step has one helper process read the later large sources (>= 8 MiB new) while the "
        "steps read their own: on 2 free cores the 1 M full run's ingest waits for the "
        "service XLSX alone instead of all three sources, for a few more CPU seconds; where "
        "other work takes the cores it only adds those (BENCHMARKS.md, issue #22, "
        "`ingestpar`). Never changes a result",
    )
    snapshot_ahead: bool = Field(
        default=True,
        description="with workers >= 2 under the in-process executor, a full publish (a full "
        "golden build swapped in, a full snapshot due) reads, hashes and writes the snapshot's "
        "table files beside the analyst mart's masking (a second thread), and the snapshot "
        "stage that follows in the same process only adds the manifest; the same files and "
        "content hash. Never changes a result",
    )
    write_behind: bool = Field(
        default=True,
        description="with workers >= 2, a full clean and a full golden build write each chunk "
        "(appends, COMMIT; golden: the carry-forward comparison too) on a second connection in "
        "a background thread while the next chunk is computed: one write at a time, in order, "
        "one more chunk's frames held (BENCHMARKS.md, issue #22, `fclean2`); a nightly golden "
        "build reads the best match scores and the touched customers' published rows on a "
        "second connection beside its own work (issue #15, `nwall`). Never changes a result",
    )
    clean_workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="processes that clean at once: a full clean hands whole slices to N - 1 "
        "helper processes, a nightly clean spreads distinct values over a pool; 1 (default) = "
        "the stage's process only: at 1 M a helper took 10 % off the stage's own CPU for 19 % "
        "more in all (each process parses its own slices' distinct values), and under load it "
        "cannot gain wall time (BENCHMARKS.md, issue #22). Never changes a result",
    )
    clean_chunk_records: int = Field(
        default=100_000,
        ge=1,
        description="current records a full clean reads and cleans at a time (appended to "
        "clean.* chunk by chunk: memory holds one chunk, not every record); never changes a "
        "result",
    )
    golden_chunk_records: int = Field(
        default=100_000,
        ge=1,
        description="records a full golden build reads, builds and stages at a time (whole "
        "customers, in customer_id order: memory holds one chunk's frames, not every "
        "record's); never changes a golden table's content",
    )
    golden_workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="processes that build golden chunks at once: a full golden build hands "
        "whole chunks to N - 1 helper processes; 1 (default) = the stage's process only: a "
        "helper took 10-14 % off the stage's own CPU and held 0.75-1.2 GB (BENCHMARKS.md, "
        "issue #22). Never changes a golden table's content",
    )
    prepare_workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="processes that prepare a full match's records at once "
        "(`dedupe.prepare_records`): with N > 1 the records are prepared in chunks of "
        "prepare_chunk_records and N - 1 helper processes take whole chunks; 1 (default) = "
        "the stage's process prepares every record at once: a helper takes CPU off the "
        "stage's thread but adds its start-up, the chunks' pickling, the work on values "
        "several chunks carry, and its own memory (BENCHMARKS.md, issue #22, `cprep`). Never "
        "changes a result",
    )
    prepare_chunk_records: int = Field(
        default=100_000,
        ge=1,
        description="records a chunk holds when a full match prepares with helper processes "
        "(prepare_workers > 1); never changes a result",
    )
    reuse_params: bool = Field(
        default=True,
        description="sharded full rebuilds reuse the previous run's model params when the "
        "matching settings are unchanged (no training on the full candidate set)",
    )

    def resolved_workers(self) -> int:
        """``workers``, or the machine's cores (at least 1) when unset."""
        return self.workers or max(1, os.cpu_count() or 1)

    def writes_behind(self) -> bool:
        """Whether a full clean's and a full golden build's chunk writes run in a background
        thread (``write_behind`` and a second core: ``resolved_workers()`` >= 2)."""
        return self.write_behind and self.resolved_workers() >= 2


class ArchiveConfig(BaseModel):
    """The whole project configuration; relative paths resolve against the file's folder."""

    model_config = ConfigDict(extra="forbid")

    landing_dir: Path = Path("data/demo/landing")
    sources_file: Path = Path("sources/sources.yml")
    warehouse: Path = Path("data/warehouse.duckdb")
    archive_dir: Path = Path("data/archive")
    reports_dir: Path = Path("data/reports")
    exports_dir: Path = Path("data/exports")
    offsite: str | None = None
    match_incremental: bool = True
    clean_incremental: bool = True
    golden_incremental: bool = True
    export_full_every_days: int = Field(default=7, ge=1)
    alert_webhook: str | None = None
    schedule: ScheduleSettings = ScheduleSettings()
    duckdb: DuckDBSettings = DuckDBSettings()
    matching: MatchSettings = MatchSettings()
    golden: GoldenSettings = GoldenSettings()
    quality: QualitySettings = QualitySettings()
    retention: RetentionPolicy = RetentionPolicy()
    snapshots: SnapshotPolicy = SnapshotPolicy()
    security: SecuritySettings = SecuritySettings()
    scale: ScaleSettings = ScaleSettings()
    filing: FilingSettings = FilingSettings()
    base_dir: Path = Path(".")

    def resolve(self, path: Path | str) -> Path:
        """Resolve a path from the config against the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir / p)


def load_config(path: Path | str | None = None, **overrides: Any) -> ArchiveConfig:
    """Load and validate the project configuration.

    Args:
        path: the YAML file; ``None`` uses built-in defaults relative to the working directory.
        **overrides: top-level keys replacing the file's values (e.g. ``warehouse=...``).

    Returns:
        The validated configuration with ``base_dir`` set to the file's folder.

    Raises:
        ConfigError: the file is missing, not YAML, or has an unknown/invalid key.
    """
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: configuration file not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: an impossible date (02-30)
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level")
        data = loaded or {}
        base = p.resolve().parent
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["base_dir"] = base
    try:
        return ArchiveConfig.model_validate(data)
    except ValidationError as exc:
        where = path or "<defaults>"
        lines = [f"{where}: invalid configuration"]
        for err in exc.errors():
            key = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {key}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from exc

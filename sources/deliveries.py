"""Incremental ingest planning: which delivered files are new, changed, duplicate or unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from sources.config import SourceConfig, SourcesConfig, find_source_files
from sources.model import MANIFEST_COLUMNS, FileDelivery


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Args:
        path: The file.

    Returns:
        64 hex digits.
    """
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _prior_rows(source: SourceConfig, manifest: pd.DataFrame | None) -> pd.DataFrame:
    if manifest is None or manifest.empty:
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    missing = [c for c in ("source_system", "path", "sha256") if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing}; expected {list(MANIFEST_COLUMNS)}")
    return manifest.loc[manifest["source_system"] == source.name]


def plan_deliveries(
    source: SourceConfig, landing_dir: Path, manifest: pd.DataFrame | None
) -> list[FileDelivery]:
    """Decide, for each file the source's glob matches, whether this run should read it.

    The manifest holds earlier runs' deliveries in the order they were recorded; the last
    row of a path is its current version. A path whose content is unchanged is
    ``unchanged``; content already delivered under any path (a re-send, even renamed, or a
    second copy in this batch) is ``duplicate``; a known path with new content is
    ``changed`` (its older rows are superseded); anything else is ``new``.

    Args:
        source: The source.
        landing_dir: Folder the source's glob is relative to.
        manifest: Earlier deliveries (``MANIFEST_COLUMNS``), or None on a first run.

    Returns:
        One ``FileDelivery`` per matching file, in path order, each with a note.

    Raises:
        ValueError: when the manifest lacks the path/sha256 columns.
    """
    prior = _prior_rows(source, manifest)
    runs = prior["run_id"] if "run_id" in prior.columns else pd.Series("?", index=prior.index)
    first_by_sha: dict[str, tuple[str, str]] = {}
    latest_by_path: dict[str, tuple[str, str]] = {}
    for path, sha, run in zip(prior["path"], prior["sha256"], runs, strict=True):
        first_by_sha.setdefault(str(sha), (str(path), str(run)))
        latest_by_path[str(path)] = (str(sha), str(run))

    plans: list[FileDelivery] = []
    batch: dict[str, str] = {}
    for file in find_source_files(source, landing_dir):
        rel = file.relative_to(landing_dir).as_posix()
        sha = file_sha256(file)
        size = file.stat().st_size
        known = latest_by_path.get(rel)
        if known is not None and known[0] == sha:
            plan = FileDelivery(
                source.name,
                rel,
                size,
                sha,
                "unchanged",
                note=f"unchanged since run {known[1]}: skipped",
            )
        elif sha in first_by_sha:
            other, run = first_by_sha[sha]
            plan = FileDelivery(
                source.name,
                rel,
                size,
                sha,
                "duplicate",
                note=f"same content as {other} (run {run}): skipped",
            )
        elif sha in batch:
            plan = FileDelivery(
                source.name,
                rel,
                size,
                sha,
                "duplicate",
                note=f"same content as {batch[sha]} in this run: skipped",
            )
        elif known is not None:
            plan = FileDelivery(
                source.name,
                rel,
                size,
                sha,
                "changed",
                note=f"replaces the version of run {known[1]}",
            )
        else:
            plan = FileDelivery(source.name, rel, size, sha, "new")
        if plan.to_ingest:
            batch[sha] = rel
        plans.append(plan)
    return plans


def landing_fingerprint(config: SourcesConfig) -> tuple[str, int]:
    """Fingerprint (path, size, mtime) every landed file the sources declare; also count them.

    A cheap sensor cursor: it changes whenever a file lands, is replaced, touched or removed,
    without hashing contents.

    Args:
        config: the sources and their landing folder.

    Returns:
        The hex digest and the number of files fingerprinted.
    """
    entries: list[str] = []
    for src in config.sources:
        for path in sorted(Path(config.landing_dir).glob(src.path)):
            if path.is_file():
                st = path.stat()
                entries.append(f"{path}|{st.st_size}|{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()
    return digest, len(entries)
